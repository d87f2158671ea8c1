/**
 * AsyncResult, part 2: timing (elapsed, progress, length, serialTime, wallTime, timedelta),
 * waitInteractive, metadata, captured output and displayOutputs. One cluster of 2 engines.
 * Timing bounds are loose on purpose (noisy machines): at least 3× the expected value.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { inspect } from "node:util";
import { after, before, describe, it } from "node:test";
import { ExecuteReply, RemoteError, TaskMetadata, TimeoutError, type Client } from "tsparallel";
import { kPrecise } from "tsparallel/internal";
import { nap, sleep, startCluster, until, type Running } from "./helpers.js";

let running: Running;
let rc: Client;

before(async () => {
  running = await startCluster({ n: 2, profile: "ar-timing" });
  rc = running.rc;
  await rc.directView().scatter("id", rc.ids, { flatten: true });
});
after(() => running?.cluster.stop());

declare const id: number; // an engine variable (scattered in `before`)

/** A stream that records what is written to it; `isTTY` as asked. */
function fakeStream(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return Object.assign(stream, { isTTY, text: () => chunks.join("") });
}

/** What `fn` writes to process.stdout and process.stderr (synchronously). */
function capture(fn: () => void): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  const originals = { stdout: process.stdout.write, stderr: process.stderr.write };
  for (const name of ["stdout", "stderr"] as const) {
    process[name].write = ((chunk: string | Uint8Array) => {
      out[name] += String(chunk);
      return true;
    }) as typeof process.stdout.write;
  }
  try {
    fn();
  } finally {
    process.stdout.write = originals.stdout;
    process.stderr.write = originals.stderr;
  }
  return out;
}

