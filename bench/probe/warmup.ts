/**
 * L1 against warm-up: how much of a fresh cluster's and client's round trip is V8 not having
 * optimized the code yet. Per round and per warm-up count (alternating), a fresh 2-engine cluster
 * and client make `warmup` calls of `applySync((x) => x, 1)` on engine 0, then `calls` timed ones
 * (the bench's L1 uses 200 and 2 000). Printed: the median of the timed calls, of their first
 * 500 and of their last 500.
 *
 *   npm run build && node --import tsx bench/probe/warmup.ts [--rounds 2] [--calls 2000] [--short 200] [--long 3000]
 *
 * Not a benchmark (no peers, no targets).
 */
import { probeArgs } from "./args.ts";
import { Cluster } from "tsparallel";
import { median } from "../lib/stats.ts";

const args = probeArgs(process.argv.slice(2), { rounds: 2, calls: 2000, short: 200, long: 3000 });

async function round(warmup: number): Promise<{ all: number; first: number; last: number }> {
  const cluster = new Cluster({ n: 2, clusterId: `warmup-${process.pid}-${warmup}` });
  const rc = await cluster.startAndConnect();
  try {
    const dv = rc.directView(0);
    for (let i = 0; i < warmup; i++) await dv.applySync((x: number) => x, 1);
    const us: number[] = [];
    for (let i = 0; i < args.calls; i++) {
      const t0 = performance.now();
      await dv.applySync((x: number) => x, 1);
      us.push((performance.now() - t0) * 1000);
    }
    const part = Math.min(500, Math.floor(args.calls / 2));
    return { all: median(us), first: median(us.slice(0, part)), last: median(us.slice(-part)) };
  } finally {
    await rc.close();
    await cluster.stop();
  }
}

console.log(`L1 median of ${args.calls} calls after a number of warm-up calls (fresh cluster and client each time)`);
console.log("warm-up | median | first 500 | last 500");
for (let r = 0; r < args.rounds; r++) {
  for (const warmup of [args.short, args.long]) {
    const m = await round(warmup);
    console.log(`${String(warmup).padStart(7)} | ${m.all.toFixed(0).padStart(6)} µs | ${m.first.toFixed(0).padStart(6)} µs | ${m.last.toFixed(0).padStart(6)} µs`);
  }
}
