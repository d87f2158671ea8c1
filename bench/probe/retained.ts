/**
 * What a pull costs in a client that keeps what it pulled (`rc.results` keeps every result until
 * `purgeResults`): 100 MB pulls from engine 0 in a fresh client, after load-balanced maps while the
 * pulled arrays pile up, and after `purgeResults("all")` and a collection, with the client's CPU
 * time and page faults per pull (`process.resourceUsage()`). Not a benchmark (no peers, no
 * targets): the figures of docs/performance.md ("The long-lived client").
 *
 *   npm run build && node --expose-gc --import tsx bench/probe/retained.ts [--pulls 5] [--maps 2] [--tasks 20000]
 */
import { Cluster } from "tsparallel";
import { probeArgs } from "./args.ts";

const N = 12_500_000; // 100 MB of float64

async function main(): Promise<void> {
  const args = probeArgs(process.argv.slice(2), { pulls: 5, maps: 2, tasks: 20_000 });
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with node --expose-gc, so the purged arrays are collected before the last pulls");
  const cluster = new Cluster({ n: 2 });
  try {
    const rc = await cluster.startAndConnect();
    const e0 = rc.directView(0);
    await e0.push({ a: new Float64Array(N).fill(1.5) });
    const pulls = async (label: string): Promise<void> => {
      const rows: string[] = [];
      for (let i = 0; i < args.pulls; i++) {
        const r0 = process.resourceUsage();
        const t0 = performance.now();
        await e0.pull("a");
        const ms = performance.now() - t0;
        const r1 = process.resourceUsage();
        const sys = (r1.systemCPUTime - r0.systemCPUTime) / 1000;
        const faults = r1.minorPageFault - r0.minorPageFault;
        rows.push(`${Math.round((N * 8) / 1e3 / ms)} MB/s (sys ${sys.toFixed(0)} ms, ${faults} faults, ${((sys * 1000) / Math.max(1, faults)).toFixed(1)} µs each)`);
      }
      console.log(`${label} (client RSS ${Math.round(process.memoryUsage().rss / 1e6)} MB):\n  ${rows.join("\n  ")}`);
    };
    await pulls("fresh client");
    for (let m = 1; m <= args.maps; m++) {
      await rc.loadBalancedView().map((x: number) => x, Array.from({ length: args.tasks }, (_, i) => i));
      await pulls(`after map ${m} of ${args.tasks} no-ops`);
    }
    await rc.purgeResults("all");
    gc();
    await pulls("after purgeResults(\"all\") and a collection");
    await rc.close();
  } finally {
    await cluster.stop();
  }
}

await main();
