/**
 * `engineLauncher: "ssh"`: engines started by ssh on two test hosts (network namespaces, each with
 * its own sshd), reaching the controller over TLS. The connection info goes down the ssh session,
 * so no key file is written there; stopping an engine, or the cluster, ends its session and the
 * remote process with it.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, Cluster, RemoteError } from "tsparallel";
import { alive, TEST_DIR, until } from "./helpers.ts";
import { makeNetwork, sshIdentity, startSshd, type TestHost, type TestNetwork } from "./netns.ts";

const CLI = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));

/** Pids of tsparallel engines running in a host's network namespace. */
function enginesIn(host: TestHost): number[] {
  const pids = execFileSync("ip", ["netns", "pids", host.ns], { encoding: "utf8" }).split(/\s+/).filter(Boolean).map(Number);
  return pids.filter((pid) => {
    try {
      return execFileSync("cat", [`/proc/${pid}/cmdline`], { encoding: "utf8" }).includes("engine\0--file\0-");
    } catch {
      return false;
    }
  });
}

const where = () => {
  const nets = (globalThis as unknown as { require: NodeRequire }).require("node:os").networkInterfaces() as Record<string, Array<{ address: string; family: string }>>;
  return (nets.eth0 ?? []).find((a) => a.family === "IPv4")?.address ?? "here";
};

