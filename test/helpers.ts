/**
 * Test helpers: every test file gets its own TSPARALLEL_DIR (so tests never touch ~/.tsparallel),
 * clusters that are always stopped, and polling with deadlines instead of fixed sleeps.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, type Client, type ClusterOptions } from "tsparallel";

export const TEST_DIR = mkdtempSync(join(tmpdir(), "tsp-test-"));
process.env.TSPARALLEL_DIR = TEST_DIR;
process.on("exit", () => rmSync(TEST_DIR, { recursive: true, force: true }));

export interface Running {
  cluster: Cluster;
  rc: Client;
}

/** Start a cluster (2 engines by default, short heartbeats) and connect; `stop()` in `after`. */
export async function startCluster(opts: ClusterOptions = {}): Promise<Running> {
  const cluster = new Cluster({ n: 2, heartbeatPeriod: 0.25, heartbeatMisses: 8, ...opts });
  const rc = await cluster.startAndConnect({ timeout: 30 });
  return { cluster, rc };
}

/** Run `fn` with a fresh cluster that is stopped afterwards, whatever happens. */
export async function withCluster<T>(opts: ClusterOptions, fn: (r: Running) => Promise<T>): Promise<T> {
  const r = await startCluster(opts);
  try {
    return await fn(r);
  } finally {
    await r.cluster.stop();
  }
}

/** Poll `predicate` until true; fail after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- functions that run on engines (shipped as source: self-contained) ----------------------------

/** Wait `s` seconds without blocking the engine's event loop, then return `s`. */
export async function nap(s: number): Promise<number> {
  await new Promise((r) => setTimeout(r, s * 1000));
  return s;
}

/** Block the engine's thread for `s` seconds (synchronous, so tasks queue behind it), then return `s`. */
export function block(s: number): number {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, s * 1000);
  return s;
}

/** Sleep `s` seconds synchronously on the engine, then return `x`. */
export function slow(x: number, s: number): number {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, s * 1000);
  return x;
}

/** Write `marker` (so the test knows the task started), then block `s` seconds. */
export function markedBlock(marker: string, s: number): number {
  (globalThis as unknown as { require: NodeRequire }).require("node:fs").writeFileSync(marker, "started");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, s * 1000);
  return s;
}
