/**
 * AsyncResult, part 3: AsyncMapResult (iteration in input or completion order, chunks, typed
 * arrays, getDict), iterating plain AsyncResults, and AsyncHubResult (a second client's view of the
 * same tasks, from the controller's record). One cluster of 2 engines.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { AsyncHubResult, AsyncMapResult, AsyncResult, Client, CompositeError, ControllerError, RemoteError } from "tsparallel";
import { unpack } from "tsparallel/internal";
import { nap, sleep, startCluster, until, type Running } from "./helpers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
let running: Running;
let rc: Client;

before(async () => {
  running = await startCluster({ n: 2, profile: "ar-map" });
  rc = running.rc;
  await rc.directView().scatter("id", rc.ids, { flatten: true });
});
after(() => running?.cluster.stop());

declare const id: number; // an engine variable (scattered in `before`)

/** Wait until the controller's record has these tasks as completed (direct tasks are reported in batches). */
async function recorded(msgIds: string[]): Promise<void> {
  await until(async () => (await rc.dbQuery({ msgId: { $in: msgIds }, completed: { $ne: null } }, ["msgId"])).length === msgIds.length,
    10_000, "the controller's record");
}

/** Wait until the controller's record has these tasks (done or not). */
async function known(msgIds: string[]): Promise<void> {
  await until(async () => (await rc.dbQuery({ msgId: { $in: msgIds } }, ["msgId"])).length === msgIds.length, 10_000, "the controller's record");
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe("asyncresult - AsyncMapResult", () => {
  it("iterating yields elements, chunks flattened, in input order", async () => {
    const xs = Array.from({ length: 10 }, (_, i) => i);
    const amr = rc.loadBalancedView().map((x: number) => x * x, xs, { chunksize: 3 });
    assert.ok(amr instanceof AsyncMapResult && amr instanceof AsyncResult);
    assert.deepEqual(await collect(amr), xs.map((x) => x * x));
    const direct = rc.directView().map((x: number) => x + 1, xs);
    assert.deepEqual(await collect(direct), xs.map((x) => x + 1));
    assert.deepEqual(await collect(direct), xs.map((x) => x + 1), "iterating again gives the same");
  });

  it("iteration may start before any result exists; in input order even when later parts finish first", async () => {
    const amr = rc.loadBalancedView().map(nap, [0.8, 0.1, 0.1]);
    assert.equal(amr.progress, 0);
    const seen: Array<{ v: number; readyWhenSeen: boolean }> = [];
    for await (const v of amr) seen.push({ v, readyWhenSeen: amr.ready() });
    assert.deepEqual(seen.map((s) => s.v), [0.8, 0.1, 0.1]);
    assert.ok(seen[0]!.readyWhenSeen === false || seen.length === 3);
  });

  it("ordered: false yields in completion order; await gives input order either way", async () => {
    const input = [1.2, 0.6, 0.05, 0.05];
    const amr = rc.loadBalancedView().map(nap, input, { ordered: false });
    assert.equal(amr.ordered, false);
    const arrived = await collect(amr);
    assert.deepEqual([...arrived].sort(), [...input].sort());
    assert.equal(arrived.at(-1), 1.2, `the slowest comes last: ${arrived}`);
    assert.notDeepEqual(arrived, input);
    const whole = await amr;
    assert.ok(Array.isArray(whole) && Object.getPrototypeOf(whole) === Array.prototype, "a plain array");
    assert.deepEqual(whole, input);
    assert.deepEqual(await rc.loadBalancedView().map(nap, input, { ordered: true }), input);
  });

  it("results settling together are never dropped (unordered, also when all are done before iterating)", async () => {
    const xs = Array.from({ length: 60 }, (_, i) => i);
    const live = rc.loadBalancedView().map((x: number) => x, xs, { ordered: false });
    const got = await collect(live);
    assert.deepEqual([...got].sort((a, b) => a - b), xs);
    const done = rc.loadBalancedView().map((x: number) => x, xs, { ordered: false, chunksize: 7 });
    await done;
    assert.deepEqual((await collect(done)).sort((a, b) => a - b), xs);
    const twice = rc.loadBalancedView().map((x: number) => x, xs, { ordered: false });
    const [a, b] = await Promise.all([collect(twice), collect(twice)]);
    assert.equal(a.length, 60);
    assert.equal(b.length, 60, "two iterations at once each see every element");
  });

  it("break does not cancel the remaining tasks", async () => {
    const amr = rc.loadBalancedView().map(nap, [0.05, 0.5, 0.5, 0.5]);
    for await (const v of amr) {
      assert.equal(v, 0.05);
      break;
    }
    assert.deepEqual(await amr, [0.05, 0.5, 0.5, 0.5]);
    assert.ok(amr.successful());
    assert.ok(amr.metadata.every((m) => m.status === "ok"));
  });

  it("100 items in chunks of 4: length 100, msgIds 25, await gives the 100 in input order", async () => {
    const xs = Array.from({ length: 100 }, (_, i) => i);
    const amr = rc.loadBalancedView().map((x: number) => 2 * x, xs, { chunksize: 4 });
    assert.equal(amr.length, 100);
    assert.equal(amr.msgIds.length, 25);
    const whole = await amr;
    assert.deepEqual(whole, xs.map((x) => 2 * x));
    assert.equal(amr.progress, 100);
  });

  it("a direct map splits contiguous parts over the engines; fewer items than engines; empty input", async () => {
    const amr = rc.directView().map((x: number) => [id, x] as const, [1, 2, 3, 4, 5]);
    assert.equal(amr.length, 5);
    assert.equal(amr.msgIds.length, 2);
    assert.deepEqual(await amr, [[0, 1], [0, 2], [0, 3], [1, 4], [1, 5]]);
    const one = rc.directView().map((x: number) => x, [7]);
    assert.deepEqual([one.length, one.msgIds.length, await one], [1, 1, [7]]);
    const none = rc.loadBalancedView().map((x: number) => x, []);
    assert.deepEqual([none.length, none.msgIds.length, none.ready(), await none], [0, 0, true, []]);
  });

  it("typed-array inputs travel as typed-array chunks (not element by element), values intact", async () => {
    const xs = Float64Array.from({ length: 10 }, (_, i) => i + 0.5);
    const amr = rc.directView().map((x: number) => x * 2, xs);
    assert.deepEqual(await amr, Array.from(xs, (x) => x * 2), "the second part starts at its offset");
    // the controller's record of a direct task may lag its reply by a report interval
    let records: Array<Record<string, unknown>> = [];
    await until(async () => {
      records = await rc.dbQuery({ msgId: { $in: amr.msgIds }, completed: { $ne: null } }, ["msgId", "buffers"]);
      return records.length === 2;
    }, 10_000, "the controller's record of both parts");
    for (const r of records) {
      const [chunk] = unpack(r.buffers as Buffer[]) as [unknown];
      assert.ok(chunk instanceof Float64Array, `a part travelled as ${Object.prototype.toString.call(chunk)}`);
      assert.equal(chunk.length, 5);
    }
    const lb = rc.loadBalancedView().map((x: number) => x + 1, Int32Array.from([1, 2, 3, 4, 5]), { chunksize: 2 });
    assert.deepEqual(await lb, [2, 3, 4, 5, 6]);
    assert.deepEqual([lb.length, lb.msgIds.length], [5, 3]);
  });

  it("map errors: CompositeError from await and get, and iteration throws at the failed element — every time", async () => {
    const f = (x: number) => {
      if (x === 2) throw new RangeError(`no ${x}`);
      return x;
    };
    const amr = rc.loadBalancedView().map(f, [0, 1, 2, 3]);
    await assert.rejects(amr, CompositeError);
    const before: number[] = [];
    const iterate = async () => {
      for await (const v of amr) before.push(v);
    };
    await assert.rejects(iterate(), (e: unknown) => e instanceof RemoteError && e.evalue === "no 2");
    assert.deepEqual(before, [0, 1], "the elements before the failure were yielded");
    await assert.rejects(amr.get(), CompositeError);
    await assert.rejects(iterate(), RemoteError, "iterating again throws again");
  });

  it("getDict of a direct map: each engine's part; of a load-balanced map with more tasks than engines: rejects", async () => {
    assert.deepEqual(await rc.directView().map((x: number) => x * 10, [1, 2, 3, 4]).getDict(), { 0: [10, 20], 1: [30, 40] });
    await assert.rejects(rc.loadBalancedView().map((x: number) => x, [1, 2, 3, 4]).getDict(), /^Error: |Cannot build dict, [234] jobs ran on engine #[01]/);
  });
});

describe("asyncresult - iterating an AsyncResult", () => {
  it("yields one result per task, in task order, as they arrive", async () => {
    await rc.directView().scatter("delay", [0.6, 0.05], { flatten: true });
    const ar = rc.directView().apply(() => new Promise((r) => setTimeout(() => r(id), (globalThis as unknown as { delay: number }).delay * 1000)));
    const tic = performance.now();
    const seen: Array<[unknown, number]> = [];
    for await (const v of ar) seen.push([v, (performance.now() - tic) / 1000]);
    assert.deepEqual(seen.map(([v]) => v), [0, 1]);
    assert.ok(seen[0]![1] >= 0.5, "task order: engine 0's slower result first");
    assert.deepEqual(await collect(rc.directView(1).apply(() => "single")), ["single"]);
  });

  it("throws at a failed task, and again when iterated again", async () => {
    const ar = rc.directView().apply(() => {
      if (id === 1) throw new TypeError("one");
      return id;
    });
    const seen: unknown[] = [];
    const iterate = async () => {
      for await (const v of ar) seen.push(v);
    };
    await assert.rejects(iterate(), (e: unknown) => e instanceof RemoteError && e.evalue === "one");
    await assert.rejects(ar.get(), CompositeError);
    await assert.rejects(iterate(), RemoteError);
    assert.deepEqual(seen, [0, 0]);
  });
});

describe("asyncresult - AsyncHubResult", () => {
  let other: Client;
  before(async () => {
    other = await Client.connect({ connectionFile: running.cluster.connectionFile, timeout: 30 });
  });
  after(() => other?.close());

  it("a second client's getResult gives the value, metadata timestamps and the same serialTime", async () => {
    const ar = rc.directView().apply(nap, 0.3);
    await ar;
    await recorded(ar.msgIds);
    const hr = other.getResult(ar.msgIds);
    assert.ok(hr instanceof AsyncHubResult && hr instanceof AsyncResult);
    assert.deepEqual(await hr.get(30), [0.3, 0.3]); // get(timeout): see "a pending AsyncHubResult keeps Node alive"
    assert.deepEqual(hr.msgIds, ar.msgIds);
    assert.ok(hr.elapsed > 0);
    assert.ok(Math.abs(hr.serialTime - ar.serialTime) < 1e-6, `serialTime ${hr.serialTime} vs ${ar.serialTime}`);
    hr.metadata.forEach((m, i) => {
      const mine = ar.metadata[i]!;
      assert.equal(m.msgId, mine.msgId);
      for (const k of ["submitted", "started", "completed"] as const) assert.equal(m[k]?.getTime(), mine[k]?.getTime(), `${k} of task ${i}`);
      assert.ok(m.received instanceof Date);
      assert.deepEqual([m.engineId, m.engineUuid, m.status], [mine.engineId, mine.engineUuid, "ok"]);
    });
    assert.deepEqual(hr.engineId, [0, 1]);
    assert.ok(hr.wallTime >= 0.29, `wallTime ${hr.wallTime}`);
  });

  it("right after a quick task finished on the first client, the second client's getResult finds it", async () => {
    for (const ar of [rc.directView(0).apply(() => "quick"), rc.loadBalancedView().apply(() => "quick")]) {
      await ar;
      const hr = other.getResult(ar.msgIds[0]!);
      assert.equal(await hr.get(30), "quick");
      assert.equal(hr.metadata[0]!.status, "ok");
    }
  });

  it("one msg id gives a single value; the interface is AsyncResult's", async () => {
    const ar = rc.loadBalancedView().apply(() => {
      console.log("hello hub");
      return { answer: 42 };
    });
    await ar;
    await recorded(ar.msgIds);
    const hr = other.getResult(ar.msgIds[0]!);
    assert.deepEqual(await hr.get(30), { answer: 42 });
    assert.equal(await hr.wait(0), true);
    assert.equal(hr.ready(), true);
    assert.equal(hr.successful(), true);
    assert.equal(hr.length, 1);
    assert.equal(hr.progress, 1);
    assert.equal(hr.engineId, ar.engineId);
    assert.equal(hr.stdout, "hello hub\n");
    assert.deepEqual(await hr.getDict(), { [ar.engineId as number]: { answer: 42 } });
    assert.match(String(hr), /^<AsyncHubResult\(.*\): finished>$/);
  });

  /** A task on engine 1 that prints, then works for 1 s; asked for by the other client while it runs. */
  async function runningTask(): Promise<{ ar: AsyncResult<string>; hr: AsyncHubResult<unknown> }> {
    const ar = rc.directView(1).apply(async () => {
      console.log("still running");
      await new Promise((r) => setTimeout(r, 1000));
      return "late";
    });
    await known(ar.msgIds);
    await sleep(300);
    return { ar, hr: other.getResult(ar.msgIds) };
  }

  it("also for a task still running when asked: pending, then its value and engine timestamps", async () => {
    const { ar, hr } = await runningTask();
    assert.equal(hr.ready(), false);
    assert.equal(await hr.wait(0.05), false);
    await assert.rejects(hr.get(0.05), (e: unknown) => e instanceof Error && e.name === "TimeoutError");
    assert.deepEqual(await hr.get(30), ["late"]);
    await ar;
    const [m, mine] = [hr.metadata[0]!, ar.metadata[0]!];
    assert.deepEqual([m.status, m.engineId, m.engineUuid], ["ok", 1, mine.engineUuid]);
    for (const k of ["started", "completed"] as const) assert.equal(m[k]?.getTime(), mine[k]?.getTime(), k);
    assert.ok(Math.abs(hr.serialTime - ar.serialTime) < 1e-6);
  });

  it("a task still running when asked keeps its original submitted stamp (wallTime and elapsed count from submission)", async () => {
    const { ar, hr } = await runningTask();
    // returned at once; the record (with the original submission time) arrives right after
    await until(() => hr.metadata[0]!.submitted?.getTime() === ar.metadata[0]!.submitted?.getTime(), 10_000, "the hub record");
    const pendingElapsed = hr.elapsed;
    await hr.get(30); // get(timeout), not await: see "a pending AsyncHubResult keeps Node alive"
    await ar;
    assert.ok(pendingElapsed >= 0.25, `elapsed while pending counts from the submission: ${pendingElapsed}`);
    assert.equal(hr.metadata[0]!.submitted?.getTime(), ar.metadata[0]!.submitted?.getTime(), "submitted");
    assert.ok(hr.wallTime >= 0.95, `wallTime from the original submission: ${hr.wallTime}`);
  });

  it("a task still running when asked: its output reaches the hub result too", async () => {
    const { ar, hr } = await runningTask();
    await hr.get(30);
    await ar;
    assert.equal(ar.stdout, "still running\n");
    assert.deepEqual(hr.stdout, ["still running\n"]);
  });

  it("a pending AsyncHubResult keeps Node alive until it settles (a script that only awaits it)", async () => {
    const ar = rc.directView(0).apply(nap, 1.5);
    await known(ar.msgIds);
    const script = [
      'import { Client } from "tsparallel";',
      "const c = await Client.connect({ connectionFile: process.env.TSP_CF });",
      "const value = await c.getResult(process.env.TSP_ID);",
      "console.log(`resolved ${value}`);",
      "await c.close();",
    ].join("\n");
    const child = await run(process.execPath, ["--input-type=module", "-e", script], {
      cwd: ROOT, env: { ...process.env, TSP_CF: running.cluster.connectionFile, TSP_ID: ar.msgIds[0]! }, timeout: 60_000,
    }).then((r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }), (e: { code: number; stdout: string; stderr: string }) => e);
    await ar;
    assert.equal(child.stdout.trim(), "resolved 1.5", `exit code ${child.code}; stderr: ${child.stderr.slice(0, 500)}`);
  });

  it("closing the client fails its pending AsyncHubResults (no promise stays pending forever)", async () => {
    const third = await Client.connect({ connectionFile: running.cluster.connectionFile, timeout: 30 });
    const ar = rc.directView(0).apply(nap, 1);
    await known(ar.msgIds);
    const hr = third.getResult(ar.msgIds);
    await sleep(100);
    await third.close();
    const err = await hr.get(3).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ControllerError, `rejects with ControllerError at close, got ${String(err)}`);
    await ar;
  });

  it("a failed task's hub result rejects with its RemoteError", async () => {
    const ar = rc.directView(0).apply(() => {
      throw new TypeError("hub sees this");
    });
    await ar.wait();
    await recorded(ar.msgIds);
    const err = await other.getResult(ar.msgIds[0]!).get(30).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RemoteError && !(err instanceof CompositeError), String(err));
    assert.equal(err.evalue, "hub sees this");
    assert.deepEqual(err.engineInfo, { engineId: 0, engineUuid: ar.metadata[0]!.engineUuid, method: "apply" });
    await assert.rejects(other.getResult(ar.msgIds).get(30), CompositeError);
  });

  it("an unknown msg id rejects, naming it", async () => {
    const hr = other.getResult("00000000-0000-0000-0000-000000000000");
    await assert.rejects(hr.get(30), /00000000-0000-0000-0000-000000000000/);
  });

  it("the controller's record of a direct and a load-balanced task: request and reply headers and metadata, outcome, times", async () => {
    const direct = rc.directView(0).apply((x: number) => x + 1, 1);
    const balanced = rc.loadBalancedView().apply(() => {
      throw new Error("recorded failure");
    });
    assert.equal(await direct.get(30), 2);
    await balanced.wait(30);
    const ids = [direct.msgIds[0]!, balanced.msgIds[0]!];
    await recorded(ids);
    const keys = ["msgId", "header", "metadata", "status", "started", "completed", "resultHeader", "resultMetadata"];
    const rows = await rc.dbQuery({ msgId: { $in: ids } }, keys);
    const byId = new Map(rows.map((r) => [r.msgId, r]));
    for (const [ar, status, route] of [[direct, "ok", "direct"], [balanced, "error", "task"]] as const) {
      const r = byId.get(ar.msgIds[0]!)!;
      // the request's header and metadata, read back from the bytes the record keeps
      assert.deepEqual([(r.header as Record<string, unknown>).msg_id, (r.header as Record<string, unknown>).msg_type], [ar.msgIds[0], "apply_request"]);
      assert.equal((r.metadata as Record<string, unknown>).route, route);
      const md = ar.metadata[0]!;
      assert.equal(r.status, status);
      assert.ok(r.started instanceof Date && r.completed instanceof Date, JSON.stringify(r));
      assert.equal(r.completed.getTime(), md.completed!.getTime(), "completed is the reply's date");
      assert.equal(r.started.getTime(), md.started!.getTime());
      const header = r.resultHeader as Record<string, unknown>;
      const metadata = r.resultMetadata as Record<string, unknown>;
      assert.equal(header.msg_type, "apply_reply");
      assert.deepEqual([metadata.status, metadata.engine_id], [status, md.engineId]);
    }
  });

  it("a finished task's value and error stay available to new AsyncResults of the same client (the settled promise is let go)", async () => {
    const ok = rc.loadBalancedView().apply((x: number) => x * 2, 21);
    const bad = rc.loadBalancedView().apply(() => {
      throw new RangeError("kept error");
    });
    assert.equal(await ok.get(30), 42);
    await assert.rejects(bad.get(30), RemoteError);
    // new results over the same kept tasks, and the first ones awaited again
    assert.equal(await rc.getResult(ok.msgIds[0]!).get(30), 42);
    const err = await rc.getResult(bad.msgIds[0]!).get(30).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RemoteError && err.ename === "RangeError", String(err));
    assert.equal(await ok.get(30), 42);
    await assert.rejects(async () => {
      await bad;
    }, RemoteError);
  });
});

