/**
 * AsyncResult, part 1: promise interop, get/wait/ready/successful, errors, getDict, abort, inspect.
 * Modelled on ipyparallel's test_asyncresult.py; one real cluster of 2 engines for the whole file.
 * (Timing, progress and output: asyncresult-timing.test.ts; maps and hub results: asyncresult-map.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import {
  AsyncMapResult, AsyncResult, CompositeError, Reference, RemoteError, TaskAborted, TimeoutError, TsParallelError, type Client,
} from "tsparallel";
import { nap, sleep, startCluster, until, type Running } from "./helpers.js";

let running: Running;
let rc: Client;

before(async () => {
  running = await startCluster({ n: 2, profile: "ar-core" });
  rc = running.rc;
  await rc.directView().scatter("id", rc.ids, { flatten: true });
});
after(() => running?.cluster.stop());

/** Runs on an engine: always fails (a function shipped alone: it cannot call other local functions). */
function fail(message: string): never {
  throw new TypeError(message);
}

declare const id: number; // an engine variable (scattered in `before`)

describe("asyncresult - promise interop", () => {
  it("await, then, catch and finally behave like a Promise's", async () => {
    const ar = rc.directView(0).apply((x: number) => x * 2, 21);
    assert.equal(typeof ar.then, "function");
    assert.equal(await ar, 42);
    assert.equal(await ar.then((v) => v + 1), 43);
    let finallyRan = false;
    assert.equal(await ar.finally(() => (finallyRan = true)), 42);
    assert.ok(finallyRan);
    const failing = rc.directView(0).apply(fail, "boom");
    const caught = await failing.catch((e: unknown) => e);
    assert.ok(caught instanceof RemoteError);
    assert.equal(await failing.then(() => "fulfilled", () => "rejected"), "rejected");
    assert.ok(ar.promise instanceof Promise);
  });

  it("Promise.all, race and allSettled take AsyncResults", async () => {
    const dv = rc.directView();
    const a = dv.apply((x: number) => x + 1, 1);
    const b = rc.loadBalancedView().apply((x: string) => x.toUpperCase(), "b");
    assert.deepEqual(await Promise.all([a, b]), [[2, 2], "B"]);
    const slow = rc.directView(1).apply(nap, 1);
    const fast = rc.directView(0).apply(() => "fast");
    assert.equal(await Promise.race([slow, fast]), "fast");
    const settled = await Promise.allSettled([fast, rc.directView(0).apply(fail, "x")]);
    assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "rejected"]);
    assert.ok((settled[1] as PromiseRejectedResult).reason instanceof RemoteError);
    assert.equal(await slow, 1);
  });

  it("a failed result that nobody awaits never causes an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const ars = [
        rc.directView(0).apply(fail, "single"),
        rc.directView().apply(fail, "all"),
        rc.loadBalancedView().apply(fail, "lb"),
        rc.loadBalancedView().map(fail, ["a", "b", "c"]),
        rc.directView().execute("throw new Error('cell')"),
      ];
      await until(() => ars.every((ar) => ar.ready()), 30_000, "the failing tasks to finish");
      // a generous window, with garbage collection given its chance, for a stray rejection to surface
      for (let i = 0; i < 10; i++) {
        await sleep(100);
        await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(unhandled, []);
      assert.ok(ars.every((ar) => !ar.successful()));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("a get(timeout) that timed out leaves no unhandled rejection when the task fails later", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const failLater = async (x: number) => {
        await new Promise((r) => setTimeout(r, 300));
        throw new TypeError(`late ${x}`);
      };
      const ar = rc.directView(0).apply(failLater, 1);
      const amr = rc.loadBalancedView().map(failLater, [1, 2], { returnExceptions: true });
      await assert.rejects(ar.get(0.01), TimeoutError);
      await assert.rejects(ar.getDict(0.01), TimeoutError);
      await assert.rejects(amr.get(0.01, { returnExceptions: false }), TimeoutError);
      await assert.rejects(amr.getDict(0.01), TimeoutError);
      await until(() => ar.ready() && amr.ready(), 30_000, "the failing tasks to finish");
      for (let i = 0; i < 10; i++) {
        await sleep(100);
        await new Promise((r) => setImmediate(r));
      }
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("the remote function's return type flows into AsyncResult<T> (type-checked by tsconfig.examples.json)", async () => {
    const ar: AsyncResult<string[]> = rc.directView().apply((x: number) => String(x), 1);
    const single: AsyncResult<number> = rc.directView(0).apply((x: number) => x * 2, 1);
    const lb: AsyncResult<string> = rc.loadBalancedView().apply(async (x: number) => String(x), 3);
    const amr: AsyncMapResult<number> = rc.loadBalancedView().map((x: number) => x + 1, [1, 2]);
    // @ts-expect-error a list of strings is not a list of numbers
    const wrong: AsyncResult<number[]> = rc.directView().apply((x: number) => String(x), 1);
    const strings: string[] = await ar;
    const n: number = await single.get();
    const s: string = await lb;
    const ns: number[] = await amr;
    const perEngine: Record<number, string> = await ar.getDict();
    const parts: Record<number, number[]> = await rc.directView().map((x: number) => x, [1, 2]).getDict(); // a map: each engine's part
    assert.deepEqual([perEngine, parts], [{ 0: "1", 1: "1" }, { 0: [1], 1: [2] }]);
    for await (const v of amr) assert.equal(typeof (v satisfies number), "number");
    assert.deepEqual([strings, n, s, ns], [["1", "1"], 2, "3", [2, 3]]);
    await wrong;
    assert.ok(ar instanceof AsyncResult && amr instanceof AsyncMapResult && amr instanceof AsyncResult);
  });
});

