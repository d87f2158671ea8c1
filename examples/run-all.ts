/**
 * `npm start`: start a local cluster of 2 engines, run every example of the AsyncResult chapter,
 * print their results and timings, stop the cluster.
 */
import { Cluster } from "tsparallel";
import { main as getdict } from "./01-getdict.ts";
import { main as iterate } from "./02-reference-iterate.ts";
import { main as chunks } from "./03-map-chunks.ts";
import { main as rms } from "./04-rms.ts";
import type { Example } from "./_shared.ts";

const examples: Array<[string, Example]> = [
  ["01 getDict: every engine's pid, pushed back as pidMap", getdict],
  ["02 scatter + Reference + iterating results as they arrive", iterate],
  ["03 map: chunksize, ordered: false, per-task timings", chunks],
  ["04 RMS with map/reduce", rms],
];

const t0 = performance.now();
const cluster = new Cluster({ n: 2 });
const rc = await cluster.startAndConnect();
console.log(`cluster ${cluster.clusterId}: controller + ${rc.ids.length} engines up in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
let failed = 0;
try {
  for (const [title, example] of examples) {
    console.log(`\n=== ${title}`);
    const start = performance.now();
    try {
      await example(rc, (line) => console.log(`  ${line}`));
      console.log(`--- ok in ${((performance.now() - start) / 1000).toFixed(3)} s`);
    } catch (err) {
      failed += 1;
      console.log(`--- FAILED: ${err instanceof Error ? err.stack : String(err)}`);
    }
  }
} finally {
  await cluster.stop();
}
console.log(`\n${examples.length - failed}/${examples.length} examples ok; total ${((performance.now() - t0) / 1000).toFixed(2)} s; cluster stopped`);
process.exitCode = failed === 0 ? 0 : 1;
