/**
 * The protocol between bench/run.ts and a peer process (Node side; bench_common.py is the Python
 * side). argv: `CASES [--key value ...]`. The peer starts its cluster or pool once and prints a JSON
 * line (S1 and M1 if asked, `ready: true`); then it runs CASES and prints a line. With `--serve 1` it
 * instead answers each CASES line read from stdin with a line, until stdin closes, then stops.
 * stderr lines `BENCH_PIDS [..]` name the processes the orchestrator may kill if the peer hangs.
 */
import { createInterface } from "node:readline";

export type CaseResult = Record<string, number>;

export interface PeerOutput {
  peer: string;
  ready?: boolean;
  results: Record<string, CaseResult>;
  errors: Record<string, string>;
}

/** `L1,T1 --calls 200 --n 500` → cases + numeric options (keys with '-' → '_'). */
export function parsePeerArgs(argv: readonly string[]): { cases: string[]; opts: Record<string, number> } {
  const cases = (argv[0] ?? "").split(",").filter(Boolean);
  const opts: Record<string, number> = {};
  for (let i = 1; i + 1 < argv.length; i += 2) {
    opts[argv[i]!.replace(/^-+/, "").replaceAll("-", "_")] = Number(argv[i + 1]);
  }
  return { cases, opts };
}

/** Tell the orchestrator which pids to kill if this peer hangs. */
export function reportPids(pids: readonly number[]): void {
  process.stderr.write(`BENCH_PIDS ${JSON.stringify([...new Set(pids)])}\n`);
}

export function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** Run each selected case in order; a failing case is recorded and the rest still run. */
export async function runCases(
  cases: readonly string[],
  table: CaseTable,
  out: PeerOutput,
): Promise<void> {
  for (const name of cases) {
    const fn = table[name];
    if (!fn) continue;
    const t0 = performance.now();
    try {
      out.results[name] = { ...(await fn()), elapsed_s: (performance.now() - t0) / 1000 };
    } catch (e) {
      out.errors[name] = errorText(e);
      process.stderr.write(`${name} failed: ${(e as Error)?.stack ?? e}\n`);
    }
  }
}

/** The one JSON line the orchestrator reads (last line of stdout). */
export function emit(out: PeerOutput): void {
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

export type CaseTable = Record<string, (() => Promise<CaseResult>) | undefined>;

export interface Driver<S> {
  peer: string;
  /** Start the cluster or pool; `seconds` is S1, `pids` its processes, `m1()` its idle memory. */
  start(opts: Record<string, number>): Promise<{ state: S; seconds: number; pids: number[]; m1?: () => CaseResult }>;
  table(state: S, opts: Record<string, number>): CaseTable;
  stop(state: S): Promise<void>;
}

async function* requests(serve: boolean, cases: string[]): AsyncGenerator<string[]> {
  if (!serve) {
    yield cases;
    return;
  }
  for await (const line of createInterface({ input: process.stdin })) yield line.trim().split(",").filter(Boolean);
}

/** A peer's whole life, as the module comment describes. */
export async function drive<S>(d: Driver<S>, argv = process.argv.slice(2)): Promise<void> {
  const { cases, opts } = parsePeerArgs(argv);
  let started;
  try {
    started = await d.start(opts);
  } catch (e) {
    process.stderr.write(`start failed: ${(e as Error)?.stack ?? e}\n`);
    const errors = Object.fromEntries(cases.map((c) => [c, `cluster start failed: ${errorText(e)}`]));
    emit({ peer: d.peer, results: {}, errors });
    return;
  }
  reportPids(started.pids);
  const first: PeerOutput = { peer: d.peer, results: {}, errors: {}, ready: true };
  if (cases.includes("S1")) first.results.S1 = { seconds: started.seconds };
  if (cases.includes("M1") && started.m1) {
    await new Promise((r) => setTimeout(r, 500));
    first.results.M1 = started.m1();
  }
  emit(first);
  const table = d.table(started.state, opts);
  try {
    for await (const request of requests(opts.serve === 1, cases)) {
      const out: PeerOutput = { peer: d.peer, results: {}, errors: {} };
      await runCases(request, table, out);
      emit(out);
    }
  } finally {
    await d.stop(started.state);
  }
}
