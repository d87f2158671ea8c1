/**
 * Test hosts: network namespaces joined to this one by veth pairs on a bridge, so each stands for
 * a machine on a LAN (own address, own eth0; the filesystem is shared). Needs root and iproute2
 * (`.ci/run` installs it when missing); failing to make them is an error, never a skip. An sshd in
 * a host makes it reachable by `ssh`, as a real machine would be.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "./helpers.ts";

export interface TestHost {
  ns: string;
  ip: string;
  /** Processes started in this host by the test (killed by `remove`). */
  procs: ChildProcess[];
}

export interface TestNetwork {
  /** This side's address on the bridge: where a controller listens for the hosts. */
  hereIp: string;
  hosts: TestHost[];
  /** Run a command in a host (`ip netns exec`). */
  exec(host: TestHost, cmd: string, args: string[]): void;
  remove(): void;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

/**
 * A tag (for interface and namespace names, at most 15 characters) and a /24 that nothing on this host
 * uses yet: a test run killed before its cleanup leaves its network behind, and a new one on the same
 * subnet would route its engines' packets to the old bridge.
 */
function freeSlot(name: string): { tag: string; subnet: number } {
  const read = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "ignore"] }).toString();
  const used = `${read("-o", "link", "show")}\n${read("-o", "-4", "addr", "show")}\n${read("netns", "list")}`;
  for (let k = 0; k < 200; k++) {
    const tag = `${name}${((process.pid + k) % 1296).toString(36)}`;
    const subnet = 10 + ((process.pid + k) % 200) + (name.charCodeAt(0) % 40);
    if (!used.includes(` tsp${tag}b:`) && !used.includes(`tsp-${tag}-`) && !used.includes(`10.213.${subnet}.`)) return { tag, subnet };
  }
  throw new Error("no free subnet for test hosts: remove the tsp* interfaces and namespaces of earlier runs");
}

/** `count` hosts on their own /24; `name` keeps the interfaces of different test files apart. */
export function makeNetwork(name: string, count: number): TestNetwork {
  const { tag, subnet } = freeSlot(name);
  const bridge = `tsp${tag}b`;
  const hosts: TestHost[] = Array.from({ length: count }, (_, i) => ({ ns: `tsp-${tag}-${i}`, ip: `10.213.${subnet}.${10 + i}`, procs: [] }));
  const remove = () => {
    for (const [i, h] of hosts.entries()) {
      for (const p of h.procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
      for (const args of [["link", "del", `tsp${tag}h${i}`], ["netns", "del", h.ns]]) {
        try {
          ip(...args); // the pair goes with this end (a namespace's own teardown is asynchronous)
        } catch {
          // not made, or already gone
        }
      }
    }
    try {
      ip("link", "del", bridge);
    } catch {
      // not made
    }
  };
  process.on("exit", remove);
  try {
    ip("link", "add", bridge, "type", "bridge");
    ip("addr", "add", `10.213.${subnet}.1/24`, "dev", bridge);
    ip("link", "set", bridge, "up");
    for (const [i, h] of hosts.entries()) {
      const veth = `tsp${tag}h${i}`;
      ip("netns", "add", h.ns);
      ip("link", "add", veth, "type", "veth", "peer", "name", `${veth}x`);
      ip("link", "set", `${veth}x`, "netns", h.ns);
      ip("link", "set", veth, "master", bridge);
      ip("link", "set", veth, "up");
      ip("netns", "exec", h.ns, "ip", "link", "set", "lo", "up");
      ip("netns", "exec", h.ns, "ip", "link", "set", `${veth}x`, "name", "eth0");
      ip("netns", "exec", h.ns, "ip", "addr", "add", `${h.ip}/24`, "dev", "eth0");
      ip("netns", "exec", h.ns, "ip", "link", "set", "eth0", "up");
    }
  } catch (err) {
    remove();
    throw new Error(`cannot make network namespaces (needs root and iproute2): ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
  return {
    hereIp: `10.213.${subnet}.1`,
    hosts,
    exec: (host, cmd, args) => execFileSync("ip", ["netns", "exec", host.ns, cmd, ...args], { stdio: ["ignore", "ignore", "pipe"] }),
    remove,
  };
}

/** A key pair for logging in to the test hosts; the ssh arguments that use it without questions. */
export function sshIdentity(dir: string): { key: string; sshArgs: string[] } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = join(dir, "user_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  return { key, sshArgs: ["-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"] };
}

/** Start sshd in `host`, letting root in with `identity`'s key; resolves once a login works. */
export async function startSshd(host: TestHost, dir: string, identity: { key: string; sshArgs: string[] }): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege-separation directory
  const hostKey = join(dir, "host_ed25519");
  const userKey = identity.key;
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  execFileSync("cp", [`${userKey}.pub`, join(dir, "authorized_keys")]);
  const config = join(dir, "sshd_config");
  writeFileSync(config, [
    `ListenAddress ${host.ip}`, "Port 22", `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
    "StrictModes no", "PidFile none", "LogLevel ERROR", "",
  ].join("\n"));
  const sshd = spawn("ip", ["netns", "exec", host.ns, "/usr/sbin/sshd", "-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  sshd.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  host.procs.push(sshd);
  const sshArgs = identity.sshArgs;
  await until(() => {
    if (sshd.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    try {
      execFileSync("ssh", [...sshArgs, "-o", "BatchMode=yes", "-o", "ConnectTimeout=2", `root@${host.ip}`, "true"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  }, 20_000, `sshd on ${host.ip}`);
}
