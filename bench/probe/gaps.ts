/**
 * What an engine loses between two load-balanced CPU tasks (C1), and why. Two parts:
 *
 * 1. Cold caches. On a shared VM, a core that ran anything else for ~2.5 ms has lost its caches:
 *    the first small operation after that costs 10-20x its warm time. Every message a task's end
 *    sends or reads runs cold. Printed: a few operations, warm and right after 2.5 ms of work.
 * 2. The controller's scheduling policy, A/B in alternating fresh 2-engine clusters:
 *    `controllerSched: "batch"` (the default) against "normal". Per variant: C1's serialTime /
 *    wallTime, the median and p90 gap on an engine from one task's `completed` to the next one's
 *    `started`, T1 (a 5 000-task no-op map) and a load-balanced `applySync` round trip.
 *
 *   npm run build && node --import tsx bench/probe/gaps.ts [--rounds 4]
 *
 * Not a benchmark (no peers, no targets): medians over rounds, to read beside one.
 */
import { createHash } from "node:crypto";
import { probeArgs } from "./args.ts";
import { Cluster } from "tsparallel";
import { kPrecise } from "tsparallel/internal";
import { median, quantile } from "../lib/stats.ts";
import { calibrate, cpu } from "../peers/cpu_task.mjs";

interface Args {
  rounds: number;
}

type Policy = "batch" | "normal";

/** Median time of `op` warm (right after itself) and cold (right after `work`). */
function coldCost(op: () => unknown, work: () => void): { warm: number; cold: number } {
  const warm: number[] = [];
  const cold: number[] = [];
  for (let i = 0; i < 300; i++) {
    work();
    let t0 = performance.now();
    op();
    cold.push(performance.now() - t0);
    t0 = performance.now();
    op();
    warm.push(performance.now() - t0);
  }
  return { warm: median(warm) * 1000, cold: median(cold) * 1000 };
}

function printColdCosts(n: number): void {
  const small = { header: { msg_id: "4f0c2a1e-77", msg_type: "apply_reply", date: new Date().toISOString() }, content: { status: "ok" } };
  const frame = Buffer.alloc(600, 7);
  const ops: Array<[string, () => unknown]> = [
    ["JSON.stringify of a reply header", () => JSON.stringify(small)],
    ["SHA-256 of 600 bytes (OpenSSL)", () => createHash("sha256").update(frame).digest()],
    ["Buffer.allocUnsafe(600)", () => Buffer.allocUnsafe(600)],
  ];
  console.log("cold caches: the first operation after 2.5 ms of other work, against the same operation warm (median µs)");
  for (const [name, op] of ops) {
    const { warm, cold } = coldCost(op, () => cpu(n));
    console.log(`  ${name.padEnd(36)} warm ${warm.toFixed(1).padStart(5)}   cold ${cold.toFixed(1).padStart(6)}   ${(cold / warm).toFixed(0)}x`);
  }
}

interface Round {
  c1: number;
  gap50: number;
  gap90: number;
  t1: number;
  lb: number;
}

async function oneRound(policy: Policy, n: number): Promise<Round> {
  const cluster = new Cluster({ n: 2, controllerSched: policy, clusterId: `gaps-${policy}-${process.pid}` });
  try {
    const rc = await cluster.startAndConnect();
    const lv = rc.loadBalancedView();
    const noop = (x: number): number => x;
    const items = Array.from({ length: 5000 }, (_, i) => i);
    for (let i = 0; i < 6; i++) await lv.map(cpu, new Array<number>(200).fill(n), { chunksize: 1 });
    await lv.map(noop, items, { chunksize: 1 });
    const c1: number[] = [];
    const gaps: number[] = [];
    const t1: number[] = [];
    for (let i = 0; i < 4; i++) {
      const ar = lv.map(cpu, new Array<number>(200).fill(n), { chunksize: 1 });
      await ar;
      c1.push(ar.serialTime / ar.wallTime);
      gaps.push(...engineGaps(ar.metadata));
      const t0 = performance.now();
      await lv.map(noop, items, { chunksize: 1 });
      t1.push(items.length / ((performance.now() - t0) / 1000));
    }
    const lb: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = performance.now();
      await lv.applySync(noop, i);
      if (i >= 500) lb.push(performance.now() - t0);
    }
    await rc.close();
    return { c1: median(c1), gap50: median(gaps), gap90: quantile(gaps, 0.9), t1: median(t1), lb: median(lb) * 1000 };
  } finally {
    await cluster.stop();
  }
}

/** Per engine, in start order: the time from one task's completion to the next task's start (ms). */
function engineGaps(metadata: ReadonlyArray<{ engineId: number | null; [kPrecise]: { started: number | null; completed: number | null } }>): number[] {
  const byEngine = new Map<number | null, Array<{ started: number; completed: number }>>();
  for (const m of metadata) {
    const { started, completed } = m[kPrecise];
    if (started === null || completed === null) continue;
    const list = byEngine.get(m.engineId) ?? [];
    list.push({ started, completed });
    byEngine.set(m.engineId, list);
  }
  const gaps: number[] = [];
  for (const list of byEngine.values()) {
    list.sort((a, b) => a.started - b.started);
    for (let i = 1; i < list.length; i++) gaps.push(list[i]!.started - list[i - 1]!.completed);
  }
  return gaps;
}

async function main(): Promise<void> {
  const args = probeArgs<Args>(process.argv.slice(2), { rounds: 4 });
  const n = calibrate(2.5);
  printColdCosts(n);
  const results: Record<Policy, Round[]> = { batch: [], normal: [] };
  for (let r = 0; r < args.rounds; r++) {
    for (const policy of (r % 2 === 0 ? ["normal", "batch"] : ["batch", "normal"]) as Policy[]) {
      const round = await oneRound(policy, n);
      results[policy].push(round);
      console.log(`round ${r + 1} ${policy.padEnd(6)} C1 ${round.c1.toFixed(3)}  gap ${round.gap50.toFixed(2)}/${round.gap90.toFixed(2)} ms  T1 ${round.t1.toFixed(0)}/s  LB applySync ${round.lb.toFixed(0)} µs`);
    }
  }
  console.log("\nmedians over rounds (gap: median/p90 between two tasks on an engine)");
  for (const policy of ["normal", "batch"] as Policy[]) {
    const rs = results[policy];
    const med = (k: keyof Round) => median(rs.map((x) => x[k]));
    console.log(`  controllerSched ${policy.padEnd(6)} C1 ${med("c1").toFixed(3)}  gap ${med("gap50").toFixed(2)}/${med("gap90").toFixed(2)} ms  T1 ${med("t1").toFixed(0)}/s  LB applySync ${med("lb").toFixed(0)} µs`);
  }
}

await main();
