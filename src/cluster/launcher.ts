/**
 * The local launcher: controller and engines as child processes of this host, each in its own
 * process group (a terminal's Ctrl-C does not reach them; stopping is ours to do), logging to the
 * profile's log directory. Every stop has a deadline: SIGTERM, then SIGKILL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ConnectionInfo } from "../protocol/connfile.js";
import { ensureDir, logDir, pidAlive, processCommandLine } from "../protocol/connfile.js";
import { ENGINE_MALLOC_TUNABLES } from "../engine/malloc.js";

export interface Launched {
  pid: number;
  log: string;
  child: ChildProcess | null;
  exited: Promise<void>;
}

/** The environment of a process we start: ours, the caller's extra variables, and `tunables` unless either sets GLIBC_TUNABLES. */
export function childEnv(extra: NodeJS.ProcessEnv, tunables: string | null): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (tunables !== null && env.GLIBC_TUNABLES === undefined) env.GLIBC_TUNABLES = tunables;
  return env;
}

/** How to run the `tsparallel` CLI with this Node (from the built package, or from source under tsx). */
export function cliCommand(): string[] {
  const here = import.meta.url;
  if (here.endsWith(".ts")) return ["--import", "tsx", fileURLToPath(new URL("../cli/main.ts", here))];
  return [fileURLToPath(new URL("../cli/main.js", here))];
}

function openLog(profile: string, name: string): { fd: number; path: string } {
  const path = join(ensureDir(logDir(profile)), `${name}.log`);
  return { fd: openSync(path, "a", 0o600), path };
}

/**
 * V8 flags of the controller we start. A controller's records of a burst of tasks live until the
 * burst ends, so they survive young-generation collections; after an idle spell V8 shrank its young
 * generation to 1 MB and grew the old one slowly, and the first large map after a rest paid ~2× the
 * controller's CPU per task in extra collections (docs/performance.md, "A rested controller").
 * These keep the young generation at its usual 16 MB and the old one's growth as it was.
 */
export const CONTROLLER_V8_FLAGS: readonly string[] = ["--min-semi-space-size=16", "--no-memory-reducer"];

function launch(args: string[], profile: string, logName: string, ipc: boolean, env: NodeJS.ProcessEnv, v8Flags: readonly string[] = []): Launched {
  const log = openLog(profile, logName);
  const stdio: Array<"ignore" | "ipc" | number> = ["ignore", log.fd, log.fd];
  if (ipc) stdio.push("ipc");
  const child = spawn(process.execPath, [...v8Flags, ...cliCommand(), ...args], { detached: true, stdio, env });
  closeSync(log.fd);
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  child.unref();
  return { pid: child.pid ?? -1, log: log.path, child, exited };
}

/** The error a process that failed wrote last to its log (the CLI's "tsparallel: …" line), as ": <line>", or "". */
export function lastWords(path: string): string {
  try {
    const lines = readFileSync(path, "utf8").slice(-8192).trim().split("\n");
    const line = (lines.findLast((l) => l.startsWith("tsparallel: ")) ?? lines.at(-1) ?? "").trim();
    return line === "" ? "" : `: ${line.replace(/^tsparallel: /, "").slice(0, 1000)}`;
  } catch {
    return "";
  }
}

export interface ControllerLaunch {
  profile: string;
  clusterId: string;
  args: string[];
  ownerPid: number | null;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** Start the controller; resolves with its connection info once it listens. */
export async function launchController(opts: ControllerLaunch): Promise<{ proc: Launched; info: ConnectionInfo }> {
  const args = ["controller", "--profile", opts.profile, "--cluster-id", opts.clusterId, ...opts.args];
  if (opts.ownerPid !== null) args.push("--owner-pid", String(opts.ownerPid));
  const proc = launch(args, opts.profile, `controller-${opts.clusterId}`, true, childEnv(opts.env ?? {}, null), CONTROLLER_V8_FLAGS);
  const child = proc.child!;
  let onExit: (code: number | null) => void = () => {};
  const info = await new Promise<ConnectionInfo>((resolve, reject) => {
    const timer = setTimeout(() => fail(`the controller did not start within ${opts.timeoutMs / 1000} s`), opts.timeoutMs);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${why} (log: ${proc.log})`));
    };
    child.once("message", (m: { ready?: boolean; info?: ConnectionInfo }) => {
      clearTimeout(timer);
      if (m.ready === true && m.info !== undefined) resolve(m.info);
      else fail("the controller sent an unexpected start message");
    });
    onExit = (code) => fail(`the controller exited during start (code ${code})${lastWords(proc.log)}`);
    child.once("exit", onExit);
  });
  child.off("exit", onExit);
  if (child.connected) child.disconnect();
  return { proc, info };
}

export interface EngineLaunch {
  profile: string;
  clusterId: string;
  engineFile: string;
  index: number;
  args: string[];
  ownerPid: number | null;
  env?: NodeJS.ProcessEnv;
}

export function launchEngine(opts: EngineLaunch): Launched {
  const args = ["engine", "--file", opts.engineFile, ...opts.args];
  if (opts.ownerPid !== null) args.push("--owner-pid", String(opts.ownerPid));
  return launch(args, opts.profile, `engine-${opts.clusterId}-${opts.index}`, false, childEnv(opts.env ?? {}, ENGINE_MALLOC_TUNABLES));
}

/** Stop a process: SIGTERM, wait up to `graceMs`, then SIGKILL. Resolves when it is gone. */
export async function stopProcess(p: { pid: number; exited?: Promise<void> | null }, graceMs = 3000): Promise<void> {
  if (!signal(p.pid, "SIGTERM")) return;
  if (await exitedWithin(p, graceMs)) return;
  signal(p.pid, "SIGKILL");
  await exitedWithin(p, 2000);
}

/** Send a signal; false if there is no such process. */
export function signal(pid: number, sig: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

async function exitedWithin(p: { pid: number; exited?: Promise<void> | null }, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  if (p.exited) {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([p.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
    clearTimeout(timer);
    return done;
  }
  while (Date.now() < deadline) {
    if (!pidAlive(p.pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !pidAlive(p.pid);
}

/** Is `pid` a tsparallel process of this cluster (so we may signal it)? */
export function isOurProcess(pid: number, clusterId: string): boolean {
  const cmd = processCommandLine(pid);
  return cmd === "" ? pidAlive(pid) : cmd.includes(clusterId);
}
