/**
 * The task database in a SQLite file (`db: "sqlite"`): records reach the file while the controller
 * runs, outlive the in-memory cache and the controller, answer the same queries as the in-memory
 * store, and a restarted controller fails the tasks its predecessor left pending instead of
 * leaving their clients waiting.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { Client, Cluster, RemoteError, TaskLost } from "tsparallel";
import { encodeFrames, MemoryDb, SqliteDb, type TaskRecord } from "tsparallel/internal";
import { startCluster, TEST_DIR, until, withCluster, type Running } from "./helpers.ts";

const PACKAGE = dirname(dirname(fileURLToPath(import.meta.url)));
const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(process.execPath, [join(PACKAGE, "dist", "cli", "main.js"), ...args], { env: { ...process.env, TSPARALLEL_DIR: TEST_DIR }, timeout: 60_000 });

const Sqlite = createRequire(import.meta.url)("better-sqlite3") as typeof import("better-sqlite3");
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** A message as the controller stores it: an auth frame, four JSON frames and one buffer of `bytes` (filled with `fill`). */
function message(bytes: number, fill = 7): Buffer[] {
  return encodeFrames([Buffer.alloc(32), json({}), json({}), json({}), json({ n: bytes }), Buffer.alloc(bytes, fill)]).map((b) => Buffer.from(b));
}

function record(i: number, bytes = 16): TaskRecord {
  const msgId = `t${i}`;
  return {
    msgId, header: { msg_id: msgId, msg_type: "apply_request" } as TaskRecord["header"], metadata: { label: i },
    clientSession: i % 2 === 0 ? "even" : "odd", queue: "task", engineId: null, engineUuid: null,
    // t7 in another ISO form, which does not sort as text
    submitted: i === 7 ? "2026-01-01T01:00:07+01:00" : `2026-01-01T00:00:${String(i % 60).padStart(2, "0")}.${String((i * 37_037) % 1_000_000).padStart(6, "0")}Z`, started: null, completed: null, received: null,
    resubmitted: null, status: null, stdout: "", stderr: "", label: i % 3 === 0 ? "third" : null,
    requestRaw: message(bytes, i % 250), replyRaw: null, replyStub: null, buffersCulled: false,
  };
}

function finish(db: { update(id: string, p: Partial<TaskRecord>): void }, i: number, bytes = 16): void {
  db.update(`t${i}`, {
    engineId: i % 2, engineUuid: `engine-${i % 2}`, status: i % 5 === 0 ? "error" : "ok", started: "2026-01-01T00:01:00.000000Z",
    completed: `2026-01-01T00:02:${String(i % 60).padStart(2, "0")}.000000Z`, stdout: `out ${i}\n`,
    replyRaw: message(bytes, (i + 1) % 250),
  });
}

const field = (r: TaskRecord, key: string) => (r as unknown as Record<string, unknown>)[key];
let files = 0;
const newFile = () => join(TEST_DIR, `unit-${++files}.db`);