describe("asyncresult - timing", () => {
  it("elapsed grows while pending, then equals wallTime", async () => {
    const ar = rc.directView(0).apply(nap, 1);
    const e1 = ar.elapsed;
    assert.ok(e1 >= 0 && e1 < 1, `elapsed right after submit: ${e1}`);
    await sleep(200);
    const e2 = ar.elapsed;
    assert.ok(e2 > e1 && e2 >= 0.15, `elapsed grows: ${e1} then ${e2}`);
    await ar;
    assert.equal(ar.elapsed, ar.wallTime);
    const done = ar.elapsed;
    await sleep(100);
    assert.equal(ar.elapsed, done, "elapsed stops growing once done");
  });

  it("serialTime and wallTime throw TimeoutError before the result is ready", async () => {
    const ar = rc.directView().apply(nap, 0.5);
    assert.throws(() => ar.serialTime, TimeoutError);
    assert.throws(() => ar.wallTime, TimeoutError);
    await ar;
    assert.equal(typeof ar.serialTime, "number");
    assert.equal(typeof ar.wallTime, "number");
  });

  it("wallTime of a 0.5 s task covers the sleep; serialTime sums the tasks over 2 engines", async () => {
    const lb = rc.loadBalancedView().apply(nap, 0.5);
    await lb;
    assert.ok(lb.wallTime >= 0.49 && lb.wallTime < 2, `wallTime ${lb.wallTime}`);
    assert.ok(lb.serialTime >= 0.49 && lb.serialTime <= lb.wallTime + 0.005, `serialTime ${lb.serialTime} vs wallTime ${lb.wallTime}`);
    const ar = rc.directView().apply(nap, 0.5);
    await ar;
    assert.ok(ar.serialTime >= 0.98 && ar.serialTime < 4, `serialTime ${ar.serialTime}`);
    assert.ok(ar.wallTime >= 0.49 && ar.wallTime < 2, `wallTime ${ar.wallTime}: the engines ran in parallel`);
  });

  it("microsecond stamps: serialTime of 1000 no-op tasks is > 0", async () => {
    const amr = rc.loadBalancedView().map((x: number) => x, Array.from({ length: 1000 }, (_, i) => i));
    assert.equal((await amr).length, 1000);
    assert.equal(amr.msgIds.length, 1000);
    assert.ok(amr.serialTime > 0, `serialTime ${amr.serialTime}`);
    assert.ok(amr.serialTime < amr.wallTime * 2, `serialTime ${amr.serialTime}, wallTime ${amr.wallTime}`);
    const fractional = amr.metadata.filter((m) => m.completed!.getTime() - m.started!.getTime() < 1).length;
    assert.ok(fractional > 0 || amr.serialTime * 1000 !== Math.round(amr.serialTime * 1000), "times finer than a millisecond are kept");
  });

  it("length and progress count elements for chunked maps; msgIds count tasks", async () => {
    const amr = rc.loadBalancedView().map(nap, Array.from({ length: 100 }, () => 0.01), { chunksize: 4 });
    assert.equal(amr.length, 100);
    assert.equal(amr.msgIds.length, 25);
    assert.equal(amr.progress, 0);
    const seen: number[] = [];
    await until(() => {
      seen.push(amr.progress);
      return amr.ready();
    }, 60_000, "the map to finish");
    assert.equal(amr.progress, 100);
    assert.ok(seen.every((p, i) => p % 4 === 0 && (i === 0 || p >= seen[i - 1]!)), `progress moves in chunks of 4: ${seen.join(",")}`);
    const uneven = rc.loadBalancedView().map((x: number) => x, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], { chunksize: 3 });
    assert.equal(uneven.length, 10);
    assert.equal(uneven.msgIds.length, 4);
    await uneven;
    assert.equal(uneven.progress, 10);
  });

  it("length: a load-balanced map of 10 → 10, a load-balanced apply → 1, a direct apply → the number of engines", async () => {
    const amr = rc.loadBalancedView().map((x: number) => x, Array.from({ length: 10 }, (_, i) => i));
    const lb = rc.loadBalancedView().apply(() => 1);
    const dv = rc.directView().apply(() => 1);
    assert.deepEqual([amr.length, lb.length, dv.length], [10, 1, 2]);
    assert.equal(rc.directView(0).apply(() => 1).length, 1);
    await Promise.all([amr, lb, dv]);
    assert.deepEqual([amr.progress, lb.progress, dv.progress], [10, 1, 2]);
  });

  it("progress counts finished tasks while pending, progress / length is the fraction", async () => {
    const amr = rc.directView().map(nap, [0.1, 2]); // engine 0 fast, engine 1 slow
    assert.equal(amr.progress, 0);
    await until(() => amr.progress === 1, 10_000, "the fast part");
    assert.equal(amr.ready(), false);
    assert.equal(amr.progress / amr.length, 0.5);
    await amr;
    assert.equal(amr.progress / amr.length, 1);
  });

  it("timedelta: seconds between two dates, or from the earliest of a list to the latest of a list", async () => {
    const ar = rc.directView().apply(nap, 0.2);
    await ar;
    assert.equal(ar.timedelta(new Date(1000), new Date(2500)), 1.5);
    assert.equal(ar.timedelta([new Date(3000), new Date(1000)], [new Date(1500), new Date(4000)]), 3);
    const submitted = ar.metadata.map((m) => m.submitted);
    const received = ar.metadata.map((m) => m.received);
    assert.ok(Math.abs(ar.timedelta(submitted, received) - ar.wallTime) < 0.002, "Dates hold whole milliseconds");
    assert.ok(ar.timedelta(ar.metadata[0]!.started, ar.metadata[0]!.completed) >= 0.19);
  });
});

