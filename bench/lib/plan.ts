/** What to run: the peers, their commands, which cases each can do, and the sizes per mode. */
import { fileURLToPath } from "node:url";
import type { Invocation } from "./peerproc.ts";

/** The Python that runs ipyparallel and dask (BENCH_PYTHON overrides, e.g. for a virtualenv). */
export const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";
export const APT_COMMAND = "apt-get install -y python3-ipyparallel python3-distributed python3-numpy";
export const ALL_CASES = ["L1", "L2", "L3", "T1", "T2", "D1", "D2", "C1", "S1", "M1"] as const;

export type Mode = "quick" | "full";
export type PeerName = "floor" | "workerpool" | "piscina" | "dask" | "ipyparallel" | "tsparallel";

/** Peers in the order of round 1 (later rounds rotate it). */
export const PEERS: PeerName[] = ["floor", "workerpool", "piscina", "dask", "ipyparallel", "tsparallel"];

/**
 * Peers frozen (SIGSTOP on their process group) while the others are measured: an idle dask cluster
 * burns ~15 % of a core (scheduler loop, worker heartbeats); idle ipyparallel and tsparallel ~0.4 %.
 */
export const PAUSE_WHEN_IDLE: ReadonlySet<PeerName> = new Set(["dask"]);

const CAN: Record<PeerName, readonly string[]> = {
  floor: [],
  workerpool: ["L1", "T1", "C1", "S1", "M1"],
  piscina: ["L1", "T1", "C1", "S1"],
  dask: ALL_CASES.filter((c) => c !== "L3"), // its L1 already goes to any worker: no direct path to compare
  ipyparallel: ALL_CASES,
  tsparallel: [...ALL_CASES, "L1tcp"],
};

const SIZES: Record<Mode, Record<PeerName, Record<string, number>>> = {
  quick: {
    floor: { calls: 2000, warmup: 200, bulk_mb: 100, bulk_reps: 3 },
    workerpool: { calls: 500, warmup: 50, n: 5000 },
    piscina: { calls: 500, warmup: 50, n: 5000 },
    dask: { calls: 40, warmup: 5, n: 300, reps: 1 },
    ipyparallel: { calls: 80, warmup: 10, n: 200, reps: 1, reap_grace: 1 },
    tsparallel: { calls: 300, warmup: 30, n: 2000, reps: 1 },
  },
  full: {
    floor: { calls: 10000, warmup: 1000, bulk_mb: 100, bulk_reps: 5 },
    workerpool: { calls: 2000, warmup: 200, n: 20000 },
    piscina: { calls: 2000, warmup: 200, n: 20000 },
    dask: { calls: 300, warmup: 20, n: 3000, reps: 3 },
    ipyparallel: { calls: 1000, warmup: 50, n: 2000, reps: 3, reap_grace: 6 },
    tsparallel: { calls: 2000, warmup: 200, n: 10000, reps: 3 },
  },
};

/** Seconds a peer may take to start, or to answer one request, before it is killed ("timeout"). */
const TIMEOUT_S: Record<Mode, Record<PeerName, number>> = {
  quick: { floor: 30, workerpool: 60, piscina: 60, dask: 90, ipyparallel: 90, tsparallel: 90 },
  full: { floor: 60, workerpool: 120, piscina: 120, dask: 300, ipyparallel: 300, tsparallel: 300 },
};

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

function flags(sizes: Record<string, number>): string[] {
  return Object.entries(sizes).flatMap(([k, v]) => [`--${k.replaceAll("_", "-")}`, String(v)]);
}

/** Cases of `group` this peer can run (tsparallel adds L1tcp to L1). */
export function casesFor(peer: PeerName, group: readonly string[]): string[] {
  const cases = group.filter((c) => CAN[peer].includes(c));
  if (peer === "tsparallel" && group.includes("L1")) cases.push("L1tcp");
  return cases;
}

/** The floor's cases measured beside a group: the socket ping-pong beside L1/L2, the bulk floor beside D1/D2. */
export function floorCases(group: readonly string[]): string[] {
  return [
    ...(group.includes("L1") || group.includes("L2") ? ["Ztcp", "Zunix"] : []),
    ...(group.includes("D1") || group.includes("D2") ? ["Zbulk"] : []),
  ];
}

/**
 * The command for a peer. `cases` are those it runs at once (one-shot); with `serve` it starts,
 * reports S1/M1 if listed in `cases`, then answers requests on stdin.
 */
export function invocation(peer: PeerName, cases: string[], mode: Mode, env: Record<string, string>, serve = false): Invocation {
  const sizes = [...flags(SIZES[mode][peer]), ...(serve ? ["--serve", "1"] : [])];
  const tsx = ["--import", "tsx"];
  const c = cases.join(",") || "-";
  const timeoutS = TIMEOUT_S[mode][peer];
  switch (peer) {
    case "floor": return { peer, cmd: process.execPath, args: [...tsx, here("../floor/pingpong.ts"), c, ...flags(SIZES[mode][peer])], timeoutS };
    case "workerpool":
    case "piscina": return { peer, cmd: process.execPath, args: [...tsx, here("../peers/pools.ts"), peer, c, ...sizes], timeoutS };
    case "dask": return { peer, cmd: PYTHON, args: ["-B", here("../peers/dask_bench.py"), c, ...sizes], timeoutS };
    case "ipyparallel": return { peer, cmd: PYTHON, args: ["-B", here("../peers/ipp_bench.py"), c, ...sizes], timeoutS };
    case "tsparallel": return { peer, cmd: process.execPath, args: [...tsx, here("../cases/main.ts"), c, ...sizes], env, timeoutS };
  }
}

/** Requests per round: quick mode one with every case, full mode one per case group (finer interleaving). */
export function caseGroups(mode: Mode, wanted: readonly string[]): string[][] {
  const work = wanted.filter((c) => c !== "S1" && c !== "M1");
  if (mode === "quick") return work.length > 0 ? [work] : [];
  // L3 last: run before T1 it would warm the load-balanced path that T1 has always met cold (docs/performance.md)
  return [["L1", "L2"], ["T1", "T2"], ["D1", "D2"], ["C1"], ["L3"]]
    .map((g) => g.filter((c) => work.includes(c)))
    .filter((g) => g.length > 0);
}

/** The tsparallel-only scaling curves of full mode: requests to the tsparallel peer. */
export const CURVES = [["Kchunk"], ["Kpayload"], ["Kengines"]];