describe("asyncresult - get, wait, ready, successful", () => {
  it("single result: directView(0) and load-balanced apply give a value; a list or 'all' give lists", async () => {
    assert.equal(await rc.directView(0).apply(() => 42), 42);
    assert.equal(await rc.loadBalancedView().apply(() => 42), 42);
    assert.deepEqual(await rc.directView([1]).apply(() => 42), [42]);
    assert.deepEqual(await rc.directView("all").apply(() => 42), [42, 42]);
    assert.deepEqual(await rc.directView().apply(() => 42), [42, 42]);
  });

  it("get() can be called repeatedly after done, and gives the same value", async () => {
    const ar = rc.directView().apply(() => ({ a: [1, 2] }));
    const first = await ar.get();
    assert.deepEqual(first, [{ a: [1, 2] }, { a: [1, 2] }]);
    assert.deepEqual(await ar.get(), first);
    assert.deepEqual(await ar.get(0), first, "get(0) after done resolves at once");
    assert.deepEqual(await ar, first);
  });

  it("get(timeout) before done rejects with TimeoutError; wait(timeout) resolves false and leaves it pending", async () => {
    const ar = rc.directView(0).apply(nap, 1.5);
    const err = await ar.get(0).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof TimeoutError, String(err));
    assert.ok(err instanceof TsParallelError);
    assert.equal(err.code, "TSP_ERR_TIMEOUT");
    assert.equal(await ar.wait(0), false);
    assert.equal(await ar.wait(0.1), false);
    assert.equal(ar.ready(), false);
    const tic = performance.now();
    await assert.rejects(ar.get(0.3), TimeoutError);
    const waited = (performance.now() - tic) / 1000;
    assert.ok(waited >= 0.25, `get(0.3) gave up after ${waited} s: timeouts are seconds`);
    assert.equal(await ar.get(60), 1.5);
    assert.equal(await ar.wait(0), true);
    assert.equal(await ar.wait(), true);
    assert.equal(ar.ready(), true);
  });

  it("successful() throws before ready, then says whether every task succeeded", async () => {
    const ar = rc.directView(0).apply(nap, 0.5);
    assert.throws(() => ar.successful(), /not ready/);
    await ar;
    assert.equal(ar.successful(), true);
    const bad = rc.directView().apply((x: number) => {
      if (id === 1) throw new Error("one");
      return x;
    }, 1);
    assert.equal(await bad.wait(), true, "wait() never rejects for task errors");
    assert.equal(bad.ready(), true);
    assert.equal(bad.successful(), false);
  });

  it("a single failed task rejects with its RemoteError: ename, evalue, traceback, engineInfo — repeatedly", async () => {
    const ar = rc.directView(0).apply(function explode(msg: string) {
      throw new TypeError(msg);
    }, "bad thing");
    for (const attempt of [() => ar.get(), () => ar, () => ar.get(10)]) {
      const err = await Promise.resolve(attempt()).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof RemoteError, String(err));
      assert.ok(!(err instanceof CompositeError), "a single result rejects with the task's own error");
      assert.equal(err.ename, "TypeError");
      assert.equal(err.evalue, "bad thing");
      assert.match(err.traceback, /TypeError: bad thing/);
      assert.match(err.traceback, /explode/);
      assert.deepEqual(err.engineInfo, { engineId: 0, engineUuid: ar.metadata[0]!.engineUuid, method: "apply" });
      assert.equal(typeof err.engineInfo.engineUuid, "string");
      assert.equal(err.message, "[0:apply] TypeError: bad thing");
      assert.equal(err.code, "TSP_ERR_REMOTE");
    }
    await assert.rejects(ar.getDict(), (e: unknown) => e instanceof RemoteError && e.evalue === "bad thing");
  });

  it("several tasks failing: CompositeError with elist, raiseException(i) and a message listing each", async () => {
    const ar = rc.directView().apply((msg: string) => {
      throw new TypeError(`${msg} on ${id}`);
    }, "bad");
    const err = await ar.get().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof CompositeError, String(err));
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, "TSP_ERR_COMPOSITE");
    assert.equal(err.elist.length, 2);
    const [e0, e1] = err.elist as RemoteError[];
    assert.deepEqual([e0!.engineInfo.engineId, e1!.engineInfo.engineId], [0, 1]);
    assert.deepEqual([e0!.evalue, e1!.evalue], ["bad on 0", "bad on 1"]);
    assert.deepEqual(err.elist.map((e) => (e as RemoteError).engineInfo.method), ["apply", "apply"]);
    assert.deepEqual(err.elist.map((e) => (e as RemoteError).engineInfo.engineUuid), ar.metadata.map((m) => m.engineUuid));
    assert.throws(() => err.raiseException(1), (e: unknown) => e === e1);
    assert.throws(() => err.raiseException(), (e: unknown) => e === e0);
    assert.throws(() => err.raiseException(7), RangeError);
    const lines = err.message.split("\n");
    assert.match(lines[0]!, /one or more exceptions raised in: /);
    assert.deepEqual(lines.slice(1), ["[0:apply]: TypeError: bad on 0", "[1:apply]: TypeError: bad on 1"]);
    await assert.rejects(ar, CompositeError, "repeatedly");
  });

  it("CompositeError lists at most 4 errors, then '... N more exceptions ...'", async () => {
    const amr = rc.loadBalancedView().map(fail, ["a", "b", "c", "d", "e", "f", "g"]);
    const err = await amr.then(() => null, (e: unknown) => e);
    assert.ok(err instanceof CompositeError, String(err));
    assert.equal(err.elist.length, 7);
    const lines = err.message.split("\n");
    assert.equal(lines.length, 1 + 4 + 1, err.message);
    assert.ok(lines.slice(1, 5).every((l) => /^\[[01]:apply\]: TypeError: [a-g]$/.test(l)), err.message);
    assert.equal(lines[5], "... 3 more exceptions ...");
    assert.match(err.renderTraceback(), /\.\.\. 3 more exceptions \.\.\./);
  });

  it("a multi-task result rejects with CompositeError even if only one task failed", async () => {
    const ar = rc.directView().apply(() => {
      if (id === 1) throw new TypeError("only one");
      return "ok";
    });
    const err = await ar.then(() => null, (e: unknown) => e);
    assert.ok(err instanceof CompositeError);
    assert.equal(err.elist.length, 1);
    assert.equal((err.elist[0] as RemoteError).engineInfo.engineId, 1);
    assert.equal((err.elist[0] as RemoteError).evalue, "only one");
  });

  it("execute errors carry engineInfo with method 'execute'", async () => {
    const ar = rc.directView().execute("throw new RangeError('cell failed')");
    const err = await ar.then(() => null, (e: unknown) => e);
    assert.ok(err instanceof CompositeError);
    assert.deepEqual(
      err.elist.map((e) => (e as RemoteError).engineInfo),
      ar.metadata.map((m) => ({ engineId: m.engineId, engineUuid: m.engineUuid, method: "execute" })),
    );
    assert.deepEqual(err.elist.map((e) => (e as RemoteError).ename), ["RangeError", "RangeError"]);
    assert.match(err.message, /\[0:execute\]: RangeError: cell failed/);
  });

  it("returnExceptions on get puts the errors in place of values, also after a failure was reported", async () => {
    const ar = rc.directView().apply(() => {
      if (id === 1) throw new TypeError("engine one");
      return id;
    });
    await assert.rejects(ar.get(), CompositeError);
    const values: unknown[] = await ar.get(null, { returnExceptions: true });
    assert.equal(values.length, 2);
    assert.equal(values[0], 0);
    assert.ok(values[1] instanceof RemoteError);
    assert.equal(values[1].evalue, "engine one");
    await assert.rejects(ar.get(), CompositeError, "returnExceptions on one get does not change the others");
    const single = rc.directView(0).apply(fail, "single");
    const value = await single.get(undefined, { returnExceptions: true });
    assert.ok((value as unknown) instanceof RemoteError);
  });

  it("returnExceptions on a map: [0, 1, RemoteError, 3] from get() and from iteration", async () => {
    const f = (x: number) => {
      if (x === 2) throw new TypeError("two");
      return x;
    };
    const amr = rc.loadBalancedView().map(f, [0, 1, 2, 3], { returnExceptions: true });
    const values: unknown[] = await amr.get();
    assert.deepEqual(values.filter((_, i) => i !== 2), [0, 1, 3]);
    assert.ok(values[2] instanceof RemoteError && values[2].evalue === "two");
    const iterated: unknown[] = [];
    for await (const v of amr) iterated.push(v);
    assert.equal(iterated.length, 4);
    assert.ok(iterated[2] instanceof RemoteError);
    const direct: unknown[] = await rc.directView().map(f, [0, 1, 2, 3], { returnExceptions: true });
    assert.equal(direct.length, 4, "a failed part keeps its place, one error per element");
    assert.deepEqual([direct[0], direct[1]], [0, 1]);
    assert.ok(direct[2] instanceof RemoteError && direct[3] instanceof RemoteError);
  });
});