describe("asyncresult - what a client keeps per task", () => {
  // API.md: results and metadata stay until purgeResults, so their size is what a long session
  // costs, and what every full GC walks (docs/performance.md). 814 bytes before times were kept as
  // small integers and small result arrays at their exact size; ~670 after that; ~620 since a settled
  // task lets go of its promise; ~470 since a task that succeeded is kept as its metadata and
  // result only (its state is made again when asked for: the next test).
  it("a finished no-op task costs under 540 bytes of client heap until purged, and about its msg id after", async () => {
    const script = fileURLToPath(new URL("./fixtures/retained.mjs", import.meta.url));
    const { stdout } = await run(process.execPath, ["--expose-gc", script, "20000"], { timeout: 120_000 });
    const r = JSON.parse(stdout.trim().split("\n").pop()!) as { tasks: number; perTask: number; perTaskAfterPurge: number };
    assert.equal(r.tasks, 20000);
    assert.ok(r.perTask < 540, `kept ${r.perTask.toFixed(0)} bytes per task`);
    assert.ok(r.perTaskAfterPurge < 200, `kept ${r.perTaskAfterPurge.toFixed(0)} bytes per task after purgeResults("all") (rc.history stays)`);
  });

  it("a task that succeeded is still this client's by id: getResult, wait, its output, and purgeResults", async () => {
    const dv = rc.directView(0);
    const ar = dv.apply((x: number) => {
      console.log("said", x);
      return x * 2;
    }, 21);
    assert.equal(await ar.get(30), 42);
    const msgId = ar.msgIds[0]!;
    await until(() => rc.metadata.get(msgId)!.stdout.includes("said 21"), 10_000, "the task's output");
    const again = rc.getResult(msgId);
    assert.ok(again.ready(), "known locally: settled at once, no trip to the controller");
    assert.equal(await again.get(5), 42);
    assert.equal(again.metadata[0], rc.metadata.get(msgId), "the same metadata object");
    assert.equal(again.stdout, "said 21\n");
    assert.equal(await rc.wait([msgId], 5), true);
    const failed = dv.apply(() => {
      throw new RangeError("no");
    });
    await assert.rejects(failed.get(30), RemoteError);
    await assert.rejects(rc.getResult(failed.msgIds[0]!).get(5), (e: unknown) => e instanceof RemoteError && e.ename === "RangeError");
    await rc.purgeResults("all");
    assert.equal(rc.metadata.has(msgId), false);
    assert.equal(rc.results.has(msgId), false);
    assert.equal(rc.metadata.has(failed.msgIds[0]!), false);
  });
});
