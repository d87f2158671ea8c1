/** L1, L2, L3, L1 over TCP, and the L1-vs-payload curve for tsparallel. */
import type { Client } from "tsparallel";
import type { CaseResult } from "../lib/peerio.ts";
import { timeCalls } from "../lib/stats.ts";
import { startCluster, stopCluster } from "./cluster.ts";

export interface LatencyOpts {
  calls: number;
  warmup: number;
}

/** L1: `await rc.directView(0).applySync((x) => x, 1)`, one at a time. */
export async function l1(rc: Client, o: LatencyOpts): Promise<CaseResult> {
  const dv = rc.directView(0);
  return { ...(await timeCalls(() => dv.applySync((x: number) => x, 1), o.calls, o.warmup)) };
}

/** L2: the same on `rc.directView("all")` (2 engines). */
export async function l2(rc: Client, o: LatencyOpts): Promise<CaseResult> {
  const dv = rc.directView("all");
  return { ...(await timeCalls(() => dv.applySync((x: number) => x, 1), o.calls, o.warmup)) };
}

/** L3: `await rc.loadBalancedView().applySync((x) => x, 1)`, one at a time (the scheduler picks the engine). */
export async function l3(rc: Client, o: LatencyOpts): Promise<CaseResult> {
  const lv = rc.loadBalancedView();
  return { ...(await timeCalls(() => lv.applySync((x: number) => x, 1), o.calls, o.warmup)) };
}

/** L1 on a cluster started with `transport: "tcp"`; {na: 1} when the option is refused. */
export async function l1Tcp(o: LatencyOpts): Promise<CaseResult> {
  let started;
  try {
    started = await startCluster({ n: 2, transport: "tcp" } as never);
  } catch (e) {
    if (e instanceof TypeError) return { na: 1 };
    throw e;
  }
  try {
    return await l1(started.rc, o);
  } finally {
    await stopCluster(started);
  }
}

export const PAYLOAD_SIZES = [16, 1e3, 64e3, 1e6, 10e6, 100e6];

/** L1 with a Uint8Array argument returned back, per payload size: median µs and MB/s (both ways). */
export async function payloadCurve(rc: Client, o: LatencyOpts): Promise<CaseResult> {
  const dv = rc.directView(0);
  const out: CaseResult = {};
  for (const size of PAYLOAD_SIZES) {
    const buf = new Uint8Array(size).fill(1);
    const calls = Math.max(3, Math.min(o.calls, Math.round(2e8 / size)));
    const st = await timeCalls(() => dv.applySync((x: Uint8Array) => x, buf), calls, Math.min(o.warmup, calls));
    out[`${size}_median_us`] = st.median_us;
    out[`${size}_p90_us`] = st.p90_us;
    out[`${size}_MBps`] = (2 * size) / st.median_us;
  }
  return out;
}