describe("task database in a SQLite file (unit)", () => {
  it("keeps every field and buffer across a reopen; another cluster id has its own table", () => {
    const file = newFile();
    const db = new SqliteDb({ file, clusterId: "a" });
    for (const i of range(10)) db.add(record(i));
    for (const i of range(10)) if (i % 2 === 0) finish(db, i);
    const before = range(10).map((i) => structuredClone(db.get(`t${i}`)));
    db.close();
    const again = new SqliteDb({ file, clusterId: "a" });
    for (const [i, want] of before.entries()) {
      const got = again.get(`t${i}`);
      assert.deepEqual({ ...got, requestRaw: Buffer.concat(got.requestRaw), replyRaw: got.replyRaw && Buffer.concat(got.replyRaw) },
        { ...want, requestRaw: Buffer.concat(want.requestRaw), replyRaw: want.replyRaw && Buffer.concat(want.replyRaw) }, `t${i}`);
    }
    assert.deepEqual(again.history(), range(10).map((i) => `t${i}`), "history in submission order");
    assert.deepEqual(again.orphans, range(10).filter((i) => i % 2 === 1).map((i) => `t${i}`), "pending ones are orphans now");
    assert.equal(again.size, 10);
    again.close();
    const other = new SqliteDb({ file, clusterId: "b" });
    assert.equal(other.size, 0);
    assert.equal(other.has("t0"), false);
    assert.throws(() => other.get("t0"), /No such message/);
    other.close();
  });

  it("writes behind: another connection sees the records without a close", async () => {
    const file = newFile();
    const db = new SqliteDb({ file, clusterId: "live" });
    for (const i of range(5)) db.add(record(i));
    finish(db, 3);
    const reader = new Sqlite(file, { readonly: true });
    try {
      await until(() => (reader.prepare('SELECT count(*) FROM "tasks:live"').pluck().get() as number) === 5, 5000, "the rows on disk");
      await until(() => reader.prepare('SELECT status FROM "tasks:live" WHERE msg_id = ?').pluck().get("t3") === "ok", 5000, "the update on disk");
    } finally {
      reader.close();
      db.close();
    }
  });

  it("past the cache's limits, records are answered whole from the file, buffers included (never 'culled')", () => {
    const db = new SqliteDb({ file: newFile(), clusterId: "c", recordLimit: 10, sizeLimit: 200_000, cullFraction: 0.5 });
    for (const i of range(40)) {
      db.add(record(i, 100_000));
      finish(db, i, 100_000);
    }
    for (const i of range(40)) {
      const r = db.get(`t${i}`);
      assert.notEqual(r.buffersCulled, true, `t${i} keeps its buffers`);
      const reply = Buffer.concat(r.replyRaw!);
      assert.equal(reply.at(-1), (i + 1) % 250, `t${i}'s reply buffer`);
      assert.ok(reply.byteLength > 100_000);
    }
    assert.equal(db.size, 40);
    db.update("t0", { resubmitted: "2026-01-01T00:05:00.000000Z" }); // a record only the file holds
    assert.equal(db.get("t0").resubmitted, "2026-01-01T00:05:00.000000Z");
    db.drop(["t0", "t1"]);
    assert.equal(db.has("t0"), false);
    assert.equal(db.size, 38);
    db.close();
  });

  it("answers every query as the in-memory store does", () => {
    const mem = new MemoryDb();
    const sql = new SqliteDb({ file: newFile(), clusterId: "q", recordLimit: 5, cullFraction: 0.5 }); // most rows only in the file
    for (const db of [mem, sql]) {
      for (const i of range(30)) db.add(record(i));
      for (const i of range(30)) if (i % 3 !== 1) finish(db, i);
    }
    const queries: Array<Record<string, unknown>> = [
      {}, { completed: { $ne: null } }, { completed: null }, { status: "ok" }, { status: { $in: ["error", null] } },
      { msg_id: { $in: ["t1", "t2", "t29", "nope"] } }, { msgId: "t7" }, { engine_id: 1 }, { engineId: { $nin: [0] } },
      { engineUuid: "engine-0", status: { $ne: "error" } }, { client_uuid: "odd" }, { label: "third" }, { label: { $exists: true } },
      { submitted: { $gte: "2026-01-01T00:00:10.000000Z", $lt: new Date("2026-01-01T00:00:20Z") } },
      { completed: { $gt: "2026-01-01T00:02:15.000000Z" } }, { completed: { $lte: new Date("2026-01-01T00:02:15Z") } },
      { submitted: { $gt: "2026-01-01T00:00:06.222Z", $lte: "2026-01-01T00:00:08.296Z" } }, { started: { $lt: new Date(0) } },
      { submitted: { $gte: "not a date" } }, { msg_id: { $glob: "t1*" } }, { stdout: { $glob: "out 2*" } },
      { engineId: "0" }, { metadata: { $ne: null } }, { resultContent: { $ne: null } },
    ];
    for (const q of queries) {
      const want = mem.find(q, field).map((r) => r.msgId);
      const got = sql.find(q, field).map((r) => r.msgId);
      assert.deepEqual(got, want, JSON.stringify(q));
    }
    assert.throws(() => sql.find({ colour: "red" }, field), /Illegal testing key/);
    assert.throws(() => sql.find({ status: { $near: 1 } }, field), /Unknown query operator/);
    sql.close();
  });

  it("refuses a table with other columns, naming the file", () => {
    const file = newFile();
    const raw = new Sqlite(file);
    raw.exec('CREATE TABLE "tasks:old" (msg_id TEXT PRIMARY KEY, something TEXT)');
    raw.close();
    assert.throws(() => new SqliteDb({ file, clusterId: "old" }), (e: Error) => e.message.includes(file) && /other columns/.test(e.message));
  });
});

const noop = (x: number) => x * 2;