describe("asyncresult - getDict", () => {
  it("keys the results by engine id", async () => {
    assert.deepEqual(await rc.directView().apply(() => id * 10).getDict(), { 0: 0, 1: 10 });
    assert.deepEqual(await rc.directView(1).apply(() => "one").getDict(), { 1: "one" });
    assert.deepEqual(await rc.directView([1, 0]).apply(() => id).getDict(), { 0: 0, 1: 1 });
    const pids = await rc.directView().apply(() => process.pid).getDict(30);
    assert.deepEqual(Object.keys(pids).map(Number).sort(), rc.ids);
  });

  it("rejects 'Cannot build dict, k jobs ran on engine #e' when an engine ran several of the tasks", async () => {
    const amr = rc.loadBalancedView().map((x: number) => x, [1, 2, 3, 4, 5]); // 5 tasks on 2 engines
    await amr;
    const err = await amr.getDict().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, /^Cannot build dict, [2-5] jobs ran on engine #[01]$/);
  });

  it("getDict(timeout) rejects with TimeoutError while pending", async () => {
    const ar = rc.directView().apply(nap, 1);
    await assert.rejects(ar.getDict(0.05), TimeoutError);
    assert.deepEqual(await ar.getDict(60), { 0: 1, 1: 1 });
  });
});

