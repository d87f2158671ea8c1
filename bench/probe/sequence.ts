/**
 * T1 as the bench meets it: on one cluster, round after round, a load-balanced map of no-ops right
 * after each other case group (L1 + L2, D1 + D2, C1), so that what those leave behind (cold code,
 * a large heap, early-handoff depths set by long tasks) shows in the next T1. Not a benchmark (no
 * peers, no targets): a profile to read beside one. Rows also give each engine's early-handoff
 * limit after the map (`controllerStats().early.limits`, docs/views.md).
 *
 *   npm run build && node --import tsx bench/probe/sequence.ts [--rounds 3] [--tasks 10000]
 */
import { Cluster, type Client } from "tsparallel";
import { c1 } from "../cases/cpu.ts";
import { d1, d2 } from "../cases/data.ts";
import { l1, l2 } from "../cases/latency.ts";
import { t1, t2 } from "../cases/throughput.ts";
import { probeArgs } from "./args.ts";

async function row(rc: Client, label: string, tasks: number): Promise<string> {
  const rate = (await t1(rc, tasks)).tasks_per_s!;
  const limits = Object.values((await rc.controllerStats()).early.limits).join("/");
  return `${label} ${rate.toFixed(0).padStart(6)} (early ${limits})`;
}

async function main(): Promise<void> {
  const args = probeArgs(process.argv.slice(2), { rounds: 3, tasks: 10_000 });
  const cluster = new Cluster({ n: 2 });
  try {
    const rc = await cluster.startAndConnect();
    console.log(`T1 tasks/s (map of ${args.tasks} no-ops after a 100-task warm-up) after each case group, one cluster`);
    for (let r = 1; r <= args.rounds; r++) {
      const cells: string[] = [];
      await l1(rc, { calls: 2000, warmup: 200 });
      await l2(rc, { calls: 2000, warmup: 200 });
      cells.push(await row(rc, "after L1+L2", args.tasks));
      cells.push(`T2 right after ${(await t2(rc, args.tasks)).tasks_per_s!.toFixed(0).padStart(6)}`);
      await d1(rc, 3);
      await d2(rc, 3);
      cells.push(await row(rc, "after D1+D2", args.tasks));
      await c1(rc, 200, 2.5);
      cells.push(await row(rc, "after C1", args.tasks));
      console.log(`round ${r}: ${cells.join("   ")}`);
    }
  } finally {
    await cluster.stop();
  }
}

await main();
