/**
 * One peer process, in its own process group, spoken to over stdin/stdout (protocol: peerio.ts).
 * Every wait has a deadline: a peer that misses one is killed — its group and the pids it reported
 * on stderr (`BENCH_PIDS [..]`, only while the pid still names the same process) — and every later
 * request to it fails at once. After the peer exits, reported processes still running are killed
 * too and counted as leftovers.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { startTime } from "./procfs.ts";
import type { PeerOutput } from "./peerio.ts";
import { now } from "./stats.ts";

export interface Invocation {
  peer: string;
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  timeoutS: number;
}

export interface Reply {
  out: PeerOutput | null;
  error: string | null;
  seconds: number;
}

export class PeerProcess {
  readonly #child: ChildProcess;
  readonly #lines: PeerOutput[] = [];
  readonly #reported = new Map<number, string>();
  #waiter: (() => void) | null = null;
  #stderr = "";
  #exited: Promise<void>;
  #dead: string | null = null;
  leftovers = 0;
  readonly inv: Invocation;

  constructor(inv: Invocation, verbose = false) {
    this.inv = inv;
    this.#child = spawn(inv.cmd, inv.args, {
      detached: true, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...inv.env },
    });
    createInterface({ input: this.#child.stdout! }).on("line", (l) => this.#onLine(l));
    this.#child.stderr!.on("data", (b: Buffer) => this.#onStderr(b.toString(), verbose));
    this.#child.stdin!.on("error", () => { /* the peer died: seen through #exited */ });
    this.#exited = new Promise((resolve) => {
      this.#child.on("exit", (code, signal) => {
        this.#dead ??= `exited (${code ?? signal}): ${this.#stderrTail()}`;
        this.#wake();
        resolve();
      });
      this.#child.on("error", (e) => {
        this.#dead ??= `could not start ${inv.cmd}: ${e.message}`;
        this.#wake();
        resolve();
      });
    });
  }

  /** The next JSON line (the ready line right after the start). */
  next(timeoutS = this.inv.timeoutS): Promise<Reply> {
    return this.#nextLine(timeoutS);
  }

  /** Ask for some cases and wait for their line. */
  request(cases: string[], timeoutS = this.inv.timeoutS): Promise<Reply> {
    if (this.#dead === null) this.#child.stdin!.write(`${cases.join(",")}\n`);
    return this.#nextLine(timeoutS);
  }

  /** Close stdin (the peer stops its cluster and exits); kill it if it takes longer than timeoutS. */
  async stop(timeoutS = 60): Promise<void> {
    this.resume();
    this.#child.stdin!.end();
    if (!(await this.#exitWithin(timeoutS))) this.kill(`stop took longer than ${timeoutS} s`);
    await this.#exitWithin(5);
    this.#killGroup("SIGKILL");
    this.leftovers += this.#killReported();
  }

  /** Every JSON line the peer printed until it exited (for one-shot peers). */
  async collect(): Promise<Reply> {
    const t0 = now();
    if (!(await this.#exitWithin(this.inv.timeoutS))) this.kill(`timeout after ${this.inv.timeoutS} s`);
    await this.stop(5);
    const out = mergeLines(this.inv.peer, this.#lines.splice(0));
    const failed = this.#dead !== null && !/^exited \(0\)/.test(this.#dead);
    return { out, error: out === null || failed ? this.#dead : null, seconds: now() - t0 };
  }

  /** Freeze the whole process group (all of the peer's processes at once, so their clocks agree). */
  pause(): void {
    if (this.#dead === null) this.#killGroup("SIGSTOP");
  }

  resume(): void {
    this.#killGroup("SIGCONT");
  }

  kill(reason: string): void {
    this.#dead = reason;
    this.#killGroup("SIGTERM");
    this.#killGroup("SIGCONT"); // a paused peer would never see the TERM
    setTimeout(() => { this.#killGroup("SIGKILL"); this.leftovers += this.#killReported(); }, 2000).unref();
    this.#wake();
  }

  async #nextLine(timeoutS: number): Promise<Reply> {
    const t0 = now();
    const deadline = setTimeout(() => this.kill(`timeout after ${timeoutS} s`), timeoutS * 1000);
    while (this.#lines.length === 0 && this.#dead === null) await new Promise<void>((r) => { this.#waiter = r; });
    clearTimeout(deadline);
    const out = this.#lines.shift() ?? null;
    return { out, error: out ? null : this.#dead, seconds: now() - t0 };
  }

  async #exitWithin(timeoutS: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), timeoutS * 1000); });
    const ok = await Promise.race([this.#exited.then(() => true), late]);
    clearTimeout(timer);
    return ok;
  }

  #onLine(line: string): void {
    if (!line.startsWith("{")) return;
    try {
      this.#lines.push(JSON.parse(line) as PeerOutput);
      this.#wake();
    } catch { /* not our line */ }
  }

  #onStderr(s: string, verbose: boolean): void {
    this.#stderr = (this.#stderr + s).slice(-4000);
    for (const m of s.matchAll(/^BENCH_PIDS (\[[^\]]*\])/gm)) {
      for (const pid of JSON.parse(m[1]!) as number[]) this.#reported.set(pid, startTime(pid));
    }
    if (verbose) process.stderr.write(`  [${this.inv.peer}] ${s}`);
  }

  #stderrTail(): string {
    return this.#stderr.trim().split("\n").filter((l) => !l.startsWith("BENCH_PIDS")).slice(-3).join(" | ");
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }

  #killGroup(sig: NodeJS.Signals): void {
    try { process.kill(-this.#child.pid!, sig); } catch { /* group already gone */ }
  }

  /** Kill reported pids that are still the processes that were reported; returns how many. */
  #killReported(): number {
    let killed = 0;
    for (const [pid, started] of this.#reported) {
      if (started === "" || startTime(pid) !== started) continue;
      try { process.kill(pid, "SIGKILL"); killed++; } catch { /* exited meanwhile */ }
    }
    this.#reported.clear();
    return killed;
  }
}

function mergeLines(peer: string, lines: PeerOutput[]): PeerOutput | null {
  if (lines.length === 0) return null;
  const out: PeerOutput = { peer, results: {}, errors: {} };
  for (const l of lines) {
    Object.assign(out.results, l.results);
    Object.assign(out.errors, l.errors);
  }
  return out;
}
