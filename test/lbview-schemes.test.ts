/**
 * Load balancing in the controller: every scheduling scheme chosen at cluster start, the high-water
 * mark, tasks that wait for an engine to register, and retries after an engine dies.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cluster, EngineError, type Client, type QueueStatus } from "tsparallel";
import { block, until, withCluster } from "./helpers.ts";

declare const myid: number;
declare const survivor: boolean;

const SCHEMES = ["leastload", "lru", "twobin", "weighted", "plainrandom"] as const;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Poll queueStatus until `ok` holds for it. */
function statusUntil(rc: Client, ok: (s: QueueStatus) => boolean, what: string): Promise<number> {
  return until(async () => ok(await rc.queueStatus()), 15_000, what);
}

describe("lbview - schemes", () => {
  for (const scheme of SCHEMES) {
    it(`${scheme}: selected at cluster start, runs maps and spreads busy work over the engines`, async () => {
      await withCluster({ n: 2, scheme }, async ({ rc }) => {
        const stats = await rc.controllerStats();
        assert.equal(stats.scheme, scheme);
        assert.equal(stats.hwm, 1, "hwm defaults to 1");
        const lv = rc.loadBalancedView();
        assert.deepEqual(await lv.map((x: number) => x * x, range(50), { chunksize: 3 }), range(50).map((x) => x * x));
        // with hwm 1, a second task goes to the other engine while the first engine is busy
        const a = lv.apply(block, 0.5);
        const b = lv.apply(block, 0.5);
        await Promise.all([a, b]);
        assert.deepEqual([a.engineId, b.engineId].sort(), [0, 1]);
      });
    });
  }

  it("lru and leastload alternate engines for tasks sent one after another", async () => {
    for (const scheme of ["lru", "leastload"] as const) {
      await withCluster({ n: 2, scheme }, async ({ rc }) => {
        const lv = rc.loadBalancedView();
        const engines: unknown[] = [];
        for (let i = 0; i < 4; i++) {
          const ar = lv.apply(() => 1);
          await ar;
          engines.push(ar.engineId);
        }
        assert.notEqual(engines[0], engines[1], `${scheme}: ${engines}`);
        assert.deepEqual(engines.slice(2), engines.slice(0, 2), `${scheme}: ${engines}`);
      });
    }
  });

  it("an unknown scheme is refused at the door", () => {
    assert.throws(() => new Cluster({ n: 1, scheme: "fastest" as "lru" }), /Invalid option in Cluster\(\): "scheme"/);
    assert.throws(() => new Cluster({ n: 1, hwm: -1 }), /Invalid option in Cluster\(\): "hwm"/);
  });
});

describe("lbview - hwm", () => {
  it("hwm 1 (default): one task per engine in flight, the rest wait unassigned in the scheduler", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      const lv = rc.loadBalancedView();
      const ars = range(4).map(() => lv.apply(block, 1.5));
      await statusUntil(rc, (s) => s[0]!.tasks === 1 && s[1]!.tasks === 1 && s.unassigned === 2, "1 + 1 in flight, 2 unassigned");
      await Promise.all(ars);
      const done = await rc.queueStatus();
      assert.deepEqual([done[0]!.tasks, done[1]!.tasks, done.unassigned], [0, 0, 0]);
    });
  });

  it("hwm 2: two tasks per engine in flight", async () => {
    await withCluster({ n: 2, hwm: 2 }, async ({ rc }) => {
      assert.equal((await rc.controllerStats()).hwm, 2);
      const lv = rc.loadBalancedView();
      const ars = range(5).map(() => lv.apply(block, 1.5));
      await statusUntil(rc, (s) => s[0]!.tasks === 2 && s[1]!.tasks === 2 && s.unassigned === 1, "2 + 2 in flight, 1 unassigned");
      await Promise.all(ars);
    });
  });

  it("hwm 0: unlimited, every task is assigned at once", async () => {
    await withCluster({ n: 2, hwm: 0 }, async ({ rc }) => {
      const lv = rc.loadBalancedView();
      const ars = range(6).map(() => lv.apply(block, 0.5));
      await statusUntil(rc, (s) => s.unassigned === 0 && (s[0]!.tasks as number) + (s[1]!.tasks as number) === 6, "all six assigned");
      await Promise.all(ars);
    });
  });
});

describe("lbview - engines coming and going", () => {
  it("tasks submitted while no engine is registered wait for one", async () => {
    await withCluster({ n: 0 }, async ({ cluster, rc }) => {
      const lv = rc.loadBalancedView();
      const ar = lv.apply((x: number) => x + 1, 41);
      const amr = lv.map((x: number) => x * 2, [1, 2, 3]);
      const status = await rc.queueStatus();
      assert.equal(status.unassigned, 4);
      assert.equal(ar.ready(), false);
      await cluster.addEngines(1);
      assert.equal(await ar.get(60), 42);
      assert.deepEqual(await amr.get(60), [2, 4, 6]);
      assert.equal(ar.engineId, 0);
    });
  });

  it("retries re-run a task elsewhere after its engine dies; with no engine left to retry on it fails with EngineError", async () => {
    await withCluster({ n: 3 }, async ({ rc }) => {
      const dv = rc.directView();
      await dv.scatter("myid", rc.ids, { flatten: true });
      await dv.set("survivor", false);
      await rc.directView(0).set("survivor", true);
      const lv = rc.loadBalancedView();
      // engines without `survivor` die while running it; the scheduler places the first try on the
      // engine that registered last (ties go to the least recently used), so at least one dies
      const risky = () => {
        if (!survivor) process.exit(3);
        return myid;
      };
      const ar = lv.withFlags({ retries: 2 }).apply(risky);
      assert.equal(await ar.get(60), 0, "it ended on the surviving engine");
      assert.equal(ar.engineId, 0);

      await until(() => rc.ids.length === 1, 15_000, "both dead engines to unregister");

      // regression: a task whose engine died used to be re-queued but never placed again
      await rc.directView(0).execute("survivor = false");
      const doomed = lv.withFlags({ retries: 5 }).apply(risky);
      await assert.rejects(doomed.get(60), (err: Error) => err instanceof EngineError && /no other engine is left to retry on/.test(err.message));
      await until(() => rc.ids.length === 0, 15_000, "engine 0 to unregister");
    });
  });
});
