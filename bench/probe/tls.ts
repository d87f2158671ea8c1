/**
 * What TLS costs: L1 (direct applySync, one at a time) and D1 (push then pull of a 100 MB
 * Float64Array) over TCP, on a cluster with `tls: true` and one without, in alternating rounds.
 * Everything goes through the controller's TCP port (engines and client use `transport: "tcp"`,
 * no direct links), so every byte is encrypted on the TLS cluster. Not a benchmark (no peers, no
 * targets): a figure for docs/architecture.md ("TLS").
 *
 *   npm run build && node --import tsx bench/probe/tls.ts [--calls 2000] [--mb 100] [--rounds 5]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Cluster } from "tsparallel";
import { probeArgs } from "./args.ts";

interface Args {
  calls: number;
  mb: number;
  rounds: number;
}


const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function l1(rc: Client, calls: number): Promise<number> {
  const dv = rc.directView(0);
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await dv.applySync((x: number) => x, i);
    times.push((performance.now() - t) * 1000);
  }
  return median(times);
}

async function d1(rc: Client, data: Float64Array): Promise<{ push: number; pull: number }> {
  const dv = rc.directView(0);
  const mb = data.byteLength / 1e6;
  let t = performance.now();
  await dv.push({ data });
  const push = mb / ((performance.now() - t) / 1000);
  t = performance.now();
  await dv.pull("data");
  const pull = mb / ((performance.now() - t) / 1000);
  return { push, pull };
}

async function main(): Promise<void> {
  const args = probeArgs<Args>(process.argv.slice(2), { calls: 2000, mb: 100, rounds: 5 });
  const dir = mkdtempSync(join(tmpdir(), "tsp-tlsprobe-"));
  process.env.TSPARALLEL_DIR = dir;
  const kinds = ["plain", "tls"] as const;
  const clusters = kinds.map((k) => new Cluster({ n: 1, transport: "tcp", tls: k === "tls", clusterId: `probe-${k}` }));
  const data = new Float64Array((args.mb * 1e6) / 8).fill(1.5);
  try {
    await Promise.all(clusters.map((c) => c.start()));
    const clients = await Promise.all(clusters.map((c) => Client.connect({ connectionFile: c.connectionFile, transport: "tcp", direct: false })));
    for (const rc of clients) await rc.waitForEngines(1);
    const out: Record<string, { l1: number[]; push: number[]; pull: number[] }> = { plain: { l1: [], push: [], pull: [] }, tls: { l1: [], push: [], pull: [] } };
    for (let r = 0; r < args.rounds; r++) {
      for (const k of r % 2 === 0 ? kinds : [...kinds].reverse()) {
        const rc = clients[kinds.indexOf(k)]!;
        out[k]!.l1.push(await l1(rc, args.calls));
        const { push, pull } = await d1(rc, data);
        out[k]!.push.push(push);
        out[k]!.pull.push(pull);
      }
    }
    for (const k of kinds) {
      const o = out[k]!;
      console.log(`${k.padEnd(5)} L1 ${median(o.l1).toFixed(0)} µs; push ${median(o.push).toFixed(0)} MB/s; pull ${median(o.pull).toFixed(0)} MB/s`);
    }
    const ratio = (f: (o: { l1: number[]; push: number[]; pull: number[] }) => number[]) => (median(f(out.tls!)) / median(f(out.plain!))).toFixed(2);
    console.log(`tls / plain: L1 ${ratio((o) => o.l1)}, push ${ratio((o) => o.push)}, pull ${ratio((o) => o.pull)}`);
    await Promise.all(clients.map((rc) => rc.close()));
  } finally {
    await Promise.all(clusters.map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
