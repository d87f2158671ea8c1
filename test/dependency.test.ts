/**
 * Task dependencies (ipyparallel's test_dependency and the dependency half of test_lbview):
 * after, follow, timeout while waiting, invalid and impossible dependencies, and the
 * success/failure/all truth tables — through setFlags, withFlags and per-call map options.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AsyncResult, DependencyTimeout, ImpossibleDependency, InvalidDependency, RemoteError, UnmetDependency,
  type Client, type DependencySpec, type LoadBalancedView, type TaskMetadata,
} from "tsparallel";
import { slow, startCluster, type Running } from "./helpers.ts";

/**
 * The task whose metadata is `md` started after every task in `deps` had completed. The stamps come
 * from different engines, whose clocks each follow the system's to within a millisecond; a dependency
 * released early would show hundreds of milliseconds.
 */
function assertStartedAfter(md: TaskMetadata, deps: Array<TaskMetadata>): void {
  const started = md.started!.getTime();
  const latest = Math.max(...deps.map((d) => d.completed!.getTime()));
  assert.ok(started >= latest - 2, `started ${md.started!.toISOString()} (engine ${md.engineId}) after the dependency completed ${new Date(latest).toISOString()} (engines ${deps.map((d) => d.engineId)})`);
}

declare const myid: number;

