/**
 * The bench's command line, its T1 round-by-round table, the bare transfers (plain and authenticated)
 * and their ratios beside the D1 targets, and a real one-round run of it with raw samples.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parseArgs, UsageError } from "../bench/lib/args.ts";
import { rawTransfer, type BulkAuth, type BulkMode } from "../bench/floor/bulk.ts";
import { t1RoundsTable, targetsTable } from "../bench/lib/report.ts";
import { Results } from "../bench/lib/results.ts";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("bench command line", () => {
  it("reads every option, with full mode's defaults", () => {
    const a = parseArgs(["--only", "t1,d2", "--peers", "tsparallel,ipyparallel", "--rounds", "3", "--out", "/x.md", "--samples", "/x.json", "--budget", "90", "--verbose"]);
    assert.deepEqual(a.cases, ["T1", "D2"]);
    assert.deepEqual(a.peers, ["tsparallel", "ipyparallel"]);
    assert.equal(a.mode, "full");
    assert.equal(a.rounds, 3);
    assert.equal(a.out, "/x.md");
    assert.equal(a.samples, "/x.json");
    assert.equal(a.budgetS, 90);
    assert.equal(a.verbose, true);
    const d = parseArgs(["--quick"]);
    assert.equal(d.rounds, 2);
    assert.equal(d.samples, null);
    assert.equal(d.peers.length, 6);
    assert.ok(d.out.endsWith("docs/benchmarks.md"));
  });

  it("names a wrong option, case, peer or number", () => {
    const wrong: Array<[string[], RegExp]> = [
      [["--round", "3"], /Unknown option --round/],
      [["--only", "T9"], /Unknown case\(s\) in --only: T9/],
      [["--peers", "tsparallel,mpi"], /Unknown peer\(s\) in --peers: mpi/],
      [["--rounds", "0"], /--rounds must be a whole number/],
      [["--rounds", "2.5"], /--rounds must be a whole number/],
      [["--budget", "soon"], /--budget must be a positive number of seconds/],
      [["--samples"], /--samples needs a value/],
      [["--out", "--quick"], /--out needs a value/],
    ];
    for (const [argv, message] of wrong) assert.throws(() => parseArgs(argv), (e: Error) => e instanceof UsageError && message.test(e.message), argv.join(" "));
  });
});

describe("bench T1 round by round", () => {
  it("gives each round's rates, same-round ratio and CPU per task by process", () => {
    const res = new Results();
    res.add(1, { peer: "tsparallel", results: { T1: { tasks_per_s: 12000, cpu_client_us: 36, cpu_controller_us: 52 } }, errors: {} });
    res.add(2, { peer: "tsparallel", results: { T1: { tasks_per_s: 24000, cpu_client_us: 19, cpu_controller_us: 24 } }, errors: {} });
    res.add(1, { peer: "ipyparallel", results: { T1: { tasks_per_s: 400 } }, errors: {} });
    res.add(2, { peer: "ipyparallel", results: { T1: { tasks_per_s: 480 } }, errors: {} });
    const rows = t1RoundsTable(res).split("\n");
    assert.match(rows[0]!, /\| round \| tsparallel tasks\/s \| ipyparallel tasks\/s \| workerpool tasks\/s \| ts \/ ipp \| client µs\/task \| controller µs\/task \|/);
    assert.equal(rows.length, 4);
    assert.equal(rows[2], "| 1 | 12000 | 400 | — | 30.0× | 36.0 | 52.0 |");
    assert.equal(rows[3], "| 2 | 24000 | 480 | — | 50.0× | 19.0 | 24.0 |");
    assert.equal(t1RoundsTable(new Results()), "");
  });
});

describe("bench bare transfers", () => {
  it("moves the bytes to a second process, and with a MAC the receiver's tag matches the sender's", async () => {
    const ways: Array<[BulkMode, BulkAuth]> = [["direct-fresh", "none"], ["direct-reused", "none"], ["copy-fresh", "none"], ["direct-fresh", "pieces"], ["direct-reused", "pieces"], ["direct-reused", "head"]];
    for (const [mode, auth] of ways) {
      const rate = await rawTransfer(3 * 2 ** 20 + 5, 2, mode, { auth });
      assert.ok(Number.isFinite(rate) && rate > 0, `${mode} ${auth}: ${rate} MB/s`);
    }
  });

  it("gives their ratios beside the D1 targets, labelled", () => {
    const res = new Results();
    res.add(1, { peer: "tsparallel", results: { D1: { push_MBps: 2000, pull_MBps: 900 } }, errors: {} });
    res.add(1, { peer: "ipyparallel", results: { D1: { push_MBps: 500, pull_MBps: 600 } }, errors: {} });
    res.add(1, { peer: "floor", results: { Zbulk: { fresh_MBps: 1200, reused_MBps: 5000, fresh_mac_MBps: 900, reused_mac_MBps: 3000, reused_mac_ahead_MBps: 2500 } }, errors: {} });
    const rows = targetsTable(res).split("\n");
    assert.match(rows[0]!, /\| bare transfers' ratios \|$/);
    const push = rows.find((r) => r.startsWith("| D1 push"))!;
    const pull = rows.find((r) => r.startsWith("| D1 pull"))!;
    assert.match(push, /\| 4\.00× \| >= 5 \| \*\*FAIL\*\* \| 10\.0× plain; 6\.00× MAC'd as written; 5\.00× tag ahead \|$/);
    assert.match(pull, /\| 1\.50× \| >= 5 \| \*\*FAIL\*\* \| 2\.00× plain; 1\.50× MAC'd \|$/);
  });
});

describe("bench run", () => {
  it("runs T1 against a real cluster and writes the report and every raw sample", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsp-bench-test-"));
    try {
      const out = join(dir, "b.md");
      const samples = join(dir, "b.json");
      const { stdout } = await run(process.execPath, ["--import", "tsx", "bench/run.ts", "--quick", "--peers", "tsparallel", "--only", "T1", "--rounds", "1", "--out", out, "--samples", samples], {
        cwd: ROOT, timeout: 180_000, maxBuffer: 10_000_000,
      });
      assert.match(stdout, /T1 round by round:/);
      const json = JSON.parse(readFileSync(samples, "utf8")) as { mode: string; rounds: number; samples: Record<string, Array<{ round: number; r: Record<string, number> }>> };
      assert.equal(json.mode, "quick");
      const t1 = json.samples["tsparallel/T1"]!;
      assert.equal(t1.length, 1);
      assert.equal(t1[0]!.round, 1);
      assert.ok(t1[0]!.r.tasks_per_s! > 0);
      for (const role of ["client", "controller", "engine0", "engine1"]) assert.ok(t1[0]!.r[`cpu_${role}_us`]! > 0, `${role} CPU per task in ${JSON.stringify(t1[0]!.r)}`);
      assert.equal(Object.keys(json.samples).filter((k) => !k.startsWith("tsparallel/")).length, 0, "no other peer ran");
      const md = readFileSync(out, "utf8");
      assert.match(md, /## T1 round by round/);
      assert.match(md, /\| 1 \| \d+ \| — \| — \| — \|/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
