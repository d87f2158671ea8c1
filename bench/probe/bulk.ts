/**
 * What bulk data costs on this machine, apart from any protocol: 100 MB between two Node processes
 * over a Unix socket, received four ways (copied out of a read buffer into fresh memory; read
 * straight into fresh memory; straight into reused memory; straight into fresh memory with glibc
 * keeping freed memory), then with tsparallel's Poly1305 MAC at both ends (floor/bulk.ts). Then
 * tsparallel's own 100 MB push and pull of new arrays, on clusters whose engines run with the
 * default allocator settings and with `GLIBC_TUNABLES=""`, in
 * alternating rounds. Last, a gather of 10 M float64 from 2 engines with the parts' sizes known (a
 * scattered name: read into the joined array in place) and unknown (a name made on the engines:
 * pulled into fresh parts, then joined by a copy), alternating in one client. Not a benchmark (no
 * peers, no targets): the figures of docs/performance.md ("Bulk data").
 *
 *   npm run build && node --import tsx bench/probe/bulk.ts [--mb 100] [--reps 8] [--rounds 3] [--only-gather 1]
 */
import { Cluster } from "tsparallel";
import { rawTransfer, type BulkMode, type TransferOptions } from "../floor/bulk.ts";
import { median } from "../lib/stats.ts";
import { probeArgs } from "./args.ts";

const KEEP_FREED = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=268435456";

/** tsparallel: push then pull of new `bytes`-sized Float64Arrays to one engine; MB/s each way. */
async function cluster(bytes: number, reps: number, env: Record<string, string>): Promise<[number, number]> {
  const c = new Cluster({ n: 1, env, clusterId: `bulk-${process.pid}-${Math.random().toString(36).slice(2, 8)}` });
  const rc = await c.startAndConnect();
  try {
    const dv = rc.directView(0);
    const push: number[] = [];
    const pull: number[] = [];
    for (let i = 0; i <= reps; i++) {
      const a = new Float64Array(bytes / 8);
      a[1] = i;
      let t = performance.now();
      await dv.push({ a });
      push.push(performance.now() - t);
      t = performance.now();
      const b = (await dv.pull("a")) as Float64Array;
      pull.push(performance.now() - t);
      if (b[1] !== i) throw new Error("pulled the wrong array");
    }
    const rate = (ms: number[]) => bytes / 1e6 / (median(ms.slice(1)) / 1000);
    return [rate(push), rate(pull)];
  } finally {
    await rc.close();
    await c.stop();
  }
}

/** Gather of 10 M float64 over 2 engines, sizes known against unknown, alternating: medians in ms. */
async function gathers(reps: number): Promise<{ known: number; unknown: number }> {
  const c = new Cluster({ n: 2, clusterId: `bulk-g-${process.pid}-${Math.random().toString(36).slice(2, 8)}` });
  const rc = await c.startAndConnect();
  try {
    const dv = rc.directView("all");
    const x = new Float64Array(10_000_000).map((_, i) => i);
    await dv.scatter("x", x);
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i <= reps; i++) {
      await dv.execute(`y${i} = x`); // a name this client never scattered nor gathered
      for (const [name, into] of [["x", known], [`y${i}`, unknown]] as const) {
        const t = performance.now();
        const g = (await dv.gather(name)) as Float64Array;
        into.push(performance.now() - t);
        if (g.length !== x.length || g[9_999_999] !== 9_999_999) throw new Error("gathered the wrong array");
      }
      await dv.execute(`delete globalThis.y${i}`);
    }
    return { known: median(known.slice(1)), unknown: median(unknown.slice(1)) };
  } finally {
    await rc.close();
    await c.stop();
  }
}

async function main(): Promise<void> {
  const args = probeArgs(process.argv.slice(2), { mb: 100, reps: 8, rounds: 3, "only-gather": 0 });
  if (args["only-gather"] > 0) return gatherRounds(args.rounds, args.reps);
  const bytes = args.mb * 1024 * 1024;
  console.log(`raw Unix socket, ${args.mb} MB per round trip, median of ${args.reps}:`);
  const plain = { GLIBC_TUNABLES: "" };
  const cases: Array<[string, BulkMode, TransferOptions]> = [
    ["copied out of a 256 KB read buffer into fresh memory", "copy-fresh", { env: plain }],
    ["read straight into fresh memory", "direct-fresh", { env: plain }],
    ["read straight into reused memory", "direct-reused", { env: plain }],
    ["read straight into fresh memory, glibc keeping freed memory", "direct-fresh", { env: { GLIBC_TUNABLES: KEEP_FREED } }],
    ["read straight into fresh memory, Poly1305 at both ends (tag ahead)", "direct-fresh", { env: plain, auth: "head" }],
    ["read straight into reused memory, Poly1305 at both ends (tag ahead)", "direct-reused", { env: plain, auth: "head" }],
    ["read straight into reused memory, Poly1305 at both ends (MAC'd as written)", "direct-reused", { env: plain, auth: "pieces" }],
  ];
  for (const [label, mode, opts] of cases) console.log(`  ${(await rawTransfer(bytes, args.reps, mode, opts)).toFixed(0).padStart(6)} MB/s  ${label}`);
  console.log(`tsparallel push / pull of new ${args.mb} MB arrays, one engine, alternating rounds (MB/s):`);
  const rows: Record<string, Array<[number, number]>> = { default: [], 'GLIBC_TUNABLES=""': [] };
  for (let r = 0; r < args.rounds; r++) {
    const order = r % 2 === 0 ? ["default", 'GLIBC_TUNABLES=""'] : ['GLIBC_TUNABLES=""', "default"];
    for (const k of order) rows[k]!.push(await cluster(bytes, args.reps, k === "default" ? {} : { GLIBC_TUNABLES: "" }));
  }
  for (const [k, rs] of Object.entries(rows)) {
    console.log(`  engines ${k.padEnd(18)} push ${rs.map((x) => x[0].toFixed(0)).join(" ")}  pull ${rs.map((x) => x[1].toFixed(0)).join(" ")}`);
  }
  await gatherRounds(args.rounds, args.reps);
}

async function gatherRounds(rounds: number, reps: number): Promise<void> {
  console.log(`tsparallel gather of 10 M float64 from 2 engines, median ms of ${reps} per round (fresh cluster each):`);
  const rs: Array<{ known: number; unknown: number }> = [];
  for (let r = 0; r < rounds; r++) rs.push(await gathers(reps));
  console.log(`  sizes known (read in place)  ${rs.map((x) => x.known.toFixed(0)).join(" ")}`);
  console.log(`  sizes unknown (copied)       ${rs.map((x) => x.unknown.toFixed(0)).join(" ")}`);
}

await main();
