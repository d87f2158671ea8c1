/** Cluster and CLI: start, connect, stop leaving nothing behind; connection files; daemonized clusters. */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Client, Cluster, listClusters } from "tsparallel";
import { CONTROLLER_V8_FLAGS, defaultRemoteCommand, ENGINE_MALLOC_TUNABLES } from "tsparallel/internal";
import { alive, TEST_DIR, until } from "./helpers.ts";

const run = promisify(execFile);
const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env: { ...process.env, TSPARALLEL_DIR: TEST_DIR }, timeout: 60_000 });

/** `tsparallel cluster start -n 1` in the foreground, once it says it is running; `out()` is what it printed so far. */
async function foreground(profile: string, clusterId: string): Promise<{ cmd: ChildProcess; out: () => string }> {
  const cmd = spawn(process.execPath, [CLI, "cluster", "start", "-n", "1", "--profile", profile, "--cluster-id", clusterId], {
    env: { ...process.env, TSPARALLEL_DIR: TEST_DIR }, stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  for (const stream of [cmd.stdout, cmd.stderr]) stream.on("data", (d: Buffer) => (text += d.toString()));
  await until(() => /press Ctrl-C/.test(text) || cmd.exitCode !== null, 30_000, "the cluster to start");
  return { cmd, out: () => text };
}

describe("cluster - lifecycle", () => {
  it("starts a controller and n engines, connects, and stops leaving no process or file behind", async () => {
    const cluster = new Cluster({ n: 2, profile: "life" });
    const rc = await cluster.startAndConnect();
    assert.deepEqual(rc.ids, [0, 1]);
    const { controller, engines } = cluster.pids;
    assert.ok(controller !== null && alive(controller));
    assert.equal(engines.length, 2);
    assert.ok(existsSync(cluster.connectionFile));
    assert.equal(statSync(cluster.connectionFile).mode & 0o777, 0o600, "connection file is private");
    assert.equal(statSync(cluster.engineConnectionFile).mode & 0o777, 0o600);
    const info = JSON.parse(readFileSync(cluster.connectionFile, "utf8"));
    assert.equal(info.ip, "127.0.0.1", "the controller binds to loopback unless told otherwise");
    assert.deepEqual(await rc.directView().apply((x: number) => x + 1, 1), [2, 2]);
    await cluster.stop();
    for (const pid of [controller!, ...engines]) assert.equal(alive(pid), false, `pid ${pid} still running`);
    assert.equal(existsSync(cluster.connectionFile), false);
    assert.equal(existsSync(cluster.engineConnectionFile), false);
    await cluster.stop(); // idempotent
  });

  it("stop succeeds when the client is closed and the engines already died", async () => {
    const cluster = new Cluster({ n: 2, profile: "dead" });
    const rc = await cluster.startAndConnect();
    await rc.close();
    for (const pid of cluster.pids.engines) process.kill(pid, "SIGKILL");
    await until(() => cluster.pids.engines.every((p) => !alive(p)), 5000, "engines to die");
    await cluster.stop();
    assert.equal(alive(cluster.pids.controller!), false);
  });

  it("Cluster.start and Symbol.asyncDispose", async () => {
    let pids: number[] = [];
    {
      const c = await Cluster.start({ n: 1, profile: "dispose" });
      try {
        const rc = await c.connectClient();
        await rc.waitForEngines(1);
        pids = [c.pids.controller!, ...c.pids.engines];
      } finally {
        await c[Symbol.asyncDispose]();
      }
    }
    assert.ok(pids.every((p) => !alive(p)));
  });

  it("Client.connect finds the profile's running cluster, and addEngines grows rc.ids", async () => {
    const cluster = new Cluster({ n: 1, profile: "find" });
    try {
      await cluster.start();
      const rc = await Client.connect({ profile: "find", timeout: 20 });
      await rc.waitForEngines(1);
      await cluster.addEngines(1);
      await rc.waitForEngines(2, { timeout: 30 });
      assert.deepEqual(rc.ids, [0, 1]);
      await rc.close();
    } finally {
      await cluster.stop();
    }
  });

  it("engines start with glibc keeping freed memory for the next large arrays (their user code does not inherit it); env GLIBC_TUNABLES='' opts out; the controller keeps glibc's defaults", async () => {
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const mine = process.env.GLIBC_TUNABLES; // a value of the caller's own wins
    const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
    // what an engine keeps mapped after it drops a 100 MB array (and collects it)
    const kept: Record<string, number> = {};
    for (const [name, env] of [["default", {}], ["opt-out", { GLIBC_TUNABLES: "" }]] as const) {
      const cluster = new Cluster({ n: 1, profile: "malloc", env: { ...env, NODE_OPTIONS: "--expose-gc" } });
      try {
        const rc = await cluster.startAndConnect();
        const dv = rc.directView(0);
        const pid = cluster.pids.engines[0]!;
        // glibc splits the variable's text in place (":" becomes NUL) as it reads it at start
        const want = name === "default" ? (mine ?? ENGINE_MALLOC_TUNABLES) : "";
        const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
        const at = raw.indexOf("GLIBC_TUNABLES=");
        assert.ok(at >= 0, `${name}: the engine started with GLIBC_TUNABLES`);
        const started = raw.slice(at + "GLIBC_TUNABLES=".length, at + "GLIBC_TUNABLES=".length + want.length).replaceAll("\0", ":");
        assert.equal(started, want, `${name}: the engine started with`);
        // the user's code, and what it starts, get the user's own environment back
        const seen = await dv.applySync(() => process.env.GLIBC_TUNABLES ?? null);
        assert.equal(seen, name === "default" ? (mine === ENGINE_MALLOC_TUNABLES ? null : (mine ?? null)) : "", `${name}: GLIBC_TUNABLES in the engine's process.env`);
        const controllerEnv = environ(cluster.pids.controller!).find((v) => v.startsWith("GLIBC_TUNABLES="));
        const expected = name === "default" ? (mine === undefined ? undefined : `GLIBC_TUNABLES=${mine}`) : "GLIBC_TUNABLES=";
        assert.equal(controllerEnv, expected, `${name}: the controller's GLIBC_TUNABLES`);
        await dv.execute("gc(); gc();");
        const idle = rssMb(pid);
        await dv.push({ big: new Float64Array(100 * 1024 * 1024 / 8) });
        await dv.execute("big = null; gc(); gc();");
        await new Promise((r) => setTimeout(r, 200));
        kept[name] = rssMb(pid) - idle;
        await rc.close();
      } finally {
        await cluster.stop();
      }
    }
    // the setting is glibc's: other C libraries ignore it (the engines then give memory back either way)
    const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;
    if (mine === undefined && glibc) {
      assert.ok(kept.default! > 60, `the default keeps the freed 100 MB mapped for reuse (kept ${kept.default!.toFixed(0)} MB)`);
      assert.ok(kept["opt-out"]! < 40, `GLIBC_TUNABLES='' gives it back (kept ${kept["opt-out"]!.toFixed(0)} MB)`);
    }
    // engines started over ssh get the same settings through the remote command
    assert.match(defaultRemoteCommand({}), new RegExp(`^env GLIBC_TUNABLES=${mine ?? ENGINE_MALLOC_TUNABLES} `));
    assert.match(defaultRemoteCommand({ GLIBC_TUNABLES: "" }), /^env GLIBC_TUNABLES= /);
  });

  it("the controller starts with V8 flags that keep its young generation and its heap's growth through idle spells; engines start without them", async () => {
    const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    assert.deepEqual([...CONTROLLER_V8_FLAGS], ["--min-semi-space-size=16", "--no-memory-reducer"]);
    const cluster = new Cluster({ n: 1, profile: "v8flags" });
    try {
      const rc = await cluster.startAndConnect();
      // flags before the script: Node hands them to V8 as the process starts
      const ctl = cmdline(cluster.pids.controller!);
      const script = ctl.findIndex((a) => a.endsWith("main.js") || a.endsWith("main.ts"));
      for (const flag of CONTROLLER_V8_FLAGS) {
        const at = ctl.indexOf(flag);
        assert.ok(at > 0 && at < script, `the controller started with ${flag} before its script: ${ctl.join(" ")}`);
      }
      const engine = cmdline(cluster.pids.engines[0]!);
      for (const flag of CONTROLLER_V8_FLAGS) assert.ok(!engine.includes(flag), `the engine started without ${flag}`);
      // and it serves as always
      assert.deepEqual(await rc.loadBalancedView().mapSync((x: number) => x * 2, [1, 2, 3]), [2, 4, 6]);
      await rc.close();
    } finally {
      await cluster.stop();
    }
  });

  it("an engine collects garbage right after a request that brought 32 MB or more, so a value a large push replaced is freed before the next task; not after smaller requests, nor when its own heap is the larger", async () => {
    const cluster = new Cluster({ n: 1, profile: "reclaim" });
    try {
      const rc = await cluster.startAndConnect();
      const dv = rc.directView(0);
      const mib = (n: number) => new Float64Array((n * 1024 * 1024) / 8);
      /** Push a new `a` over the old one; true if the old one was collected by the next task. */
      const replaced = async (size: number) => {
        await dv.execute("globalThis.gone = new WeakRef(a);");
        await dv.push({ a: mib(size) });
        return dv.applySync(() => (globalThis as unknown as { gone: WeakRef<object> }).gone.deref() === undefined);
      };
      await dv.push({ a: mib(40) });
      assert.equal(await replaced(40), true, "the 40 MB array a 40 MB push replaced is gone");
      assert.equal(await replaced(8), false, "an 8 MB push leaves collection to V8's own timing");
      // 40 MB of objects in the engine's heap: a full collection would cost more than it saves
      await dv.execute("globalThis.junk = Array.from({ length: 400000 }, (_, i) => ({ i, s: 'x' + i }));");
      assert.ok(await dv.applySync(() => process.memoryUsage().heapUsed > 20 * 1024 * 1024), "the engine's heap holds over 20 MB");
      assert.equal(await replaced(40), false, "a heap larger than half the push is left to V8");
      await dv.execute("globalThis.junk = null;");
      await rc.close();
    } finally {
      await cluster.stop();
    }
  });

  it("the controller runs under SCHED_BATCH, every thread of it, so it never preempts an engine; engines keep the normal policy; controllerSched 'normal' opts out", async () => {
    // field 41 of /proc/<pid>/task/<tid>/stat: 0 SCHED_OTHER, 3 SCHED_BATCH
    const policies = (pid: number) => readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38]);
    });
    for (const [name, opts, want] of [["default", {}, 3], ["normal", { controllerSched: "normal" }, 0]] as const) {
      const cluster = new Cluster({ n: 1, profile: `sched-${name}`, ...opts });
      try {
        const rc = await cluster.startAndConnect();
        // set before the controller reports ready, so no wait is needed here
        const controller = policies(cluster.pids.controller!);
        assert.ok(controller.length > 1, "the controller has its helper threads");
        assert.deepEqual(new Set(controller), new Set([want]), `${name}: the controller's threads`);
        assert.deepEqual(new Set(policies(cluster.pids.engines[0]!)), new Set([0]), `${name}: the engine's threads`);
        assert.equal(await rc.loadBalancedView().apply((x: number) => x + 1, 41), 42, `${name}: the cluster works`);
        await rc.close();
      } finally {
        await cluster.stop();
      }
    }
    assert.throws(() => new Cluster({ n: 1, controllerSched: "fast" } as never), /Invalid option in Cluster\(\): "controllerSched"/);
  });

  it("rejects unknown options by name", () => {
    assert.throws(() => new Cluster({ n: 1, engines: 3 } as never), /Invalid option in Cluster\(\): "engines"/);
  });

  it("waitForEngines times out with a clear error", async () => {
    const cluster = new Cluster({ n: 0, profile: "wait" });
    try {
      await cluster.start();
      const rc = await cluster.connectClient();
      await assert.rejects(rc.waitForEngines(1, { timeout: 0.3 }), /1 engines not ready in 0.3 seconds/);
    } finally {
      await cluster.stop();
    }
  });
});

