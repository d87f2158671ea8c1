/**
 * Timestamps with microsecond resolution. A Date holds whole milliseconds only, so the wire carries
 * ISO-8601 strings with six fractional digits and code that needs precision uses epoch milliseconds
 * as floats (performance.timeOrigin + performance.now()).
 */

/** Epoch milliseconds with sub-millisecond resolution. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** ISO-8601 UTC with microseconds: 2026-11-25T22:15:57.123456Z */
export function isoMicro(ms: number = nowMs()): string {
  const whole = Math.floor(ms);
  const micros = Math.floor((ms - whole) * 1000);
  const iso = new Date(whole).toISOString(); // ...ss.mmmZ
  return `${iso.slice(0, -1)}${String(micros).padStart(3, "0")}Z`;
}

const ISO_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/;

/** Parse an ISO-8601 string (any number of fractional digits) to epoch milliseconds as a float. */
export function parseIsoMicro(text: string): number {
  const m = ISO_RE.exec(text);
  if (m === null) return Number.NaN;
  const base = Date.parse(`${m[1]}${m[3] ?? "Z"}`);
  const frac = m[2] ?? "";
  return base + (frac.length > 0 ? Number(`0.${frac}`) * 1000 : 0);
}

/** A Date for an epoch-milliseconds float (the fraction is dropped: keep the float for precision). */
export function toDate(ms: number | null | undefined): Date | null {
  return ms === null || ms === undefined || Number.isNaN(ms) ? null : new Date(Math.floor(ms));
}
