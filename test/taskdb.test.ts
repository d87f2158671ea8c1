/**
 * The controller's task database: which records culling takes (the oldest finished; never a pending
 * one), what a culled id answers, and that culling stays O(1) per record while many tasks wait.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster, type Client } from "tsparallel";
import { randomUUID } from "node:crypto";
import { CULLED_GENERATION, CulledIds, encodeFrames, MemoryDb, type TaskRecord } from "tsparallel/internal";
import { startCluster, until, type Running } from "./helpers.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A message as the controller stores it: an auth frame, four JSON frames and one buffer of `bytes`. */
function message(bytes: number): Buffer[] {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  return encodeFrames([Buffer.alloc(32), json({}), json({}), json({}), json({}), Buffer.alloc(bytes)]).map((b) => Buffer.from(b));
}

/** A pending record; `bytes` of request buffer. */
function pending(msgId: string, bytes = 16): TaskRecord {
  return {
    msgId, header: { msg_id: msgId } as TaskRecord["header"], metadata: {}, clientSession: "s", queue: "task",
    engineId: null, engineUuid: null, submitted: "2026-01-01T00:00:00.000000Z", started: null, completed: null,
    received: null, resubmitted: null, status: null, stdout: "", stderr: "",
    label: null, requestRaw: message(bytes), replyRaw: null, replyStub: null, buffersCulled: false,
  };
}

const recordSize = (r: TaskRecord) => r.requestRaw.reduce((n, b) => n + b.byteLength, 0);

const done = { status: "ok" as const, completed: "2026-01-01T00:00:01.000000Z" };

describe("task database (in memory)", () => {
  it("keeps recordLimit finished records, culls those that finished longest ago, never a pending one", () => {
    const db = new MemoryDb({ recordLimit: 10, cullFraction: 0.5 });
    for (const i of range(30)) db.add(pending(`t${i}`));
    // finish in reverse order: t29 finished first, so it is the first to go
    for (const i of range(30).reverse()) db.update(`t${i}`, done);
    assert.ok(db.size <= 10, `${db.size} records kept`);
    assert.ok(db.has("t0"), "the last to finish is kept");
    assert.ok(!db.has("t29"), "the first to finish is culled");
    assert.throws(() => db.get("t29"), /has been culled/);
    assert.throws(() => db.get("never"), /No such message/);

    // pending records neither count against the limit nor get culled
    const db2 = new MemoryDb({ recordLimit: 5 });
    for (const i of range(50)) db2.add(pending(`p${i}`));
    for (const i of range(20)) db2.update(`p${i}`, done);
    for (let i = 20; i < 50; i++) assert.ok(db2.has(`p${i}`), `pending p${i} is kept`);
    assert.ok(db2.size <= 30 + 5, `${db2.size} records: 30 pending + at most 5 finished`);
    assert.ok(db2.has("p19"), "the newest finished record is kept");
  });

  it("over the byte limit, drops the buffers of large finished records first and keeps their metadata", () => {
    const db = new MemoryDb({ sizeLimit: 1_000_000, cullFraction: 0.1 });
    db.add(pending("big-pending", 600_000));
    db.add(pending("big-done", 600_000));
    db.update("big-done", done);
    const r = db.get("big-done");
    assert.equal(r.buffersCulled, true, "the finished record lost its buffers");
    assert.equal(r.status, "ok", "and kept its metadata");
    assert.ok(recordSize(db.get("big-done")) < 1000, "of 600 kB, the JSON parts stay");
    assert.ok(recordSize(db.get("big-pending")) > 600_000, "a pending task keeps its buffers");
  });

  it("culling visits each record a bounded number of times, however many tasks are pending", () => {
    // counts reads of the fields that say whether a record has finished
    let reads = 0;
    const counted = (r: TaskRecord) =>
      new Proxy(r, {
        get(target, key, receiver) {
          if (key === "status" || key === "completed") reads += 1;
          return Reflect.get(target, key, receiver) as unknown;
        },
      });
    const n = 20_000;
    const db = new MemoryDb({ recordLimit: 100 });
    for (const i of range(n)) db.add(counted(pending(`t${i}`)));
    for (const i of range(n)) db.update(`t${i}`, done);
    assert.ok(db.size <= 100, `${db.size} records kept`);
    // a scan of the pending records on every add or update would read ~n²/2 = 2e8 times
    assert.ok(reads < 20 * n, `${reads} reads for ${n} records`);
  });
});

