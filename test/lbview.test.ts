/**
 * LoadBalancedView (ipyparallel's test_lbview): apply, map with builtin-map semantics and chunks,
 * ordered and unordered results, imap, flags, abort and retries.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AsyncMapResult, CompositeError, RemoteError, TaskAborted, type Client, type LoadBalancedView } from "tsparallel";
import { unpack } from "tsparallel/internal";
import { markedBlock, slow, sleep, startCluster, TEST_DIR, until, type Running } from "./helpers.ts";

declare const myid: number;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("lbview", () => {
  let r: Running;
  let rc: Client;
  let lv: LoadBalancedView;

  before(async () => {
    r = await startCluster({ n: 3 });
    rc = r.rc;
    lv = rc.loadBalancedView();
    await rc.directView().scatter("myid", rc.ids, { flatten: true });
    await rc.directView().push({ slow }); // so shipped functions can call it by name
  });
  after(() => r.cluster.stop());

  describe("apply", () => {
    it("runs one task on one engine: a single result with its engine id", async () => {
      const ar = lv.apply((x: number) => [x, myid], 5);
      const [x, where] = (await ar) as [number, number];
      assert.equal(x, 5);
      assert.equal(ar.engineId, where);
      assert.equal(ar.length, 1);
      assert.equal(await lv.applySync((a: number, b: number) => a + b, 1, 2), 3);
      assert.equal(await lv.applyAsync(() => "a"), "a");
    });

    it("a failing task rejects with its RemoteError", async () => {
      await assert.rejects(lv.apply(() => { throw new TypeError("bad"); }), (err: RemoteError) => err instanceof RemoteError && err.ename === "TypeError");
    });

    it("restricted to target engines", async () => {
      const only = rc.loadBalancedView([1]);
      const ars = range(4).map(() => only.apply(() => myid));
      assert.deepEqual(await Promise.all(ars), [1, 1, 1, 1]);
      assert.deepEqual(only.targets, [1]);
    });
  });

  describe("map", () => {
    it("is ceil(n / chunksize) tasks; length counts elements", async () => {
      const amr = lv.map((x: number) => x * 2, range(10), { chunksize: 3 });
      assert.ok(amr instanceof AsyncMapResult);
      assert.equal(amr.msgIds.length, 4);
      assert.equal(amr.length, 10);
      assert.deepEqual(await amr, range(10).map((x) => x * 2));
      assert.equal(lv.map((x: number) => x, range(7)).msgIds.length, 7, "chunksize 1 by default");
      await lv.wait();
    });

    it("builtin-map semantics: zip of several sequences, the shortest first or last", async () => {
      assert.deepEqual(await lv.map((a: number, b: number) => a + b, range(3), range(5)), [0, 2, 4]);
      assert.deepEqual(await lv.map((a: number, b: number) => a * b, range(5), range(3)), [0, 1, 4]);
      const amr = lv.map((a: number, b: number) => a - b, range(5), range(2), { chunksize: 4 });
      assert.equal(amr.length, 2);
      assert.deepEqual(await amr, [0, 0]);
    });

    it("an empty sequence gives [] without sending anything", async () => {
      const before = rc.history.length;
      assert.deepEqual(await lv.map((x: number) => x, []), []);
      assert.equal(rc.history.length, before);
    });

    it("takes generators and other iterables", async () => {
      function* gen() {
        for (let i = 0; i < 101; i++) yield i;
      }
      assert.deepEqual(await lv.map((x: number) => x + 1, gen(), { chunksize: 10 }), range(101).map((x) => x + 1));
      assert.deepEqual(await lv.map((s: string) => s.length, new Set(["a", "bb"])), [1, 2]);
    });

    it("chunks of typed arrays travel as typed arrays", async () => {
      const amr = lv.map((x: number) => x + 1, new Int16Array([1, 2, 3, 4, 5]), { chunksize: 2 });
      assert.deepEqual(await amr, [2, 3, 4, 5, 6]);
      const records = await rc.dbQuery({ msgId: { $in: amr.msgIds } }, ["msgId", "buffers"]);
      const byId = new Map(records.map((rec) => [rec.msgId, (unpack(rec.buffers as Uint8Array[]) as unknown[])[0]]));
      assert.deepEqual(amr.msgIds.map((id) => byId.get(id)), [new Int16Array([1, 2]), new Int16Array([3, 4]), new Int16Array([5])]);
    });

    it("ordered (default) iterates in input order; ordered: false in completion order", async () => {
      const delays = [1.5, 0, 0, 0]; // the first element is the slow one
      const ordered: number[] = [];
      for await (const v of lv.map(slow, range(4), delays)) ordered.push(v);
      assert.deepEqual(ordered, [0, 1, 2, 3]);

      const amr = lv.map(slow, range(4), delays, { ordered: false });
      assert.equal(amr.ordered, false);
      const seen: number[] = [];
      for await (const v of amr) seen.push(v);
      assert.deepEqual([...seen].sort(), [0, 1, 2, 3], "every result, once");
      assert.notEqual(seen[0], 0, "the slow element does not come first");
      assert.deepEqual(await amr, [0, 1, 2, 3], "await gives input order either way");
    });

    it("a failed chunk fails the map with a CompositeError; returnExceptions keeps going", async () => {
      const f = (x: number) => {
        if (x === 2) throw new RangeError("two");
        return x;
      };
      await assert.rejects(lv.map(f, range(4)), CompositeError);
      const out: unknown[] = await lv.map(f, range(4), { returnExceptions: true });
      assert.deepEqual([out[0], out[1], out[3]], [0, 1, 3]);
      assert.ok(out[2] instanceof RemoteError && out[2].ename === "RangeError");
    });

    it("per-call options are validated by name", () => {
      assert.throws(() => lv.map((x: number) => x, [1], { chunksise: 2 } as never), /Invalid option in map\(\): "chunksise"/);
      assert.throws(() => lv.map((x: number) => x, [1], { chunksize: 0 }), /"chunksize" must be an integer > 0/);
      assert.throws(() => lv.map((x: number) => x, [1], { ordered: "yes" } as never), /"ordered" must be a boolean/);
    });
  });

  describe("imap", () => {
    it("keeps at most maxOutstanding tasks running, and holds at most 4× that many", async () => {
      const view = rc.loadBalancedView();
      let received = 0;
      let firstSubmitted = -1;
      for await (const v of view.imap((x: number) => slow(x, 0.02), range(20), { maxOutstanding: 4 })) {
        received += 1;
        if (firstSubmitted < 0) firstSubmitted = view.history.length;
        const running = view.history.filter((id) => rc.outstanding.has(id)).length;
        assert.ok(running <= 4, `${running} tasks running while holding a result`);
        assert.ok(view.history.length - received <= 15, `${view.history.length - received} submitted and not yet yielded`);
        assert.equal(v, received - 1, "ordered by default");
      }
      assert.ok(firstSubmitted >= 4, "it filled up to maxOutstanding before the first result");
      assert.equal(received, 20);
      assert.equal(view.history.length, 20);
    });

    it("ordered: a slow first task does not leave the other engines idle (ipyparallel #743)", async () => {
      const view = rc.loadBalancedView(); // 3 engines: maxOutstanding 3
      const out: number[] = [];
      let submittedAtFirst = 0;
      for await (const v of view.imap((x: number) => slow(x, x === 0 ? 1 : 0.05), range(10))) {
        if (out.length === 0) submittedAtFirst = view.history.length;
        out.push(v);
      }
      assert.deepEqual(out, range(10), "still in input order");
      assert.equal(submittedAtFirst, 10, "the nine quick tasks ran on the other engines while the first one ran");
    });

    it("consumes the input lazily: works on an infinite generator and stops submitting when the consumer breaks", async () => {
      const view = rc.loadBalancedView();
      let pulled = 0;
      let closed = false;
      function* naturals() {
        try {
          for (let i = 0; ; i++) {
            pulled += 1;
            yield i;
          }
        } finally {
          closed = true;
        }
      }
      const out: number[] = [];
      for await (const v of view.imap((x: number) => x * x, naturals(), { maxOutstanding: 3 })) {
        out.push(v);
        if (out.length === 10) break;
      }
      assert.deepEqual(out, range(10).map((x) => x * x));
      // 10 yielded + at most 3 × 4 held (running or finished, not yet yielded) + the one being read
      assert.ok(pulled <= 10 + 12 + 1, `pulled ${pulled} items for 10 results with 3 in flight`);
      assert.ok(closed, "the generator was closed");
      const submitted = view.history.length;
      await sleep(300);
      assert.equal(view.history.length, submitted, "nothing more was submitted after break");
      await view.wait();
    });

    it("ordered: false yields in completion order; default maxOutstanding is the number of engines", async () => {
      const view = rc.loadBalancedView();
      const seen: number[] = [];
      for await (const v of view.imap((x: number) => slow(x, x === 0 ? 1 : 0), range(6), { ordered: false })) {
        const running = view.history.filter((id) => rc.outstanding.has(id)).length;
        assert.ok(running <= 3, `three engines, at most three running (${running})`);
        if (seen.length === 0) assert.ok(view.history.length >= 3, "three submitted before the first result");
        seen.push(v);
      }
      assert.notEqual(seen[0], 0);
      assert.deepEqual([...seen].sort(), range(6));
    });

    it("an error stops iteration, unless returnExceptions; chunksize groups inputs", async () => {
      const f = (x: number) => {
        if (x === 1) throw new Error("one");
        return x;
      };
      await assert.rejects(async () => {
        for await (const _ of lv.imap(f, range(3))) {
          // consume
        }
      }, (err: RemoteError) => err instanceof RemoteError && err.evalue === "one");
      const out: unknown[] = [];
      for await (const v of lv.imap(f, range(3), { returnExceptions: true })) out.push(v);
      assert.equal(out[0], 0);
      assert.ok(out[1] instanceof RemoteError);
      assert.equal(out[2], 2);
      const view = rc.loadBalancedView();
      const chunked: number[] = [];
      for await (const v of view.imap((x: number) => x, range(10), { chunksize: 4 })) chunked.push(v);
      assert.deepEqual(chunked, range(10));
      assert.equal(view.history.length, 3);
      assert.throws(() => lv.imap((x: number) => x, [1], { maxOutstnding: 2 } as never), /Invalid option in imap\(\): "maxOutstnding"/);
    });
  });

  describe("flags", () => {
    it("setFlags changes the view, withFlags makes a copy; unknown or ill-typed flags are refused by name", () => {
      const view = rc.loadBalancedView();
      const copy = view.withFlags({ retries: 2, timeout: 5 });
      assert.deepEqual({ retries: copy.flags.retries, timeout: copy.flags.timeout }, { retries: 2, timeout: 5 });
      assert.equal(view.flags.retries, undefined, "the original is unchanged");
      assert.equal(view.setFlags({ chunksize: 4 }), view, "setFlags returns the view");
      assert.equal(view.flags.chunksize, 4);
      assert.throws(() => view.setFlags({ retires: 1 } as never), /Invalid option in setFlags\(\): "retires"/);
      assert.throws(() => view.withFlags({ block: true } as never), /Invalid option in withFlags\(\): "block"/);
      assert.throws(() => view.setFlags({ timeout: -1 }), /"timeout" must be a number of seconds >= 0/);
      assert.throws(() => view.setFlags({ retries: 1.5 }), /"retries" must be an integer >= 0/);
      assert.throws(() => view.setFlags({ after: 5 as never }), /"after" must be AsyncResults or msg ids/);
      assert.throws(() => rc.loadBalancedView(null, { folow: [] } as never), /"folow"/);
    });

    it("chunksize set on the view applies to its maps", async () => {
      const view = rc.loadBalancedView().setFlags({ chunksize: 5 });
      const amr = view.map((x: number) => x, range(10));
      assert.equal(amr.msgIds.length, 2);
      assert.deepEqual(await amr, range(10));
    });
  });

  describe("abort and retries", () => {
    it("abort of tasks queued behind busy engines: they fail with TaskAborted, the rest run", async () => {
      const markers = range(3).map((i) => join(TEST_DIR, `lb-busy-${process.pid}-${i}`));
      const busy = markers.map((m) => lv.apply(markedBlock, m, 1.5));
      await until(() => markers.every((m) => existsSync(m)), 15_000, "all engines busy");
      const queued = [lv.apply(() => "a"), lv.apply(() => "b"), lv.apply(() => "c")];
      const status = await rc.queueStatus();
      assert.equal(status.unassigned, 3, "the scheduler holds them");
      await queued[0]!.abort();
      await lv.abort([queued[1]!]);
      await assert.rejects(queued[0]!.get(), TaskAborted);
      await assert.rejects(queued[1]!.get(), TaskAborted);
      assert.equal(await queued[2], "c");
      await Promise.all(busy);
    });

    it("retries re-run a failed task on a different engine each time, never the same one", async () => {
      await rc.directView().execute("var tries = 0");
      const failing = lv.withFlags({ retries: 2 }).apply(() => {
        (globalThis as unknown as { tries: number }).tries += 1;
        throw new Error(`failed on ${myid}`);
      });
      await assert.rejects(failing.get(), (err: RemoteError) => err instanceof RemoteError && /failed on/.test(err.evalue));
      assert.deepEqual(await rc.directView().pull("tries"), [1, 1, 1], "once on each of the three engines");
    });

    it("a retry that lands on a good engine succeeds", async () => {
      await rc.directView().execute("var tries = 0");
      const picky = lv.withFlags({ retries: 3 }).apply(() => {
        (globalThis as unknown as { tries: number }).tries += 1;
        if (myid !== 1) throw new Error("not here");
        return myid;
      });
      assert.equal(await picky, 1);
      assert.equal(picky.engineId, 1);
      const counts = (await rc.directView().pull("tries")) as number[];
      assert.ok(counts.every((c) => c <= 1), `no engine ran it twice: ${counts}`);
      assert.equal(counts[1], 1);
    });
  });

  describe("replies over direct links", () => {
    const overLinks = async (c: Client = rc) => (await c.controllerStats()).answeredOverLinks;

    it("a successful task's reply comes straight from its engine; the controller still records and schedules it", async () => {
      const triple = (x: number) => x * 3;
      await lv.map(triple, range(30)); // opens this client's links to the engines; the engines compile triple
      await sleep(200);
      const before = await overLinks();
      const amr = lv.map(triple, range(50), { chunksize: 1 });
      assert.deepEqual(await amr.get(30), range(50).map((x) => x * 3));
      // (a task the engine took over 1 ms for, a collection say, still goes through the controller)
      await until(async () => (await overLinks()) >= before + 40, 10_000, "the engines' reports of the tasks");
      const other = await r.cluster.connectClient();
      try {
        await until(async () => {
          const records = await other.dbQuery({ msgId: { $in: amr.msgIds } }, ["completed"]);
          return records.length === 50 && records.every((rec) => rec.completed instanceof Date);
        }, 10_000, "all 50 recorded as finished");
        assert.deepEqual(await other.getResult(amr.msgIds[7]!).get(30), [21], "the controller's record has the reply");
        const [record] = await other.dbQuery({ msgId: amr.msgIds[49]! }, ["completed", "engineId"]);
        assert.ok(record?.completed instanceof Date && typeof record.engineId === "number", "recorded as finished on an engine");
      } finally {
        await other.close();
      }
      const status = await rc.queueStatus();
      assert.equal(status.unassigned, 0);
    });

    it("a task that prints, one that fails, one with a large result and one that ran for a while come through the controller", async () => {
      const before = await overLinks();
      const printing = lv.apply((x: number) => {
        console.log(`printed ${x}`);
        return x;
      }, 4);
      assert.equal(await printing.get(30), 4);
      assert.equal(printing.stdout, "printed 4\n", "the output arrived before the reply");
      await assert.rejects(lv.apply(() => { throw new RangeError("no"); }).get(30), (err: RemoteError) => err.ename === "RangeError");
      const large = lv.apply((n: number) => new Float64Array(n).fill(1.5), 100_000); // 800 KB
      const got = (await large.get(30)) as Float64Array;
      assert.equal(got.length, 100_000);
      const busy = lv.apply(() => {
        const end = performance.now() + 5; // longer than an engine answers over a link (1 ms)
        while (performance.now() < end);
        return "busy";
      });
      assert.equal(await busy.get(30), "busy");
      await sleep(100);
      assert.equal(await overLinks(), before, "none of the four took a link");
      const other = await r.cluster.connectClient();
      try {
        const fetched = (await other.getResult(large.msgIds[0]!).get(30)) as Float64Array;
        assert.equal(fetched.length, 100_000, "the record keeps the large result whole");
        assert.equal(fetched[99_999], 1.5);
      } finally {
        await other.close();
      }
    });

    it("a task purged as soon as its result is in goes from the controller's record once its engine reports it", async () => {
      const twice = (x: number) => x * 2;
      await lv.map(twice, range(10));
      const e0 = rc.directView(0);
      const purged: string[] = [];
      for (let i = 0; i < 20; i++) {
        for (const ar of [lv.apply(twice, i), e0.apply(twice, i)]) {
          assert.equal(await ar, 2 * i);
          await rc.purgeResults(ar); // the controller may not have heard of its end yet
          purged.push(ar.msgIds[0]!);
          assert.equal(rc.results.has(ar.msgIds[0]!), false);
        }
      }
      await until(async () => {
        const history = new Set(await rc.hubHistory());
        return purged.every((id) => !history.has(id));
      }, 10_000, "the purged tasks to leave the controller's record");
    });

    it("a client without direct links gets every reply through the controller", async () => {
      const plain = await r.cluster.connectClient({ direct: false });
      try {
        const before = await overLinks(plain);
        assert.deepEqual(await plain.loadBalancedView().map((x: number) => x + 1, range(20)).get(30), range(20).map((x) => x + 1));
        await sleep(100);
        assert.equal(await overLinks(plain), before);
      } finally {
        await plain.close();
      }
    });
  });
});