describe("dependency", () => {
  let r: Running;
  let rc: Client;
  let lv: LoadBalancedView;

  before(async () => {
    r = await startCluster({ n: 3 });
    rc = r.rc;
    lv = rc.loadBalancedView();
    await rc.directView().scatter("myid", rc.ids, { flatten: true });
  });
  after(() => r.cluster.stop());

  describe("after", () => {
    it("a task runs only once the tasks it comes after have completed (setFlags)", async () => {
      const first = lv.apply(slow, 1, 0.5);
      const view = rc.loadBalancedView().setFlags({ after: first });
      const second = view.apply(() => Date.now());
      await Promise.all([first, second]);
      assertStartedAfter(second.metadata[0]!, [first.metadata[0]!]);
    });

    it("several dependencies given as msg ids and AsyncResults (withFlags)", async () => {
      const deps = [lv.apply(slow, 1, 0.3), lv.apply(slow, 2, 0.6)];
      const dependent = lv.withFlags({ after: [deps[0]!.msgIds[0]!, deps[1]!] }).apply(() => "after both");
      assert.equal(await dependent, "after both");
      assertStartedAfter(dependent.metadata[0]!, deps.map((d) => d.metadata[0]!));
      assert.deepEqual(dependent.metadata[0]!.after, deps.flatMap((d) => d.msgIds));
    });

    it("per-call options on map: every chunk waits", async () => {
      const gate = lv.apply(slow, 0, 0.5);
      const amr = lv.map((x: number) => [x, Date.now()], [1, 2, 3], { after: gate });
      const out = (await amr) as Array<[number, number]>;
      assert.deepEqual(out.map(([x]) => x), [1, 2, 3]);
      for (const md of amr.metadata) assertStartedAfter(md, [gate.metadata[0]!]);
    });

    it("a dependency that failed makes the task impossible (success only, by default)", async () => {
      const failed = lv.apply(() => { throw new Error("dep failed"); });
      await failed.wait();
      const err = await lv.withFlags({ after: failed }).apply(() => 1).get().then(
        () => assert.fail("should be impossible"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ImpossibleDependency);
      assert.ok(err instanceof UnmetDependency && err instanceof RemoteError, "ImpossibleDependency is an UnmetDependency and a RemoteError");
      assert.equal((err as ImpossibleDependency).ename, "ImpossibleDependency");
    });
  });

  describe("follow", () => {
    it("tasks that follow a task all run on its engine", async () => {
      const leader = lv.apply(() => myid);
      const where = await leader;
      const followers = Array.from({ length: 5 }, () => lv.withFlags({ follow: leader }).apply(() => myid));
      assert.deepEqual(await Promise.all(followers), [where, where, where, where, where]);
    });

    it("follow waits for a task still running, then uses its engine", async () => {
      const leader = lv.apply(slow, 7, 0.5);
      const follower = lv.withFlags({ follow: leader }).apply(() => myid);
      assert.equal(await follower, leader.engineId);
      assertStartedAfter(follower.metadata[0]!, [leader.metadata[0]!]);
    });

    it("following tasks that ran on different engines is impossible", async () => {
      const a = rc.directView(0).apply(() => 1);
      const b = rc.directView(1).apply(() => 1);
      await Promise.all([a, b]);
      await assert.rejects(lv.withFlags({ follow: [a, b] }).apply(() => 1), ImpossibleDependency);
      // …unless any one of them will do
      const either = lv.withFlags({ follow: { ids: [a, b], all: false } }).apply(() => myid);
      assert.ok([0, 1].includes((await either) as number));
    });

    it("after and follow together", async () => {
      const a = lv.apply(slow, 1, 0.3);
      const b = lv.apply(() => 2);
      const both = lv.withFlags({ after: a, follow: b }).apply(() => myid);
      await b;
      assert.equal(await both, b.engineId);
      assertStartedAfter(both.metadata[0]!, [a.metadata[0]!]);
    });
  });

  describe("timeout", () => {
    it("a task still waiting for its dependencies after `timeout` seconds fails with DependencyTimeout", async () => {
      const long = lv.apply(slow, 1, 2);
      const waiting = lv.withFlags({ after: long, timeout: 0.2 }).apply(() => "too late");
      await assert.rejects(waiting.get(30), (err: Error) => err instanceof DependencyTimeout && (err as DependencyTimeout).ename === "DependencyTimeout");
      assert.ok(err2s(waiting) < 1.9, "it failed before its dependency finished");
      assert.equal(await long, 1);
    });

    it("timeout never stops a task that is running", async () => {
      assert.equal(await lv.withFlags({ timeout: 0.1 }).apply(slow, 5, 0.6), 5);
    });

    it("a dependency met in time lets the task run", async () => {
      const quick = lv.apply(slow, 1, 0.1);
      assert.equal(await lv.withFlags({ after: quick, timeout: 30 }).apply(() => "in time"), "in time");
    });
  });

  describe("invalid dependencies", () => {
    it("an unknown msg id is an InvalidDependency", async () => {
      await assert.rejects(lv.withFlags({ after: "12345" }).apply(() => 1), (err: Error) => err instanceof InvalidDependency && /12345/.test(err.message));
      await assert.rejects(lv.withFlags({ follow: ["no-such-task"] }).apply(() => 1), InvalidDependency);
    });

    it("a dependency object must count success, failure or both", async () => {
      const done = lv.apply(() => 1);
      await done;
      assert.throws(() => lv.withFlags({ after: { ids: [done], success: false, failure: false } }), /"after" must count success, failure or both/);
      assert.throws(() => lv.map((x: number) => x, [1], { follow: { ids: [done], success: false } }), /"follow" must count success, failure or both/);
    });

    it("wrong dependency values are refused locally, by flag name", () => {
      assert.throws(() => lv.withFlags({ after: 42 as never }), /Invalid option in withFlags\(\): "after" must be AsyncResults or msg ids/);
      assert.throws(() => lv.setFlags({ follow: true as never }), /Invalid option in setFlags\(\): "follow"/);
      assert.throws(() => lv.withFlags({ after: [{}] as never }).apply(() => 1), /jobs must be msg ids or AsyncResults/);
    });
  });

  describe("success, failure and all", () => {
    // completed = evens, failed = odds, as in ipyparallel's test_dependency
    let ok: AsyncResult<unknown>[];
    let bad: AsyncResult<unknown>[];

    before(async () => {
      const tasks = Array.from({ length: 4 }, (_, i) =>
        lv.apply((n: number) => {
          if (n % 2 === 1) throw new Error(`odd ${n}`);
          return n;
        }, i),
      );
      await Promise.all(tasks.map((t) => t.wait()));
      ok = [tasks[0]!, tasks[2]!];
      bad = [tasks[1]!, tasks[3]!];
    });

    /** "ran" or the error's ename. */
    async function outcome(dep: DependencySpec): Promise<string> {
      try {
        await lv.withFlags({ after: dep }).apply(() => "ran");
        return "ran";
      } catch (err) {
        return (err as RemoteError).ename;
      }
    }

    it("success only (the default): met by successes, impossible once a needed task failed", async () => {
      assert.equal(await outcome(ok), "ran");
      assert.equal(await outcome({ ids: ok, success: true, failure: false }), "ran");
      assert.equal(await outcome([...ok, bad[0]!]), "ImpossibleDependency", "all: one failure is enough to make it impossible");
      assert.equal(await outcome({ ids: [...bad, ok[0]!], all: false }), "ran", "any: one success is enough");
      assert.equal(await outcome({ ids: bad, all: false }), "ImpossibleDependency", "any: impossible when every one failed");
    });

    it("failure only: met by failures, impossible once a needed task succeeded", async () => {
      assert.equal(await outcome({ ids: bad, success: false, failure: true }), "ran");
      assert.equal(await outcome({ ids: [...bad, ok[0]!], success: false, failure: true }), "ImpossibleDependency");
      assert.equal(await outcome({ ids: [...ok, bad[0]!], all: false, success: false, failure: true }), "ran");
      assert.equal(await outcome({ ids: ok, all: false, success: false, failure: true }), "ImpossibleDependency");
    });

    it("success or failure: any finished task counts", async () => {
      assert.equal(await outcome({ ids: [...ok, ...bad], success: true, failure: true }), "ran");
    });
  });
});

/** Seconds from a single result's submission to its receipt. */
function err2s(ar: AsyncResult<unknown>): number {
  const md = ar.metadata[0]!;
  return (md.received!.getTime() - md.submitted!.getTime()) / 1000;
}