describe("culled ids", () => {
  it("remember at least the last generation of ids, in a bounded table, without false matches", () => {
    const generation = 100_000;
    const culled = new CulledIds(generation);
    const ids = Array.from({ length: 2.5 * generation }, () => randomUUID());
    for (const id of ids) culled.add(id);
    for (const id of ids.slice(-generation)) assert.ok(culled.has(id), `${id} is remembered`);
    assert.ok(culled.size <= 2 * generation, `${culled.size} ids held`);
    assert.ok(culled.bytes <= 2 * (1 << 18) * 8, `${culled.bytes} bytes of tables`); // 2 generations of at most 2^18 slots of 8 B
    const oldest = ids.slice(0, generation / 2).filter((id) => culled.has(id)).length;
    assert.equal(oldest, 0, "the oldest generation was forgotten");
    const strangers = Array.from({ length: 200_000 }, () => randomUUID()).filter((id) => culled.has(id)).length;
    assert.equal(strangers, 0, "no id that was never added matches");
    culled.add(ids.at(-1)!);
    assert.ok(culled.size <= 2 * generation, "adding an id again does not count it twice");
    assert.throws(() => new CulledIds(0), /generation must be an integer >= 1/);
  });

  it("a record culled just before the 100 000th cull still answers 'culled' after it (the old set was emptied there)", () => {
    const db = new MemoryDb({ recordLimit: 10, cullFraction: 0.5 });
    const n = 100_100;
    for (const i of range(n)) {
      db.add(pending(`t${i}`));
      db.update(`t${i}`, done);
    }
    assert.ok(db.size <= 10);
    for (const id of ["t0", "t99990", "t100050"]) assert.throws(() => db.get(id), /has been culled/, id);
    assert.throws(() => db.get("never"), /No such message/);
    assert.ok(CULLED_GENERATION >= 250_000, "a controller remembers at least 250 000 culled ids");
  });
});

describe("task database limits on a cluster", () => {
  let r: Running;
  let rc: Client;

  before(async () => {
    r = await startCluster({ n: 1, dbRecordLimit: 20 });
    rc = r.rc;
  });
  after(() => r.cluster.stop());

  it("dbRecordLimit bounds the controller's records; a culled task says so, a recent one still answers", async () => {
    const amr = rc.loadBalancedView().map((x: number) => x * 2, range(100), { chunksize: 1 });
    assert.deepEqual(await amr.get(60), range(100).map((x) => x * 2), "culling never loses a result in flight");
    // the engine tells the controller of tasks it answered over the client's direct link in its
    // next report, which can come just after the results: the culling follows it
    await until(async () => (await rc.hubHistory()).length <= 20 + 5, 10_000, "the records culled to the limit"); // + the set-up's few
    const other = await r.cluster.connectClient();
    try {
      const last = amr.msgIds.at(-1)!;
      assert.deepEqual(await other.getResult(last).get(30), [198], "a map task's result is its chunk");
      const err = await other.getResult(amr.msgIds[0]!).get(30).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof Error, "the first task's record is gone");
      assert.match(err.message, /culled/);
    } finally {
      await other.close();
    }
  });

  it("tasks still waiting are all kept while finished ones are culled around them", async () => {
    const lv = rc.loadBalancedView();
    const busy = lv.apply((s: number) => {
      const end = Date.now() + s * 1000;
      while (Date.now() < end);
      return s;
    }, 1);
    const waiting = lv.map((x: number) => x + 1, range(50), { chunksize: 1 });
    const history = new Set(await rc.hubHistory());
    const missing = waiting.msgIds.filter((id) => !history.has(id));
    assert.deepEqual(missing, [], "every pending task has its record, though 50 > dbRecordLimit");
    assert.equal(await busy.get(30), 1);
    assert.deepEqual(await waiting.get(30), range(50).map((x) => x + 1));
    assert.ok((await rc.hubHistory()).length <= 20 + 5, "once finished, they are culled to the limit");
  });

  it("a wrong limit names itself", () => {
    assert.throws(() => new Cluster({ dbRecordLimit: 0 }), /dbRecordLimit/);
    assert.throws(() => new Cluster({ dbSizeLimit: 1.5 }), /dbSizeLimit/);
  });
});
