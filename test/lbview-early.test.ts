/**
 * Early handoff: with every engine at the high-water mark, a busy engine gets its next
 * load-balanced task ahead of time; an engine that frees up first takes it back through the
 * holder's heart. The spread of tasks stays that of one in flight per engine; engine death and
 * abort treat an early task as one that has not started.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { EngineError, TaskAborted, type Client, type QueueStatus } from "tsparallel";
import { TaskClaims } from "tsparallel/internal";
import { block, until, withCluster } from "./helpers.ts";

function statusUntil(rc: Client, ok: (s: QueueStatus) => boolean, what: string): Promise<number> {
  return until(async () => ok(await rc.queueStatus()), 15_000, what);
}

/** Early handoff needs the engines' hearts: wait until every engine's is connected. */
async function heartsUntil(rc: Client, n: number): Promise<void> {
  await until(async () => (await rc.controllerStats()).hearts === n, 15_000, `${n} hearts connected`);
}

async function earlyUntil(rc: Client, ok: (e: { handed: number; takenBack: number; tooLate: number }) => boolean, what: string): Promise<void> {
  await until(async () => ok((await rc.controllerStats()).early), 15_000, what);
}

/**
 * One engine on a long task, the other on a short one, a third task handed early to the busy one:
 * the engine that frees up first takes it back, so it does not wait behind the long task.
 */
async function takeBackWorks(rc: Client): Promise<void> {
  const lv = rc.loadBalancedView();
  // one task on each idle engine fixes the order: the long task and the early one go to the same engine
  await lv.map((x: number) => x, [1, 2]);
  const before = (await rc.controllerStats()).early;
  const long = lv.apply(block, 4);
  const short = lv.apply(block, 0.5);
  const next = lv.apply((x: number) => x * 2, 21);
  // queue status still shows one task per engine and the early one as unassigned
  await earlyUntil(rc, (e) => e.handed > before.handed, "the third task to be handed over early");
  await statusUntil(rc, (s) => s[0]!.tasks === 1 && s[1]!.tasks === 1 && s.unassigned === 1, "1 + 1 in flight, 1 unassigned");
  assert.equal(await next.get(30), 42);
  assert.equal(long.ready(), false, "the third task did not wait behind the long one");
  assert.equal(next.engineId, short.engineId, "it ran on the engine that freed up first");
  assert.notEqual(next.engineId, long.engineId);
  const early = (await rc.controllerStats()).early;
  assert.ok(early.takenBack > before.takenBack, `taken back from the busy engine (${JSON.stringify(early)})`);
  assert.equal(await long.get(30), 4);
}