describe("ssh launcher - engines on two hosts by ssh", () => {
  let net: TestNetwork;
  let cluster: Cluster;
  let rc: Client;
  let identity: { key: string; sshArgs: string[] };

  before(async () => {
    net = makeNetwork("s", 2);
    identity = sshIdentity(join(TEST_DIR, "ssh-user"));
    await Promise.all(net.hosts.map((h, i) => startSshd(h, join(TEST_DIR, `sshd-${i}`), identity)));
    const [a, b] = net.hosts.map((h) => `root@${h.ip}`) as [string, string];
    cluster = new Cluster({
      engineLauncher: "ssh", engineHosts: { [a]: 2, [b]: 1 }, sshArgs: identity.sshArgs,
      ip: net.hereIp, tls: true, heartbeatPeriod: 0.25, clusterId: "by-ssh",
    });
    rc = await cluster.startAndConnect({ timeout: 30 });
  });

  after(async () => {
    await cluster?.stop();
    net?.remove();
  });

  it("starts n = 3 engines where engineHosts says, each reaching the controller over the network", async () => {
    assert.equal(cluster.n, 3);
    assert.deepEqual(rc.ids, [0, 1, 2]);
    const places = (await rc.directView().applySync(where)) as string[];
    assert.deepEqual([...places].sort(), [net.hosts[0]!.ip, net.hosts[0]!.ip, net.hosts[1]!.ip].sort());
    assert.equal(enginesIn(net.hosts[0]!).length, 2);
    assert.equal(enginesIn(net.hosts[1]!).length, 1);
    const amr = rc.loadBalancedView().map((x: number) => x * 2, [1, 2, 3, 4, 5, 6], { chunksize: 1 });
    assert.deepEqual(await amr.get(30), [2, 4, 6, 8, 10, 12]);
  });

  it("stopEngines(ids) ends those engines and their ssh sessions; addEngines starts more on the hosts in turn", async () => {
    const sessions = cluster.pids.engines;
    await cluster.stopEngines([rc.ids[0]!]);
    await until(() => rc.ids.length === 2, 20_000, "the engine to leave");
    await until(() => cluster.pids.engines.length === 2, 20_000, "its ssh session to end");
    assert.equal(sessions.filter((p) => !alive(p)).length, 1);
    await cluster.addEngines(1);
    await until(() => rc.ids.length === 3, 30_000, "the added engine");
    assert.equal(await rc.directView(rc.ids.at(-1)!).applySync(() => 40 + 2), 42);
  });

  it("signalEngines reaches ssh engines through their hearts: SIGINT interrupts a running task", async () => {
    const id = rc.ids[0]!;
    const marker = join(TEST_DIR, "ssh-task-started"); // the hosts share this filesystem
    const ar = rc.directView(id).apply((path: string) => {
      (globalThis as unknown as { require: NodeRequire }).require("node:fs").writeFileSync(path, "started");
      const end = Date.now() + 20_000;
      while (Date.now() < end);
      return "not interrupted";
    }, marker);
    await until(() => existsSync(marker), 10_000, "the task to start");
    await cluster.signalEngines("SIGINT");
    const err = await ar.get(15).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof RemoteError && /interrupt/i.test(`${err.ename} ${err.evalue}`), `interrupted: ${String(err)}`);
    assert.equal(await rc.directView(id).applySync(() => "still serving"), "still serving");
  });

  it("stop ends every session and leaves no engine running on the hosts", async () => {
    const sessions = cluster.pids.engines;
    await cluster.stop();
    assert.ok(sessions.every((p) => !alive(p)), "ssh sessions ended");
    await until(() => net.hosts.every((h) => enginesIn(h).length === 0), 15_000, "the remote engines to stop");
  });

  it("tsparallel cluster start --engine-launcher ssh --engine-hosts a=2,b runs in the foreground; Ctrl-C stops it all", async () => {
    const [a, b] = net.hosts.map((h) => `root@${h.ip}`) as [string, string];
    const cli = spawn(process.execPath, [
      CLI, "cluster", "start", "--profile", "sshcli", "--cluster-id", "ssh-cli", "--ip", net.hereIp, "--tls",
      "--engine-launcher", "ssh", "--engine-hosts", `${a}=2,${b}`, "--ssh-args", identity.sshArgs.join(" "),
    ], { env: { ...process.env, TSPARALLEL_DIR: TEST_DIR }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    cli.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    cli.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await until(() => /press Ctrl-C/.test(out), 60_000, `the cluster to start (output: ${out})`);
      assert.match(out, /3 engines/);
      const other = await Client.connect({ profile: "sshcli", clusterId: "ssh-cli" });
      try {
        assert.deepEqual(((await other.directView().applySync(where)) as string[]).sort(), [net.hosts[0]!.ip, net.hosts[0]!.ip, net.hosts[1]!.ip].sort());
      } finally {
        await other.close();
      }
      cli.kill("SIGINT");
      await until(() => cli.exitCode !== null, 30_000, "the command to stop the cluster and exit");
      assert.match(out, /stopped/);
      await until(() => net.hosts.every((h) => enginesIn(h).length === 0), 15_000, "the remote engines to stop");
    } finally {
      if (cli.exitCode === null) cli.kill("SIGKILL");
    }
  });

  it("a host ssh cannot reach fails the start at once, with ssh's own words", async () => {
    const started = Date.now();
    const bad = new Cluster({
      engineLauncher: "ssh", engineHosts: [`root@${net.hosts[0]!.ip}`], sshArgs: ["-p", "2222", "-o", "ConnectTimeout=5"],
      ip: net.hereIp, clusterId: "ssh-nowhere",
    });
    const err = await bad.startAndConnect({ timeout: 30 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, /ssh session of an engine ended before the cluster was up.*Connection refused/);
    assert.ok(Date.now() - started < 20_000, "not after the 60 s engine timeout");
    assert.equal(bad.pids.controller === null || !alive(bad.pids.controller), true, "the failed start cleaned up");
  });

  it("wrong ssh options name themselves", () => {
    assert.throws(() => new Cluster({ engineLauncher: "ssh" }), /"engineHosts"/);
    assert.throws(() => new Cluster({ engineHosts: ["a"] }), /"engineHosts" is for engineLauncher: "ssh"/);
    assert.throws(() => new Cluster({ engineLauncher: "ssh", engineHosts: { a: 2 }, n: 3 }), /"n" is 3 but "engineHosts" lists 2/);
    assert.throws(() => new Cluster({ engineLauncher: "ssh", engineHosts: ["a"], respawn: true }), /"respawn" is for local engines/);
    assert.throws(() => new Cluster({ engineLauncher: "ssh", engineHosts: { a: -1 } }), /"engineHosts" must be/);
    assert.throws(() => new Cluster({ engineLauncher: "ssh", engineHosts: ["a"], sshArgs: "-p 22" as unknown as string[] }), /"sshArgs"/);
  });
});

describe("engine --file - (what the ssh launcher runs)", () => {
  it("when its session ends (output pipes broken, something to log, stdin closed) the engine exits and its controller sees it go", async () => {
    const cluster = new Cluster({ n: 0, clusterId: "stdin-engine" });
    const rc = await cluster.startAndConnect();
    const engine = spawn(process.execPath, [CLI, "engine", "--file", "-"], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, TSPARALLEL_DIR: TEST_DIR } });
    try {
      engine.stdin!.write(`${readFileSync(cluster.engineConnectionFile, "utf8").replace(/\n/g, "")}\n`);
      await until(() => rc.ids.length === 1, 30_000, "the engine to register");
      // the session's end as the engine sees it: its output pipes break, and then it has something to log
      engine.stdout!.destroy();
      engine.stderr!.destroy();
      engine.kill("SIGINT"); // logs "ignoring SIGINT while idle" on stderr
      await new Promise((r) => setTimeout(r, 300));
      engine.stdin!.end();
      await until(() => engine.exitCode !== null || engine.signalCode !== null, 15_000, "the engine to exit");
      await until(() => rc.ids.length === 0, 15_000, "the controller to see it go");
    } finally {
      if (engine.exitCode === null && engine.signalCode === null) engine.kill("SIGKILL");
      await cluster.stop();
    }
  });
});
