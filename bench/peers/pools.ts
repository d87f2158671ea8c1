/**
 * Node local-pool peers: `node --import tsx bench/peers/pools.ts <workerpool|piscina> CASES [--serve 1]
 * [--calls N] [--warmup N] [--n N] [--c1-tasks 200] [--c1-ms 2.5]` (protocol: bench/lib/peerio.ts). Cases: L1 (one awaited no-op at a time),
 * T1 (n no-op tasks at once), C1 (200 CPU tasks at once; local-serial / wall), S1 (pool creation
 * until both workers answered), M1 (RSS of the worker processes; workerpool only).
 * 2 workers each: workerpool with workerType "process", piscina with threads.
 */
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import workerpool from "workerpool";
import { calibrate } from "./cpu_task.mjs";
import { drive, type CaseResult, type Driver } from "../lib/peerio.ts";
import { cmdline, descendants, rssMB } from "../lib/procfs.ts";
import { serialReference } from "../lib/serial.ts";
import { now, timeCalls } from "../lib/stats.ts";

/** The little each pool has to offer, behind one shape. */
interface Pool {
  run(op: "noop" | "cpu", arg: number): Promise<unknown>;
  close(): Promise<void>;
}

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

function openWorkerpool(): Pool {
  const pool = workerpool.pool(here("./pool_worker.cjs"), {
    minWorkers: 2, maxWorkers: 2, workerType: "process", forkOpts: { execArgv: [] },
  });
  return {
    run: (op, arg) => pool.exec(op, [arg]),
    close: async () => { await pool.terminate(false, 5000); },
  };
}

function openPiscina(): Pool {
  const pool = new Piscina({ filename: here("./piscina_worker.mjs"), minThreads: 2, maxThreads: 2, execArgv: [] });
  return {
    run: (op, arg) => pool.run(arg, { name: op }),
    close: () => pool.destroy(),
  };
}

async function t1(pool: Pool, n: number): Promise<CaseResult> {
  await Promise.all(Array.from({ length: 100 }, (_, i) => pool.run("noop", i)));
  const t0 = now();
  await Promise.all(Array.from({ length: n }, (_, i) => pool.run("noop", i)));
  return { tasks_per_s: n / (now() - t0), n };
}

async function c1(pool: Pool, tasks: number, ms: number): Promise<CaseResult> {
  const n = calibrate(ms);
  const before = await serialReference(n, tasks);
  const t0 = now();
  await Promise.all(Array.from({ length: tasks }, () => pool.run("cpu", n)));
  const wall = now() - t0;
  const after = await serialReference(n, tasks);
  const serial = (before + after) / 2;
  return { local_serial_over_wall: serial / wall, wall_s: wall, local_serial_s: serial, n, tasks };
}

function driver(kind: "workerpool" | "piscina"): Driver<Pool> {
  return {
    peer: kind,
    async start() {
      const t0 = now();
      const pool = kind === "piscina" ? openPiscina() : openWorkerpool();
      await Promise.all([pool.run("noop", 0), pool.run("noop", 1)]);
      const seconds = now() - t0;
      // only the pool's workers: tsx may have an esbuild helper process of its own
      const pids = descendants(process.pid).filter((p) => cmdline(p).includes("pool_worker"));
      const m1 = kind === "workerpool" ? () => ({ rss_MB: rssMB(pids), processes: pids.length }) : undefined;
      return { state: pool, seconds, pids, m1 };
    },
    table: (pool, opts) => ({
      L1: async () => ({ ...(await timeCalls(() => pool.run("noop", 1), opts.calls ?? 2000, opts.warmup ?? 200)) }),
      T1: () => t1(pool, opts.n ?? 20000),
      C1: () => c1(pool, opts.c1_tasks ?? 200, opts.c1_ms ?? 2.5),
    }),
    stop: (pool) => pool.close(),
  };
}

await drive(driver(process.argv[2] === "piscina" ? "piscina" : "workerpool"), process.argv.slice(3));