describe("asyncresult - waitInteractive", () => {
  it("on a TTY: one line redrawn with \\r, then a final line", async () => {
    const ar = rc.loadBalancedView().map(nap, [0.2, 0.2, 0.4, 0.4, 0.6, 0.6]);
    const stream = fakeStream(true);
    assert.equal(await ar.waitInteractive({ interval: 0.05, stream }), true);
    const text = stream.text();
    assert.ok(text.endsWith("\n"));
    assert.equal(text.split("\n").length, 2, `a single line: ${JSON.stringify(text)}`);
    const frames = text.slice(0, -1).split("\r").slice(1);
    assert.ok(frames.length >= 3, `redrawn several times: ${JSON.stringify(text)}`);
    assert.match(frames[0]!, /^nap: 0\/6 +0%/);
    assert.match(frames.at(-1)!, /^nap: 6\/6 100% \|█+\| \d+\.\ds /);
    assert.ok(frames.every((f, i) => i === 0 || f.length >= frames[i - 1]!.trimEnd().length), "each frame covers the last");
  });

  it("not a TTY: a plain status line per interval, then a final line", async () => {
    const ar = rc.directView().apply(nap, 1);
    const stream = fakeStream(false);
    assert.equal(await ar.waitInteractive({ interval: 0.2, stream }), true);
    const text = stream.text();
    assert.ok(!text.includes("\r"), "no carriage returns off a TTY");
    const lines = text.trimEnd().split("\n");
    assert.ok(lines.length >= 3 && lines.length <= 12, `about one line per interval: ${JSON.stringify(text)}`);
    assert.match(lines[0]!, /^nap: 0\/2 +0% \d+\.\ds /);
    assert.match(lines.at(-1)!, /^nap: 2\/2 100% \d+\.\ds /);
    assert.ok(!text.includes("█"), "no bar off a TTY");
  });

  it("respects timeout: returns false after it, the result keeps running", async () => {
    const ar = rc.directView(0).apply(nap, 2.5);
    const stream = fakeStream(false);
    const tic = performance.now();
    assert.equal(await ar.waitInteractive({ interval: 0.1, timeout: 0.4, stream }), false);
    const waited = (performance.now() - tic) / 1000;
    assert.ok(waited >= 0.35 && waited < 2, `waited ${waited} s`);
    assert.equal(ar.ready(), false);
    assert.match(stream.text().trimEnd().split("\n").at(-1)!, /^nap: 0\/1 +0%/);
    assert.equal(await ar, 2.5);
  });

  it("refuses a bad interval", async () => {
    const ar = rc.directView(0).apply(() => 1);
    await assert.rejects(ar.waitInteractive({ interval: 0, stream: fakeStream(false) }), /interval/);
    await ar;
  });
});

