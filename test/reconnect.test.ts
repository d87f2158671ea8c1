/** A client that loses its connection to the controller reconnects and still gets its results. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ControllerError } from "tsparallel";
import { startCluster, until, type Running } from "./helpers.ts";

const drop = (rc: object) => (rc as Record<symbol, () => void>)[Symbol.for("tsparallel.dropConnection")]!();

describe("reconnect", () => {
  let r: Running;
  before(async () => {
    r = await startCluster({ n: 2, profile: "reconnect" });
  });
  after(async () => r.cluster.stop());

  it("a dropped client reconnects; results that finished meanwhile are delivered", async () => {
    const { rc } = r;
    let reconnected = false;
    rc.once("reconnected", () => (reconnected = true));
    const lv = rc.loadBalancedView();
    const ar = lv.map((t: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, t);
      return t;
    }, [300, 300, 10, 10]);
    await new Promise((res) => setTimeout(res, 50));
    drop(rc);
    assert.deepEqual(await ar.get(30), [300, 300, 10, 10]);
    await until(() => reconnected, 10_000, "the reconnected event");
    assert.deepEqual(rc.ids, [0, 1]);
    assert.deepEqual(await rc.directView().apply(() => "after"), ["after", "after"]);
  });

  it("direct tasks on engine links are not affected by the controller connection dropping", async () => {
    const { rc } = r;
    const ar = rc.directView(0).apply(() => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      return "done";
    });
    await new Promise((res) => setTimeout(res, 50));
    drop(rc);
    assert.equal(await ar.get(30), "done");
  });

  it("a task whose request was lost with the connection fails on its own; the client reconnects and the rest finish", async () => {
    const { rc } = r;
    let reconnected = false;
    rc.once("reconnected", () => (reconnected = true));
    const lv = rc.loadBalancedView();
    const running = lv.apply((t: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, t);
      return "ran";
    }, 300);
    await new Promise((res) => setTimeout(res, 50)); // on an engine by now
    const lost = lv.apply(() => "never"); // still in the client's write buffer when the socket goes
    drop(rc);
    await assert.rejects(lost.get(30), (e: Error) => e instanceof ControllerError && /is lost/.test(e.message));
    assert.equal(await running.get(30), "ran");
    await until(() => reconnected, 10_000, "the reconnected event");
    assert.equal(await lv.applySync(() => "after"), "after");
  });

  it("getResult of another client's task that ends while this client is reconnecting still resolves", async () => {
    const other = await r.cluster.connectClient({ timeout: 30 });
    try {
      const ar = r.rc.loadBalancedView().apply(() => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
        return "theirs";
      });
      const id = ar.msgIds[0]!;
      const watched = other.getResult(id);
      // the task ends ~100 ms after the drop; the first reconnect attempt comes 100 ms after it at the
      // earliest, so the controller's notice of the end finds no connection (the case under test)
      await new Promise((res) => setTimeout(res, 150));
      drop(other);
      assert.equal(await ar.get(30), "theirs");
      assert.equal(await watched.get(30), "theirs");
    } finally {
      await other.close();
    }
  });
});
