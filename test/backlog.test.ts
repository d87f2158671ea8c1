/**
 * Flow control through the controller: a peer that is slow to read (an engine busy in user code
 * does not read its socket) holds up only what is meant for it. Up to the forward limit the
 * controller queues it and goes on reading the sender's other messages; past the limit it pauses
 * the sender, so its memory stays bounded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Client } from "tsparallel";
import { withCluster } from "./helpers.ts";

const MB = 1024 * 1024;

/** Block the engine's event loop for `ms` (its socket is not read meanwhile). */
const block = (ms: number) => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return "free";
};

/** A sum that checks every element arrived (computed on the engine and here). */
const checksum = (a: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * ((i % 7) + 1);
  return s;
};

const data = new Float64Array((32 * MB) / 8).map((_, i) => (i % 1000) * 0.5);

/**
 * Engine 0 blocks for `blockMs`; a client routed through the controller pushes 32 MB to it, then
 * asks engine 1 for an answer and the controller for the queue status. Returns how long those took
 * and whether engine 0 was still busy when they came back; checks that the push arrived intact.
 */
async function pushToBusyEngine(connectionFile: string, blockMs: number): Promise<{ tookMs: number; busyThen: boolean; paused: number; limit: number }> {
  const via = await Client.connect({ connectionFile, timeout: 30, direct: false });
  try {
    const busy = via.directView(0).apply(block, blockMs);
    await new Promise((r) => setTimeout(r, 300)); // engine 0 is in user code
    const t0 = Date.now();
    const push = via.directView(0).push({ data });
    await new Promise((r) => setTimeout(r, 200)); // the push is in the controller's hands
    assert.equal(await via.directView(1).applySync((x: number) => x * 2, 21), 42);
    await via.queueStatus();
    const tookMs = Date.now() - t0;
    const busyThen = !busy.ready();
    assert.equal(await busy.get(60), "free");
    await push.get(60);
    // the pushed name, read on engine 0
    assert.equal(await via.directView(0).applySync((f: typeof checksum) => f(data), checksum), checksum(data), "the push arrived intact");
    const { flowControl } = await via.controllerStats();
    return { tookMs, busyThen, paused: flowControl.sendersPaused, limit: flowControl.forwardLimit };
  } finally {
    await via.close();
  }
}

describe("flow control through the controller", () => {
  it("a large push to a busy engine does not hold up the sender's messages to other engines or the controller", async () => {
    await withCluster({ n: 2, profile: "backlog" }, async ({ cluster }) => {
      const { tookMs, busyThen, paused, limit } = await pushToBusyEngine(cluster.connectionFile, 6000);
      assert.ok(busyThen, "engine 0 was still busy when engine 1 answered");
      assert.ok(tookMs < 4000, `engine 1 and the controller answered after ${tookMs} ms`);
      assert.equal(limit, 256 * MB, "the default forward limit");
      assert.equal(paused, 0, "no sender was paused");
    });
  });

  it("past the forward limit the sender is paused until the busy engine reads (memory stays bounded)", async () => {
    await withCluster({ n: 2, profile: "backlog-limit", forwardLimit: 4 * MB }, async ({ cluster }) => {
      const { tookMs, busyThen, paused, limit } = await pushToBusyEngine(cluster.connectionFile, 3000);
      assert.ok(!busyThen, "the sender's next message waited for engine 0 to read the push");
      assert.ok(tookMs >= 2000, `answered after ${tookMs} ms, before engine 0 was free`);
      assert.equal(limit, 4 * MB);
      assert.ok(paused >= 1, `senders paused: ${paused}`);
    });
  });
});
