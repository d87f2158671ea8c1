/**
 * The run: start each peer once (its cluster start is S1, its idle memory M1), then round after
 * round ask every peer for the same cases — peer order rotating each round — so that each figure
 * has a same-minute counterpart; then the curves (full mode), then stop everyone.
 */
import { PeerProcess, type Reply } from "./peerproc.ts";
import { CURVES, PAUSE_WHEN_IDLE, PEERS, caseGroups, casesFor, floorCases, invocation, type Mode, type PeerName } from "./plan.ts";
import type { Results } from "./results.ts";
import { now } from "./stats.ts";

export interface RunOptions {
  mode: Mode;
  cases: string[];
  rounds: number;
  verbose: boolean;
  env: Record<string, string>;
  /** Seconds the whole run may take (quick mode: 2 minutes): a round that would not fit is skipped. */
  budgetS: number;
  startedAt: number;
}

/** Seconds kept for stopping the peers and writing the report. */
const STOP_RESERVE_S = 10;

function record(res: Results, peer: string, round: number, cases: string[], r: Reply, label: string): void {
  if (r.out) res.add(round, r.out, peer);
  if (r.error) for (const c of cases) res.fail(peer, c, r.error);
  const errs = r.out ? Object.keys(r.out.errors) : [];
  const status = r.error ?? (errs.length > 0 ? `errors in ${errs.join(",")}` : "ok");
  console.log(`  ${label.padEnd(40)} ${r.seconds.toFixed(1).padStart(6)} s  ${status}`);
}

/** Start the long-lived peers one after another (never two starts at once). */
async function startPeers(o: RunOptions, peers: Set<PeerName>, res: Results): Promise<Map<PeerName, PeerProcess>> {
  const live = new Map<PeerName, PeerProcess>();
  const atStart = o.cases.filter((c) => c === "S1" || c === "M1");
  console.log("starting peers");
  for (const peer of PEERS.filter((p) => p !== "floor" && peers.has(p))) {
    const p = new PeerProcess(invocation(peer, atStart, o.mode, o.env, true), o.verbose);
    const r = await p.next();
    record(res, peer, 0, atStart.length > 0 ? atStart : ["start"], r, `${peer} start ${atStart.join(",")}`);
    if (r.out?.ready) {
      live.set(peer, p);
      if (PAUSE_WHEN_IDLE.has(peer)) p.pause();
    } else {
      const why = r.error ?? Object.values(r.out?.errors ?? {})[0] ?? "no ready line";
      for (const c of casesFor(peer, o.cases)) res.fail(peer, c, `not run: the peer did not start (${why})`);
      await p.stop(10);
    }
  }
  return live;
}

async function floorOnce(o: RunOptions, round: number, cases: string[], res: Results): Promise<void> {
  const p = new PeerProcess(invocation("floor", cases, o.mode, o.env), o.verbose);
  record(res, "floor", round, cases, await p.collect(), `floor ${cases.join(",")}`);
}

/** Full mode: S1/M1 once more per round, each peer starting (and stopping) a fresh cluster or pool. */
async function freshStarts(o: RunOptions, round: number, order: PeerName[], res: Results): Promise<void> {
  const cases = o.cases.filter((c) => c === "S1" || c === "M1");
  if (o.mode !== "full" || cases.length === 0) return;
  for (const peer of order.filter((p) => p !== "floor")) {
    const p = new PeerProcess(invocation(peer, cases, o.mode, o.env), o.verbose);
    record(res, peer, round, cases, await p.collect(), `${peer} fresh start ${cases.join(",")}`);
  }
}

async function oneRound(o: RunOptions, round: number, order: PeerName[], live: Map<PeerName, PeerProcess>, res: Results): Promise<void> {
  await freshStarts(o, round, order, res);
  for (const group of caseGroups(o.mode, o.cases)) {
    for (const peer of order) {
      if (peer === "floor") {
        const cases = floorCases(group);
        if (cases.length > 0) await floorOnce(o, round, cases, res);
        continue;
      }
      const p = live.get(peer);
      const cases = casesFor(peer, group);
      if (!p || cases.length === 0) continue;
      p.resume();
      const reply = await p.request(cases);
      if (PAUSE_WHEN_IDLE.has(peer)) p.pause();
      record(res, peer, round, cases, reply, `${peer} ${cases.join(",")}`);
    }
  }
}

export async function runAll(o: RunOptions, peers: Set<PeerName>, res: Results): Promise<void> {
  const live = await startPeers(o, peers, res);
  try {
    let last = 0;
    for (let round = 1; round <= o.rounds; round++) {
      const left = o.budgetS - (now() - o.startedAt) - STOP_RESERVE_S;
      if (round > 1 && last > left) {
        res.notes.push(`rounds ${round}-${o.rounds} skipped: a round took ${last.toFixed(0)} s and the ${o.budgetS} s budget had ${Math.max(0, left).toFixed(0)} s left`);
        console.log(`round ${round}/${o.rounds} skipped: time budget`);
        break;
      }
      const t0 = now();
      console.log(`round ${round}/${o.rounds}`);
      const shift = (round - 1) % PEERS.length;
      const order = [...PEERS.slice(shift), ...PEERS.slice(0, shift)].filter((p) => (p === "floor" && peers.has(p)) || live.has(p));
      await oneRound(o, round, order, live, res);
      last = now() - t0;
    }
    const ts = live.get("tsparallel");
    if (o.mode === "full" && ts) {
      await stopAll(live, res, (peer) => peer !== "tsparallel"); // the curves run alone
      console.log("scaling curves (tsparallel)");
      for (const c of CURVES) record(res, "tsparallel", 1, c, await ts.request(c, 600), `tsparallel ${c.join(",")}`);
    }
  } finally {
    await stopAll(live, res);
  }
}

/** Stop the live peers (those `which` selects), all at once: nothing is being measured any more. */
async function stopAll(live: Map<PeerName, PeerProcess>, res: Results, which = (_: PeerName) => true): Promise<void> {
  const stopping = [...live].filter(([peer]) => which(peer));
  await Promise.all(stopping.map(([, p]) => p.stop(30)));
  for (const [peer, p] of stopping) {
    if (p.leftovers > 0) res.notes.push(`${peer}: ${p.leftovers} process(es) still running after the peer stopped were killed`);
    live.delete(peer);
  }
}
