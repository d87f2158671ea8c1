/**
 * Iterating an AsyncResult: act on results as they arrive. `scatter` gives each engine its own
 * `id`, a `Reference("id")` passes that engine's value, and each engine sleeps `id` seconds.
 *
 * In ipyparallel:
 *   dv.scatter('id', rc.ids, flatten=True)
 *   ar = dv.apply(time.sleep, ipp.Reference('id'))
 *   for i, r in enumerate(ar): print("%i: %.3f" % (i, time.time() - tic))
 */
import { Reference, type Client } from "tsparallel";
import { isMain, runStandalone } from "./_shared.ts";

export async function main(rc: Client, log: (line: string) => void): Promise<void> {
  const dv = rc.directView();
  await dv.scatter("id", rc.ids, { flatten: true });
  log(`Engine IDs: ${JSON.stringify(await dv.get("id"))}`);

  const ref = new Reference("id");
  log("sleeping for `id` seconds on each engine");
  const tic = performance.now();
  const ar = dv.apply((t: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, t * 1000), ref);
  let i = 0;
  for await (const _ of ar) log(`${i++}: ${((performance.now() - tic) / 1000).toFixed(3)}`);
  log(`elapsed ${ar.elapsed.toFixed(3)} s, serialTime ${ar.serialTime.toFixed(3)} s, wallTime ${ar.wallTime.toFixed(3)} s`);
}

if (isMain(import.meta.url)) await runStandalone(main);