describe("lbview - early handoff", () => {
  it("a busy engine gets its next task early; an engine that frees up first takes it back and runs it", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      await heartsUntil(rc, 2);
      const lv = rc.loadBalancedView();
      assert.deepEqual(await lv.map((x: number) => x + 1, [1, 2, 3, 4]), [2, 3, 4, 5]);
      await takeBackWorks(rc);
    });
  });

  it("tasks handed early run once each, in a long map of short tasks and of uneven ones", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      await heartsUntil(rc, 2);
      const lv = rc.loadBalancedView();
      const n = 3000;
      const xs = Array.from({ length: n }, (_, i) => i);
      assert.deepEqual(await lv.map((x: number) => x * 3, xs, { chunksize: 1 }), xs.map((x) => x * 3));
      // uneven: every 10th task sleeps, so engines free up at different times and take work back
      const uneven = lv.map((x: number) => {
        if (x % 10 === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30);
        return x;
      }, xs.slice(0, 300), { chunksize: 1 });
      assert.deepEqual(await uneven.get(60), xs.slice(0, 300));
      const early = (await rc.controllerStats()).early;
      assert.ok(early.handed > 0, `tasks went early (${JSON.stringify(early)})`);
      const status = await rc.queueStatus();
      assert.deepEqual([status[0]!.tasks, status[1]!.tasks, status.unassigned], [0, 0, 0]);
      // after many take-backs (some answered after their task had finished), one still works
      await takeBackWorks(rc);
    });
  });

  it("an early task whose engine dies runs elsewhere without spending a retry (it never started)", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      await heartsUntil(rc, 2);
      const lv = rc.loadBalancedView();
      await lv.map((x: number) => x, [1, 2]);
      const before = (await rc.controllerStats()).early;
      const dies = lv.apply(() => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
        process.exit(3);
      });
      const busy = lv.apply(block, 2.5);
      const next = lv.apply(() => 42);
      await earlyUntil(rc, (e) => e.handed > before.handed, "the third task to be handed over early");
      await assert.rejects(dies.get(30), (err: Error) => err instanceof EngineError);
      assert.equal(await next.get(30), 42, "retries 0, yet it ran: it had not started when its engine died");
      assert.equal(next.engineId, busy.engineId);
      assert.equal(await busy.get(30), 2.5);
    });
  });

  it("an early task can be aborted; it never runs", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      await heartsUntil(rc, 2);
      const lv = rc.loadBalancedView();
      await lv.map((x: number) => x, [1, 2]);
      const before = (await rc.controllerStats()).early;
      const a = lv.apply(block, 1.5);
      const b = lv.apply(block, 1.5);
      const c = lv.apply(() => {
        (globalThis as Record<string, unknown>).earlyRan = true;
        return 1;
      });
      await earlyUntil(rc, (e) => e.handed > before.handed, "the third task to be handed over early");
      await c.abort();
      await assert.rejects(c.get(30), (err: Error) => err instanceof TaskAborted);
      assert.deepEqual([await a.get(30), await b.get(30)], [1.5, 1.5]);
      const ran = await rc.directView().applySync(() => (globalThis as Record<string, unknown>).earlyRan === true);
      assert.deepEqual(ran, [false, false]);
    });
  });

  it("TaskClaims: the main thread's claim and the heart's take-back never both win, across threads", async () => {
    const claims = new TaskClaims();
    const perRound = 32;
    const ids = Array.from({ length: 200 * perRound }, () => randomUUID());
    const control = new SharedArrayBuffer(8);
    const ctl = new Int32Array(control);
    const worker = new Worker(new URL("./fixtures/claims-worker.mjs", import.meta.url), { workerData: { buffer: claims.buffer, control, ids, perRound } });
    const answers = new Promise<string[]>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    const claimed: boolean[] = [];
    const workerDone = (round: number) => {
      const deadline = Date.now() + 10_000;
      while (Atomics.load(ctl, 1) < round && Date.now() < deadline) Atomics.wait(ctl, 1, round - 1, 100);
      assert.ok(Atomics.load(ctl, 1) >= round, "the worker keeps up");
    };
    for (let round = 1; round * perRound <= ids.length; round++) {
      Atomics.store(ctl, 0, round);
      Atomics.notify(ctl, 0);
      // odd rounds: the heart goes first (every id is given back); even rounds: both race
      if (round % 2 === 1) workerDone(round);
      for (let i = (round - 1) * perRound; i < round * perRound; i++) claimed.push(claims.claim(ids[i]!));
      workerDone(round);
    }
    const taken = await answers;
    await worker.terminate();
    assert.equal(taken.length, ids.length);
    let mismatches = 0;
    for (let i = 0; i < ids.length; i++) if (claimed[i] === (taken[i] === "taken")) mismatches += 1;
    assert.equal(mismatches, 0, "each id: run by the main thread, or given back, never both or neither");
    const won = taken.filter((t) => t === "taken").length;
    assert.ok(won >= ids.length / 2, `the rounds where the heart went first were all given back (${won} of ${ids.length})`);
    // one thread alone: a claimed id cannot be taken back; a taken-back id is not run, once
    const solo = new TaskClaims();
    assert.equal(solo.claim("a"), true);
    assert.equal(solo.takeBack("a"), "started");
    assert.equal(solo.takeBack("b"), "taken");
    assert.equal(solo.isTakenBack("b"), true);
    assert.equal(solo.claim("b"), false);
    assert.equal(solo.isTakenBack("b"), false);
  });
});
