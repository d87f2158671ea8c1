/**
 * The receive reserve (src/client/reserve.ts): after a large array lands in new memory, the client
 * prepares a buffer of its size on a worker thread, and the next array like it is read into that
 * one. Checked through the public API against a real cluster: what lands there is right and
 * exactly sized, gathers use it too, it is bounded, given back when unused, and can be turned off.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Client } from "tsparallel";
import { LandingReserve, RESERVE_MIN_BYTES, RESERVE_SUGGESTED_LIMIT } from "tsparallel/internal";
import { startCluster, until, type Running } from "./helpers.ts";

const N = 2_000_000; // 16 MB of float64: above RESERVE_MIN_BYTES
const ramp = (n: number, from = 0) => Float64Array.from({ length: n }, (_, i) => from + i);

async function readyFor(rc: Client, bytes: number): Promise<void> {
  await until(() => rc.receiveReserve.readyBytes >= bytes, 20_000, `${bytes} bytes prepared`);
}

describe("reserve - memory prepared ahead for large received arrays", () => {
  let r: Running;
  before(async () => {
    r = await startCluster();
  });
  after(async () => {
    await r?.cluster.stop();
  });

  it("a pull after the first of its size lands in a prepared buffer, exactly sized, with the engine's values", async () => {
    const rc = await r.cluster.connectClient({ receiveReserve: RESERVE_SUGGESTED_LIMIT });
    try {
      const e0 = rc.directView(0);
      await e0.push({ a: ramp(N) });
      const first = (await e0.pull("a")) as Float64Array;
      assert.deepEqual(rc.receiveReserve.hits, 0);
      assert.equal(rc.receiveReserve.misses, 1, "the first 16 MB frame landed in new memory");
      await readyFor(rc, N * 8);
      await e0.execute("a[0] = -1; a[a.length - 1] = -2;");
      const second = (await e0.pull("a")) as Float64Array;
      assert.equal(rc.receiveReserve.hits, 1, "the second one landed in the prepared buffer");
      assert.ok(second.buffer instanceof ArrayBuffer, "a plain ArrayBuffer, as a new one would be");
      assert.equal(second.byteOffset, 0);
      assert.equal(second.buffer.byteLength, N * 8, "exactly the array's size");
      assert.notEqual(second.buffer, first.buffer);
      assert.deepEqual([second[0], second[1], second[N - 2], second[N - 1]], [-1, 1, N - 2, -2]);
      assert.deepEqual(first.subarray(0, 2), Float64Array.of(0, 1), "the first pull's array is untouched");
      await readyFor(rc, N * 8); // and another is prepared for the next one
    } finally {
      await rc.close();
    }
    assert.equal(rc.receiveReserve.readyBytes, 0, "closing gives the prepared memory back");
  });

  it("a gather whose parts are known lands its joined array in a prepared buffer too", async () => {
    const rc = await r.cluster.connectClient({ receiveReserve: RESERVE_SUGGESTED_LIMIT });
    try {
      const dv = rc.directView("all");
      const data = ramp(N + 1);
      await dv.scatter("x", data);
      assert.deepEqual(await dv.gather("x"), data);
      await readyFor(rc, (N + 1) * 8);
      const before = rc.receiveReserve.hits;
      const back = (await dv.gather("x")) as Float64Array;
      assert.equal(rc.receiveReserve.hits, before + 1);
      assert.deepEqual(back, data);
      assert.equal(back.buffer.byteLength, (N + 1) * 8);
    } finally {
      await rc.close();
    }
  });

  it("it is off by default and with receiveReserve: 0; a reserve smaller than the array prepares nothing", async () => {
    for (const receiveReserve of [undefined, 0, N * 8 - 1]) {
      const rc = await r.cluster.connectClient(receiveReserve === undefined ? {} : { receiveReserve });
      try {
        const e0 = rc.directView(0);
        await e0.push({ a: ramp(N) });
        for (let i = 0; i < 2; i++) assert.equal(((await e0.pull("a")) as Float64Array)[N - 1], N - 1);
        assert.deepEqual(rc.receiveReserve, { hits: 0, misses: 0, readyBytes: 0 }, `receiveReserve ${receiveReserve}`);
      } finally {
        await rc.close();
      }
    }
  });

  it("a prepared buffer unused for receiveReserveSeconds is given back", async () => {
    const rc = await r.cluster.connectClient({ receiveReserve: RESERVE_SUGGESTED_LIMIT, receiveReserveSeconds: 1 });
    try {
      const e0 = rc.directView(0);
      await e0.push({ a: ramp(N) });
      await e0.pull("a");
      await readyFor(rc, N * 8);
      await until(() => rc.receiveReserve.readyBytes === 0, 20_000, "the prepared buffer given back");
    } finally {
      await rc.close();
    }
  });

  it("wrong options name themselves", async () => {
    await assert.rejects(r.cluster.connectClient({ receiveReserve: -1 }), /Invalid option in Client\.connect\(\): "receiveReserve" must be an integer >= 0/);
    await assert.rejects(r.cluster.connectClient({ receiveReserve: 1.5 }), /"receiveReserve" must be an integer >= 0/);
    await assert.rejects(r.cluster.connectClient({ receiveReserveSeconds: 0 }), /"receiveReserveSeconds" must be a number of seconds > 0/);
  });
});

describe("reserve - bounds", () => {
  it("small frames are not its business; a new size within the limit gives back the oldest ready buffer", async () => {
    const MB = 1024 * 1024;
    const reserve = new LandingReserve(24 * MB, 60_000);
    try {
      assert.equal(reserve.take(RESERVE_MIN_BYTES - 1), null);
      assert.deepEqual(reserve.stats, { hits: 0, misses: 0, readyBytes: 0 }, "a small frame is neither a hit nor a miss");
      assert.equal(reserve.take(16 * MB), null);
      reserve.settle(); // the frame has landed: now its size is prepared again
      await until(() => reserve.stats.readyBytes === 16 * MB, 20_000, "16 MB prepared");
      assert.equal(reserve.take(12 * MB), null, "none of 12 MB ready");
      reserve.settle();
      // 16 + 12 > 24: the 16 MB buffer is given back for the 12 MB one
      await until(() => reserve.stats.readyBytes === 12 * MB, 20_000, "12 MB prepared in its place");
      const got = reserve.take(12 * MB);
      assert.ok(got instanceof ArrayBuffer && got.byteLength === 12 * MB);
      assert.ok(new Uint8Array(got).every((b) => b === 0), "a prepared buffer holds only zeros");
      assert.equal(reserve.take(25 * MB), null, "larger than the limit");
      assert.deepEqual({ hits: reserve.stats.hits, misses: reserve.stats.misses }, { hits: 1, misses: 2 });
    } finally {
      reserve.close();
    }
    assert.equal(reserve.take(12 * MB), null, "closed: nothing more");
  });

  it("while a large send holds it, the thread waits; released, it finishes the buffer", async () => {
    const MB = 1024 * 1024;
    const reserve = new LandingReserve(64 * MB, 60_000);
    try {
      reserve.hold();
      reserve.hold(); // two sends under way
      assert.equal(reserve.take(16 * MB), null);
      reserve.settle();
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(reserve.stats.readyBytes, 0, "nothing prepared while held");
      reserve.release();
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(reserve.stats.readyBytes, 0, "still held by the second send");
      reserve.release();
      await until(() => reserve.stats.readyBytes === 16 * MB, 20_000, "16 MB prepared once released");
    } finally {
      reserve.close();
    }
  });
});
