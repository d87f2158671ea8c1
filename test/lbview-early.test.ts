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
import { TaskClaims, TaskScheduler, type Job, type SchedulerHost } from "tsparallel/internal";
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

/** A scheduler job with no dependencies, as the hub makes for a load-balanced task. */
const job = (msgId: string): Job => ({
  msgId, raw: [], clientSession: "s", targets: null, after: null, follow: null, timeout: null, retries: 0,
  blacklist: new Set(), timer: null, lastFailure: null, engineDeath: null, earlyOn: null, abortWhenTaken: false, arriving: null,
});

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
      // each engine's limit is reported, within its bounds
      assert.deepEqual(Object.keys(early.limits), ["0", "1"]);
      for (const limit of Object.values(early.limits)) assert.ok(limit >= 1 && limit <= 32, JSON.stringify(early.limits));
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

  it("TaskClaims: a dropped connection forgets what was given back; the list fills up and says so", () => {
    const claims = new TaskClaims();
    assert.equal(claims.claim("running"), true);
    assert.equal(claims.takeBack("early"), "taken");
    // the connection drops before the main thread read "early": its message is gone with it
    claims.setConnected(false);
    assert.equal(claims.takeBack("next"), "gone", "nothing is given back while the engine has no controller");
    assert.equal(claims.takeBack("running"), "started", "a started task still says so");
    claims.setConnected(true);
    // the controller may send "early" here again later (a retry): it must run, not be dropped as given back
    assert.equal(claims.isTakenBack("early"), false);
    assert.equal(claims.claim("early"), true);
    // a long task can see many of its early tasks given back, up to the list's size
    let n = 0;
    while (claims.takeBack(`t${n}`) === "taken") n += 1;
    assert.equal(n, 256);
    assert.equal(claims.takeBack("one more"), "busy");
    assert.equal(claims.claim("t7"), false, "met by the main thread: dropped, and its entry freed");
    assert.equal(claims.takeBack("one more"), "taken");
  });

  it("TaskClaims: when the controller was last heard, as the heart saw it, read by the main thread", async () => {
    const claims = new TaskClaims();
    assert.equal(claims.silentFor(), 0, "never heard: not silent (the engine is not registered yet)");
    claims.heard(1_000_000);
    assert.equal(claims.silentFor(1_000_750), 750);
    // the heart runs on its own thread: what it writes is what the main thread reads
    const worker = new Worker(new URL("./fixtures/heard-worker.mjs", import.meta.url), { workerData: { buffer: claims.buffer, at: 2_000_000 } });
    await new Promise((resolve) => worker.once("exit", resolve));
    assert.equal(claims.silentFor(2_000_100), 100);
  });

  it("TaskScheduler: an aborted early task the heart cannot give back is aborted by its engine or ends with it", () => {
    const calls: string[] = [];
    const host: SchedulerHost = {
      assign: (job, engineId) => calls.push(`assign ${job.msgId} ${engineId}`),
      takeBack: (job, engineId) => (calls.push(`takeBack ${job.msgId} ${engineId}`), true),
      abortOn: (job, engineId) => calls.push(`abortOn ${job.msgId} ${engineId}`),
      renew: () => {},
      aborted: (job) => calls.push(`aborted ${job.msgId}`),
      fail: (job, ename) => calls.push(`fail ${job.msgId} ${ename}`),
      giveUp: () => {},
      outcome: () => undefined,
    };
    const setUp = () => {
      calls.length = 0;
      const sched = new TaskScheduler(host, { scheme: "leastload", hwm: 1 });
      for (const id of [0, 1]) {
        sched.addEngine(id);
        sched.setCanTakeBack(id, true);
      }
      for (const id of ["a", "b", "c"]) sched.submit(job(id));
      const early = calls.find((c) => c.startsWith("assign c "));
      assert.ok(early !== undefined, `the third job went early (${calls.join("; ")})`);
      const holder = Number(early.split(" ")[2]);
      assert.deepEqual(sched.abort(["c"]).takingBack, new Map([["c", holder]]));
      assert.ok(calls.includes(`takeBack c ${holder}`));
      return { sched, holder };
    };
    // the heart's list is full: the engine's main thread is asked to abort it before it runs
    let { sched, holder } = setUp();
    sched.tookBack(holder, "c", "busy");
    assert.ok(calls.includes(`abortOn c ${holder}`), calls.join("; "));
    assert.ok(!calls.includes("aborted c"));
    // the engine lost the controller: when the controller drops that engine, the job ends aborted (not placed again)
    ({ sched, holder } = setUp());
    sched.tookBack(holder, "c", "gone");
    assert.ok(!calls.some((c) => c.startsWith("abortOn")));
    const before = calls.length;
    sched.removeEngine(holder);
    const after = calls.slice(before);
    assert.ok(after.includes("aborted c"), after.join("; "));
    assert.ok(!after.some((c) => c.startsWith("assign c")), `not placed again (${after.join("; ")})`);
    // already started there: the abort comes too late, nothing more is done
    ({ sched, holder } = setUp());
    sched.tookBack(holder, "c", "started");
    assert.ok(!calls.some((c) => c.startsWith("abortOn") || c === "aborted c"), calls.join("; "));
    // the heart's connection closes before it answers: the engine itself is asked to abort it
    ({ sched, holder } = setUp());
    sched.setCanTakeBack(holder, false);
    assert.ok(calls.includes(`abortOn c ${holder}`), calls.join("; "));
  });

  it("TaskScheduler: how many tasks an engine holds early follows its pace: many for tiny tasks, one for long ones", async () => {
    const held = new Set<string>();
    const host: SchedulerHost = {
      assign: (job) => held.add(job.msgId),
      takeBack: () => true, abortOn: () => {}, renew: () => {}, aborted: () => {}, fail: () => {}, giveUp: () => {}, outcome: () => undefined,
    };
    const sched = new TaskScheduler(host, { scheme: "leastload", hwm: 1 });
    sched.addEngine(0);
    sched.setCanTakeBack(0, true);
    for (let i = 0; i < 500; i++) sched.submit(job(`t${i}`));
    // no pace yet: the one in flight and 4 early
    assert.equal(sched.earlyLimit(0), 4);
    assert.equal(held.size, 5);
    const finishOldest = () => {
      const id = held.values().next().value!;
      held.delete(id);
      assert.equal(sched.finished(id, 0, true, []), "done");
    };
    // replies back to back (microseconds apart): the engine may hold up to 32 early (a pause of the
    // test process, a garbage collection, would slow the pace for a few replies: it recovers)
    for (let i = 0; i < 300 && sched.earlyLimit(0) < 32; i++) finishOldest();
    assert.equal(sched.earlyLimit(0), 32);
    assert.equal(held.size, 33, "one in flight and 32 early");
    // each task now takes 25 ms: the pace rises by half each time, so two of them bring the limit to one
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      finishOldest();
    }
    assert.equal(sched.earlyLimit(0), 1);
    // the early tasks already there stay; no more are handed until they are down to the limit
    const before = held.size;
    finishOldest();
    assert.equal(held.size, before - 1, "nothing new handed while it holds more than its limit");
  });
});
