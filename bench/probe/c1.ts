/**
 * C1 against what the cluster and the client did before: the same 200 × ~2.5 ms load-balanced map
 * on a fresh 2-engine cluster and client, on one warmed up by many small tasks, and on a warmed one
 * where each map follows bulk transfers (a 100 MB push and pull on engine 0, a 10 M float64 scatter
 * and gather over both: what the bench's D1 and D2 do right before its C1). Variants alternate,
 * each on its own fresh cluster. Printed per variant: serialTime / wallTime of each map (median and
 * range), and the CPU per task of the client and of the controller (all threads, from /proc).
 *
 *   npm run build && node --import tsx bench/probe/c1.ts [--rounds 2] [--maps 5]
 *
 * Not a benchmark (no peers, no targets).
 */
import { cpuMs } from "../lib/procfs.ts";
import { probeArgs } from "./args.ts";
import { Cluster, type Client } from "tsparallel";
import { median } from "../lib/stats.ts";
import { calibrate, cpu } from "../peers/cpu_task.mjs";

const args = probeArgs(process.argv.slice(2), { rounds: 2, maps: 5 });
const TASKS = 200;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

type Variant = "fresh" | "warmed" | "warmed + bulk";

async function warmUp(rc: Client): Promise<void> {
  const lv = rc.loadBalancedView();
  const dv = rc.directView(0);
  for (let i = 0; i < 3; i++) {
    await lv.map((x: number) => x, range(10_000), { chunksize: 1 });
    await Promise.all(range(3000).map((x) => lv.apply((y: number) => y, x)));
    for (let j = 0; j < 300; j++) await dv.applySync((x: number) => x, 1);
  }
}

async function bulk(rc: Client): Promise<void> {
  const one = rc.directView(0);
  const all = rc.directView();
  await one.push({ c1probeA: new Float64Array(12_500_000).fill(1.5) });
  await one.pull("c1probeA");
  await all.scatter("c1probeS", new Float64Array(10_000_000).fill(2));
  await all.gather("c1probeS");
}

async function round(variant: Variant, n: number): Promise<{ ratios: number[]; clientUs: number; controllerUs: number }> {
  const cluster = new Cluster({ n: 2, clusterId: `c1probe-${process.pid}-${variant.replace(/\W+/g, "")}` });
  const rc = await cluster.startAndConnect();
  try {
    const lv = rc.loadBalancedView();
    await lv.map(cpu, [1000, 1000], { chunksize: 1 }); // the bench's own warm-up: ship and compile
    if (variant !== "fresh") await warmUp(rc);
    const ratios: number[] = [];
    let clientUs = 0;
    let controllerMs = 0;
    for (let m = 0; m < args.maps; m++) {
      if (variant === "warmed + bulk") await bulk(rc);
      await new Promise((res) => setTimeout(res, 300));
      const c0 = process.cpuUsage();
      const k0 = cpuMs(cluster.pids.controller!);
      const ar = lv.map(cpu, new Array<number>(TASKS).fill(n), { chunksize: 1 });
      await ar;
      const c = process.cpuUsage(c0);
      clientUs += c.user + c.system;
      controllerMs += cpuMs(cluster.pids.controller!) - k0;
      ratios.push(ar.serialTime / ar.wallTime);
    }
    const tasks = TASKS * args.maps;
    return { ratios, clientUs: clientUs / tasks, controllerUs: (controllerMs * 1000) / tasks };
  } finally {
    await rc.close();
    await cluster.stop();
  }
}

const n = calibrate(2.5);
console.log(`C1 (${TASKS} × ~2.5 ms, chunksize 1) by what came before; ${args.maps} maps per fresh cluster and client`);
console.log("variant        | serialTime / wallTime: median [range] | client CPU/task | controller CPU/task (±10 ms ticks)");
for (let r = 0; r < args.rounds; r++) {
  for (const variant of ["fresh", "warmed", "warmed + bulk"] as const) {
    const { ratios, clientUs, controllerUs } = await round(variant, n);
    const lo = Math.min(...ratios).toFixed(3);
    const hi = Math.max(...ratios).toFixed(3);
    console.log(`${variant.padEnd(14)} | ${median(ratios).toFixed(3)} [${lo}–${hi}]${" ".repeat(20)}| ${clientUs.toFixed(0).padStart(5)} µs      | ${controllerUs.toFixed(0).padStart(5)} µs`);
  }
}
