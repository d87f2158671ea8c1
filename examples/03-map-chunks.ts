/**
 * Map results are iterable: a load-balanced map with one call per task, four calls per task
 * (`chunksize`), and unordered results (`ordered: false`) arriving fastest first — each printed
 * with the engine that ran it and the time it arrived. Then the timing properties.
 *
 * In ipyparallel:
 *   amr = v.map(sleep_here, [.01 * t for t in range(100)])
 *   amr = v.map(sleep_here, [.01 * t for t in range(100)], chunksize=4)
 *   amr = v.map(sleep_here, [.01 * t for t in range(100, 0, -1)], ordered=False, chunksize=2)
 */
import type { AsyncMapResult, Client } from "tsparallel";
import { isMain, runStandalone, SCALE } from "./_shared.ts";

declare const id: number; // an engine variable (scattered in 02, and again below)

/** Runs on an engine: sleeps `t` seconds, returns which engine it was and `t`. */
function sleepHere(t: number): [number, number] {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, t * 1000);
  return [id, t];
}

async function show(amr: AsyncMapResult<[number, number]>, log: (line: string) => void): Promise<void> {
  const tic = performance.now();
  let i = 0;
  const lines: string[] = [];
  for await (const [engine] of amr) {
    lines.push(`task ${i++} on engine ${engine}: ${((performance.now() - tic) / 1000).toFixed(3)}`);
  }
  // the docs print all 100 lines; show the first and last few
  for (const line of [...lines.slice(0, 4), "…", ...lines.slice(-3)]) log(line);
  log(`length ${amr.length}, msgIds ${amr.msgIds.length}, progress ${amr.progress}; ` +
    `serialTime ${amr.serialTime.toFixed(3)} s, wallTime ${amr.wallTime.toFixed(3)} s, speedup ${(amr.serialTime / amr.wallTime).toFixed(2)}×`);
}

export async function main(rc: Client, log: (line: string) => void): Promise<void> {
  await rc.directView().scatter("id", rc.ids, { flatten: true });
  const v = rc.loadBalancedView();
  const times = Array.from({ length: 100 }, (_, t) => 0.01 * t * SCALE);

  log("running with one call per task");
  await show(v.map(sleepHere, times), log);

  log("running with four calls per task");
  await show(v.map(sleepHere, times, { chunksize: 4 }), log);

  log("running with two calls per task, with unordered results");
  const reversed = Array.from({ length: 100 }, (_, k) => 0.01 * (100 - k) * SCALE);
  const amr = v.map(sleepHere, reversed, { ordered: false, chunksize: 2 });
  const arrived: number[] = [];
  for await (const [, t] of amr) arrived.push(t);
  const moved = arrived.filter((t, k) => t !== reversed[k]).length;
  log(`results arrived in completion order: ${moved} of ${arrived.length} out of input order; all done in ${amr.wallTime.toFixed(3)} s`);
  const inOrder = await amr;
  log(`await amr is still in input order: ${inOrder.every(([, t], k) => t === reversed[k])}`);

  log("while pending: elapsed and progress");
  const pending = v.map(sleepHere, times.slice(0, 20));
  log(`right after submit: elapsed ${pending.elapsed.toFixed(3)} s, progress ${pending.progress}/${pending.length} (${((100 * pending.progress) / pending.length).toFixed(0)}%)`);
  await pending.waitInteractive({ interval: 0.2 });
}

if (isMain(import.meta.url)) await runStandalone(main);
