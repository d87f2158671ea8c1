/**
 * Engines on other hosts: two network namespaces joined to this one by veth pairs stand for two
 * machines. The controller binds to this side's address with TLS; each "host" runs
 * `tsparallel engine --file <copied engine file>` (the file as a user would copy it: no Unix
 * socket there), and a client here reaches them only through the controller over the network.
 * Needs root and iproute2 (`.ci/run` installs it); it fails, never skips, without them.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Client, Cluster, EngineError } from "tsparallel";
import { TEST_DIR, until } from "./helpers.ts";
import { makeNetwork, type TestNetwork } from "./netns.ts";

const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

/** Runs on an engine: its host's address. */
const where = () => {
  const nets = (globalThis as unknown as { require: NodeRequire }).require("node:os").networkInterfaces() as Record<string, Array<{ address: string; family: string }>>;
  return (nets.eth0 ?? []).find((a) => a.family === "IPv4")?.address ?? null;
};

describe("multihost - engines on two other hosts, over TLS", () => {
  let cluster: Cluster;
  let rc: Client;
  let net: TestNetwork;
  let firstIds: number[] = [];
  const hostIds = () => firstIds;
  /** The engine on the first host (the one cut off below). */
  let firstHostEngine = -1;
  /** Written by a task queued on that engine behind a long one when the network is cut: it must never run. */
  const ranAfterCut = join(TEST_DIR, "ran-after-cut");

  before(async () => {
    net = makeNetwork("m", 2);
    cluster = new Cluster({ n: 0, ip: net.hereIp, tls: true, transport: "tcp", clusterId: "multihost", heartbeatPeriod: 0.25 });
    await cluster.start();
    // the engine file as copied to another machine: the Unix socket path means nothing there
    const info = JSON.parse(readFileSync(cluster.engineConnectionFile, "utf8")) as Record<string, unknown>;
    info.unixPath = null;
    const file = join(TEST_DIR, "engine-elsewhere.json");
    writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
    for (const h of net.hosts) {
      h.procs.push(spawn("ip", ["netns", "exec", h.ns, process.execPath, CLI, "engine", "--file", file, "--log-level", "warn"], {
        stdio: "ignore", env: { ...process.env, TSPARALLEL_DIR: TEST_DIR },
      }));
    }
    rc = await Client.connect({ connectionFile: cluster.connectionFile, transport: "tcp", timeout: 20 });
    await rc.waitForEngines(2, { timeout: 60 });
  });

  after(async () => {
    await rc?.close();
    await cluster?.stop();
    net?.remove();
  });

  it("each engine runs on its own host and answers through the controller", async () => {
    const places = (await rc.directView().applySync(where)) as string[];
    assert.deepEqual([...places].sort(), net.hosts.map((h) => h.ip).sort(), "one engine per host, each with that host's address");
    firstIds = [...rc.ids];
    firstHostEngine = firstIds[places.indexOf(net.hosts[0]!.ip)]!;
  });

  it("moves data both ways and load-balances across the hosts", async () => {
    const data = Float64Array.from({ length: 500_000 }, (_, i) => Math.sqrt(i));
    const dv = rc.directView(rc.ids[1]!);
    const before = (await rc.controllerStats()).passedOn.messages;
    await dv.push({ data });
    assert.deepEqual(await dv.pull("data"), data);
    // 4 MB each way: the controller passed both on while they arrived, over TLS
    assert.ok((await rc.controllerStats()).passedOn.messages >= before + 2);
    const amr = rc.loadBalancedView().map((x: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      return x * x;
    }, Array.from({ length: 40 }, (_, i) => i), { chunksize: 1 });
    assert.deepEqual(await amr.get(60), Array.from({ length: 40 }, (_, i) => i * i));
    assert.equal(new Set(amr.metadata.map((m) => m.engineId)).size, 2, "both hosts took tasks");
  });

  it("a host cut off from the network (no FIN, no RST) is declared dead by its missed heartbeats; what was queued there does not run", async () => {
    const before = [...rc.ids];
    // a long task, and one queued behind it, on the host about to be cut off
    const startedFile = join(TEST_DIR, "long-started");
    const dv = rc.directView(firstHostEngine);
    const long = dv.apply((path: string) => {
      (globalThis as unknown as { require: NodeRequire }).require("node:fs").writeFileSync(path, "started");
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);
      return 1;
    }, startedFile);
    const queued = dv.apply((path: string) => {
      (globalThis as unknown as { require: NodeRequire }).require("node:fs").writeFileSync(path, "ran");
      return 2;
    }, ranAfterCut);
    await until(() => existsSync(startedFile), 20_000, "the long task to start");
    const started = Date.now();
    net.exec(net.hosts[0]!, "ip", ["link", "set", "eth0", "down"]);
    await until(() => rc.ids.length === 1, 30_000, "the cut-off engine to be unregistered");
    const took = Date.now() - started;
    assert.ok(took >= 1000, `declared dead after ${took} ms: by heartbeats (8 × 0.25 s), not by a closed socket`);
    assert.equal(before.includes(rc.ids[0]!), true);
    assert.equal(await rc.directView(rc.ids[0]!).applySync(() => 1 + 1), 2, "the other host keeps serving");
    await assert.rejects(long.get(10), (err: Error) => err instanceof EngineError);
    await assert.rejects(queued.get(10), (err: Error) => err instanceof EngineError);
    // the engine, still connected as far as it knows, finished the long task 3 s after the cut;
    // it heard no heartbeat for longer than the controller allows, so it holds the queued one
    await until(() => Date.now() - started > 4500, 10_000, "the long task to have ended over there");
    assert.equal(existsSync(ranAfterCut), false, "a task the controller gave up on did not run on the cut-off engine");
  });

  it("when the network comes back, the cut-off engine reconnects and gets its own id back", async () => {
    const lost = hostIds().filter((id) => !rc.ids.includes(id));
    assert.equal(lost.length, 1);
    net.exec(net.hosts[0]!, "ip", ["link", "set", "eth0", "up"]);
    await until(() => rc.ids.length === 2, 60_000, "the engine to come back");
    assert.deepEqual(rc.ids, hostIds(), "the same ids as before the cut");
    const back = await rc.directView(lost[0]!).applySync(where);
    assert.equal(back, net.hosts[0]!.ip, "it is the engine of the host that was cut off");
    assert.equal(existsSync(ranAfterCut), false, "the task held while cut off was dropped with its connection, never run");
  });
});
