/** Small statistics helpers shared by the orchestrator and the Node peers. */

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Quantile by linear interpolation; NaN for an empty list. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export interface LatencyStats {
  median_us: number;
  p90_us: number;
  p99_us: number;
  calls: number;
}

/** Per-call latencies in seconds → µs summary. */
export function latencyStats(samplesS: readonly number[]): LatencyStats {
  const us = samplesS.map((s) => s * 1e6);
  return { median_us: median(us), p90_us: quantile(us, 0.9), p99_us: quantile(us, 0.99), calls: us.length };
}

/** Monotonic seconds. */
export function now(): number {
  return performance.now() / 1000;
}

/** Time `calls` sequential awaited calls after `warmup` untimed ones. */
export async function timeCalls(fn: () => Promise<unknown>, calls: number, warmup: number): Promise<LatencyStats> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = now();
    await fn();
    samples.push(now() - t0);
  }
  return latencyStats(samples);
}
