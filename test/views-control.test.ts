/**
 * DirectView targets and control (ipyparallel's test_view / test_client): single and list targets,
 * "all" resolved at each call, unknown engines, no engines; abort, queueStatus, clear, interrupt
 * with SIGINT, shutdown.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NoEnginesRegistered, RemoteError, TaskAborted, UnknownEngineError, type Client, type DirectView } from "tsparallel";
import { markedBlock, block, startCluster, TEST_DIR, until, withCluster, type Running } from "./helpers.ts";

declare const kept: string;

let markers = 0;
const newMarker = () => join(TEST_DIR, `started-${process.pid}-${markers++}`);
const running = (marker: string) => until(() => existsSync(marker), 15_000, "the task to start running");

describe("views - targets", () => {
  it("a number gives single values, a list gives lists, 'all' a list in target order", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      await rc.directView().scatter("me", rc.ids, { flatten: true });
      const me = () => (globalThis as unknown as { me: number }).me;
      assert.equal(await rc.directView(1).apply(me), 1);
      assert.deepEqual(await rc.directView([1]).apply(me), [1]);
      assert.deepEqual(await rc.directView([1, 0]).apply(me), [1, 0], "target order, not id order");
      assert.deepEqual(await rc.directView("all").apply(me), [0, 1]);
      assert.deepEqual(await rc.directView(0).execute("me").then((x) => x.value), 0);
      assert.equal(rc.directView(0).single, true);
      assert.equal(rc.directView([0]).single, false);
    });
  });

  it("'all' is resolved at each call: engines added later are used; an unknown engine is an immediate error", async () => {
    await withCluster({ n: 1 }, async ({ cluster, rc }) => {
      const dv = rc.directView();
      assert.deepEqual(await dv.apply(() => "hi"), ["hi"]);
      await cluster.addEngines(1);
      await rc.waitForEngines(2, { timeout: 30 });
      assert.deepEqual(await dv.apply(() => "hi"), ["hi", "hi"]);
      assert.equal((await dv.map((x: number) => x, [1, 2, 3, 4])).length, 4);
      assert.equal(dv.map((x: number) => x, [1, 2, 3, 4]).msgIds.length, 2, "the map uses the new engine too");
      await dv.wait();

      const before = rc.history.length;
      const ghost = rc.directView(7);
      for (const call of [
        () => ghost.apply(() => 1),
        () => ghost.execute("1"),
        () => ghost.push({ a: 1 }),
        () => ghost.pull("a"),
        () => ghost.map((x: number) => x, [1]),
        () => rc.directView([0, 9]).scatter("x", [1, 2]),
      ]) {
        assert.throws(call, (err: Error) => err instanceof UnknownEngineError && /no engine with id (7|9) is registered \(registered: 0, 1\)/.test(err.message));
      }
      assert.equal(rc.history.length, before, "nothing was sent");
      assert.throws(() => rc.directView("some" as "all"), /targets must be an engine id, a list of ids or "all"/);
    });
  });

  it("a direct call with no engine registered fails with NoEnginesRegistered", async () => {
    await withCluster({ n: 0 }, async ({ rc }) => {
      const dv = rc.directView();
      assert.throws(() => dv.apply(() => 1), NoEnginesRegistered);
      assert.throws(() => dv.execute("1"), NoEnginesRegistered);
      assert.throws(() => dv.scatter("x", [1]), NoEnginesRegistered);
      assert.throws(() => dv.map((x: number) => x, [1]), NoEnginesRegistered);
    });
  });

  it("setFlags and withFlags change targets; unknown flags are refused by name", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      const dv = rc.directView();
      const only1 = dv.withFlags({ targets: [1] });
      assert.deepEqual(only1.engineIds, [1]);
      assert.deepEqual(dv.engineIds, [0, 1], "withFlags leaves the original alone");
      dv.setFlags({ targets: [0] });
      assert.deepEqual(await dv.apply(() => 1), [1]);
      assert.throws(() => dv.setFlags({ targts: [0] } as never), /Invalid option in setFlags\(\): "targts"/);
      assert.throws(() => dv.withFlags({ block: true } as never), /Invalid option in withFlags\(\): "block"/);
    });
  });
});

describe("views - control", () => {
  let r: Running;
  let rc: Client;
  let e0: DirectView<true>;

  before(async () => {
    r = await startCluster({ n: 2 });
    rc = r.rc;
    e0 = rc.directView(0);
  });
  after(() => r.cluster.stop());

  it("abort: through the result, the view and the client, tasks still queued fail with TaskAborted", async () => {
    const marker = newMarker();
    const busy = e0.apply(markedBlock, marker, 2);
    const viaResult = e0.apply(() => "never");
    const viaView = e0.apply(() => "never");
    const viaClient = e0.apply(() => "never");
    await running(marker);
    // the engine answers aborts once it is free again, so send all three now
    await Promise.all([viaResult.abort(), e0.abort(viaView), rc.abort([viaClient.msgIds[0]!])]);
    assert.equal(await busy, 2, "the running task is not aborted");
    for (const ar of [viaResult, viaView, viaClient]) {
      await assert.rejects(ar.get(), (err: Error) => err instanceof TaskAborted && err instanceof RemoteError && (err as RemoteError).ename === "TaskAborted");
      assert.equal(ar.metadata[0]!.status, "aborted");
    }
    await assert.rejects(busy.abort(), /already done/);
  });

  it("abort with no jobs aborts everything the view (or client) has outstanding", async () => {
    const marker = newMarker();
    const busy = e0.apply(markedBlock, marker, 1);
    const queued = [1, 2, 3].map((i) => e0.apply((x: number) => x, i));
    await running(marker);
    await e0.abort();
    for (const ar of queued) await assert.rejects(ar.get(), TaskAborted);
    assert.equal(await busy, 1, "the task already running finishes");
  });

  it("queueStatus: {id: {queue, completed, tasks}, …, unassigned}, per view and verbose", async () => {
    const status = await rc.queueStatus();
    assert.deepEqual(Object.keys(status).sort(), ["0", "1", "unassigned"]);
    for (const id of [0, 1]) {
      const entry = status[id]!;
      assert.equal(typeof entry.queue, "number");
      assert.equal(typeof entry.completed, "number");
      assert.equal(typeof entry.tasks, "number");
    }
    assert.deepEqual(Object.keys(await rc.directView([1]).queueStatus()).sort(), ["1", "unassigned"], "a view reports its engines");

    // load-balanced tasks: one in flight on engine 0 (hwm 1), the others unassigned
    const on0 = rc.loadBalancedView([0]);
    const marker = newMarker();
    const busy = on0.apply(markedBlock, marker, 1);
    const waiting = [on0.apply(() => 1), on0.apply(() => 2)];
    const verbose = await rc.queueStatus([0], { verbose: true });
    assert.deepEqual(Object.keys(verbose).sort(), ["0", "unassigned"]);
    assert.deepEqual(verbose[0]!.tasks, busy.msgIds);
    assert.deepEqual(new Set(verbose.unassigned as string[]), new Set(waiting.flatMap((w) => w.msgIds)));
    await Promise.all([busy, ...waiting]);

    // direct tasks: counted as completed once done (engines report them to the controller)
    const completedBefore = (await rc.queueStatus())[0]!.completed;
    await Promise.all([e0.apply(() => 1), e0.apply(() => 2), e0.apply(() => 3)]);
    await until(async () => (await rc.queueStatus())[0]!.completed === completedBefore + 3, 15_000, "three more completed on engine 0");
    const after = (await rc.queueStatus())[0]!;
    assert.deepEqual([after.queue, after.tasks], [0, 0]);
  });

  it("queueStatus counts direct tasks queued behind a busy engine", async () => {
    const marker = newMarker();
    const busy = e0.apply(markedBlock, marker, 4);
    const queued = [e0.apply(() => 1), e0.apply(() => 2)];
    await running(marker);
    const ids = [...busy.msgIds, ...queued.flatMap((q) => q.msgIds)];
    try {
      // the engine is blocked, so it is up to the controller (or the client) to know what is queued there
      await until(async () => {
        const queue = (await rc.queueStatus([0], { verbose: true }))[0]!.queue as string[];
        return ids.every((id) => queue.includes(id));
      }, 2500, "the three direct tasks to show in engine 0's queue while it is busy");
    } finally {
      await Promise.all([busy, ...queued]);
    }
  });

  it("clear resets the namespaces of the targets only", async () => {
    await rc.directView().set("kept", "yes");
    await rc.clear([0]);
    await assert.rejects(e0.get("kept"), (err: RemoteError) => err.ename === "ReferenceError");
    assert.equal(await rc.directView(1).get("kept"), "yes");
    await rc.clear();
    await assert.rejects(rc.directView(1).get("kept"), (err: RemoteError) => err.ename === "ReferenceError");
  });

  it("SIGINT interrupts an engine running synchronous code; it keeps its namespace and keeps serving", async () => {
    await e0.set("kept", "still here");
    const marker = newMarker();
    const spinning = e0.apply((path: string) => {
      (globalThis as unknown as { require: NodeRequire }).require("node:fs").writeFileSync(path, "started");
      for (;;) {
        // busy: only a signal can stop this
      }
    }, marker);
    const behind = e0.apply(() => kept);
    await running(marker);
    await rc.signalEngines("SIGINT", [0]);
    await assert.rejects(spinning.get(30), (err: RemoteError) => err instanceof RemoteError && /interrupt/i.test(`${err.ename} ${err.evalue}`));
    assert.equal(await behind.get(30), "still here", "the task queued behind runs, in the same namespace");
    assert.equal(await e0.apply(() => kept), "still here");
    assert.equal(await rc.directView(1).apply(() => 1), 1, "the other engine was not disturbed");
  });

  it("SIGINT also interrupts a task awaiting a promise", async () => {
    const marker = newMarker();
    const waiting = e0.apply((path: string) => {
      (globalThis as unknown as { require: NodeRequire }).require("node:fs").writeFileSync(path, "started");
      return new Promise<void>(() => {});
    }, marker);
    await running(marker);
    await rc.signalEngines("SIGINT", [0]);
    await assert.rejects(waiting.get(30), RemoteError);
    assert.equal(await e0.apply(() => "serving"), "serving");
  });

  it("shutdown stops the targeted engine: it leaves ids, and addressing it is an immediate error", async () => {
    await rc.shutdown({ targets: [1] });
    await until(() => !rc.ids.includes(1), 15_000, "engine 1 to unregister");
    assert.deepEqual(rc.ids, [0]);
    assert.throws(() => rc.directView(1).apply(() => 1), UnknownEngineError);
    assert.deepEqual(await rc.directView().apply(() => "left"), ["left"]);
  });
});
