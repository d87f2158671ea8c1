/**
 * Engines that die or hang: tasks on a killed engine fail with EngineError and its id leaves
 * rc.ids; an engine that stops answering heartbeats is declared dead; a busy engine is not.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster, EngineError, RemoteError } from "tsparallel";
import { alive, sleep, startCluster, until, withCluster, type Running } from "./helpers.ts";

const sleepFor = (seconds: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);

describe("engine death - locally launched", () => {
  let r: Running;
  before(async () => {
    r = await startCluster({ n: 3, profile: "death" });
  });
  after(async () => r.cluster.stop());

  it("kill -9 mid-task: the task fails with EngineError and the id leaves rc.ids within 2 s", async () => {
    const { rc } = r;
    const pid = rc.hosts.get(2)!.pid;
    const ar = rc.directView(2).apply(sleepFor, 30);
    await new Promise((res) => setTimeout(res, 500));
    process.kill(pid, "SIGKILL");
    const killed = Date.now();
    const err = await ar.get(20).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof EngineError, `expected EngineError, got ${String(err)}`);
    assert.ok(err instanceof RemoteError);
    assert.equal(err.ename, "EngineError");
    assert.match(err.message, /Engine 2 died/);
    await until(() => !rc.ids.includes(2), 2000, "engine 2 to leave rc.ids");
    assert.ok(Date.now() - killed < 2500);
    assert.deepEqual(rc.ids, [0, 1]);
    await until(() => !r.cluster.pids.engines.includes(pid), 5000, "the dead pid to leave cluster.pids");
    assert.equal(r.cluster.pids.engines.length, 2, "without respawn the cluster does not replace it");
  });

  it("a load-balanced task on a killed engine fails too, and the others keep serving", async () => {
    const { rc } = r;
    const lv = rc.loadBalancedView([1]);
    const ar = lv.apply(sleepFor, 30);
    await new Promise((res) => setTimeout(res, 500));
    process.kill(rc.hosts.get(1)!.pid, "SIGKILL");
    await assert.rejects(ar.get(20), (e: unknown) => e instanceof EngineError);
    await until(() => !rc.ids.includes(1), 2000, "engine 1 to leave rc.ids");
    assert.equal(await rc.directView(0).apply(() => "still here"), "still here");
    assert.equal(await rc.loadBalancedView().apply(() => "balanced"), "balanced");
  });

  it("a load-balanced answer sent over the client's link and lost with its engine still arrives, from the controller's record", async () => {
    const { rc } = r;
    const hold = (on: boolean) => (rc as unknown as Record<symbol, (on: boolean) => void>)[Symbol.for("tsparallel.holdLinks")]!(on);
    const lv = rc.loadBalancedView([0]);
    const seven = (x: number) => x * 7;
    assert.equal(await lv.apply(seven, 1), 7); // the first task opens the links; engine 0 compiles seven
    await sleep(200);
    hold(true); // what engine 0 answers over the link now stays in the socket, unread
    try {
      // a task that took engine 0 over 1 ms (a collection, say) is answered through the controller: try again
      let ar: ReturnType<typeof lv.apply> | null = null;
      for (let attempt = 0; ar === null; attempt++) {
        assert.ok(attempt < 5, "engine 0 answered over its link at least once in 5 tries");
        const before = (await rc.controllerStats()).answeredOverLinks;
        const candidate = lv.apply(seven, 6);
        await until(async () => candidate.ready() || (await rc.controllerStats()).answeredOverLinks > before, 10_000, "engine 0's answer");
        if (!candidate.ready()) ar = candidate; // answered over the held link, and reported
      }
      process.kill(rc.hosts.get(0)!.pid, "SIGKILL");
      assert.equal(await ar.get(20), 42, "filled from the controller's record when the engine left");
      assert.equal(ar.engineId, 0);
    } finally {
      hold(false);
    }
  });
});

describe("engine death - heartbeats", () => {
  let r: Running;
  before(async () => {
    r = await startCluster({ n: 2, profile: "hb", heartbeatPeriod: 0.2, heartbeatMisses: 5 });
  });
  after(async () => r.cluster.stop());

  it("an engine running synchronous code for many heartbeat periods stays registered", async () => {
    const { rc } = r;
    let left = false;
    const onLeft = () => (left = true);
    rc.on("engineUnregistered", onLeft);
    const value = await rc.directView(0).apply(() => {
      const end = Date.now() + 3000; // 15 heartbeat periods
      let n = 0;
      while (Date.now() < end) n++;
      return n > 0;
    });
    rc.off("engineUnregistered", onLeft);
    assert.equal(value, true);
    assert.equal(left, false);
    assert.deepEqual(rc.ids, [0, 1]);
  });

  it("an engine whose heart stops (SIGSTOP) is declared dead; resumed, it registers again with its id", async () => {
    const { rc } = r;
    const pid = rc.hosts.get(1)!.pid;
    const ar = rc.directView(1).apply(() => 1);
    await ar;
    process.kill(pid, "SIGSTOP");
    try {
      const took = await until(() => !rc.ids.includes(1), 10_000, "the silent engine to be unregistered");
      assert.ok(took >= 500, `declared dead after ${took} ms: only after several missed beats`);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await until(() => rc.ids.includes(1), 15_000, "the engine to come back");
    assert.ok(alive(pid));
    assert.equal(await rc.directView(1).apply(() => process.pid), pid);
  });
});

describe("engine death - respawn", () => {
  it("a killed engine is replaced: same count, a new id, and the new engine serves", async () => {
    await withCluster({ n: 2, profile: "respawn", respawn: true }, async ({ cluster, rc }) => {
      const pid = rc.hosts.get(0)!.pid;
      process.kill(pid, "SIGKILL");
      await until(() => rc.ids.length === 2 && rc.ids.includes(2), 20_000, "a replacement engine (id 2)");
      assert.deepEqual(rc.ids, [1, 2], "ids are never reused");
      assert.equal(cluster.pids.engines.length, 2);
      assert.ok(!cluster.pids.engines.includes(pid));
      assert.equal(await rc.directView(2).apply(() => "new engine"), "new engine");
    });
  });

  it("engines stopped on purpose are not replaced", async () => {
    await withCluster({ n: 2, profile: "respawn", respawn: true }, async ({ cluster, rc }) => {
      await cluster.stopEngines([0]);
      await until(() => rc.ids.length === 1, 10_000, "engine 0 to leave");
      await sleep(1500);
      assert.deepEqual(rc.ids, [1], "no replacement");
      assert.equal(cluster.pids.engines.length, 1);
    });
  });

  it("respawn cannot be combined with daemonize", () => {
    assert.throws(() => new Cluster({ respawn: true, daemonize: true }), /"respawn" needs this process to keep running/);
    assert.throws(() => new Cluster({ respawn: "yes" } as never), /"respawn" must be a boolean/);
  });
});
