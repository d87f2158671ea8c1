/**
 * The benchmark: tsparallel against ipyparallel 7.1, dask.distributed, workerpool, piscina and the
 * machine's socket floor, on this machine, in one run, interleaved round by round.
 *
 *   node --import tsx bench/run.ts [--quick] [--only L1,T1,...] [--peers tsparallel,ipyparallel,...]
 *                                  [--rounds N] [--budget SECONDS]
 *                                  [--out FILE] [--samples FILE.json] [--verbose]
 *
 * --quick: small sizes, 2 rounds, done within 2 minutes (a round that would not fit the budget is
 * skipped and noted). Full mode (the default): larger sizes, 5 rounds, finer interleaving, and the
 * tsparallel scaling curves; about 10-15 minutes.
 *
 * Prints a table of medians, ratios and PASS/FAIL against the targets, and writes it to
 * docs/benchmarks.md (or --out); --samples also writes every raw sample, round by round, as JSON.
 * Installs nothing: a missing peer is reported and skipped.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderDocs } from "./lib/docs.ts";
import { load, machine, probePython, tsparallelBuilt, versions, type PythonSide } from "./lib/machine.ts";
import { APT_COMMAND, type PeerName } from "./lib/plan.ts";
import { curvesMarkdown } from "./lib/curves.ts";
import { failuresList, mainTable, t1RoundsTable, targetsTable } from "./lib/report.ts";
import { Results } from "./lib/results.ts";
import { parseArgs, UsageError, type Args } from "./lib/args.ts";
import { runAll } from "./lib/rounds.ts";
import { now } from "./lib/stats.ts";

/** Which of the selected peers can run here; prints how to get the missing ones. */
function availablePeers(selected: readonly PeerName[], py: PythonSide | null, res: Results): Set<PeerName> {
  const ok = new Set<PeerName>(selected);
  /** Note a selected peer that cannot run; false if it was not selected. */
  const missing = (peer: PeerName, why: string): boolean => {
    if (!ok.delete(peer)) return false;
    res.notes.push(`${peer} not run: ${why}`);
    console.log(`! ${peer} is not available (${why})`);
    return true;
  };
  const noIpp = !py?.ipyparallel && missing("ipyparallel", "python3-ipyparallel missing");
  const noDask = (!py?.distributed || !py.numpy) && missing("dask", "python3-distributed / python3-numpy missing");
  if (noIpp || noDask) console.log(`  to install the Python peers: ${APT_COMMAND}`);
  if (!tsparallelBuilt()) missing("tsparallel", "dist/index.js missing: run `npm run build`");
  return ok;
}

async function main(): Promise<void> {
  let a: Args;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`bench: ${e.message}`);
    process.exit(2);
  }
  const started = new Date();
  const t0 = now();
  const loadBefore = load();
  const res = new Results();
  const py = await probePython();
  const peers = availablePeers(a.peers, py, res);
  console.log(`tsparallel bench: ${a.mode} mode, ${a.rounds} rounds, cases ${a.cases.join(",")}; load ${loadBefore}`);
  const dir = mkdtempSync(join(tmpdir(), "tsp-bench-"));
  const env = { TSPARALLEL_DIR: dir }; // the bench's clusters keep their files out of ~/.tsparallel
  try {
    await runAll({ ...a, env, startedAt: t0 }, peers, res);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const info = {
    started, seconds: now() - t0, mode: a.mode, rounds: a.rounds, cases: a.cases,
    versions: versions(py), machine: machine(), loadBefore, loadAfter: load(),
  };
  console.log(`\n${mainTable(res)}\n\n${targetsTable(res)}\n`);
  const t1Rounds = t1RoundsTable(res);
  if (t1Rounds) console.log(`T1 round by round:\n${t1Rounds}\n`);
  if (a.mode === "full") console.log(`${curvesMarkdown(res)}\n`);
  const failures = failuresList(res);
  if (failures) console.log(`Failures and notes:\n${failures}\n`);
  writeFileSync(a.out, renderDocs(res, info));
  if (a.samples !== null) writeFileSync(a.samples, `${JSON.stringify({ ...info, ...res.dump() }, null, 1)}\n`);
  console.log(`wrote ${a.out} (${info.seconds.toFixed(0)} s in all)`);
}

await main();