describe("db: 'sqlite' on a cluster", () => {
  const clusterId = "sqlite-persist";
  let r: Running;
  let rc: Client;
  let first: string[] = [];
  let lostId = "";

  before(async () => {
    r = await startCluster({ n: 2, db: "sqlite", clusterId, dbRecordLimit: 20 });
    rc = r.rc;
  });
  after(() => r.cluster.stop());

  it("keeps every record past the cache limit: the first task of a map still answers from another client", async () => {
    const amr = rc.loadBalancedView().map(noop, range(100), { chunksize: 1 });
    assert.deepEqual(await amr.get(60), range(100).map((x) => x * 2));
    first = amr.msgIds;
    const other = await r.cluster.connectClient();
    try {
      assert.deepEqual(await other.getResult(first[0]!).get(30), [0], "not culled: read back from the file");
      const rows = await other.dbQuery({ msgId: { $in: first }, completed: { $ne: null } }, ["msgId", "engineId", "status"]);
      assert.equal(rows.length, 100);
      assert.ok(rows.every((row) => row.status === "ok" && typeof row.engineId === "number"));
    } finally {
      await other.close();
    }
    assert.ok(existsSync(join(TEST_DIR, "profile_default", "tasks.db")), "the default file is in the profile folder");
  });

  it("a cluster started again with the same cluster id finds the earlier results, history and output", async () => {
    const printed = await rc.loadBalancedView().apply((x: number) => {
      console.log(`hello ${x}`);
      return x + 1;
    }, 41);
    assert.equal(printed, 42);
    const printedId = rc.history.at(-1)!;
    await r.cluster.stop();
    r = await startCluster({ n: 1, db: "sqlite", clusterId, dbRecordLimit: 20 });
    rc = r.rc;
    assert.deepEqual(await rc.getResult(first.slice(0, 3)).get(30), [[0], [2], [4]]);
    const hr = rc.getResult(printedId);
    assert.equal(await hr.get(30), 42);
    assert.match(hr.stdout as string, /hello 41/);
    const history = await rc.hubHistory();
    assert.deepEqual(history.slice(history.indexOf(first[0]!), history.indexOf(first[0]!) + 100), first, "history keeps submission order");
    // and new work goes on beside the old records
    assert.equal(await rc.loadBalancedView().applySync(noop, 5), 10);
  });

  it("a task left pending by a controller that died fails with TaskLost when the cluster comes back", async () => {
    const lv = rc.loadBalancedView();
    const stuck = lv.apply((s: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, s * 1000);
      return s;
    }, 60);
    const id = stuck.msgIds[0]!;
    const file = join(TEST_DIR, "profile_default", "tasks.db");
    const reader = new Sqlite(file, { readonly: true });
    try {
      await until(() => reader.prepare(`SELECT 1 FROM "tasks:${clusterId}" WHERE msg_id = ?`).pluck().get(id) === 1, 10_000, "the pending record on disk");
    } finally {
      reader.close();
    }
    process.kill(r.cluster.pids.controller!, "SIGKILL");
    await rc.close(); // (the client would otherwise try to reconnect for its reconnectTimeout)
    await assert.rejects(stuck.get(30), "closing the client ends the wait");
    await r.cluster.stop();
    r = await startCluster({ n: 1, db: "sqlite", clusterId, dbRecordLimit: 20 });
    rc = r.rc;
    const err = await rc.getResult(id).get(30).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof TaskLost && err instanceof RemoteError, `a TaskLost error, not a wait: ${String(err)}`);
    assert.equal(err.ename, "TaskLost");
    assert.equal(err.code, "TSP_ERR_TASK_LOST");
    assert.match(err.message, /controller stopped before task/);
    lostId = id;
  });

  it("tsparallel db list and db query read the file (read-only) beside the running controller", async () => {
    const listed = JSON.parse((await cli("db", "list", "--json")).stdout) as Array<{ clusterId: string; records: number; failed: number }>;
    const mine = listed.find((s) => s.clusterId === clusterId);
    assert.ok(mine !== undefined && mine.records >= 100 && mine.failed >= 1, JSON.stringify(listed));
    const failed = (await cli("db", "query", "--cluster-id", clusterId, '{"status":"error"}', "--keys", "msgId,status,resultContent")).stdout
      .trim().split("\n").map((line) => JSON.parse(line) as { msgId: string; status: string; resultContent: { ename: string } });
    assert.ok(failed.some((r) => r.msgId === lostId && r.resultContent.ename === "TaskLost"), "the lost task, with its error");
    assert.ok(failed.every((r) => r.status === "error"));
    const firstThree = (await cli("db", "query", "--cluster-id", clusterId, JSON.stringify({ msgId: { $in: first.slice(0, 3) } }), "--keys", "msgId")).stdout;
    assert.deepEqual(firstThree.trim().split("\n").map((l) => (JSON.parse(l) as { msgId: string }).msgId), first.slice(0, 3));
    const nope = await cli("db", "query", "--cluster-id", "nope").then(() => null, (e: { stderr: string }) => e);
    assert.match(nope?.stderr ?? "", /holds no records of cluster "nope" \(it has: .*sqlite-persist/);
    const bad = await cli("db", "query", "--cluster-id", clusterId, "{status").then(() => null, (e: { stderr: string }) => e);
    assert.match(bad?.stderr ?? "", /the query is not JSON/);
  });
});

