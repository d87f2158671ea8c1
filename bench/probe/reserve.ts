/**
 * The client's receive reserve (src/client/reserve.ts) on (`receiveReserve: 256 MiB`) and off (the default), in
 * alternating fresh 2-engine clusters: per round, as the bench's D1 and D2 run them, `--reps`
 * pushes then pulls of a new 100 MB Float64Array to engine 0, then `--reps` scatters then gathers
 * of 10 M float64 over both engines. Prints each operation's ms, with `H` where the received array
 * landed in a prepared buffer, and each round's medians. Not a benchmark (no peers, no targets):
 * the figures of docs/performance.md ("Bulk data").
 *
 *   npm run build && node --import tsx bench/probe/reserve.ts [--rounds 3] [--reps 3]
 */
import { Cluster, type Client } from "tsparallel";
import { RESERVE_SUGGESTED_LIMIT } from "tsparallel/internal";
import { randomFloats } from "../cases/data.ts";
import { median } from "../lib/stats.ts";
import { probeArgs } from "./args.ts";

/** `f`'s ms, and whether the array it received landed in a prepared buffer. */
async function timed(rc: Client, f: () => PromiseLike<unknown>): Promise<[number, boolean]> {
  const hits = rc.receiveReserve.hits;
  const t0 = performance.now();
  await f();
  return [performance.now() - t0, rc.receiveReserve.hits > hits];
}

async function run(receiveReserve: number | undefined, reps: number): Promise<string> {
  const cluster = new Cluster({ n: 2 });
  try {
    const rc = await cluster.startAndConnect(receiveReserve === undefined ? {} : { receiveReserve });
    const e0 = rc.directView(0);
    const all = rc.directView("all");
    const ops: string[] = [];
    const t = { push: [] as number[], pull: [] as number[], scatter: [] as number[], gather: [] as number[] };
    const arr = randomFloats(12_500_000);
    for (let i = 0; i < reps; i++) {
      const [push] = await timed(rc, () => e0.push({ a: arr }));
      const [pull, hit] = await timed(rc, () => e0.pull("a"));
      t.push.push(push);
      t.pull.push(pull);
      ops.push(`${push.toFixed(0)}/${pull.toFixed(0)}${hit ? "H" : ""}`);
    }
    const x = randomFloats(10_000_000);
    for (let i = 0; i < reps; i++) {
      const [scatter] = await timed(rc, () => all.scatter("x", x));
      const [gather, hit] = await timed(rc, () => all.gather("x"));
      t.scatter.push(scatter);
      t.gather.push(gather);
      ops.push(`${scatter.toFixed(0)}/${gather.toFixed(0)}${hit ? "H" : ""}`);
    }
    const mbps = (ms: number) => (100_000 / ms).toFixed(0);
    return `push ${mbps(median(t.push))} pull ${mbps(median(t.pull))} MB/s, scatter ${median(t.scatter).toFixed(0)} gather ${median(t.gather).toFixed(0)} ms   [${ops.join(" ")}]`;
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const args = probeArgs(process.argv.slice(2), { rounds: 3, reps: 3 });
  console.log(`medians of ${args.reps}; in brackets push/pull then scatter/gather ms, H: landed in a prepared buffer`);
  for (let round = 1; round <= args.rounds; round++) {
    const order = round % 2 === 1 ? [RESERVE_SUGGESTED_LIMIT, undefined] : [undefined, RESERVE_SUGGESTED_LIMIT];
    for (const reserve of order) console.log(`${round} ${reserve === undefined ? "off" : "on "}  ${await run(reserve, args.reps)}`);
  }
}

await main();
