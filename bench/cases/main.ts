/**
 * tsparallel peer: `node --import tsx bench/cases/main.ts CASES [--serve 1] [--calls N] [--warmup N]
 * [--n N] [--reps N] [--c1-tasks 200] [--c1-ms 2.5]` (protocol: bench/lib/peerio.ts).
 * One cluster of 2 engines is started once (S1 is that start, M1 its idle memory) and serves
 * L1,L2,L3,T1,T2,D1,D2,C1 and the full-mode curves Kchunk (T1 vs chunksize) and Kpayload (L1 vs
 * payload size). L1tcp (transport "tcp") and Kengines (D1 vs engine count) start clusters of their own.
 * Uses only the public API of "tsparallel".
 */
import { drive, type CaseTable, type Driver } from "../lib/peerio.ts";
import { clusterRss, processRoles, startCluster, stopCluster, type Started } from "./cluster.ts";
import { c1 } from "./cpu.ts";
import { d1, d2, enginesCurve } from "./data.ts";
import { l1, l1Tcp, l2, l3, payloadCurve } from "./latency.ts";
import { chunksizeCurve, t1, t2 } from "./throughput.ts";

function table(s: Started, o: Record<string, number>): CaseTable {
  const lat = { calls: o.calls ?? 1000, warmup: o.warmup ?? 100 };
  return {
    L1: () => l1(s.rc, lat),
    L2: () => l2(s.rc, lat),
    L3: () => l3(s.rc, lat),
    L1tcp: () => l1Tcp(lat),
    T1: () => t1(s.rc, o.n ?? 5000, 1, processRoles(s)),
    T2: () => t2(s.rc, o.n ?? 5000),
    D1: () => d1(s.rc, o.reps ?? 1),
    D2: () => d2(s.rc, o.reps ?? 1),
    C1: () => c1(s.rc, o.c1_tasks ?? 200, o.c1_ms ?? 2.5),
    Kchunk: () => chunksizeCurve(s.rc, o.n ?? 20000),
    Kpayload: () => payloadCurve(s.rc, lat),
    Kengines: () => enginesCurve(o.reps ?? 1),
  };
}

const driver: Driver<Started> = {
  peer: "tsparallel",
  async start() {
    const s = await startCluster({ n: 2 });
    return { state: s, seconds: s.seconds, pids: s.pids, m1: () => clusterRss(s) };
  },
  table,
  stop: (s) => stopCluster(s),
};

await drive(driver);
process.exit(0); // a handle the library left open must not keep the peer alive
