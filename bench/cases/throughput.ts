/** T1, T2 and the T1-vs-chunksize curve for tsparallel. */
import type { Client } from "tsparallel";
import type { CaseResult } from "../lib/peerio.ts";
import { cpuMs } from "../lib/procfs.ts";
import { now } from "../lib/stats.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * T1: `await rc.loadBalancedView().map(noop, 0..n-1, { chunksize })`, tasks/s. With `procs` (name →
 * pid: the client and the cluster's processes), also each one's CPU per task (µs, all its threads,
 * from /proc) as `cpu_<name>_us`: which process a slow round was slow in.
 */
export async function t1(rc: Client, n: number, chunksize = 1, procs: Record<string, number> = {}): Promise<CaseResult> {
  const lv = rc.loadBalancedView();
  await lv.map((x: number) => x, range(100), { chunksize }); // warm-up
  const seq = range(n);
  const before = Object.entries(procs).map(([name, pid]) => [name, pid, cpuMs(pid)] as const);
  const t0 = now();
  const out = await lv.map((x: number) => x, seq, { chunksize });
  const seconds = now() - t0;
  if (out.length !== n) throw new Error(`map returned ${out.length} results, expected ${n}`);
  const cpu = Object.fromEntries(before.map(([name, pid, ms]) => [`cpu_${name}_us`, ((cpuMs(pid) - ms) * 1000) / n]));
  return { tasks_per_s: n / seconds, n, chunksize, ...cpu };
}

/** T2: n separate `lv.apply(noop, i)` calls, then wait for all. */
export async function t2(rc: Client, n: number): Promise<CaseResult> {
  const lv = rc.loadBalancedView();
  const t0 = now();
  const ars = range(n).map((i) => lv.apply((x: number) => x, i));
  await Promise.all(ars);
  return { tasks_per_s: n / (now() - t0), n };
}

export const CHUNKSIZES = [1, 4, 16, 64];

export async function chunksizeCurve(rc: Client, n: number): Promise<CaseResult> {
  const out: CaseResult = { n };
  for (const c of CHUNKSIZES) out[`chunk${c}_tasks_per_s`] = (await t1(rc, n, c)).tasks_per_s!;
  return out;
}
