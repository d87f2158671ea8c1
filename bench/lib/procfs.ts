/** Resident memory and process trees from /proc (Linux). */
import { readFileSync, readdirSync } from "node:fs";

/** VmRSS of one process in bytes (0 if it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Fields of /proc/<pid>/stat after the command name (index 0 = field 3, "state"); null if gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name may contain spaces and parentheses: fields restart after the last ')'
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

function parentOf(pid: number): number | null {
  const f = statFields(pid);
  return f ? Number(f[1]) : null;
}

/**
 * The process's start time (clock ticks since boot), "" if it is gone. With the pid it names one
 * process for good: unchanged by exec, different for a later process that reuses the pid.
 */
export function startTime(pid: number): string {
  return statFields(pid)?.[19] ?? "";
}

/** All live descendants of `root` (not including it). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = parentOf(Number(name));
    if (ppid === null) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    for (const c of children.get(stack.pop()!) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** The pids and every descendant of them, without duplicates. */
export function withDescendants(pids: readonly number[]): number[] {
  return [...new Set(pids.flatMap((p) => [p, ...descendants(p)]))];
}

/** The process's command line, space-joined ("" if it is gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** Sum of VmRSS in MB (1e6 B). */
export function rssMB(pids: readonly number[]): number {
  return pids.reduce((sum, p) => sum + rssBytes(p), 0) / 1e6;
}

/**
 * CPU time a process has used so far, in ms; NaN once it is gone. The sum of its live threads' run
 * time from /proc/<pid>/task/<tid>/schedstat (nanoseconds), else utime + stime from /proc/<pid>/stat
 * (all threads, 10 ms ticks: too coarse for a 2 000-task map).
 */
export function cpuMs(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    if (Number.isFinite(ns)) return ns / 1e6;
  } catch {
    // no schedstat in this kernel, or a thread ended while being read: the ticks below
  }
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) * 10 : Number.NaN; // utime + stime, USER_HZ = 100
}
