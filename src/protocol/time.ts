/**
 * Timestamps with microsecond resolution. A Date holds whole milliseconds only, so the wire carries
 * ISO-8601 strings with six fractional digits and code that needs precision uses epoch milliseconds
 * as floats.
 */

/*
 * The system's wall clock, to the microsecond. Node reads it only in whole milliseconds (Date.now),
 * so the fraction comes from the monotonic clock (performance.now) plus an offset, which starts as
 * the process's time origin. The origin is read once, when the process starts: if the wall clock is
 * stepped afterwards (NTP on a freshly booted machine), or the origin was read imprecisely, the
 * processes of one host would disagree, and a task could seem to start before the task it waited
 * for had completed. So each reading is checked against Date.now(): it must lie in the same
 * millisecond, and where it does not the offset moves just enough. Readings near a millisecond's
 * edge keep pulling the offset to the wall clock, so processes agree to within ~1 ms at once and
 * to a few µs soon after.
 */
let offset = performance.timeOrigin;

/** Epoch milliseconds (the system's wall clock) with sub-millisecond resolution. */
export function nowMs(): number {
  const wall = Date.now(); // read first: the moment of the next reading is no earlier than `wall`
  const t = offset + performance.now();
  if (t < wall) {
    offset += wall - t;
    return wall;
  }
  if (t >= wall + 1) {
    const last = wall + 0.999;
    offset -= t - last;
    return last;
  }
  return t;
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
