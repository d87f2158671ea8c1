/**
 * DirectView data and map (ipyparallel's test_view): push/pull of every structured-clone type,
 * set/get, scatter/gather with ipyparallel's partitioning, References, and the direct map.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { AsyncMapResult, Client, CompositeError, Reference, RemoteError, type DirectView } from "tsparallel";
import { partitionSizes, unpack } from "tsparallel/internal";
import { startCluster, until, type Running } from "./helpers.ts";

declare const myid: number;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The arguments a task's request carried, read back from the controller's record (direct tasks may
 * reach the record a little after their result: engines report them in batches).
 */
async function sentArgument(rc: Client, msgId: string): Promise<unknown[]> {
  let buffers: Uint8Array[] = [];
  await until(async () => {
    const [record] = await rc.dbQuery({ msgId }, ["completed", "buffers"]);
    buffers = (record?.buffers ?? []) as Uint8Array[];
    return record?.completed instanceof Date && buffers.length > 0;
  }, 15_000, `the record of ${msgId}`);
  return unpack(buffers) as unknown[];
}

describe("views - direct", () => {
  let r: Running;
  let rc: Client;
  let dv: DirectView<false>;
  let e0: DirectView<true>;

  before(async () => {
    r = await startCluster({ n: 2 });
    rc = r.rc;
    dv = rc.directView();
    e0 = rc.directView(0);
    await dv.scatter("myid", rc.ids, { flatten: true });
  });
  after(() => r.cluster.stop());

  it("quick tasks queued on an engine run back to back, their replies leaving together; each keeps its own output and times", async () => {
    const pid = rc.hosts.get(0)!.pid;
    // write system calls the engine process has made (Linux)
    const writes = () => Number(/syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))![1]);
    const n = 2000;
    const before = writes();
    const ars = range(n).map((i) => e0.apply((x: number) => {
      console.log(`task ${x}`);
      return x * 2;
    }, i));
    assert.deepEqual(await Promise.all(ars.map((ar) => ar.get(60))), range(n).map((x) => x * 2));
    const used = writes() - before;
    assert.ok(used < n / 4, `${used} writes for ${n} replies (~one for two before)`);
    const md = ars.map((ar) => ar.metadata[0]!);
    for (let i = 0; i < n; i++) {
      assert.equal(md[i]!.stdout, `task ${i}\n`);
      assert.ok(md[i]!.started!.getTime() <= md[i]!.completed!.getTime());
      // one at a time, in the order they were sent
      if (i > 0) assert.ok(md[i]!.started!.getTime() >= md[i - 1]!.completed!.getTime(), `task ${i} started after task ${i - 1} completed`);
    }
  });

  it("large data through the controller (no direct links, TCP) arrives intact both ways", async () => {
    // the controller forwards what it reads from a shared read buffer: every byte must be its own copy
    const via = await Client.connect({ connectionFile: r.cluster.connectionFile, timeout: 30, direct: false, transport: "tcp" });
    try {
      const big = new Float64Array(1_500_000).map((_, i) => i * 0.5 - 7); // 12 MB: streamed, many reads
      const bytes = new Uint8Array(3_000_001).map((_, i) => (i * 7) % 251);
      const view = via.directView();
      await view.push({ big, bytes });
      const sums = await view.applySync(() => {
        let s = 0;
        for (let i = 0; i < big.length; i++) s += big[i]! * ((i % 7) + 1);
        let t = 0;
        for (let i = 0; i < bytes.length; i++) t = (t * 31 + bytes[i]!) % 1_000_003;
        return [s, t];
      });
      let s = 0;
      for (let i = 0; i < big.length; i++) s += big[i]! * ((i % 7) + 1);
      let t = 0;
      for (let i = 0; i < bytes.length; i++) t = (t * 31 + bytes[i]!) % 1_000_003;
      assert.deepEqual(sums, [[s, t], [s, t]], "both engines received exactly what was pushed");
      const back = (await via.directView(1).pull("big")) as Float64Array;
      assert.ok(back instanceof Float64Array && back.length === big.length);
      assert.ok(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(big.buffer)), "pulled back bit for bit");
      await view.scatter("part", bytes);
      const gathered = (await view.gather("part")) as Uint8Array;
      assert.ok(Buffer.from(gathered).equals(Buffer.from(bytes)), "scatter + gather round trip");
    } finally {
      await via.close();
    }
  });

  describe("push and pull", () => {
    const values: Record<string, unknown> = {
      obj: { a: 1, nested: { b: [1, "two", null, true] } },
      arr: [1, [2, [3]], "x", undefined],
      map: new Map<unknown, unknown>([["k", 1], [2, { v: [3] }]]),
      set: new Set([1, "a", 3n]),
      date: new Date("2020-02-02T02:02:02.123Z"),
      big: 2n ** 100n,
      f32: new Float32Array([1.5, -2.5]),
      i16: new Int16Array([-1, 2, 3]),
      u8c: new Uint8ClampedArray([0, 255]),
      big64: new BigInt64Array([1n, -(2n ** 63n)]),
      buf: new ArrayBuffer(8),
      large: new Float64Array(5000).map((_, i) => i / 3), // 40 kB: travels as its own frame
      str: "unicode ✓ ünï",
      nums: [NaN, -0, Infinity, Number.MAX_SAFE_INTEGER],
      nil: null,
      regexp: /ab+c/gi,
    };

    it("round-trips every structured-clone type, on one engine and on all", async () => {
      await dv.push(values);
      for (const [name, value] of Object.entries(values)) {
        assert.deepEqual(await e0.pull(name), value, name);
      }
      const both = await dv.pull("big");
      assert.deepEqual(both, [2n ** 100n, 2n ** 100n]);
    });

    it("Errors keep their class, message, stack and cause (structured clone drops other properties)", async () => {
      const err = new RangeError("too far", { cause: new Error("why") });
      await dv.push({ err });
      const back = (await e0.pull("err")) as RangeError;
      assert.ok(back instanceof RangeError);
      assert.equal(back.message, "too far");
      assert.equal(back.stack, err.stack);
      assert.equal((back.cause as Error).message, "why");
      assert.equal(await e0.apply(() => (globalThis as unknown as { err: Error }).err instanceof RangeError), true, "a RangeError on the engine too");
    });

    it("values are deep copies: changing the engine's copy leaves ours alone", async () => {
      const local = { list: [1, 2] };
      await e0.push({ local });
      await e0.execute("local.list.push(3)");
      assert.deepEqual(local.list, [1, 2]);
      assert.deepEqual(await e0.pull("local.list"), [1, 2, 3]);
    });

    it("pull of a list of names: one engine → a list, several → a list per engine", async () => {
      await dv.push({ a: 1, b: [2] });
      assert.deepEqual(await e0.pull(["a", "b"]), [1, [2]]);
      assert.deepEqual(await dv.pull(["a", "b"]), [[1, [2]], [1, [2]]]);
      assert.deepEqual(await rc.directView([1]).pull("a"), [1], "a list of one engine still gives a list");
    });

    it("pull of paths and push to a path", async () => {
      await dv.push({ cfg: { levels: [10, 20], name: "c" } });
      assert.equal(await e0.pull("cfg.levels[1]"), 20);
      await dv.push({ "cfg.name": "renamed" });
      assert.deepEqual(await dv.pull("cfg.name"), ["renamed", "renamed"]);
    });

    it("set and get", async () => {
      await dv.set("answer", 42);
      assert.deepEqual(await dv.get("answer"), [42, 42]);
      assert.equal(await e0.get("answer"), 42);
      await e0.set("answer", 43);
      assert.deepEqual(await dv.get("answer"), [43, 42]);
    });

    it("pulls names that execute declared with const, let, var, function and class", async () => {
      await dv.execute("const c1 = 'c'; let l1 = [1]; var v1 = 2; function f1() { return 3 } class K1 {}");
      assert.deepEqual(await e0.pull(["c1", "l1", "v1"]), ["c", [1], 2]);
      assert.equal(((await e0.pull("f1")) as () => number)(), 3, "a function comes back as a function");
      assert.deepEqual(await dv.apply(() => myid), [0, 1]);
    });

    it("pull of an unknown name fails with the engine's ReferenceError", async () => {
      await assert.rejects(e0.pull("noSuchName"), (err: RemoteError) => err instanceof RemoteError && err.ename === "ReferenceError" && /noSuchName/.test(err.evalue));
      await assert.rejects(dv.pull("noSuchName"), (err: CompositeError) => err instanceof CompositeError && err.elist.length === 2);
    });

    it("push refuses a non-object and pull a non-name", () => {
      assert.throws(() => dv.push([1, 2] as unknown as Record<string, unknown>), /push\(\) needs an object/);
      assert.throws(() => dv.pull(3 as unknown as string), /pull\(\) needs a name/);
    });
  });

  describe("scatter and gather", () => {
    it("partitions like ipyparallel: contiguous, sizes differ by at most 1, earlier parts get the extra", () => {
      assert.deepEqual(partitionSizes(5, 2), [3, 2]);
      assert.deepEqual(partitionSizes(10, 4), [3, 3, 2, 2]);
      assert.deepEqual(partitionSizes(2, 3), [1, 1, 0]);
      assert.deepEqual(partitionSizes(0, 2), [0, 0]);
    });

    it("scatters an array in contiguous parts and gathers it back", async () => {
      await dv.scatter("part", range(5));
      assert.deepEqual(await dv.pull("part"), [[0, 1, 2], [3, 4]]);
      assert.deepEqual(await dv.gather("part"), range(5));
      await dv.scatter("part", range(16));
      assert.deepEqual(await dv.gather("part"), range(16));
    });

    it("scatters any iterable (a generator, a Set)", async () => {
      await dv.scatter("g", (function* () { yield* "abcde"; })());
      assert.deepEqual(await dv.pull("g"), [["a", "b", "c"], ["d", "e"]]);
      await dv.scatter("s", new Set([1, 2, 3]));
      assert.deepEqual(await dv.gather("s"), [1, 2, 3]);
    });

    it("flatten turns a one-element part into the element", async () => {
      await dv.scatter("id", rc.ids, { flatten: true });
      assert.deepEqual(await dv.pull("id"), [0, 1]);
      await dv.scatter("lone", [7], { flatten: true });
      assert.deepEqual(await dv.pull("lone"), [7, []], "the empty part stays an empty list");
      await dv.scatter("notflat", [7, 8]);
      assert.deepEqual(await dv.pull("notflat"), [[7], [8]]);
      assert.throws(() => dv.scatter("x", [1], { flat: true } as never), /Invalid option in scatter\(\): "flat"/);
    });

    it("typed arrays are split into typed-array parts and gathered into one array of the same type", async () => {
      const data = new Float64Array(7).map((_, i) => i * 1.5);
      await dv.scatter("t", data);
      const parts = (await dv.pull("t")) as Float64Array[];
      assert.ok(parts.every((p) => p instanceof Float64Array));
      assert.deepEqual(parts.map((p) => p.length), [4, 3]);
      const back = await dv.gather("t");
      assert.ok(back instanceof Float64Array);
      assert.deepEqual(back, data);

      const big = new BigInt64Array([1n, 2n, 3n]);
      await dv.scatter("bt", big);
      assert.deepEqual(await dv.gather("bt"), big);

      const large = new Uint8Array(300_000).map((_, i) => i % 251);
      await dv.scatter("lt", large);
      const gathered = (await dv.gather("lt")) as Uint8Array;
      assert.ok(gathered instanceof Uint8Array);
      assert.equal(Buffer.compare(Buffer.from(gathered), Buffer.from(large)), 0);
    });

    it("a gather whose parts' sizes are known reads them straight into the joined array; a wrong guess still gathers right", async () => {
      const n = 2_000_001; // 16 MB: each part's reply is streamed into its frames
      const data = new Float64Array(n).map((_, i) => i * 0.5);
      await dv.scatter("big", data);
      const ar = dv.gather("big");
      const back = (await ar) as Float64Array;
      assert.ok(back instanceof Float64Array);
      assert.equal(Buffer.compare(Buffer.from(back.buffer, back.byteOffset, back.byteLength), Buffer.from(data.buffer)), 0);
      const shared = async (a: typeof ar, joined: ArrayBufferView) =>
        Object.values(await a.getDict()).map((p) => (p as ArrayBufferView).buffer === joined.buffer);
      assert.deepEqual(await shared(ar, back), [true, true], "sizes known from the scatter: each part was read into its place");

      // a name this client never scattered: the first gather joins by copying, the next knows the sizes
      await dv.execute("made = new Float64Array(1_000_000).fill(myid + 1)");
      const first = dv.gather("made");
      const f = (await first) as Float64Array;
      assert.deepEqual([f.length, f[0], f[999_999], f[1_000_000], f[1_999_999]], [2_000_000, 1, 1, 2, 2]);
      assert.deepEqual(await shared(first, f), [false, false]);
      const second = dv.gather("made");
      const g = (await second) as Float64Array;
      assert.deepEqual([g.length, g[0], g[1_999_999]], [2_000_000, 1, 2]);
      assert.deepEqual(await shared(second, g), [true, true]);

      // the parts changed: another type of the same byte length (taken into place, then copied out), then other sizes
      await dv.execute("made = new Uint8Array(8_000_000).fill(myid + 7)");
      const u = (await dv.gather("made")) as Uint8Array;
      assert.ok(u instanceof Uint8Array);
      assert.deepEqual([u.length, u[0], u[7_999_999], u[8_000_000], u[15_999_999]], [16_000_000, 7, 7, 8, 8]);
      await dv.execute("made = new Float64Array(999_999).fill(3)");
      const h = (await dv.gather("made")) as Float64Array;
      assert.ok(h instanceof Float64Array);
      assert.deepEqual([h.length, h[0], h[1_999_997]], [1_999_998, 3, 3]);
      await dv.execute("delete globalThis.made; delete globalThis.big");
    });

    it("gather of per-engine scalars lists them in target order", async () => {
      assert.deepEqual(await dv.gather("myid"), [0, 1]);
    });

    it("gathering a missing name fails with a clear remote error", async () => {
      const err = await dv.gather("neverScattered").then(
        () => assert.fail("gather should fail"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CompositeError);
      for (const e of err.elist) {
        assert.ok(e instanceof RemoteError);
        assert.equal(e.ename, "ReferenceError");
        assert.match(e.evalue, /neverScattered is not defined/);
      }
    });
  });

  describe("References", () => {
    before(async () => {
      await dv.execute("var g = [5, { deep: 'x' }]; var base = 100; var addBase = (x) => x + base;");
    });

    it("as an argument: each engine passes its own value", async () => {
      assert.deepEqual(await dv.apply((id: number) => id * 10, new Reference("myid")), [0, 10]);
    });

    it("inside arrays, plain objects and Maps", async () => {
      const out = await e0.apply(
        (list: unknown[], obj: Record<string, unknown>, m: Map<string, unknown>) => [list, obj, m.get("k")],
        [1, new Reference("base")],
        { x: new Reference("myid"), nested: { y: [new Reference("g[0]")] } },
        new Map([["k", new Reference("base")]]),
      );
      assert.deepEqual(out, [[1, 100], { x: 0, nested: { y: [5] } }, 100]);
    });

    it("with paths: a.b[0]", async () => {
      assert.equal(await e0.apply((v: string) => v, new Reference("g[1].deep")), "x");
      assert.equal(await e0.apply((v: number) => v, new Reference("g.length")), 2);
    });

    it("as the applied function itself", async () => {
      assert.deepEqual(await dv.apply(new Reference("addBase"), 1), [101, 101]);
      assert.deepEqual(await dv.map(new Reference("addBase"), [1, 2, 3]), [101, 102, 103]);
    });

    it("in map: as elements of the sequence", async () => {
      assert.deepEqual(await dv.map((x: number) => x + 1, [new Reference("base"), new Reference("myid"), 5] as number[]), [101, 1, 6]);
      assert.deepEqual(await rc.loadBalancedView().map((x: number) => x * 2, [new Reference("base")] as unknown as number[]), [200]);
    });

    it("an unknown name fails the task with the engine's ReferenceError", async () => {
      await assert.rejects(e0.apply((x: unknown) => x, new Reference("missingThing")), (err: RemoteError) => err instanceof RemoteError && err.ename === "ReferenceError" && /missingThing/.test(err.evalue));
      await assert.rejects(e0.apply(new Reference("missingFn")), (err: RemoteError) => err.ename === "ReferenceError");
      await assert.rejects(e0.apply(new Reference("base")), (err: RemoteError) => err.ename === "TypeError" && /not a function/.test(err.evalue));
      assert.throws(() => new Reference(""), /non-empty name/);
    });
  });

  describe("map", () => {
    it("is one task per engine over contiguous parts", async () => {
      const amr = dv.map((x: number) => [x, myid], range(5));
      assert.ok(amr instanceof AsyncMapResult);
      assert.equal(amr.msgIds.length, 2);
      assert.equal(amr.length, 5);
      assert.deepEqual(await amr, [[0, 0], [1, 0], [2, 0], [3, 1], [4, 1]]);
      assert.deepEqual(amr.engineId, [0, 1]);
    });

    it("zips several sequences; the shortest wins", async () => {
      assert.deepEqual(await dv.map((a: number, b: string) => `${a}${b}`, [1, 2, 3], ["a", "b"]), ["1a", "2b"]);
      assert.deepEqual(await dv.map((a: number, b: number, c: number) => a + b + c, [1, 2], [10, 20], [100, 200, 300]), [111, 222]);
    });

    it("an empty sequence gives [] (and sends nothing)", async () => {
      const before = rc.history.length;
      assert.deepEqual(await dv.map((x: number) => x, []), []);
      assert.deepEqual(await dv.map((x: number, y: number) => x + y, [1, 2], []), []);
      assert.equal(rc.history.length, before);
    });

    it("takes any iterable: generators, Sets, Map keys", async () => {
      function* gen(n: number) {
        for (let i = 0; i < n; i++) yield i;
      }
      assert.deepEqual(await dv.map((x: number) => x * 2, gen(101)), range(101).map((x) => x * 2));
      assert.deepEqual(await dv.map((x: string) => x.toUpperCase(), new Set(["a", "b", "c"])), ["A", "B", "C"]);
      assert.deepEqual(await dv.map((k: string, v: number) => `${k}=${v}`, new Map([["a", 1], ["b", 2]]).keys(), [1, 2]), ["a=1", "b=2"]);
    });

    it("sends typed arrays as typed-array parts, not element by element", async () => {
      const data = new Int32Array([5, 6, 7, 8, 9]);
      const amr = dv.map((x: number) => x * 2, data);
      assert.deepEqual(await amr, [10, 12, 14, 16, 18]);
      const sent = await Promise.all(amr.msgIds.map((id) => sentArgument(rc, id)));
      assert.deepEqual(sent.map(([part]) => part), [new Int32Array([5, 6, 7]), new Int32Array([8, 9])]);
    });

    it("fewer elements than engines: only the engines with elements get a task", async () => {
      const amr = dv.map((x: number) => x + 1, [41]);
      assert.deepEqual(await amr, [42]);
      assert.equal(amr.msgIds.length, 1);
    });

    it("a view on one engine maps there, giving a list", async () => {
      const amr = e0.map((x: number) => x + myid, [1, 2, 3]);
      assert.deepEqual(await amr, [1, 2, 3]);
      assert.equal(amr.msgIds.length, 1);
    });

    it("async functions are awaited per element; iteration yields elements in order", async () => {
      const amr = dv.map(async (x: number) => x * 3, range(4));
      const seen: number[] = [];
      for await (const v of amr) seen.push(v);
      assert.deepEqual(seen, [0, 3, 6, 9]);
    });

    it("a failing element fails the map with a CompositeError; returnExceptions gives the errors in place", async () => {
      const f = (x: number) => {
        if (x === 3) throw new Error("three");
        return x;
      };
      await assert.rejects(dv.map(f, range(4)), (err: CompositeError) => err instanceof CompositeError && /three/.test(err.message));
      const out: unknown[] = await dv.map(f, range(4), { returnExceptions: true });
      assert.deepEqual(out.slice(0, 2), [0, 1]);
      assert.ok(out[2] instanceof RemoteError && out[3] instanceof RemoteError, "the failed part's elements are the error");
    });

    it("mapSync and mapAsync; unknown options are refused by name", async () => {
      assert.deepEqual(await dv.mapSync((x: number) => -x, [1, 2]), [-1, -2]);
      assert.deepEqual(await dv.mapAsync((x: number) => -x, [1, 2]).get(), [-1, -2]);
      assert.throws(() => dv.map((x: number) => x, [1], { chunksise: 2 } as never), /Invalid option in map\(\): "chunksise"/);
      assert.throws(() => dv.map((x: number) => x, 5 as never), /expected an array, typed array or iterable/);
    });
  });

  // pull and gather into the caller's own typed array: the reply's bytes are read from the socket
  // straight into it (no fresh memory); a value that does not fit is refused by name
  describe("into an array of yours", () => {
    const ramp = (n: number, from = 0) => Float64Array.from({ length: n }, (_, i) => from + i);

    it("pull(name, { into }) on one engine reads the value into it and resolves with it; rc.results holds a view of the same memory", async () => {
      await e0.push({ a: ramp(300_000) }); // 2.4 MB: a frame of its own
      const into = new Float64Array(300_000);
      for (let round = 0; round < 2; round++) {
        const ar = e0.pull("a", { into });
        const got = await ar;
        assert.equal(got, into, "the result is into itself");
        assert.equal(into[299_999], 299_999);
        const stored = rc.results.get(ar.msgIds[0]!) as Float64Array;
        assert.equal(stored.buffer, into.buffer, "the reply was read in place, not into fresh memory");
        await e0.execute("a[0] = -1;");
      }
      assert.equal(into[0], -1, "the second pull brought the engine's new value");
    });

    it("a small value is copied in; on a view of several engines into is one array per engine", async () => {
      await dv.execute("globalThis.small = Int32Array.of(myid, myid + 10);");
      const small = new Int32Array(2);
      assert.deepEqual(await e0.pull("small", { into: small }), Int32Array.of(0, 10));
      await dv.execute("globalThis.big = new Float64Array(100_000).fill(myid + 1);");
      const both = [new Float64Array(100_000), new Float64Array(100_000)];
      const got = await dv.pull("big", { into: both });
      assert.equal(got[0], both[0]);
      assert.equal(got[1], both[1]);
      assert.deepEqual([both[0]![99_999], both[1]![99_999]], [1, 2]);
    });

    it("a value of another type or length is refused by name, engine and sizes", async () => {
      await e0.push({ a: ramp(1000) });
      await assert.rejects(e0.pull("a", { into: new Float64Array(999) }), (err: Error) => {
        assert.equal(err.name, "TypeError");
        assert.match(err.message, /engine 0's "a" is a Float64Array of 1000 elements; into is a Float64Array of 999 elements/);
        return true;
      });
      await assert.rejects(e0.pull("a", { into: new Float32Array(1000) }), /into is a Float32Array of 1000 elements/);
      await e0.push({ s: "text" });
      await assert.rejects(e0.pull("s", { into: new Uint8Array(4) }), /engine 0's "s" is a string/);
    });

    it("wrong options fail at the call, before anything is sent", () => {
      const sent = rc.history.length;
      assert.throws(() => e0.pull("a", { into: [1, 2] as unknown as Float64Array }), /into must be a typed array on a view of one engine/);
      assert.throws(() => dv.pull("a", { into: new Float64Array(4) }), /into must be a list of 2 typed arrays, one per engine of the view/);
      assert.throws(() => e0.pull(["a", "b"] as unknown as string, { into: new Float64Array(4) }), /into takes the value of one name/);
      assert.throws(() => e0.pull("a", { intoo: new Float64Array(4) } as never), /intoo/);
      assert.throws(() => dv.gather("x", { into: [1] as unknown as Float64Array }), /gather\(\): into must be a typed array/);
      assert.equal(rc.history.length, sent, "nothing was sent");
    });

    it("gather(name, { into }) after a scatter reads each part into its place in into and resolves with it", async () => {
      const data = ramp(500_001); // odd: the first engine gets the extra element
      await dv.scatter("x", data);
      const into = new Float64Array(500_001);
      const ar = dv.gather("x", { into });
      assert.equal(await ar, into);
      assert.deepEqual(into, data);
      for (const id of ar.msgIds) assert.equal((rc.results.get(id) as Float64Array).buffer, into.buffer, "each part was read in place");
    });

    it("gather into a name made on the engines (sizes unknown to this client): split as scatter would, checked, copied where it did not fit", async () => {
      await dv.execute("globalThis.y = new Float64Array(myid === 0 ? 70_000 : 50_000).fill(myid + 1);");
      const into = new Float64Array(120_000);
      assert.equal(await dv.gather("y", { into }), into);
      assert.equal(into[69_999], 1);
      assert.equal(into[70_000], 2);
      await assert.rejects(dv.gather("y", { into: new Float64Array(119_999) }), /the parts of "y" hold 120000 elements; into holds 119999/);
      await assert.rejects(dv.gather("y", { into: new Float32Array(120_000) }), /a part of "y" is a Float64Array of 70000 elements; into is a Float32Array/);
    });
  });
});
