/**
 * The two watches on stuck connections, alone: the client's check on a silent controller
 * (liveness.ts) and the controller's check on clients that take nothing (stalls.ts). Their effect on
 * real processes is in reconnect.test.ts; here the timing rules, with sockets reduced to the fields
 * the checks read.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { describe, it } from "node:test";
import { ClientStalls, Liveness, type Connection } from "tsparallel/internal";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fakeSocket() {
  return { bytesRead: 0, writableLength: 0 };
}

function watch(socket: ReturnType<typeof fakeSocket>, timeoutMs: number) {
  const events = { probes: 0, lost: [] as number[] };
  const liveness = new Liveness({
    socket: () => socket as unknown as Socket,
    awaiting: () => true,
    probe: () => (events.probes += 1),
    lost: (ms) => events.lost.push(ms),
  }, timeoutMs);
  liveness.start();
  return { events, stop: () => liveness.stop() };
}

describe("liveness - a silent controller", () => {
  it("pings after 2 s of silence and counts the connection lost when nothing comes within the timeout", async () => {
    const socket = fakeSocket();
    const w = watch(socket, 500);
    try {
      await sleep(1500);
      assert.deepEqual(w.events, { probes: 0, lost: [] });
      await sleep(1500); // the ping went out at ~2-2.5 s
      assert.equal(w.events.probes, 1);
      await sleep(1500);
      assert.equal(w.events.lost.length, 1);
      assert.ok(w.events.lost[0]! >= 2400, `silent for ${w.events.lost[0]} ms`);
    } finally {
      w.stop();
    }
  });

  it("bytes coming in, or a write of its own still going out, count as life", async () => {
    const socket = fakeSocket();
    const w = watch(socket, 500);
    try {
      const feed = setInterval(() => (socket.bytesRead += 100), 400);
      await sleep(3000);
      clearInterval(feed);
      socket.writableLength = 1 << 20; // a large upload to a slow reader
      await sleep(3000);
      assert.deepEqual(w.events, { probes: 0, lost: [] });
    } finally {
      w.stop();
    }
  });

  it("a check that runs late (this process's event loop was blocked) does not judge before the socket has been read", async () => {
    const socket = fakeSocket();
    const w = watch(socket, 1000);
    try {
      await sleep(2900); // the ping went out at ~2.5 s
      assert.equal(w.events.probes, 1);
      const until = Date.now() + 1500;
      while (Date.now() < until); // blocked past the timeout; the answer waits unread
      setImmediate(() => (socket.bytesRead += 50)); // read in this turn, after the timers ran
      await sleep(700);
      assert.deepEqual(w.events.lost, []);
    } finally {
      w.stop();
    }
  });
});

describe("stalls - a client that takes nothing", () => {
  const conn = (backedUp: boolean, drained: number) =>
    ({ backedUp, closed: false, socket: { _bytesDispatched: drained + 1000, _handle: { writeQueueSize: 1000 }, writableLength: 1000 } }) as unknown as Connection;

  it("a backed-up client that took no byte for the stall time is reported once; one that took a byte, or is not backed up, is not", () => {
    const stalls = new ClientStalls(10_000);
    const stuck = conn(true, 500);
    const slow = conn(true, 500);
    const idle = conn(false, 0);
    assert.deepEqual(stalls.check([stuck, slow, idle], 0), []);
    (slow.socket as unknown as { _bytesDispatched: number })._bytesDispatched += 1; // one more byte taken
    assert.deepEqual(stalls.check([stuck, slow, idle], 9_000), []);
    assert.deepEqual(stalls.check([stuck, slow, idle], 10_000), [stuck]);
    assert.deepEqual(stalls.check([stuck, slow, idle], 18_999), []);
    assert.deepEqual(stalls.check([slow, idle], 19_000), [slow]);
  });
});