describe("asyncresult - abort", () => {
  it("abort() of a task queued behind another on the same engine fails it with TaskAborted", async () => {
    const dv = rc.directView(0);
    const busy = dv.apply(nap, 1);
    const queued = dv.apply(() => "should not run");
    await until(() => queued.sent, 10_000, "the request to leave the client");
    await queued.abort();
    const err = await queued.then(() => null, (e: unknown) => e);
    assert.ok(err instanceof TaskAborted, String(err));
    assert.equal(err.ename, "TaskAborted");
    assert.equal(err.code, "TSP_ERR_TASK_ABORTED");
    assert.equal(queued.metadata[0]!.status, "aborted");
    assert.equal(queued.successful(), false);
    assert.equal(await busy, 1, "the running task is not affected");
  });

  it("abort() of a load-balanced task still waiting for an engine", async () => {
    const lv = rc.loadBalancedView();
    const busy = [lv.apply(nap, 1), lv.apply(nap, 1)];
    const queued = lv.apply(() => "should not run");
    await until(() => queued.sent, 10_000, "the request to leave the client");
    await queued.abort();
    await assert.rejects(queued, TaskAborted);
    assert.deepEqual(await Promise.all(busy), [1, 1]);
  });

  it("aborting a finished result rejects", async () => {
    const ar = rc.directView(0).apply(() => 1);
    await ar;
    await assert.rejects(ar.abort(), /already done/);
  });
});

describe("asyncresult - inspect", () => {
  it("util.inspect shows <AsyncResult(fname): pending|finished|failed> with progress, not internals", async () => {
    const ar = rc.directView().apply(async function slowSquare(x: number) {
      await new Promise((r) => setTimeout(r, 500));
      return x * x;
    }, 3);
    assert.equal(inspect(ar), "<AsyncResult(slowSquare): pending 0/2>");
    assert.equal(String(ar), "<AsyncResult(slowSquare): pending 0/2>");
    assert.match(inspect({ ar }), /\{ ar: <AsyncResult\(slowSquare\): pending 0\/2> \}/);
    await ar;
    assert.equal(inspect(ar), "<AsyncResult(slowSquare): finished>");
    const bad = rc.directView(0).apply(fail, "x");
    await bad.wait();
    assert.equal(inspect(bad), "<AsyncResult(fail): failed>");
    const amr = rc.loadBalancedView().map(nap, [0.3, 0.3, 0.3], { chunksize: 2 });
    assert.equal(inspect(amr), "<AsyncMapResult(nap): pending 0/3>");
    await amr;
    assert.equal(inspect(amr), "<AsyncMapResult(nap): finished>");
    assert.doesNotMatch(inspect(ar, { showHidden: true, depth: 5 }), /ClientCore|TaskState|#core/);
    assert.deepEqual(Object.keys(ar), [], "no enumerable internals");
  });
});