describe("cluster - CLI", () => {
  after(async () => {
    await cli("cluster", "stop", "--profile", "cli").catch(() => {});
  });

  it("cluster start --daemonize, list, stop", async () => {
    const started = await cli("cluster", "start", "-n", "2", "--profile", "cli", "--daemonize", "--json");
    const summary = JSON.parse(started.stdout.trim().split("\n").pop()!);
    const pids: number[] = [summary.pids.controller, ...summary.pids.engines];
    assert.ok(pids.every(alive), "daemonized processes outlive the command");
    const rc = await Client.connect({ profile: "cli", clusterId: summary.clusterId });
    await rc.waitForEngines(2);
    assert.deepEqual(await rc.directView().apply(() => 7), [7, 7]);
    await rc.close();
    const listed = await cli("cluster", "list", "--profile", "cli");
    assert.match(listed.stdout, new RegExp(`${summary.clusterId}.*running.*2/2`));
    assert.equal(listClusters("cli").length, 1);
    const stopped = await cli("cluster", "stop", "--profile", "cli");
    assert.match(stopped.stdout, /stopped cluster/);
    await until(() => pids.every((p) => !alive(p)), 10_000, "cluster processes to exit");
    assert.equal(listClusters("cli").length, 0);
  });

  it("cluster start in the foreground keeps running until Ctrl-C, then stops everything (regression: it exited at once)", async () => {
    const { cmd, out } = await foreground("fg", "foreground");
    try {
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(cmd.exitCode, null, `still running 1.5 s later (output: ${out()})`);
      const [record] = listClusters("fg");
      const rc = await Client.connect({ profile: "fg", clusterId: "foreground" });
      try {
        await rc.waitForEngines(1);
        assert.equal(await rc.directView(0).applySync(() => "up"), "up");
      } finally {
        await rc.close();
      }
      cmd.kill("SIGINT");
      await until(() => cmd.exitCode !== null, 30_000, "the command to exit");
      assert.equal(cmd.exitCode, 0);
      assert.match(out(), /cluster foreground stopped/);
      const pids = [record!.controller.pid, ...record!.engines.map((e) => e.pid)];
      await until(() => pids.every((p) => !alive(p)), 10_000, "the cluster's processes to exit");
    } finally {
      if (cmd.exitCode === null) cmd.kill("SIGKILL");
    }
  });

  it("a foreground cluster start ends when tsparallel cluster stop stops its cluster from elsewhere", async () => {
    const { cmd, out } = await foreground("fg2", "stopped-elsewhere");
    try {
      await cli("cluster", "stop", "--profile", "fg2");
      await until(() => cmd.exitCode !== null, 20_000, "the foreground command to notice and exit");
      assert.equal(cmd.exitCode, 0);
      assert.match(out(), /stopped-elsewhere stopped \(its controller exited/);
    } finally {
      if (cmd.exitCode === null) cmd.kill("SIGKILL");
    }
  });

  it("waitStopped resolves once the controller has exited, whoever stopped it", async () => {
    const cluster = new Cluster({ n: 0, profile: "waits" });
    assert.equal(await cluster.waitStopped(), true, "not started: at once");
    await cluster.start();
    assert.equal(await cluster.waitStopped(0.3), false, "still running after its timeout");
    const waiting = cluster.waitStopped();
    process.kill(cluster.pids.controller!, "SIGTERM"); // as another process would
    assert.equal(await waiting, true);
    await cluster.stop();
    await assert.rejects(cluster.waitStopped(-1), /Invalid timeout in waitStopped\(\)/);
  });

  it("wrong options are refused with their names: --respawn with --daemonize, --db-record-limit 0", async () => {
    const both = await cli("cluster", "start", "-n", "1", "--profile", "cli", "--respawn", "--daemonize").then(() => null, (e: { stderr: string }) => e);
    assert.ok(both !== null, "the command fails");
    assert.match(both.stderr, /"respawn" needs this process to keep running/);
    const zero = await cli("cluster", "start", "-n", "1", "--profile", "cli", "--db-record-limit", "0").then(() => null, (e: { stderr: string }) => e);
    assert.ok(zero !== null, "the command fails");
    assert.match(zero.stderr, /--db-record-limit.*expected a whole number > 0/);
    const sched = await cli("cluster", "start", "-n", "1", "--profile", "cli", "--controller-sched", "fast").then(() => null, (e: { stderr: string }) => e);
    assert.ok(sched !== null, "the command fails");
    assert.match(sched.stderr, /--controller-sched.*fast.*batch, normal/);
    assert.equal(listClusters("cli").length, 0, "nothing was started");
  });

  it("a controller and an engine started by hand form a cluster", async () => {
    const { spawn } = await import("node:child_process");
    const env = { ...process.env, TSPARALLEL_DIR: TEST_DIR };
    const ctl = spawn(process.execPath, [CLI, "controller", "--profile", "hand", "--cluster-id", "byhand", "--no-unix"], { env, stdio: "ignore" });
    try {
      const rc = await Client.connect({ profile: "hand", clusterId: "byhand", timeout: 20 });
      const file = `${TEST_DIR}/profile_hand/security/tsparallel-engine-byhand.json`;
      const eng = spawn(process.execPath, [CLI, "engine", "--file", file], { env, stdio: "ignore" });
      try {
        await rc.waitForEngines(1, { timeout: 30 });
        assert.equal(await rc.directView(0).apply(() => 40 + 2), 42);
        await rc.close();
      } finally {
        eng.kill("SIGTERM");
      }
    } finally {
      ctl.kill("SIGTERM");
      await until(() => ctl.exitCode !== null || ctl.signalCode !== null, 10_000, "controller exit");
    }
  });
});
