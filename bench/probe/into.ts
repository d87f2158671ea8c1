/**
 * Pulls and gathers into an array the caller keeps (`{ into }`) against plain ones, in one
 * long-lived client: per round, a 100 MB Float64Array pulled from engine 0 and 10 M float64
 * gathered from 2 engines, each way `--reps` times (medians), with `--tasks` load-balanced no-ops
 * between rounds, which the client keeps as the bench's client does. Not a benchmark (no peers, no
 * targets): the figures of docs/performance.md ("Bulk data").
 *
 *   npm run build && node --import tsx bench/probe/into.ts [--rounds 3] [--reps 5] [--tasks 20000]
 */
import { Cluster } from "tsparallel";
import { probeArgs } from "./args.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const N = 12_500_000; // 100 MB of float64

async function main(): Promise<void> {
  const args = probeArgs(process.argv.slice(2), { rounds: 3, reps: 5, tasks: 20_000 });
  const cluster = new Cluster({ n: 2 });
  try {
    const rc = await cluster.startAndConnect();
    const e0 = rc.directView(0);
    const all = rc.directView("all");
    const data = Float64Array.from({ length: N }, () => Math.random());
    await e0.push({ a: data });
    await all.scatter("x", data);
    const pulled = new Float64Array(N);
    const gathered = new Float64Array(N);
    console.log(`round: pull / pull into (MB/s), gather / gather into (ms); medians of ${args.reps}, ${args.tasks} no-op tasks between rounds`);
    for (let round = 1; round <= args.rounds; round++) {
      const t = { pull: [] as number[], pullInto: [] as number[], gather: [] as number[], gatherInto: [] as number[] };
      const time = async (into: number[], f: () => PromiseLike<unknown>) => {
        const t0 = performance.now();
        await f();
        into.push(performance.now() - t0);
      };
      for (let i = 0; i < args.reps; i++) {
        await time(t.pull, () => e0.pull("a"));
        await time(t.pullInto, () => e0.pull("a", { into: pulled }));
        await time(t.gather, () => all.gather("x"));
        await time(t.gatherInto, () => all.gather("x", { into: gathered }));
      }
      const mbps = (ms: number[]) => Math.round((N * 8) / 1e6 / (median(ms) / 1000));
      console.log(`${round}: ${mbps(t.pull)} / ${mbps(t.pullInto)} MB/s, ${Math.round(median(t.gather))} / ${Math.round(median(t.gatherInto))} ms`);
      if (round < args.rounds) await rc.loadBalancedView().map((x: number) => x, Array.from({ length: args.tasks }, (_, i) => i));
    }
    await rc.close();
  } finally {
    await cluster.stop();
  }
}

await main();
