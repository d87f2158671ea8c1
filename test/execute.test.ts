/** execute: cells in JS and TS, top-level await, declarations that persist, values and errors. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CompositeError, ExecuteReply, RemoteError } from "tsparallel";
import { startCluster, type Running } from "./helpers.ts";

describe("execute", () => {
  let r: Running;
  before(async () => {
    r = await startCluster({ n: 2, profile: "exec" });
  });
  after(async () => r.cluster.stop());

  it("const/let/function declarations persist: a later cell and pull see them", async () => {
    const dv = r.rc.directView();
    await dv.execute("const a = 10; let b = a + 1; function twice(x) { return 2 * x }");
    const replies = await dv.execute("twice(a + b)");
    assert.deepEqual(replies.map((e) => e.value), [42, 42]);
    assert.deepEqual(await dv.pull(["a", "b"]), [[10, 11], [10, 11]]);
    assert.deepEqual(await dv.apply(() => twice(b)), [22, 22]);
  });

  it("re-running a cell with declarations does not fail with 'already declared'", async () => {
    const dv = r.rc.directView(0);
    for (let i = 0; i < 3; i++) {
      const reply = await dv.execute(`const again = ${i}; class Thing {}; again`);
      assert.equal(reply.value, i);
    }
  });

  it("top-level await, imports and the last expression's value", async () => {
    const reply = await r.rc.directView(0).execute("import os from 'node:os';\nconst n = await Promise.resolve(os.cpus().length);\nn > 0");
    assert.ok(reply instanceof ExecuteReply);
    assert.equal(reply.value, true);
    assert.equal(reply.engineId, 0);
    assert.ok(reply.executionCount >= 1);
    assert.equal(reply.text, "true");
  });

  it("TypeScript cells", async () => {
    const reply = await r.rc.directView(0).execute("interface P { x: number }\nconst p: P = { x: 3 };\nconst sq = (v: number): number => v * v;\nsq(p.x)", { lang: "ts" });
    assert.equal(reply.value, 9);
  });

  it("a failing cell gives a RemoteError with method execute (CompositeError on many engines)", async () => {
    await assert.rejects(r.rc.directView(0).execute("null.boom"), (e: unknown) => {
      assert.ok(e instanceof RemoteError);
      assert.equal(e.ename, "TypeError");
      assert.equal(e.engineInfo.method, "execute");
      return true;
    });
    await assert.rejects(r.rc.directView().execute("throw new RangeError('nope')"), (e: unknown) => {
      assert.ok(e instanceof CompositeError);
      assert.equal(e.elist.length, 2);
      assert.match(e.message, /\[0:execute\]: RangeError: nope/);
      return true;
    });
  });

  it("console output of a cell is captured per engine", async () => {
    const ar = r.rc.directView().execute("console.log('hello from', 'cell'); console.error('warn')");
    await ar;
    assert.deepEqual(ar.stdout, ["hello from cell\n", "hello from cell\n"]);
    assert.deepEqual(ar.stderr, ["warn\n", "warn\n"]);
  });
});

declare const twice: (x: number) => number;
declare const b: number;
