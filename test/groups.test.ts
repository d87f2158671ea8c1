/**
 * Task groups: load-balanced tasks a client submits in one turn go to the controller in one signed
 * message. Each task is still recorded, scheduled, run and answered on its own; nothing sent later
 * overtakes a group; a task of a group cannot be replayed alone; a malformed group or entry is
 * dropped or failed, never run, and the controller keeps serving.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { TaskAborted } from "tsparallel";
import { Authenticator, encodeMessage, makeHeader, PROTOCOL_VERSION, readConnectionFile, takesTaskGroups, type ConnectionInfo, type Incoming } from "tsparallel/internal";
import { RawPeer, startCluster, until, type Running } from "./helpers.ts";

describe("task groups - protocol", () => {
  it("groups go only to a controller of protocol 1.1 or later (an older one of the same major would drop them)", () => {
    assert.ok(takesTaskGroups(PROTOCOL_VERSION));
    assert.deepEqual(["1.0", "1.1", "1.7", "2.0", "0.9", "x", undefined].map(takesTaskGroups), [false, true, true, true, false, false, false]);
  });
});

describe("task groups", () => {
  let r: Running;
  let info: ConnectionInfo;
  let auth: Authenticator;

  before(async () => {
    r = await startCluster({ n: 2, profile: "groups" });
    info = readConnectionFile(r.cluster.connectionFile);
    auth = new Authenticator(info.key);
  });
  after(async () => r?.cluster.stop());

  const grouped = async () => (await r.rc.controllerStats()).grouped;

  it("a map's tasks travel in groups and are each recorded, scheduled and answered on their own", async () => {
    const before = await grouped();
    const lv = r.rc.loadBalancedView();
    const ar = lv.map((x: number) => x * 3, Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(await ar.get(60), Array.from({ length: 1000 }, (_, i) => i * 3));
    const after = await grouped();
    assert.equal(after.tasks - before.tasks, 1000, "every task came in a group");
    const groups = after.groups - before.groups;
    assert.ok(groups >= 8 && groups <= 100, `${groups} groups for 1000 tasks`);
    // each task has its own record and metadata
    assert.equal(ar.msgIds.length, 1000);
    const md = ar.metadata;
    assert.ok(md.every((m) => m.status === "ok" && m.engineId !== null && m.started !== null && m.completed !== null));
    assert.ok(new Set(md.map((m) => m.engineId)).size >= 1);
    const ids = ar.msgIds;
    await until(async () => (await r.rc.dbQuery({ msgId: { $in: ids }, completed: { $ne: null } }, ["msgId"])).length === ids.length, 20_000, "a finished record of every task");
  });

  it("a burst of apply calls groups too, and a request made in the same turn does not overtake it", async () => {
    const lv = r.rc.loadBalancedView();
    const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    // both engines busy, then four more in the same turn, and an abort of the last one at once
    const before = await grouped();
    const busy = [lv.apply(block, 600), lv.apply(block, 600)];
    const ars = [1, 2, 3, 4].map((x) => lv.apply((y: number) => y * 10, x));
    // asked in the same turn: the controller has the group's records before it reads the query
    const ids = ars.map((a) => a.msgIds[0]!);
    const known = await r.rc.dbQuery({ msgId: { $in: ids } }, ["msgId"]);
    assert.equal(known.length, 4, "the query did not overtake the group");
    await r.rc.abort(ars[3]!);
    assert.equal((await grouped()).tasks - before.tasks, 6);
    await Promise.all(busy.map((b) => b.get(30)));
    assert.deepEqual(await Promise.all(ars.slice(0, 3).map((a) => a.get(30))), [10, 20, 30]);
    await assert.rejects(ars[3]!.get(30), (err: Error) => err instanceof TaskAborted);
  });

  it("a task of a group replayed alone is dropped; malformed groups and entries are dropped or failed; the controller keeps serving", async () => {
    const session = randomUUID();
    const peer = new RawPeer(info);
    await peer.handshake(info.key, "1.0", { session });
    await peer.next("welcome");
    const task = (x: number) => encodeMessage(auth, {
      header: makeHeader("apply_request", session), metadata: { route: "task" }, content: { not: "a valid apply" }, buffers: [Buffer.from([x])],
    });
    const a = task(1);
    const b = task(2);
    const index = (entries: unknown[][]) => JSON.stringify({ types: ["apply_request"], mds: [{ route: "task" }], tasks: entries });
    const idOf = (chunks: Uint8Array[]) => JSON.parse(Buffer.from(chunks[0]!).toString("latin1").match(/\{"msg_id":"[^"]+"/)![0] + "}").msg_id as string;
    const date = new Date().toISOString();
    const group = (entries: unknown[][], buffers: Uint8Array[]) => encodeMessage(auth, { header: makeHeader("task_group", session), texts: { metadata: "{}", content: index(entries) }, buffers });

    const before = await r.rc.controllerStats();
    peer.write(group([[idOf(a), date, 0, 0], [idOf(b), date, 0, 0]], [a[0]!, b[0]!]));
    // both reach an engine, which answers each (an error: the content is no apply)
    const replies: Incoming[] = [await peer.next("apply_reply"), await peer.next("apply_reply")];
    assert.deepEqual(new Set(replies.map((m) => m.parentId)), new Set([idOf(a), idOf(b)]));
    assert.equal((await r.rc.controllerStats()).grouped.tasks - before.grouped.tasks, 2);

    // one of them sent again alone: a replay
    peer.write(a);
    await until(async () => ((await r.rc.controllerStats()).dropped["replayed message"] ?? 0) > (before.dropped["replayed message"] ?? 0), 10_000, "the replay to be dropped");

    // an index that does not match the buffers: the group is dropped
    peer.write(group([[randomUUID(), date, 0, 0]], [task(3)[0]!, task(4)[0]!]));
    await until(async () => ((await r.rc.controllerStats()).dropped["malformed task group"] ?? 0) > 0, 10_000, "the bad group to be dropped");

    // a group too large for its one HMAC to cover its buffers: dropped
    const big = encodeMessage(auth, { header: makeHeader("apply_request", session), metadata: { route: "task" }, content: {}, buffers: [Buffer.alloc(70_000)] });
    peer.write(group([[randomUUID(), date, 0, 0]], [Buffer.concat(big)]));
    await until(async () => ((await r.rc.controllerStats()).dropped["task group too large"] ?? 0) > 0, 10_000, "the large group to be dropped");

    // an entry whose bytes are no framed message: that task fails (its client hears), the other runs
    const c = task(5);
    const bad = randomUUID();
    peer.write(group([[bad, date, 0, 0], [idOf(c), date, 0, 0]], [Buffer.from("not a message"), c[0]!]));
    const failed = await peer.next("apply_reply");
    const other = await peer.next("apply_reply");
    const byId = new Map([failed, other].map((m) => [m.parentId, m]));
    assert.equal(byId.get(bad)?.content.ename, "ProtocolError");
    assert.ok(byId.has(idOf(c)));
    peer.close();

    assert.equal(await r.rc.loadBalancedView().applySync((x: number) => x + 1, 41), 42, "still serving");
  });
});
