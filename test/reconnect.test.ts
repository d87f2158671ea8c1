/** A client that loses its connection to the controller reconnects and still gets its results. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { ControllerError } from "tsparallel";
import { startCluster, until, withCluster, type Running } from "./helpers.ts";

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

  it("a task submitted while the client reconnects is held and sent once the connection is back", async () => {
    const { rc } = r;
    let reconnected = false;
    rc.once("reconnected", () => (reconnected = true));
    drop(rc);
    await new Promise((res) => setTimeout(res, 20)); // the drop is seen; the first attempt comes 100 ms after it
    assert.equal(reconnected, false);
    const ar = rc.loadBalancedView().apply(() => "held");
    assert.equal(await ar.get(30), "held");
    await until(() => reconnected, 10_000, "the reconnected event"); // (its answer may come over a link before the catch-up ends)
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

describe("a controller gone silent", () => {
  const sleepOnEngine = (ms: number) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    return ms;
  };

  it("a client waiting on a stopped controller gives up with ControllerError within controllerTimeout and reconnectTimeout, not never", async () => {
    await withCluster({ n: 1, profile: "silent" }, async ({ cluster }) => {
      const rc = await cluster.connectClient({ timeout: 2, controllerTimeout: 1, reconnectTimeout: 1 });
      let disconnected = false;
      rc.on("disconnected", () => (disconnected = true));
      const controller = cluster.pids.controller!;
      const ar = rc.loadBalancedView().apply(sleepOnEngine, 500);
      await new Promise((res) => setTimeout(res, 100));
      process.kill(controller, "SIGSTOP");
      const t0 = Date.now();
      try {
        // ~2 s of silence, a ping unanswered for 1 s, reconnect attempts for ~1 s (each up to the 2 s handshake timeout)
        await assert.rejects(ar.get(30), (e: Error) => e instanceof ControllerError && /could not reconnect/.test(e.message));
        assert.ok(disconnected, "the client counted the connection as lost");
        assert.ok(Date.now() - t0 < 15_000, `gave up after ${Date.now() - t0} ms`);
      } finally {
        process.kill(controller, "SIGCONT");
        await rc.close();
      }
    });
  });

  it("a live controller answers the pings: a long task with a short controllerTimeout finishes, nothing is dropped, even while this client's own event loop is blocked", async () => {
    await withCluster({ n: 1, profile: "silent-live" }, async ({ cluster }) => {
      const rc = await cluster.connectClient({ timeout: 10, controllerTimeout: 1 });
      let disconnected = false;
      rc.on("disconnected", () => (disconnected = true));
      try {
        const ar = rc.loadBalancedView().apply(sleepOnEngine, 6500);
        // silent for 4 s: pings go out after 2 s, and unanswered ones would drop the connection by ~3.5 s
        await new Promise((res) => setTimeout(res, 4000));
        const blocked = Date.now() + 2000;
        while (Date.now() < blocked); // this process blocked: a check that runs late must not judge
        assert.equal(await ar.get(30), 6500);
        assert.equal(disconnected, false);
      } finally {
        await rc.close();
      }
    });
  });
});

describe("a client that stops reading", () => {
  it("does not stop the cluster: it is dropped once it has taken nothing for 10 s, and the engine it held up serves the others", async () => {
    // a forward limit of 8 MB: the controller pauses the engine once that much waits for the stopped client
    await withCluster({ n: 1, profile: "stalled", forwardLimit: 8 * 1024 * 1024 }, async ({ cluster, rc }) => {
      // a second client, in a process of its own, asks for 160 MB of results through the controller, then stops
      const script = [
        'import { Client } from "tsparallel";',
        "const c = await Client.connect({ connectionFile: process.env.TSP_CF, direct: false });",
        "const lv = c.loadBalancedView();",
        "const make = () => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 25); return new Uint8Array(4e6).fill(1); };",
        "const ars = Array.from({ length: 40 }, () => lv.apply(make));",
        // every request handed to the socket before the parent stops this process (ar.sent)
        "await new Promise((r) => { const t = setInterval(() => { if (ars.every((a) => a.sent)) { clearInterval(t); r(); } }, 5); });",
        'console.log("SUBMITTED");',
        "await Promise.all(ars);",
      ].join("\n");
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
        cwd: fileURLToPath(new URL("..", import.meta.url)), env: { ...process.env, TSP_CF: cluster.connectionFile }, stdio: ["ignore", "pipe", "inherit"],
      });
      try {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => (out += String(d)));
        await until(() => out.includes("SUBMITTED"), 30_000, "the other client to submit");
        process.kill(child.pid!, "SIGSTOP"); // its results (160 MB, one every ~25 ms) fill its connection
        const t0 = Date.now();
        // a load-balanced task waits for the engine, whose replies the controller stopped reading
        const ar = rc.loadBalancedView().apply(() => "mine");
        assert.equal(await ar.get(40), "mine");
        const took = Date.now() - t0;
        assert.ok(took >= 5000, `served after ${took} ms: the stopped client was dropped by the stall rule, not earlier`);
        const stats = await rc.controllerStats();
        assert.equal(stats.dropped["client dropped: took nothing while backed up"], 1, JSON.stringify(stats.dropped));
      } finally {
        child.kill("SIGKILL");
      }
    });
  });
});
