/**
 * Where a task's CPU goes: per process and thread group, the CPU time (from /proc) each process of
 * a 2-engine cluster spends per task, for L1 (direct applySync, one at a time), T1 (load-balanced
 * map of no-ops, chunksize 1) and C1 (load-balanced map of 200 CPU tasks of ~2.5 ms: what the
 * client and controller cost while both cores compute). Not a benchmark (no peers, no targets): a
 * profile to read beside one. /proc counts in 10 ms ticks: C1's figures are ±50 µs.
 *
 *   npm run build && node --import tsx bench/probe/cpu.ts [--tasks 10000] [--rounds 3]
 *
 * "main" is the event-loop thread; "other threads" are V8's (GC, compiler) and Node's helpers.
 * On a 2-core machine, T1 tasks/s can be no more than 2 s / (sum of CPU per task).
 */
import { readFileSync, readdirSync } from "node:fs";
import { probeArgs } from "./args.ts";
import { Cluster, type Client } from "tsparallel";
import { calibrate, cpu } from "../peers/cpu_task.mjs";

interface Args {
  tasks: number;
  rounds: number;
}


/** CPU milliseconds per thread group of a process: main thread and the rest. */
function cpuMs(pid: number): { main: number; other: number } {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = (Number(fields[11]) + Number(fields[12])) * (1000 / 100); // utime + stime, USER_HZ = 100
    if (tid === String(pid)) main += ms;
    else other += ms;
  }
  return { main, other };
}

type Snapshot = Record<string, { main: number; other: number }>;

function snapshot(procs: Record<string, number>): Snapshot {
  return Object.fromEntries(Object.entries(procs).map(([name, pid]) => [name, cpuMs(pid)]));
}

async function measure(label: string, procs: Record<string, number>, tasks: number, run: () => Promise<unknown>): Promise<void> {
  const before = snapshot(procs);
  const t0 = performance.now();
  await run();
  const wallUs = ((performance.now() - t0) * 1000) / tasks;
  const after = snapshot(procs);
  const rows = Object.keys(procs).map((name) => {
    const main = ((after[name]!.main - before[name]!.main) * 1000) / tasks;
    const other = ((after[name]!.other - before[name]!.other) * 1000) / tasks;
    return { name, main, other };
  });
  const total = rows.reduce((s, r) => s + r.main + r.other, 0);
  console.log(`\n${label}: ${wallUs.toFixed(0)} µs of wall time per task, ${total.toFixed(0)} µs of CPU per task (all processes)`);
  for (const r of rows) console.log(`  ${r.name.padEnd(12)} main ${r.main.toFixed(0).padStart(4)} µs   other threads ${r.other.toFixed(0).padStart(4)} µs`);
}

async function main(): Promise<void> {
  const args = probeArgs<Args>(process.argv.slice(2), { tasks: 10_000, rounds: 3 }, false);
  const cluster = new Cluster({ n: 2 });
  let rc: Client | null = null;
  try {
    rc = await cluster.startAndConnect();
    const { controller, engines } = cluster.pids;
    if (controller === null || engines.length < 2) throw new Error("the cluster did not report its processes");
    const procs = { client: process.pid, controller, "engine 0": engines[0]!, "engine 1": engines[1]! };
    const dv = rc.directView(0);
    const lv = rc.loadBalancedView();
    const noop = (x: number): number => x;
    const items = Array.from({ length: args.tasks }, (_, i) => i);
    const c1Items = new Array<number>(200).fill(calibrate(2.5));
    // warm up: every hot function optimized before anything is counted
    for (let i = 0; i < 3000; i++) await dv.applySync(noop, i);
    await lv.map(noop, items.slice(0, 3000));
    for (let r = 1; r <= args.rounds; r++) {
      await measure(`L1 round ${r} (direct applySync, one at a time)`, procs, args.tasks, async () => {
        for (let i = 0; i < args.tasks; i++) await dv.applySync(noop, i);
      });
      await measure(`T1 round ${r} (load-balanced map, chunksize 1)`, procs, args.tasks, () => lv.map(noop, items));
      await measure(`C1 round ${r} (load-balanced map of 200 × ~2.5 ms CPU tasks)`, procs, 200, () => lv.map(cpu, c1Items, { chunksize: 1 }));
      await rc.purgeResults("all");
    }
  } finally {
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof TypeError ? `cpu.ts: ${err.message}` : err);
  process.exitCode = 1;
});
