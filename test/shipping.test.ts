/**
 * Shipping code to engines: functions as source (compiled in the engine namespace), module exports
 * by reference (fromModule), functions inside arguments, execute/run/importModules, remote and
 * parallel — and the functions that are refused before anything is sent.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import { AsyncMapResult, AsyncResult, ExecuteReply, fromModule, RemoteError, type Client, type DirectView } from "tsparallel";
import { functionSource } from "tsparallel/internal";
import { startCluster, type Running } from "./helpers.ts";

// engine variables that shipped functions use as free names
declare const k: number;
declare const helper: (x: number) => number;
declare const pth: typeof import("node:path");
declare const acornNs: typeof import("acorn");

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** What `apply` throws synchronously for `f`, with the client's history checked unchanged (nothing sent). */
function refusal(rc: Client, f: unknown): TypeError {
  const before = rc.history.length;
  let caught: unknown;
  try {
    rc.directView().apply(f as () => unknown);
  } catch (err) {
    caught = err;
  }
  assert.equal(rc.history.length, before, "nothing was sent");
  assert.ok(caught instanceof TypeError, `expected a TypeError, got ${String(caught)}`);
  return caught;
}

describe("shipping", () => {
  let r: Running;
  let rc: Client;
  let dv: DirectView<false>;
  let e0: DirectView<true>;

  before(async () => {
    r = await startCluster({ n: 2 });
    rc = r.rc;
    dv = rc.directView();
    e0 = rc.directView(0);
  });
  after(() => r.cluster.stop());

  describe("functions as source", () => {
    it("ships arrow, async arrow, plain, async and named function expressions", async () => {
      assert.equal(await e0.apply((x: number) => x + 1, 1), 2);
      assert.equal(await e0.apply(async (x: number) => x * 2, 21), 42, "a returned promise is awaited on the engine");
      assert.equal(await e0.apply(function (x: number) { return x - 1; }, 1), 0);
      assert.equal(await e0.apply(async function named(x: number) { return `${x}!`; }, 1), "1!");
      function declared(a: number, b = 10): number {
        return a * b;
      }
      assert.equal(await e0.apply(declared, 3), 30, "default parameters are kept");
      assert.deepEqual(await e0.apply((...xs: number[]) => xs.length, 1, 2, 3), 3);
    });

    it("normalizes method shorthand, async methods, quoted and computed names, and static methods", async () => {
      const o = {
        m(x: number) { return x * 3; },
        async am(x: number) { return x + 0.5; },
        "quoted-name"(x: number) { return -x; },
        ["comp" + "uted"](x: number) { return [x]; },
        async(x: number) { return x; }, // a method called "async"
        get(x: number) { return x * 2; }, // …and one called "get"
      };
      class Util {
        static twice(x: number) { return 2 * x; }
      }
      assert.equal(await e0.apply(o.m, 4), 12);
      assert.equal(await e0.apply(o.am, 1), 1.5);
      assert.equal(await e0.apply(o["quoted-name"], 1), -1);
      assert.deepEqual(await e0.apply((o as Record<string, (x: number) => unknown>).computed!, 5), [5]);
      assert.equal(await e0.apply(o.async, 9), 9);
      assert.equal(await e0.apply(o.get, 9), 18);
      assert.equal(await e0.apply(Util.twice, 8), 16, "a static method that does not use `this` ships");
    });

    it("resolves free names to the engine's variables (an interactive function)", async () => {
      await assert.rejects(e0.apply(() => k), (err: RemoteError) => err.ename === "ReferenceError" && /k is not defined/.test(err.evalue));
      await dv.scatter("k", [10, 20], { flatten: true });
      assert.deepEqual(await dv.apply((x: number) => x + k, 1), [11, 21], "each engine uses its own k");
      await dv.execute("function helper(x) { return x * k }");
      assert.deepEqual(await dv.apply(() => helper(2)), [20, 40], "functions defined by execute are callable");
    });

    it("tolerates the __name helper that tsx/esbuild inject (keepNames)", async () => {
      const f = () => {
        function inner(a: number) {
          return a + 1;
        }
        const g = (b: number) => b * 2;
        return [inner(1), g(2)];
      };
      // tests run under tsx, which rewrites named functions into __name(...) calls
      assert.match(f.toString(), /__name\(/, "the source really contains __name");
      assert.deepEqual(await e0.apply(f), [2, 4]);
    });

    it("keeps the names that __name gives, as esbuild's own helper does", async () => {
      const f = () => {
        const g = (b: number) => b * 2;
        return g.name;
      };
      assert.match(f.toString(), /__name\(/);
      assert.equal(f(), "g", "locally");
      assert.equal(await e0.apply(f), "g", "on the engine");
    });

    it("tolerates the __awaiter helper that TypeScript emits for ES2015 targets", async () => {
      const out = ts.transpileModule(
        "export const addLater = async (a: number, b: number) => { await null; return a + b; };\n" +
          "export async function countdown(n: number) { const xs: number[] = []; while (n > 0) { xs.push(await Promise.resolve(n--)); } return xs; }\n",
        { compilerOptions: { target: ts.ScriptTarget.ES2015, module: ts.ModuleKind.CommonJS } },
      ).outputText;
      const exports: Record<string, (...a: number[]) => Promise<unknown>> = {};
      new Function("exports", "require", out)(exports, createRequire(import.meta.url));
      const { addLater, countdown } = exports as { addLater: (a: number, b: number) => Promise<number>; countdown: (n: number) => Promise<number[]> };
      assert.match(addLater.toString(), /__awaiter\(/);
      assert.match(countdown.toString(), /__awaiter\(this/);
      assert.equal(await addLater(1, 2), 3, "works locally");
      assert.equal(await e0.apply(addLater, 1, 2), 3);
      assert.deepEqual(await e0.apply(countdown, 3), [3, 2, 1]);
    });

    it("keeps working after clear() resets the namespace (helpers are reinstalled)", async () => {
      await rc.clear();
      const f = () => {
        function again() {
          return "ok";
        }
        return again();
      };
      assert.deepEqual(await dv.apply(f), ["ok", "ok"]);
    });

    it("reports an error thrown by the shipped function as a RemoteError with the remote stack", async () => {
      const err: RemoteError = await e0.apply(() => { throw new RangeError("out of range"); }).get().then(
        () => assert.fail("should reject"),
        (e: RemoteError) => e,
      );
      assert.ok(err instanceof RemoteError);
      assert.equal(err.ename, "RangeError");
      assert.equal(err.evalue, "out of range");
      assert.match(err.traceback, /RangeError: out of range/);
      assert.deepEqual({ ...err.engineInfo, engineUuid: null }, { engineId: 0, engineUuid: null, method: "apply" });
    });
  });

  describe("refused before anything is sent", () => {
    it("a native function: says why and suggests fromModule or a wrapper", () => {
      const err = refusal(rc, Math.max);
      assert.match(err.message, /native code/);
      assert.match(err.message, /fromModule|wrap/);
      assert.match(refusal(rc, JSON.parse).message, /native code/);
    });

    it("a bound function: says why and what to apply instead", () => {
      const err = refusal(rc, ((x: number) => x).bind(null, 1));
      assert.match(err.message, /bound function/);
      assert.match(err.message, /arrow function|Reference/);
    });

    it("a class method that uses `this` (or super), and a class itself", () => {
      class Account {
        balance = 5;
        total() {
          return this.balance;
        }
      }
      class Savings extends Account {
        override total() {
          return super.total() + 1;
        }
      }
      const err = refusal(rc, new Account().total);
      assert.match(err.message, /`this`/);
      assert.match(err.message, /arguments|push|fromModule/);
      assert.match(refusal(rc, new Savings().total).message, /`this`\/`super`/);
      assert.match(refusal(rc, Account).message, /is a class/);
    });

    it("an object method that uses `this`, a class-field arrow that captured `this`, generators and accessors", () => {
      const o = {
        n: 1,
        get() {
          return this.n;
        },
        *gen() {
          yield 1;
        },
      };
      assert.match(refusal(rc, o.get).message, /`this`/);
      class Widget {
        size = 3;
        area = () => this.size * this.size;
      }
      assert.match(refusal(rc, new Widget().area).message, /`this`/);
      assert.match(refusal(rc, o.gen).message, /generator/);
      const getter = Object.getOwnPropertyDescriptor({ get x() { return 1; } }, "x")!.get!;
      assert.match(refusal(rc, getter).message, /accessor/);
    });

    it("refuses in map, remote, parallel and inside arguments too", () => {
      const before = rc.history.length;
      assert.throws(() => dv.map(Math.sqrt, [1, 4]), TypeError);
      assert.throws(() => rc.loadBalancedView().map(Math.sqrt, [1, 4]), TypeError);
      assert.throws(() => dv.remote(Math.sqrt), TypeError);
      assert.throws(() => dv.parallel(Math.sqrt), TypeError);
      assert.throws(() => dv.apply((f: (x: number) => number) => f(1), Math.abs), /native code/);
      assert.throws(() => dv.push({ f: Math.abs }), /native code/);
      assert.equal(rc.history.length, before);
    });

    it("non-functions and values that cannot be cloned are refused with what is allowed", () => {
      assert.throws(() => dv.apply(42 as unknown as () => unknown), /needs a function, fromModule\(\.\.\.\) or a Reference/);
      assert.throws(() => dv.apply((x: unknown) => x, new WeakMap()), /cannot send these arguments.*structured-clone/);
      assert.throws(() => fromModule("./relative.js"), /absolute path or a file: URL/);
    });
  });

  describe("fromModule", () => {
    it("a node: builtin export", async () => {
      assert.equal(await e0.apply(fromModule("node:path", "join"), "a", "b"), "a/b");
      const cpus = await e0.apply(fromModule<() => unknown[]>("node:os", "cpus"));
      assert.ok(Array.isArray(cpus) && cpus.length > 0);
    });

    it("a package export, resolved on the engine", async () => {
      const parse = fromModule<(src: string, opts: { ecmaVersion: "latest" }) => { type: string; body: unknown[] }>("acorn", "parse");
      const program = await e0.apply(parse, "let a = 1; a", { ecmaVersion: "latest" });
      assert.equal(program.type, "Program");
      assert.equal(program.body.length, 2);
    });

    it("a local .js file by absolute path and by file: URL; without exportName the default export", async () => {
      assert.equal(await e0.apply(fromModule<(x: number) => number>(fixture("mathlib.js"), "cube"), 3), 27);
      assert.equal(await e0.apply(fromModule<(x: number) => number>(pathToFileURL(fixture("mathlib.js")).href), 4), -4);
      assert.equal(await e0.apply(fromModule<(x: number) => Promise<number>>(fixture("mathlib.js"), "later"), 1), 2, "async exports are awaited");
    });

    it("a local .ts file (engines load TypeScript)", async () => {
      const square = fromModule<(x: number) => number>(fixture("mathlib.ts"), "square");
      assert.deepEqual(await dv.apply(square, 5), [25, 25]);
      assert.equal(await e0.apply(fromModule<(x: number) => number>(fixture("mathlib.ts")), 2), 6, "default export");
      assert.deepEqual(await dv.map(square, [1, 2, 3]), [1, 4, 9], "in map");
    });

    it("a shipped function may import modules itself with await import()", async () => {
      assert.equal(await e0.apply(async () => (await import("node:path")).posix.join("a", "b")), "a/b");
      assert.equal(await e0.apply(async (url: string) => (await import(url)).cube(3), pathToFileURL(fixture("mathlib.js")).href), 27);
    });

    it("a missing export or module fails on the engine with a clear RemoteError", async () => {
      await assert.rejects(e0.apply(fromModule(fixture("mathlib.ts"), "nope")), (err: RemoteError) => /no export named "nope"/.test(err.evalue));
      await assert.rejects(e0.apply(fromModule("no-such-package-xyz", "f")), (err: RemoteError) => err instanceof RemoteError && /no-such-package-xyz/.test(err.evalue));
    });
  });

  describe("functions inside arguments and results", () => {
    it("functions and module functions inside arguments are rebuilt on the engine", async () => {
      const compose = (fs: Array<(x: number) => number>, x: number) => fs.reduce((acc, f) => f(acc), x);
      const square = fromModule<(x: number) => number>(fixture("mathlib.ts"), "square");
      // a module function inside an argument stands for the function itself (cast: the type system sees the handle)
      assert.equal(await e0.apply(compose, [(x: number) => x + 1, square as unknown as (x: number) => number], 2), 9);
      const viaObject = await e0.apply((o: { f: (x: number) => number; m: Map<string, (x: number) => number> }) => o.f(1) + o.m.get("g")!(2), {
        f: (x: number) => x * 100,
        m: new Map([["g", (x: number) => x * 10]]),
      });
      assert.equal(viaObject, 120);
    });

    it("a pushed function is callable on the engine, and a pulled one locally", async () => {
      await dv.push({ inc: (x: number) => x + 1, ops: { dbl: (x: number) => 2 * x } });
      assert.deepEqual(await e0.apply(() => (globalThis as unknown as { inc(x: number): number }).inc(1)), 2);
      const inc = (await e0.pull("inc")) as (x: number) => number;
      assert.equal(inc(41), 42);
      assert.equal(((await e0.pull("ops.dbl")) as (x: number) => number)(4), 8);
    });

    it("a function returned by the engine arrives as a callable function", async () => {
      const adder = (await e0.apply(() => (x: number) => x + 100)) as (x: number) => number;
      assert.equal(adder(1), 101);
    });
  });

  describe("code: execute, run, importModules", () => {
    it("execute runs JS with top-level await; const/let/function/class declarations persist and can be re-run", async () => {
      const replies = await dv.execute("const base = await Promise.resolve(40); let step = 2; class Box {} base + step");
      assert.equal(replies.length, 2);
      for (const reply of replies) {
        assert.ok(reply instanceof ExecuteReply);
        assert.equal(reply.value, 42);
      }
      assert.deepEqual(await dv.pull(["base", "step"]), [[40, 2], [40, 2]]);
      const again = await e0.execute("const base = 1; base");
      assert.equal(again.value, 1, "re-declaring a const in a later cell is allowed");
      assert.equal(await e0.apply(() => typeof (globalThis as Record<string, unknown>).Box), "function");
    });

    it("execute with lang: 'ts' strips types", async () => {
      const reply = await e0.execute("interface P { x: number }\nconst p: P = { x: 3 };\nconst sq = (v: number): number => v * v;\nsq(p.x)", { lang: "ts" });
      assert.equal(reply.value, 9);
      assert.equal(await e0.get("sq").then((f) => (f as (v: number) => number)(5)), 25);
    });

    it("execute errors are RemoteErrors with method 'execute'; a syntax error too", async () => {
      await assert.rejects(e0.execute("throw new TypeError('nope')"), (err: RemoteError) => err.ename === "TypeError" && err.engineInfo.method === "execute");
      await assert.rejects(e0.execute("let = ;"), (err: RemoteError) => err.ename === "SyntaxError");
      await assert.rejects(dv.execute("undefinedName + 1"), (err: Error) => err.name === "CompositeError");
      assert.throws(() => dv.execute("1", { lang: "py" as "js" }), /Invalid option in execute\(\): "lang"/);
    });

    it("run executes a local .ts or .js file (language chosen by the extension)", async () => {
      const ts = await dv.run(fixture("cell.ts"));
      assert.deepEqual(ts.map((r) => r.value), [42, 42]);
      assert.deepEqual(await dv.apply(() => (globalThis as unknown as { scaled(x: number): number }).scaled(2)), [14, 14]);
      assert.deepEqual(await e0.pull(["runConfig", "runCount"]), [{ factor: 7 }, 1]);
      const js = await e0.run(fixture("cell.js"));
      assert.equal(js.value, 3);
      assert.deepEqual(await e0.pull("jsRun"), [1, 2, 3]);
    });

    it("importModules binds builtins, packages and local files to names in every namespace", async () => {
      await dv.importModules({ pth: "node:path", acornNs: "acorn", mathlib: fixture("mathlib.ts") });
      assert.deepEqual(await dv.apply(() => pth.basename("/a/b.txt")), ["b.txt", "b.txt"]);
      assert.equal(await e0.apply(() => typeof acornNs), "object", "a package without a default export binds its namespace");
      assert.equal(await e0.execute("mathlib(5)").then((r) => r.value), 15, "a module with a default export binds the default");
      assert.throws(() => dv.importModules({ "not a name": "node:fs" }), /must be an identifier/);
      await assert.rejects(dv.importModules({ x: "no-such-package-xyz" }), (err: Error) => err.name === "CompositeError");
    });
  });

  describe("remote and parallel", () => {
    it("remote(f) returns a function that applies f on the view", async () => {
      const mul = dv.remote((a: number, b: number) => a * b);
      const ar = mul(6, 7);
      assert.ok(ar instanceof AsyncResult);
      assert.deepEqual(await ar, [42, 42]);
      assert.equal(await e0.remote(() => "single")(), "single");
    });

    it("parallel(f) maps f elementwise over a sequence, split across the engines", async () => {
      const sq = dv.parallel((x: number) => x * x);
      const amr = sq([1, 2, 3, 4, 5]);
      assert.ok(amr instanceof AsyncMapResult);
      assert.deepEqual(await amr, [1, 4, 9, 16, 25]);
      assert.equal(amr.msgIds.length, 2, "one task per engine");
      assert.deepEqual(await rc.loadBalancedView().parallel((s: string) => s.toUpperCase())(["a", "b"]), ["A", "B"]);
    });
  });

  describe("functionSource (no engines)", () => {
    it("gives each function shape as a compilable function expression", () => {
      const o = { m(x: number) { return x; }, async am() { return 1; } };
      assert.equal(functionSource(o.m).startsWith("function"), true);
      assert.equal(functionSource(o.am).startsWith("async function"), true);
      for (const f of [o.m, o.am, (x: number) => x, async () => 1, function named() { return 1; }]) {
        assert.equal(typeof (0, eval)(`(${functionSource(f)})`), "function");
      }
    });
  });
});
