/** docs/benchmarks.md: one run's tables with the when, what and where. */
import { curvesMarkdown } from "./curves.ts";
import { failuresList, mainTable, t1RoundsTable, targetsTable } from "./report.ts";
import type { Results } from "./results.ts";

export interface RunInfo {
  started: Date;
  seconds: number;
  mode: "quick" | "full";
  rounds: number;
  cases: string[];
  versions: Record<string, string>;
  machine: Record<string, string>;
  loadBefore: string;
  loadAfter: string;
}

const kv = (o: Record<string, string>) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(", ");

const METHOD = `## How it is measured

- Every peer runs on the same machine in the same run, **interleaved**. Each peer process starts
  its cluster or pool once (2 engines / workers) and keeps it; S1 is that start and M1 its idle
  memory right after it. Then each round asks every peer in turn for the same cases (quick mode:
  all cases in one request; full mode: one request per case group L, T, D, C), and the peer order
  rotates from round to round. dask is frozen (SIGSTOP on its process group) while the other peers
  are measured, because an idle dask cluster burns ~15 % of a core; idle ipyparallel and tsparallel
  clusters cost ~0.4 %.
- A figure is the median over rounds of each round's median. "tsparallel vs ipp" and the target
  ratios are medians of the ratios taken **within** each round (noise here is ±25 % minute to
  minute and ipyparallel's figures drift 1.3–2× between runs, so only same-run ratios mean much).
  The load average is printed above: anything else running on the machine skews every figure.
- No-op = a function returning its argument. ipyparallel 7.1 and dask.distributed run under
  \`/usr/bin/python3\`; workerpool uses \`workerType: "process"\`, piscina threads; tsparallel uses
  only its public API (\`bench/cases/\`). Everything is bound to 127.0.0.1.
- L1 / L2: one call at a time (ipp \`rc[0].apply_sync\` / \`rc[:]\`, dask \`submit(...).result()\`
  — for L2 one submit per worker, then gather —, pools one awaited task). L3: the same through the
  load-balanced view (ipp \`load_balanced_view().apply_sync\`; dask and the pools have no other path
  than their L1). T1: load-balanced map with
  chunksize 1 (dask \`client.map\`, pools N tasks at once); T2: N separate applies then wait.
  D1: push then pull of a 100 MB float64 array (dask \`scatter(workers=[w])\` and \`.result()\`),
  MB = 10^6 B. D2: scatter + gather of 10 M float64 over 2 engines (dask: two scatters + gather).
  After each D1 pair and each D2 pair (untimed), tsparallel's client purges the two tasks' results
  (\`rc.purgeResults\`): ipyparallel's client drops a result once its AsyncResult has given it
  (owner_pop), while tsparallel's keeps every result until purged (API.md), so without it the
  bench's long-lived client would hold every array it pulled, ~2.7 GB by the fifth round. (Since
  2026-11-27 22:00 UTC; runs before it kept them.)
  C1: 200 tasks of ~2.5 ms (n calibrated on the fly; JS integer loop, Python \`sum(range(n))\`),
  serialTime / wallTime from the AsyncResult (tsparallel, ipp), and a serial run of the same 200
  tasks in a fresh process just before and after, over the client's wall time.
  S1: \`new Cluster({n: 2}).startAndConnect()\` / \`ipp.Cluster(n=2).start_and_connect_sync()\` /
  \`LocalCluster\` + \`Client\` + \`wait_for_workers(2)\` / pool creation until both workers answered.
  M1: sum of VmRSS over the cluster's processes (ipp: controller and its children, engines, nannies;
  dask: the worker processes only — its scheduler lives in the client process; workerpool: its 2
  worker processes).
- Floor: a 16-byte ping-pong between this machine's two Node processes over node:net (TCP and Unix
  socket). A tsparallel task crosses client → controller → engine and back, so 2 hops of that floor
  is the least it could cost without a direct path.
- Bare transfer, measured by the floor peer in the same round as D1 and D2: 100 MB written over a
  Unix socket to a second Node process that reads it straight into a new buffer each time ("fresh
  memory": where a pull or gather lands in the client) and into the same buffer each time ("reused
  memory": where a push lands in an engine that keeps freed memory), glibc's allocator at its
  defaults. No protocol, no MAC, no copy. Then the same with the buffers authenticated as the issue
  asks and tsparallel does (Poly1305, the product's own MAC): each 1 MB piece MAC'd just before it is
  written and as it lands, so both MACs overlap the transfer (the best any authenticated protocol can
  arrange), and, into reused memory, the sender MACing all of it before the first byte leaves (the tag
  ahead of the bytes, as tsparallel's protocol sends it). "Bare transfers' ratios" beside a D1 target
  are those figures against the same target: below the bound, two Node processes that do nothing but
  move (and authenticate) the bytes do not reach the target on this machine in that minute either.
  They are references, not bounds: how fast fresh memory faults in depends on the whole machine's
  recent use of memory (docs/performance.md, "Bulk data").
- Why the figures are what they are, and how to profile them: [performance.md](performance.md).`;

export function renderDocs(res: Results, info: RunInfo): string {
  const parts = [
    "# Benchmarks",
    "",
    "Generated by `npm run bench` (`node --import tsx bench/run.ts [--quick] [--only L1,T1,...]`);",
    "rerun it to refresh this page. The figures below are from one run.",
    "",
    `- **When:** ${info.started.toISOString()} (${info.seconds.toFixed(0)} s, ${info.mode} mode, ${info.rounds} rounds, cases ${info.cases.join(", ")})`,
    `- **Versions:** ${kv(info.versions)}`,
    `- **Machine:** ${kv(info.machine)}; load average (1/5/15 min) before ${info.loadBefore}, after ${info.loadAfter}`,
    "",
    "## Results (medians over rounds)",
    "",
    mainTable(res),
    "",
    "`failed*`: see the failures below. `—`: not measured for this peer (no such API or not selected).",
    "",
    "## Targets",
    "",
    targetsTable(res),
  ];
  const t1Rounds = t1RoundsTable(res);
  if (t1Rounds) {
    parts.push("", "## T1 round by round", "",
      "Tasks/s of each round, and tsparallel's CPU per task by process in that round (all threads, from /proc):",
      "the table's T1 is the median of these rounds. Round 1 meets a cluster whose load-balanced path has",
      "not run yet.", "", t1Rounds);
  }
  if (info.mode === "full") parts.push("", "## Scaling curves (tsparallel)", "", curvesMarkdown(res));
  const failures = failuresList(res);
  if (failures) parts.push("", "## Failures and notes", "", failures);
  parts.push("", METHOD, "");
  return parts.join("\n");
}
