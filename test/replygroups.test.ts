/**
 * Groups both ways (protocol 1.2). Reply groups: an engine answers the quick load-balanced tasks of
 * a burst over a client's direct link in one signed message. Task handoffs: the controller hands an
 * engine the tasks it places there in one turn in one message, which the engine takes apart. Each task still settles on its own with its metadata, and the
 * controller's record keeps each reply whole; replies that cannot go in a group (failures, large
 * values, output) travel alone; a malformed group is dropped, counted, and settles nothing.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import type { Client, RemoteError } from "tsparallel";
import {
  Authenticator, Connection, DropStats, DigestHistory, encodeMessage, isoMicro, makeHeader, pack, PROTOCOL_VERSION,
  readConnectionFile, takesReplyGroups, takesReplyStubs, takesTaskHandoffs, unpack, type ConnectionInfo, type Incoming, type Json,
} from "tsparallel/internal";
import { RawPeer, startCluster, TEST_DIR, until, type Running } from "./helpers.ts";

const silent = { debug() {}, info() {}, warn() {}, error() {} };

const replyGroups = (rc: Client): { groups: number; replies: number } =>
  (rc as unknown as Record<symbol, () => { groups: number; replies: number }>)[Symbol.for("tsparallel.replyGroups")]!();

describe("reply groups - protocol", () => {
  it("an engine groups replies only for a client of protocol 1.2 or later, and the controller hands tasks in groups only to such an engine", () => {
    assert.equal(PROTOCOL_VERSION, "1.3");
    const versions = ["1.0", "1.1", "1.2", "1.3", "1.9", "2.0", "x", undefined];
    assert.deepEqual(versions.map(takesReplyGroups), [false, false, true, true, true, true, false, false]);
    assert.deepEqual(versions.map(takesTaskHandoffs), [false, false, true, true, true, true, false, false]);
  });

  it("an engine reports reply stubs only to a controller of protocol 1.3 or later", () => {
    const versions = ["1.0", "1.1", "1.2", "1.3", "1.9", "2.0", "x", undefined];
    assert.deepEqual(versions.map(takesReplyStubs), [false, false, false, true, true, true, false, false]);
  });
});

describe("reply groups", () => {
  let r: Running;

  before(async () => {
    r = await startCluster({ n: 2, profile: "replygroups" });
  });
  after(async () => r?.cluster.stop());

  it("a map's replies come over the links in groups; each task settles with its own metadata and record", async () => {
    const lv = r.rc.loadBalancedView();
    await lv.map((x: number) => x, [1, 2, 3, 4]); // the client opens its links on its first load-balanced task
    const before = replyGroups(r.rc);
    const ar = lv.map((x: number) => ({ x, half: x / 2, tag: "t" + x }), Array.from({ length: 1000 }, (_, i) => i));
    const values = await ar.get(60);
    assert.deepEqual(values, Array.from({ length: 1000 }, (_, i) => ({ x: i, half: i / 2, tag: "t" + i })));
    const after = replyGroups(r.rc);
    // all but the few that ran longer than 1 ms (the first call of a new function compiles it), which go through the controller
    assert.ok(after.replies - before.replies >= 950, `${after.replies - before.replies} of 1000 replies came in a group`);
    const groups = after.groups - before.groups;
    assert.ok(groups >= 8 && groups < 1000, `${groups} groups for 1000 replies`);
    const md = ar.metadata;
    assert.ok(md.every((m) => m.status === "ok" && m.engineId !== null && typeof m.engineUuid === "string"));
    assert.equal(new Set(md.map((m) => `${m.engineId} ${m.engineUuid}`)).size, new Set(md.map((m) => m.engineId)).size, "one uuid per engine id");
    assert.ok(md.every((m) => m.started !== null && m.completed !== null && m.received !== null && m.completed >= m.started));
    // the record keeps each reply as a message of its own: header, parent, metadata, content, value
    // (the engines report them as stubs, protocol 1.3: the controller builds the reply when it is read)
    const ids = ar.msgIds;
    await until(async () => (await r.rc.dbQuery({ msgId: { $in: ids }, completed: { $ne: null } }, ["msgId"])).length === ids.length, 20_000, "a finished record of every task");
    const keys = ["msgId", "resultHeader", "resultMetadata", "resultContent", "resultBuffers", "engineUuid", "engineId", "started", "completed"];
    const [rec] = await r.rc.dbQuery({ msgId: ids[7]! }, keys);
    const header = rec!.resultHeader as Json;
    const metadata = rec!.resultMetadata as Json;
    assert.equal(header.msg_type, "apply_reply");
    assert.equal(typeof header.msg_id, "string");
    const ms = (d: unknown) => new Date(d as string | Date).getTime();
    assert.equal(ms(header.date), ms(rec!.completed), "the reply is dated when the task completed");
    assert.deepEqual({ ...metadata, started: ms(metadata.started) }, { status: "ok", started: ms(rec!.started), engine: rec!.engineUuid, engine_id: rec!.engineId, dependencies_met: true });
    assert.deepEqual(rec!.resultContent, { status: "ok", specials: false });
    assert.deepEqual(unpack(rec!.resultBuffers as Uint8Array[]), [{ x: 7, half: 3.5, tag: "t7" }], "a map task's value: its chunk's results");
    const [again7] = await r.rc.dbQuery({ msgId: ids[7]! }, keys);
    assert.equal((again7!.resultHeader as Json).msg_id, header.msg_id, "every read sees the same reply");
    // the controller handed them to the engines several to a message
    const handed = (await r.rc.controllerStats()).handedOff;
    assert.ok(handed.tasks >= 1000 && handed.groups >= 1, `handed off: ${JSON.stringify(handed)}`);
    // and serves it again, value included, to a client that asks for it
    const again = await r.rc.getResult(ids[7]!).get(10);
    assert.deepEqual(again, [{ x: 7, half: 3.5, tag: "t7" }]);
  });

  it("functions in results, failures, large values and output travel as before, in the same map", async () => {
    const lv = r.rc.loadBalancedView();
    const before = replyGroups(r.rc);
    const f = (x: number): unknown => {
      if (x === 3) throw new RangeError("three");
      if (x === 5) return new Float64Array(4096).fill(x); // 32 KB: alone
      if (x === 7) console.log("seven");
      if (x === 9) return { add: (y: number) => y + 9 };
      return x;
    };
    const ar = lv.map(f, Array.from({ length: 12 }, (_, i) => i), { returnExceptions: true });
    const out = (await ar.get(60)) as unknown[];
    assert.equal((out[3] as RemoteError).ename, "RangeError");
    assert.equal((out[5] as Float64Array).length, 4096);
    assert.equal((out[5] as Float64Array)[100], 5);
    assert.equal(out[7], 7);
    assert.equal((out[9] as { add: (y: number) => number }).add(1), 10);
    for (const i of [0, 1, 2, 4, 6, 8, 10, 11]) assert.equal(out[i], i);
    assert.equal(ar.metadata[7]!.stdout, "seven\n");
    const grouped = replyGroups(r.rc).replies - before.replies;
    assert.ok(grouped <= 9, `${grouped} grouped: the failure, the large value and the printing task went alone`);
  });
});

describe("reply groups - bad input", () => {
  let r: Running;
  let info: ConnectionInfo;
  let auth: Authenticator;
  let server: Server;
  const path = join(tmpdir(), `tsp-fake-link-${process.pid}.sock`);

  before(async () => {
    r = await startCluster({ n: 1, profile: "replygroups-bad" });
    info = readConnectionFile(r.cluster.connectionFile);
    auth = new Authenticator(info.key);
  });
  after(async () => {
    server?.close();
    rmSync(path, { force: true });
    await r?.cluster.stop();
  });

  it("a malformed or unsigned group is dropped and counted, settles nothing, and the next good one is read", async () => {
    // a fake engine on this host whose direct link is ours: the client sends it direct tasks over it
    const uuid = randomUUID();
    const requests: Incoming[] = [];
    let link: Connection | null = null;
    rmSync(path, { force: true });
    server = createServer((socket) => {
      const conn = new Connection(socket, { auth, history: new DigestHistory(), verifyBuffers: true, log: silent, stats: new DropStats() });
      conn.on("message", (m) => requests.push(m));
      void conn.accept(randomUUID(), 10_000, { engine_uuid: uuid }).then(() => (link = conn));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const fake = new RawPeer(info);
    await fake.handshake(info.key, PROTOCOL_VERSION, { role: "engine", uuid });
    await fake.next("welcome");
    fake.write(encodeMessage(auth, { header: makeHeader("registration_request", uuid), content: { uuid, hostname: hostname(), pid: process.pid, direct: `unix:${path}` } }));
    const id = Number((await fake.next("registration_reply")).content.id);
    await until(() => r.rc.ids.includes(id), 10_000, "the client to see the fake engine");

    const ar = r.rc.directView(id).apply(() => 1);
    await until(() => requests.some((m) => m.msgType === "apply_request"), 10_000, "the task over the link");
    const task = requests.find((m) => m.msgType === "apply_request")!;
    const group = (replies: unknown, buffers: Uint8Array[] = pack(7)) =>
      encodeMessage(auth, { header: makeHeader("reply_group", uuid), content: { engine: uuid, engine_id: id, replies }, buffers });
    const now = isoMicro();
    const dropped = () => r.rc.dropped;
    const before = { ...dropped() };
    link!.write(group([[task.header.msg_id, now, now, 0, 2]])); // two buffers announced, one sent
    link!.write(group([[task.header.msg_id, now, now, 2, 1]])); // not a specials flag
    link!.write(group({ 0: task.header.msg_id })); // not a list
    link!.write(encodeMessage(new Authenticator("not the key"), { header: makeHeader("reply_group", uuid), content: { engine: uuid, engine_id: id, replies: [[task.header.msg_id, now, now, 0, 1]] }, buffers: pack(666) }));
    link!.write(group([[randomUUID(), now, now, 0, 1]])); // no such task
    await until(() => (dropped()["malformed reply group"] ?? 0) - (before["malformed reply group"] ?? 0) === 3, 10_000, "three malformed groups counted");
    await until(() => (dropped()["stale or unknown reply"] ?? 0) > (before["stale or unknown reply"] ?? 0), 10_000, "the unknown task counted");
    const total = (s: Record<string, number>) => Object.values(s).reduce((a, b) => a + b, 0);
    assert.ok(total(dropped()) - total(before) >= 5, "the unsigned group was dropped too");
    assert.equal(r.rc.outstanding.has(task.header.msg_id), true, "nothing settled the task");
    link!.write(group([[task.header.msg_id, now, now, 0, 1]]));
    assert.equal(await ar.get(10), 7);
    assert.equal(ar.metadata[0]!.engineId, id);

    // the controller's side: compact link answers in a report that are not [id, started, date, buffer index]
    const malformed = async () => (await r.rc.controllerStats()).dropped["malformed entry in a report"] ?? 0;
    const count = await malformed();
    fake.write(encodeMessage(auth, {
      header: makeHeader("direct_report", uuid),
      content: { seen: [], done: [], linked: [["x", null], 5, [task.header.msg_id, now, now, 9], [task.header.msg_id, now, 7, 0]] },
      buffers: [Buffer.from("not a reply")],
    }));
    await until(async () => (await malformed()) - count === 4, 10_000, "four malformed entries counted");
    // reply stubs (protocol 1.3) that are not [id, started, date, first buffer, buffer count, specials]
    fake.write(encodeMessage(auth, {
      header: makeHeader("direct_report", uuid),
      content: {
        seen: [], done: [],
        linked: [[task.header.msg_id, now, now, 0, 2, 0], [task.header.msg_id, now, now, 0, 1, 2], [task.header.msg_id, now, now, 0, -1, 0], [task.header.msg_id, 5, now, 0, 1, 0], [task.header.msg_id, now, now, 0, 1]],
      },
      buffers: [Buffer.from("one buffer")],
    }));
    await until(async () => (await malformed()) - count === 9, 10_000, "five malformed stubs counted");
    assert.equal(await r.rc.directView(0).applySync((x: number) => x * 3, 5), 15, "the controller keeps serving");
    fake.close();
  });
});

describe("task handoffs - an engine's intake of a group", () => {
  const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
  const key = randomUUID();
  const auth = new Authenticator(key);
  const path = join(TEST_DIR, "fake-controller.sock");
  const file = join(TEST_DIR, "fake-controller.json");
  const inbox: Array<{ conn: Connection; msg: Incoming }> = [];
  const conns: Connection[] = [];
  let server: Server;
  let engine: ChildProcess;

  before(async () => {
    server = createServer((socket) => {
      const conn = new Connection(socket, { auth, history: new DigestHistory(), verifyBuffers: true, log: silent, stats: new DropStats() });
      conns.push(conn);
      conn.on("message", (msg) => inbox.push({ conn, msg }));
      conn.accept(randomUUID(), 10_000).catch(() => {});
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    writeFileSync(file, JSON.stringify({
      clusterId: "fake", profile: "fake", transport: "unix", ip: "127.0.0.1", location: "127.0.0.1", port: 9,
      unixPath: path, key, signatureScheme: "hmac-sha256+poly1305", controllerPid: process.pid, hbPeriod: 250,
    }));
    engine = spawn(process.execPath, [CLI, "engine", "--file", file], { env: { ...process.env, TSPARALLEL_DIR: TEST_DIR }, stdio: "ignore" });
  });
  after(async () => {
    engine?.kill("SIGKILL");
    for (const c of conns) c.close(true);
    server?.close();
  });

  const next = async (type: string): Promise<{ conn: Connection; msg: Incoming }> => {
    await until(() => inbox.some((e) => e.msg.msgType === type), 20_000, `a ${type} from the engine`);
    return inbox.splice(inbox.findIndex((e) => e.msg.msgType === type), 1)[0]!;
  };
  const task = (src: string, arg: number) => encodeMessage(auth, {
    header: makeHeader("apply_request", randomUUID()), metadata: {},
    content: { fn: { kind: "source", src, name: "" }, specials: false }, buffers: pack([arg]),
  });

  it("runs each task of a group once; bytes that are no framed task, a non-task and a replay are dropped; it goes on serving", async () => {
    const { conn, msg } = await next("registration_request");
    conn.send({ header: makeHeader("registration_reply", "fake"), parent: msg.header, content: { status: "ok", id: 0, hb_period: 0, hb_misses: 0 } });
    const first = Buffer.concat(task("(x) => x * 2", 21));
    const second = Buffer.concat(task("(x) => x + 1", 99));
    const shutdown = Buffer.concat(encodeMessage(auth, { header: makeHeader("shutdown_request", "fake"), content: {} }));
    const garbage = Buffer.from("not a framed message at all");
    conn.send({ header: makeHeader("task_group", "fake"), content: { tasks: 5 }, buffers: [first, garbage, shutdown, first, second] });
    const a = await next("apply_reply");
    const b = await next("apply_reply");
    const values = new Map([a, b].map((r) => [r.msg.parentId, unpack(r.msg.buffers)]));
    assert.equal(values.size, 2, "two tasks answered");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(inbox.filter((e) => e.msg.msgType === "apply_reply").length, 0, "the replayed task did not run again");
    assert.ok(!inbox.some((e) => e.msg.msgType === "shutdown_reply"), "the shutdown inside the group was not obeyed");
    assert.deepEqual([...values.values()].sort(), [100, 42].sort());
    // still serving: a task sent alone runs
    conn.write(task("(x) => x - 1", 8));
    assert.deepEqual(unpack((await next("apply_reply")).msg.buffers), 7);
    assert.equal(engine.exitCode, null, "the engine is still running");
  });
});
