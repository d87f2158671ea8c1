/**
 * What the SQLite task database costs: T1 (load-balanced map of no-ops, chunksize 1, 2 engines) and
 * L1 (direct applySync, one at a time) with `db: "memory"` and `db: "sqlite"`, the two clusters
 * measured in alternating rounds so the machine's drift hits both alike. Not a benchmark (no
 * peers, no targets): a figure for docs/architecture.md ("Task records in a SQLite file").
 *
 *   npm run build && node --import tsx bench/probe/db.ts [--tasks 10000] [--calls 2000] [--rounds 5]
 *
 * The SQLite file goes to a temporary folder, removed at the end.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeArgs } from "./args.ts";
import { Cluster, type Client } from "tsparallel";

interface Args {
  tasks: number;
  calls: number;
  rounds: number;
}


const noop = (x: number) => x;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function t1(rc: Client, n: number): Promise<number> {
  const items = Array.from({ length: n }, (_, i) => i);
  const t = performance.now();
  await rc.loadBalancedView().map(noop, items, { chunksize: 1 });
  return n / ((performance.now() - t) / 1000);
}

async function l1(rc: Client, calls: number): Promise<number> {
  const dv = rc.directView(0);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await dv.applySync(noop, i);
    times.push((performance.now() - t) * 1000);
  }
  return median(times);
}

async function main(): Promise<void> {
  const args = probeArgs<Args>(process.argv.slice(2), { tasks: 10_000, calls: 2000, rounds: 5 });
  const dir = mkdtempSync(join(tmpdir(), "tsp-dbprobe-"));
  process.env.TSPARALLEL_DIR = dir;
  const kinds = ["memory", "sqlite"] as const;
  const clusters = kinds.map((db) => new Cluster({ n: 2, db, clusterId: `probe-${db}` }));
  try {
    const clients = await Promise.all(clusters.map((c) => c.startAndConnect()));
    for (const rc of clients) await t1(rc, 2000); // warm up
    const rates: Record<string, number[]> = { memory: [], sqlite: [] };
    const lat: Record<string, number[]> = { memory: [], sqlite: [] };
    for (let r = 0; r < args.rounds; r++) {
      for (const db of r % 2 === 0 ? kinds : [...kinds].reverse()) {
        const rc = clients[kinds.indexOf(db)]!;
        rates[db]!.push(await t1(rc, args.tasks));
        lat[db]!.push(await l1(rc, args.calls));
      }
    }
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" ");
    for (const db of kinds) console.log(`${db.padEnd(7)} T1 tasks/s ${fmt(rates[db]!)} (median ${median(rates[db]!).toFixed(0)}); L1 µs ${fmt(lat[db]!)} (median ${median(lat[db]!).toFixed(0)})`);
    console.log(`sqlite / memory: T1 ${(median(rates.sqlite!) / median(rates.memory!)).toFixed(2)}, L1 ${(median(lat.sqlite!) / median(lat.memory!)).toFixed(2)}`);
    await Promise.all(clients.map((rc) => rc.close()));
    await Promise.all(clusters.map((c) => c.stop()));
    const mib = statSync(join(dir, "profile_default", "tasks.db")).size / 2 ** 20;
    console.log(`tasks.db: ${mib.toFixed(0)} MiB for ${args.rounds * (args.tasks + args.calls) + 2000} tasks`);
  } finally {
    await Promise.all(clusters.map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
