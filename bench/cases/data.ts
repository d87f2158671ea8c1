/** D1, D2 and the D1-vs-engine-count curve for tsparallel. */
import type { Client } from "tsparallel";
import type { CaseResult } from "../lib/peerio.ts";
import { median, now } from "../lib/stats.ts";
import { startCluster, stopCluster } from "./cluster.ts";

const MB = 1e6;

/** n random float64s (also the probes' test data). */
export function randomFloats(n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random();
  return a;
}

/**
 * D1: push then pull of a 100 MB Float64Array to/from engine 0, MB/s each way. After each pair
 * (untimed), the client purges the two tasks' results: ipyparallel's client drops a result once
 * its AsyncResult has given it (owner_pop), while `rc.results` keeps every result until
 * `purgeResults` (API.md). Without it, this long-lived client would hold every array it pulled,
 * round after round, and each pull would land in memory new to the VM (bench/README.md).
 */
export async function d1(rc: Client, reps: number): Promise<CaseResult> {
  const arr = randomFloats((100 * MB) / 8);
  const dv = rc.directView(0);
  const push: number[] = [];
  const pull: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    const pushed = dv.push({ a: arr });
    await pushed;
    const t1 = now();
    const pulled = dv.pull("a");
    const back = (await pulled) as Float64Array;
    const t2 = now();
    if (back.length !== arr.length) throw new Error(`pulled ${back.length} elements, expected ${arr.length}`);
    push.push(arr.byteLength / MB / (t1 - t0));
    pull.push(arr.byteLength / MB / (t2 - t1));
    await rc.purgeResults([pushed, pulled]);
  }
  return { push_MBps: median(push), pull_MBps: median(pull), MB: arr.byteLength / MB };
}

/** D2: `await dv.scatter("x", arr); await dv.gather("x")` of 10 M float64 over all engines (results purged as in D1). */
export async function d2(rc: Client, reps: number): Promise<CaseResult> {
  const arr = randomFloats(10_000_000);
  const dv = rc.directView("all");
  const runs: Array<[number, number, number]> = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    const scattered = dv.scatter("x", arr);
    await scattered;
    const t1 = now();
    const gathered = dv.gather("x");
    const back = (await gathered) as ArrayLike<number>;
    const t2 = now();
    if (back.length !== arr.length) throw new Error(`gathered ${back.length} elements, expected ${arr.length}`);
    runs.push([t2 - t0, t1 - t0, t2 - t1]);
    await rc.purgeResults([scattered, gathered]);
  }
  runs.sort((a, b) => a[0] - b[0]);
  const [seconds, scatter, gather] = runs[Math.floor(runs.length / 2)]!;
  return { seconds, scatter_s: scatter, gather_s: gather };
}

export const ENGINE_COUNTS = [1, 2, 4, 8];

/** Push of 100 MB to every engine of a view of k engines, aggregate MB/s, on one 8-engine cluster. */
export async function enginesCurve(reps: number): Promise<CaseResult> {
  const started = await startCluster({ n: Math.max(...ENGINE_COUNTS) });
  try {
    const arr = randomFloats((100 * MB) / 8);
    const out: CaseResult = {};
    for (const k of ENGINE_COUNTS) {
      const dv = started.rc.directView(started.rc.ids.slice(0, k));
      const rates: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = now();
        await dv.push({ a: arr });
        rates.push((k * arr.byteLength) / MB / (now() - t0));
      }
      out[`engines${k}_MBps`] = median(rates);
    }
    return out;
  } finally {
    await stopCluster(started);
  }
}
