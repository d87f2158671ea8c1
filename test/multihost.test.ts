/**
 * Engines on other hosts: two network namespaces joined to this one by veth pairs stand for two
 * machines. The controller binds to this side's address with TLS; each "host" runs
 * `tsparallel engine --file <copied engine file>` (the file as a user would copy it: no Unix
 * socket there), and a client here reaches them only through the controller over the network.
 * Needs root and iproute2 (`.ci/run` installs it); it fails, never skips, without them.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { Client, Cluster } from "tsparallel";
import { TEST_DIR, until } from "./helpers.ts";

const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const tag = (process.pid % 50_000).toString(36);
const subnet = 10 + (process.pid % 200); // 10.213.<subnet>.0/24
const HOST_IP = `10.213.${subnet}.1`;

interface Host {
  ns: string;
  vethHere: string;
  ip: string;
  engine: ChildProcess | null;
}

const hosts: Host[] = [0, 1].map((i) => ({ ns: `tsp-${tag}-${i}`, vethHere: `tsp${tag}h${i}`, ip: `10.213.${subnet}.${10 + i}`, engine: null }));
const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

function makeHosts(): void {
  // a bridge here joins both hosts' veths, like a switch
  ip("link", "add", `tsp${tag}br`, "type", "bridge");
  ip("addr", "add", `${HOST_IP}/24`, "dev", `tsp${tag}br`);
  ip("link", "set", `tsp${tag}br`, "up");
  for (const h of hosts) {
    ip("netns", "add", h.ns);
    ip("link", "add", h.vethHere, "type", "veth", "peer", "name", `${h.vethHere}x`);
    ip("link", "set", `${h.vethHere}x`, "netns", h.ns);
    ip("link", "set", h.vethHere, "master", `tsp${tag}br`);
    ip("link", "set", h.vethHere, "up");
    ip("netns", "exec", h.ns, "ip", "link", "set", "lo", "up");
    ip("netns", "exec", h.ns, "ip", "link", "set", `${h.vethHere}x`, "name", "eth0");
    ip("netns", "exec", h.ns, "ip", "addr", "add", `${h.ip}/24`, "dev", "eth0");
    ip("netns", "exec", h.ns, "ip", "link", "set", "eth0", "up");
  }
}

function removeHosts(): void {
  for (const h of hosts) {
    if (h.engine?.pid !== undefined && h.engine.exitCode === null) h.engine.kill("SIGKILL");
    for (const args of [["link", "del", h.vethHere], ["netns", "del", h.ns]]) {
      try {
        ip(...args); // the pair goes with this end (the namespace's own teardown is asynchronous)
      } catch {
        // not made, or already gone
      }
    }
  }
  try {
    ip("link", "del", `tsp${tag}br`);
  } catch {
    // not made
  }
}

describe("multihost - engines on two other hosts, over TLS", () => {
  let cluster: Cluster;
  let rc: Client;

  before(async () => {
    process.on("exit", removeHosts);
    try {
      makeHosts();
    } catch (err) {
      removeHosts();
      throw new Error(`cannot make network namespaces (needs root and iproute2): ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
    }
    cluster = new Cluster({ n: 0, ip: HOST_IP, tls: true, transport: "tcp", clusterId: `multihost-${tag}`, heartbeatPeriod: 0.25 });
    await cluster.start();
    // the engine file as copied to another machine: the Unix socket path means nothing there
    const info = JSON.parse(readFileSync(cluster.engineConnectionFile, "utf8")) as Record<string, unknown>;
    info.unixPath = null;
    const file = join(TEST_DIR, "engine-elsewhere.json");
    writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
    for (const h of hosts) {
      h.engine = spawn("ip", ["netns", "exec", h.ns, process.execPath, CLI, "engine", "--file", file, "--log-level", "warn"], {
        stdio: "ignore", env: { ...process.env, TSPARALLEL_DIR: TEST_DIR },
      });
    }
    rc = await Client.connect({ connectionFile: cluster.connectionFile, transport: "tcp", timeout: 20 });
    await rc.waitForEngines(2, { timeout: 60 });
  });

  after(async () => {
    await rc?.close();
    await cluster?.stop();
    removeHosts();
  });

  it("each engine runs on its own host and answers through the controller", async () => {
    const where = await rc.directView().applySync(() => {
      const nets = (globalThis as unknown as { require: NodeRequire }).require("node:os").networkInterfaces() as Record<string, Array<{ address: string; family: string }>>;
      return (nets.eth0 ?? []).filter((a) => a.family === "IPv4").map((a) => a.address)[0] ?? null;
    });
    assert.deepEqual([...(where as string[])].sort(), hosts.map((h) => h.ip).sort(), "one engine per host, each with that host's address");
    const hostOf = new Map(rc.ids.map((id, i) => [id, (where as string[])[i]]));
    assert.equal(new Set(hostOf.values()).size, 2);
  });

  it("moves data both ways and load-balances across the hosts", async () => {
    const data = Float64Array.from({ length: 500_000 }, (_, i) => Math.sqrt(i));
    const dv = rc.directView(rc.ids[1]!);
    await dv.push({ data });
    assert.deepEqual(await dv.pull("data"), data);
    const amr = rc.loadBalancedView().map((x: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      return x * x;
    }, Array.from({ length: 40 }, (_, i) => i), { chunksize: 1 });
    assert.deepEqual(await amr.get(60), Array.from({ length: 40 }, (_, i) => i * i));
    assert.equal(new Set(amr.metadata.map((m) => m.engineId)).size, 2, "both hosts took tasks");
  });

  it("a host cut off from the network (no FIN, no RST) is declared dead by its missed heartbeats", async () => {
    const before = [...rc.ids];
    const started = Date.now();
    ip("netns", "exec", hosts[0]!.ns, "ip", "link", "set", "eth0", "down");
    await until(() => rc.ids.length === 1, 30_000, "the cut-off engine to be unregistered");
    const took = Date.now() - started;
    assert.ok(took >= 1000, `declared dead after ${took} ms: by heartbeats (8 × 0.25 s), not by a closed socket`);
    assert.equal(before.includes(rc.ids[0]!), true);
    assert.equal(await rc.directView(rc.ids[0]!).applySync(() => 1 + 1), 2, "the other host keeps serving");
  });
});
