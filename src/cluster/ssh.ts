/**
 * The ssh launcher (`engineLauncher: "ssh"`, ipcluster's SSHEngineSetLauncher): each engine is
 * `ssh <host> <tsparallel> engine --file - --transport tcp`. The connection info goes down the
 * session's stdin, so no file with the key is written on the remote host, and the session's stdin
 * stays open for the engine's life: when the local ssh process ends (stop, kill, this process
 * dying), the remote engine reads end-of-file and stops.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { ConnectionInfo } from "../protocol/connfile.js";
import { ensureDir, logDir } from "../protocol/connfile.js";
import { ENGINE_MALLOC_TUNABLES } from "../engine/malloc.js";
import { childEnv, cliCommand, type Launched } from "./launcher.js";

export interface SshEngineLaunch {
  profile: string;
  clusterId: string;
  index: number;
  /** `[user@]host` as ssh takes it. */
  host: string;
  /** The engine connection info (sent on stdin; its Unix socket path is dropped: it means nothing there). */
  info: ConnectionInfo;
  /** Extra ssh arguments (`-i key`, `-p port`, `-o …`). */
  sshArgs: readonly string[];
  /** How to run tsparallel on the remote host (default: this Node and this package's CLI, by path). */
  command: string | undefined;
  env: NodeJS.ProcessEnv;
}

/** Quote for a POSIX shell (ssh hands the remote command to the user's shell). */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * The remote tsparallel command by default: the same Node and package paths (a shared or identical
 * install), with the allocator settings of local engines (`env` works in any login shell).
 */
export function defaultRemoteCommand(env: NodeJS.ProcessEnv = {}): string {
  const tunables = childEnv(env, ENGINE_MALLOC_TUNABLES).GLIBC_TUNABLES!;
  return ["env", `GLIBC_TUNABLES=${tunables}`, process.execPath, ...cliCommand()].map(shellQuote).join(" ");
}

export function launchSshEngine(opts: SshEngineLaunch): Launched {
  const path = join(ensureDir(logDir(opts.profile)), `engine-${opts.clusterId}-${opts.index}.log`);
  const fd = openSync(path, "a", 0o600);
  const remote = `${opts.command ?? defaultRemoteCommand(opts.env)} engine --file - --transport tcp`;
  // BatchMode: never stop to ask for a password or a host key on a terminal nobody watches
  const args = ["-T", "-o", "BatchMode=yes", ...opts.sshArgs, opts.host, remote];
  const child = spawn("ssh", args, { detached: true, stdio: ["pipe", fd, fd], env: { ...process.env, ...opts.env } });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  child.stdin!.on("error", () => {}); // the session may end before we write
  child.stdin!.write(`${JSON.stringify({ ...opts.info, unixPath: null })}\n`);
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.(); // held open for the engine's life, without keeping us alive
  return { pid: child.pid ?? -1, log: path, child, exited };
}

/** One entry per engine from `engineHosts` (a list, or host → count). */
export function expandHosts(hosts: readonly string[] | Readonly<Record<string, number>>): string[] {
  if (Array.isArray(hosts)) return [...hosts];
  return Object.entries(hosts).flatMap(([host, n]) => Array.from({ length: n }, () => host));
}

/** The options of Cluster that concern the ssh launcher. */
export interface SshOptions {
  engineLauncher?: "local" | "ssh" | undefined;
  engineHosts?: string[] | Record<string, number> | undefined;
  sshArgs?: string[] | undefined;
  sshCommand?: string | undefined;
  daemonize?: boolean | undefined;
  respawn?: boolean | undefined;
}

/** The ssh launcher's hosts, one per engine, or null for the local launcher; wrong options name themselves. */
export function sshHosts(opts: SshOptions): string[] | null {
  const bad = (why: string) => new TypeError(`Invalid options in Cluster(): ${why}`);
  if (opts.engineLauncher !== "ssh") {
    for (const name of ["engineHosts", "sshArgs", "sshCommand"] as const) {
      if (opts[name] !== undefined) throw bad(`"${name}" is for engineLauncher: "ssh"`);
    }
    return null;
  }
  if (opts.engineHosts === undefined) throw bad('engineLauncher "ssh" needs "engineHosts" (hosts to start engines on)');
  if (opts.daemonize === true || opts.respawn === true) {
    throw bad(`"${opts.daemonize === true ? "daemonize" : "respawn"}" is for local engines (an ssh engine stops with the session this process holds)`);
  }
  if (opts.sshArgs !== undefined && !(Array.isArray(opts.sshArgs) && opts.sshArgs.every((a) => typeof a === "string"))) {
    throw bad('"sshArgs" must be a list of strings');
  }
  const h = opts.engineHosts as unknown;
  const valid = Array.isArray(h)
    ? h.every((x) => typeof x === "string" && x !== "")
    : typeof h === "object" && h !== null && Object.values(h).every((n) => Number.isInteger(n) && (n as number) >= 0);
  if (!valid) throw bad('"engineHosts" must be a list of hosts or an object of host → number of engines');
  const hosts = expandHosts(opts.engineHosts);
  if (hosts.length === 0) throw bad('"engineHosts" names no engine');
  return hosts;
}