describe("db options", () => {
  it("dbFile puts the records where asked (private), with a direct task that finished just before the stop", async () => {
    const file = join(TEST_DIR, "elsewhere", "records.db");
    const run = await startCluster({ n: 1, db: "sqlite", dbFile: file, clusterId: "custom-file" });
    try {
      const ar = run.rc.directView(0).apply(noop, 4);
      assert.equal(await ar.get(30), 8);
      await run.cluster.stop(); // the engine reports its direct tasks as it stops (it used to drop the last report)
      assert.equal(statSync(file).mode & 0o777, 0o600, "task records are private");
      const raw = new Sqlite(file, { readonly: true });
      try {
        const row = raw.prepare('SELECT status, queue FROM "tasks:custom-file" WHERE msg_id = ?').get(ar.msgIds[0]) as Record<string, unknown>;
        assert.deepEqual({ ...row }, { status: "ok", queue: "direct" }, "a direct task, reported by its engine, is in the file");
      } finally {
        raw.close();
      }
    } finally {
      await run.cluster.stop();
    }
  });

  it("without better-sqlite3 installed, db 'sqlite' fails at start saying what to install; the rest works", async () => {
    // a copy of the package whose node_modules lacks better-sqlite3
    const root = mkdtempSync(join(TEST_DIR, "no-sqlite-"));
    cpSync(join(PACKAGE, "dist"), join(root, "dist"), { recursive: true });
    cpSync(join(PACKAGE, "package.json"), join(root, "package.json"));
    mkdirSync(join(root, "node_modules"));
    for (const name of readdirSync(join(PACKAGE, "node_modules"))) {
      if (name !== "better-sqlite3") symlinkSync(join(PACKAGE, "node_modules", name), join(root, "node_modules", name));
    }
    const copy = (await import(pathToFileURL(join(root, "dist", "index.js")).href)) as typeof import("tsparallel");
    const err = await new copy.Cluster({ n: 1, db: "sqlite", clusterId: "no-driver" }).start().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, /controller exited during start.*npm install better-sqlite3/s);
    await withCluster({ n: 1, clusterId: "no-driver-memory" }, async ({ rc }) => assert.equal(await rc.directView(0).applySync(noop, 1), 2));
  });

  it("tsparallel cluster start --db sqlite keeps the records after tsparallel cluster stop; wrong --db values are refused", async () => {
    const started = await cli("cluster", "start", "-n", "1", "--profile", "sq", "--cluster-id", "cli-sqlite", "--db", "sqlite", "--daemonize", "--json");
    const summary = JSON.parse(started.stdout.trim().split("\n").pop()!);
    const rc = await Client.connect({ profile: "sq", clusterId: summary.clusterId });
    let id: string;
    try {
      await rc.waitForEngines(1);
      const ar = rc.loadBalancedView().apply(noop, 21);
      assert.equal(await ar.get(30), 42);
      id = ar.msgIds[0]!;
    } finally {
      await rc.close();
    }
    await cli("cluster", "stop", "--profile", "sq");
    const raw = new Sqlite(join(TEST_DIR, "profile_sq", "tasks.db"), { readonly: true });
    try {
      assert.equal(raw.prepare('SELECT status FROM "tasks:cli-sqlite" WHERE msg_id = ?').pluck().get(id), "ok");
    } finally {
      raw.close();
    }
    const wrong = await cli("cluster", "start", "-n", "1", "--profile", "sq", "--db", "mongodb").then(() => null, (e: { stderr: string }) => e);
    assert.match(wrong?.stderr ?? "", /--db.*mongodb.*(memory|sqlite)/s);
    const noDb = await cli("cluster", "start", "-n", "1", "--profile", "sq", "--db-file", "x.db").then(() => null, (e: { stderr: string }) => e);
    assert.match(noDb?.stderr ?? "", /"dbFile".*db: "sqlite"/);
  });

  it("wrong db options name themselves", () => {
    assert.throws(() => new Cluster({ db: "mongodb" as "sqlite" }), /"db"/);
    assert.throws(() => new Cluster({ dbFile: "x.db" }), /"dbFile".*db: "sqlite"/);
  });
});
