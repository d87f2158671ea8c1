// The C1 CPU task, in one place: the Node pools' workers, the serial reference and the tsparallel
// case all run this same source (tsparallel ships `cpu.toString()`).

/** @param {number} n @returns {number} */
export const cpu = (n) => { let s = 0; for (let i = 0; i < n; i++) s += i; return s; };

/** n such that cpu(n) takes about targetMs in this (warmed-up) process. */
export function calibrate(targetMs) {
  const n0 = 1_000_000;
  for (let i = 0; i < 30; i++) cpu(n0);
  const times = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    cpu(n0);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return Math.max(1000, Math.round((n0 * targetMs) / times[4]));
}
