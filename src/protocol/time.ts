/**
 * Timestamps with microsecond resolution. A Date holds whole milliseconds only, so the wire carries
 * ISO-8601 strings with six fractional digits and code that needs precision uses epoch milliseconds
 * as floats (performance.timeOrigin + performance.now()).
 */

/** Epoch milliseconds with sub-millisecond resolution. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

// the date-and-seconds part changes once a second: format it once (Date#toISOString costs ~10 µs cold)
let cachedSecond = Number.NaN;
let cachedPrefix = "";

/** ISO-8601 UTC with microseconds: 2026-11-25T22:15:57.123456Z */
export function isoMicro(ms: number = nowMs()): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20); // ...ss.
  }
  const micros = Math.min(999_999, Math.round((ms - second * 1000) * 1000));
  return `${cachedPrefix}${String(micros).padStart(6, "0")}Z`;
}

const ISO_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/;

let parsedPrefix = "";
let parsedBase = 0;

/** Parse an ISO-8601 string (any number of fractional digits) to epoch milliseconds as a float. */
export function parseIsoMicro(text: string): number {
  // fast path for our own format (…ss.ffffffZ), with the seconds part of the last call remembered
  if (text.length === 27 && text[19] === "." && text[26] === "Z") {
    const prefix = text.slice(0, 19);
    if (prefix !== parsedPrefix) {
      const base = Date.parse(`${prefix}Z`);
      if (Number.isNaN(base)) return Number.NaN;
      parsedPrefix = prefix;
      parsedBase = base;
    }
    const micros = Number(text.slice(20, 26));
    if (Number.isInteger(micros)) return parsedBase + micros / 1000;
  }
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