describe("asyncresult - metadata", () => {
  it("ar.metadata: one TaskMetadata per task, with every field, before and after completion", async () => {
    const ar = rc.directView().apply(nap, 0.3);
    assert.equal(ar.metadata.length, 2);
    for (const [i, m] of ar.metadata.entries()) {
      assert.ok(m instanceof TaskMetadata);
      assert.equal(m.msgId, ar.msgIds[i]);
      assert.ok(m.submitted instanceof Date);
      assert.deepEqual([m.started, m.completed, m.received, m.status, m.error], [null, null, null, null, null]);
    }
    await ar;
    const uuids = new Set<string>();
    for (const [i, m] of ar.metadata.entries()) {
      const keys = ["msgId", "submitted", "started", "completed", "received", "engineId", "engineUuid", "status", "error",
        "stdout", "stderr", "outputs", "executeInput", "executeResult", "after", "follow"];
      for (const k of keys) assert.ok(k in m, `metadata has ${k}`);
      assert.equal(m.engineId, i);
      assert.equal(typeof m.engineUuid, "string");
      uuids.add(m.engineUuid!);
      assert.equal(m.status, "ok");
      assert.equal(m.error, null);
      assert.deepEqual([m.stdout, m.stderr, m.outputs, m.executeInput, m.executeResult, m.after, m.follow], ["", "", [], null, null, [], []]);
      const [sub, sta, com, rec] = [m.submitted!.getTime(), m.started!.getTime(), m.completed!.getTime(), m.received!.getTime()] as const;
      // one machine, one clock (within a few ms across processes)
      assert.ok(sub <= sta + 5 && sta <= com && com <= rec + 5, `submitted ≤ started ≤ completed ≤ received: ${[sub, sta, com, rec]}`);
      assert.ok(com - sta >= 290, `the engine stamped the 0.3 s it worked: ${com - sta} ms`);
    }
    assert.equal(uuids.size, 2);
    // the dates are made when read; printing and JSON show every field all the same
    const m = ar.metadata[0]!;
    assert.equal(m.started!.getTime(), m.started!.getTime());
    const shown = inspect(m);
    assert.match(shown, /^TaskMetadata \{/);
    for (const k of ["msgId", "submitted", "started", "completed", "received", "engineId", "status"]) assert.match(shown, new RegExp(`${k}: `));
    const json = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
    assert.equal(json.completed, m.completed!.toISOString());
    assert.equal(json.engineUuid, m.engineUuid);
  });

  it("metadata times keep microseconds, unknown times, and clocks decades off (no process)", () => {
    const m = new TaskMetadata("t");
    const cases: Array<[string, number]> = [
      ["2026-11-26T08:00:00.123456Z", Date.UTC(2026, 10, 26, 8, 0, 0) + 123.456],
      ["2019-12-31T23:59:59.999999Z", Date.UTC(2019, 11, 31, 23, 59, 59) + 999.999],
      ["1970-01-01T00:00:01.000001Z", 1000.001], // an engine whose clock was never set
      ["2100-01-01T00:00:00.5Z", Date.UTC(2100, 0, 1) + 500],
    ];
    for (const [iso, ms] of cases) {
      m.setTime("started", ms);
      assert.equal(m.started!.toISOString(), new Date(Math.floor(ms)).toISOString(), iso);
      const back = m[kPrecise].started!;
      assert.ok(Math.abs(back - ms) < 1e-4, `${iso}: ${back} kept to the microsecond (${ms})`);
    }
    m.setTime("completed", null);
    m.setTime("received", Number.NaN);
    assert.deepEqual([m.completed, m.received, m.submitted], [null, null, null]);
    m.setTime("received", 1000.5);
    m.setTime("received", Date.UTC(2030, 0, 1));
    assert.equal(m.received!.toISOString(), "2030-01-01T00:00:00.000Z", "a far time replaced by a near one");
  });

  it("timestamps follow the system's wall clock even when the process's time origin is off (a clock stepped after start)", () => {
    // a process whose monotonic time origin is 250 ms behind or ahead of the wall clock, as after an NTP step
    for (const skew of [-250, 250]) {
      const script = `
        const real = performance.timeOrigin;
        Object.defineProperty(performance, "timeOrigin", { value: real + (${skew}) });
        const { nowMs, isoMicro, parseIsoMicro } = await import("tsparallel/internal");
        const out = [];
        for (let i = 0; i < 3; i++) {
          const before = Date.now();
          const t = nowMs();
          const after = Date.now();
          out.push([before, t, after]);
        }
        // after readings across a few millisecond edges, the offset is within a few µs of the wall clock
        const edge = [];
        for (let k = 0; k < 20; k++) {
          const d = Date.now();
          while (Date.now() === d) nowMs();
          edge.push(nowMs() - Date.now());
        }
        out.push(edge, parseIsoMicro(isoMicro()) - Date.now());
        console.log(JSON.stringify(out));`;
      const res = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
      assert.equal(res.status, 0, res.stderr);
      const out = JSON.parse(res.stdout) as unknown[];
      for (const [before, t, after] of out.slice(0, 3) as Array<[number, number, number]>) {
        assert.ok(t >= before && t < after + 1, `skew ${skew}: reading ${t} lies within the wall clock's [${before}, ${after + 1})`);
      }
      const edge = (out[3] as number[]).slice(5).sort((a, b) => a - b); // the first edges may see a late loop (not yet optimized)
      const median = edge[Math.floor(edge.length / 2)]!;
      assert.ok(median >= 0 && median < 0.3, `skew ${skew}: readings just after a millisecond's edge: ${edge.map((e) => e.toFixed(3))}`);
      const iso = out[4] as number;
      assert.ok(iso > -1 && iso < 1, `skew ${skew}: isoMicro follows too: ${iso}`);
    }
  });

  it("a failed task's metadata: status 'error' and its RemoteError", async () => {
    const ar = rc.directView(1).apply(() => {
      throw new SyntaxError("nope");
    });
    await ar.wait();
    const m = ar.metadata[0]!;
    assert.equal(m.status, "error");
    assert.ok(m.error instanceof RemoteError);
    assert.equal(m.error.ename, "SyntaxError");
    assert.equal(m.engineId, 1);
    assert.ok(m.completed instanceof Date && m.received instanceof Date);
  });

  it("execute metadata: executeInput is the code, executeResult the value's display data", async () => {
    const code = "const answer = 6 * 7;\nanswer";
    const ar = rc.directView(0).execute(code);
    const reply = await ar;
    assert.ok(reply instanceof ExecuteReply);
    assert.equal(reply.value, 42);
    const m = ar.metadata[0]!;
    assert.equal(m.executeInput, code);
    assert.deepEqual(m.executeResult, { "text/plain": "42" });
  });

  it("dependencies are echoed in after/follow", async () => {
    const first = rc.loadBalancedView().apply(() => 1);
    const second = rc.loadBalancedView().withFlags({ after: first, follow: first }).apply(() => 2);
    assert.equal(await second, 2);
    assert.deepEqual(second.metadata[0]!.after, first.msgIds);
    assert.deepEqual(second.metadata[0]!.follow, first.msgIds);
    assert.equal(second.metadata[0]!.engineId, first.metadata[0]!.engineId, "follow ran it where the first ran");
  });

  it("rc.metadata, rc.results, rc.history and rc.outstanding track every task of the client", async () => {
    const ar = rc.directView().apply(nap, 0.3);
    for (const msgId of ar.msgIds) {
      assert.ok(rc.outstanding.has(msgId));
      assert.ok(rc.history.includes(msgId));
      assert.ok(!rc.results.has(msgId));
    }
    assert.deepEqual(rc.history.slice(-2), ar.msgIds, "history is in submission order");
    await ar;
    ar.msgIds.forEach((msgId, i) => {
      assert.ok(!rc.outstanding.has(msgId));
      assert.equal(rc.metadata.get(msgId), ar.metadata[i], "the same record");
      assert.equal(rc.results.get(msgId), 0.3);
    });
    await sleep(50);
    assert.ok(rc.metadata.has(ar.msgIds[0]!) && rc.results.has(ar.msgIds[0]!), "entries are kept after the result is read");
  });

  it("ar.msgIds, ar.engineId (a value for a single result, else a list) and ar.sent", async () => {
    const single = rc.directView(1).apply(() => 1);
    const multi = rc.directView().apply(() => 1);
    const lb = rc.loadBalancedView().apply(() => 1);
    assert.equal(single.msgIds.length, 1);
    assert.equal(multi.msgIds.length, 2);
    assert.match(single.msgIds[0]!, /^[0-9a-f-]{36}$/);
    assert.equal(new Set([...single.msgIds, ...multi.msgIds]).size, 3);
    assert.deepEqual(multi.engineId, [null, null], "unknown until a reply says where it ran");
    await until(() => single.sent && multi.sent && lb.sent, 10_000, "the requests to leave the client");
    await Promise.all([single, multi, lb]);
    assert.equal(single.engineId, 1);
    assert.deepEqual(multi.engineId, [0, 1]);
    assert.ok(lb.engineId === 0 || lb.engineId === 1);
  });
});

describe("asyncresult - output", () => {
  it("stdout and stderr: a string for a single result, a list otherwise; outputs likewise", async () => {
    const single = rc.directView(0).apply(() => {
      console.log("to stdout");
      console.error("to stderr");
      return 1;
    });
    await single;
    assert.equal(single.stdout, "to stdout\n");
    assert.equal(single.stderr, "to stderr\n");
    assert.deepEqual(single.outputs, []);
    const multi = rc.directView().apply(() => {
      process.stdout.write(`engine ${id}`);
    });
    await multi;
    assert.deepEqual(multi.stdout, ["engine 0", "engine 1"]);
    assert.deepEqual(multi.stderr, ["", ""]);
    assert.deepEqual(multi.outputs, [[], []]);
  });

  it("displayOutputs: a single line is '[stdout:0] text'; empty streams print nothing", async () => {
    const ar = rc.directView().apply(() => console.log(`hello from ${id}`));
    await ar;
    const out = capture(() => ar.displayOutputs());
    assert.equal(out.stdout, "[stdout:0] hello from 0\n[stdout:1] hello from 1\n");
    assert.equal(out.stderr, "");
    const quiet = rc.directView().apply(() => 1);
    await quiet;
    assert.deepEqual(capture(() => quiet.displayOutputs()), { stdout: "", stderr: "" });
    const single = rc.directView(1).apply(() => process.stdout.write("no newline"));
    await single;
    assert.equal(capture(() => single.displayOutputs()).stdout, "[stdout:1] no newline\n");
  });

  it("displayOutputs: multi-line output puts the header on its own line, no blank lines", async () => {
    const ar = rc.directView().apply(() => {
      console.log("line 1");
      console.log("line 2");
      console.error(`oops ${id}`);
    });
    await ar;
    const out = capture(() => ar.displayOutputs());
    assert.equal(out.stdout, "[stdout:0]\nline 1\nline 2\n[stdout:1]\nline 1\nline 2\n");
    assert.equal(out.stderr, "[stderr:0] oops 0\n[stderr:1] oops 1\n");
    assert.ok(!out.stdout.includes("\n\n"));
  });

  it("displayOutputs groupby: 'type' (all stdout, then stderr), 'engine' (engine by engine), 'order'", async () => {
    const ar = rc.directView().apply(() => {
      console.log(`out ${id}`);
      console.error(`err ${id}`);
    });
    await ar;
    const both = (groupby?: "type" | "engine" | "order") => {
      const lines: string[] = [];
      const originals = { stdout: process.stdout.write, stderr: process.stderr.write };
      process.stdout.write = process.stderr.write = ((chunk: string) => lines.push(chunk)) as unknown as typeof process.stdout.write;
      try {
        ar.displayOutputs(groupby);
      } finally {
        process.stdout.write = originals.stdout;
        process.stderr.write = originals.stderr;
      }
      return lines.join("");
    };
    const byType = "[stdout:0] out 0\n[stdout:1] out 1\n[stderr:0] err 0\n[stderr:1] err 1\n";
    assert.equal(both(), byType);
    assert.equal(both("type"), byType);
    assert.equal(both("order"), byType, "as ipyparallel: 'order' collates rich outputs, streams go by type");
    assert.equal(both("engine"), "[stdout:0] out 0\n[stderr:0] err 0\n[stdout:1] out 1\n[stderr:1] err 1\n");
    assert.throws(() => ar.displayOutputs("nope" as "type"), /groupby/);
  });

  it("displayOutputs shows output of failed tasks but not their errors; it needs the result ready", async () => {
    const ar = rc.directView(0).apply(() => {
      console.log("before the error");
      throw new Error("hidden");
    });
    await ar.wait();
    const out = capture(() => ar.displayOutputs());
    assert.equal(out.stdout, "[stdout:0] before the error\n");
    assert.ok(!out.stdout.includes("hidden") && !out.stderr.includes("hidden"));
    const pending = rc.directView(0).apply(nap, 0.5);
    assert.throws(() => pending.displayOutputs(), TimeoutError);
    await pending;
  });
});
