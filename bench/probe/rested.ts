/**
 * A map after a rest: the bench's T1 is one map after the cluster has sat idle while the other
 * peers ran. Per round, a fresh 2-engine cluster runs 5 warm maps, sits idle, runs a 100-task map
 * (as the bench's T1 does) and then the timed map, then one more. Prints tasks/s and each process's
 * CPU per task (from /proc, all threads) for the warm maps (median), the map after the rest, and the
 * one after it. Not a benchmark (no peers, no targets): a profile to read beside one.
 *
 *   npm run build && node --import tsx bench/probe/rested.ts [--idle 30] [--tasks 10000] [--rounds 3]
 */
import { cpuMs } from "../lib/procfs.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster, type Client } from "tsparallel";
import { probeArgs } from "./args.ts";

interface Args {
  idle: number;
  tasks: number;
  rounds: number;
}

const WARM_MAPS = 5;

interface MapFigures {
  rate: number;
  /** µs of CPU per task, by process. */
  cpu: Record<string, number>;
}

async function timedMap(rc: Client, procs: Record<string, number>, items: number[]): Promise<MapFigures> {
  const lv = rc.loadBalancedView();
  const before = Object.fromEntries(Object.entries(procs).map(([name, pid]) => [name, cpuMs(pid)]));
  const t0 = performance.now();
  const out = await lv.map((x: number) => x, items);
  const seconds = (performance.now() - t0) / 1000;
  if (out.length !== items.length) throw new Error(`map returned ${out.length} results, expected ${items.length}`);
  const cpu = Object.fromEntries(Object.entries(procs).map(([name, pid]) => [name, ((cpuMs(pid) - before[name]!) * 1000) / items.length]));
  await rc.purgeResults("all");
  return { rate: items.length / seconds, cpu };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function line(label: string, f: MapFigures): string {
  const cpu = Object.entries(f.cpu).map(([name, us]) => `${name} ${us.toFixed(0)}`).join(", ");
  return `  ${label.padEnd(22)} ${f.rate.toFixed(0).padStart(6)} tasks/s   CPU per task, µs: ${cpu}`;
}

async function round(args: Args, r: number): Promise<void> {
  const cluster = new Cluster({ n: 2 });
  try {
    const rc = await cluster.startAndConnect();
    const { controller, engines } = cluster.pids;
    if (controller === null || engines.length < 2) throw new Error("the cluster did not report its processes");
    const procs = { client: process.pid, controller, "engine 0": engines[0]!, "engine 1": engines[1]! };
    const items = Array.from({ length: args.tasks }, (_, i) => i);
    const warm: MapFigures[] = [];
    for (let i = 0; i < WARM_MAPS; i++) warm.push(await timedMap(rc, procs, items));
    await sleep(args.idle * 1000);
    await rc.loadBalancedView().map((x: number) => x, items.slice(0, 100));
    const rested = await timedMap(rc, procs, items);
    const next = await timedMap(rc, procs, items);
    // the median warm map's figures, process by process
    const warmMedian: MapFigures = {
      rate: median(warm.map((w) => w.rate)),
      cpu: Object.fromEntries(Object.keys(procs).map((name) => [name, median(warm.map((w) => w.cpu[name]!))])),
    };
    console.log(`round ${r} (${args.tasks}-task maps, ${args.idle} s idle)`);
    console.log(line(`warm maps (median of ${WARM_MAPS})`, warmMedian));
    console.log(line("the map after the rest", rested));
    console.log(line("the map after that", next));
    await rc.close();
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const args = probeArgs<Args>(process.argv.slice(2), { idle: 30, tasks: 10_000, rounds: 3 });
  for (let r = 1; r <= args.rounds; r++) await round(args, r);
}

main().catch((err: unknown) => {
  console.error(err instanceof TypeError ? `rested.ts: ${err.message}` : err);
  process.exitCode = 1;
});
