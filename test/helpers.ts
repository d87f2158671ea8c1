/**
 * Test helpers: every test file gets its own TSPARALLEL_DIR (so tests never touch ~/.tsparallel),
 * clusters that are always stopped, and polling with deadlines instead of fixed sleeps.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, type Client, type ClusterOptions } from "tsparallel";
import { Authenticator, encodeMessage, FrameDecoder, Incoming, makeHeader, type ConnectionInfo, type Json } from "tsparallel/internal";

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

const VERSIONS = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

/** A hand-driven peer: raw socket, our own framing, for sending exactly what we want. */
export class RawPeer {
  readonly socket: Socket;
  readonly decoder = new FrameDecoder();
  readonly inbox: Incoming[] = [];
  closed = false;

  constructor(info: ConnectionInfo | string) {
    this.socket = connect({ path: typeof info === "string" ? info : info.unixPath! });
    this.socket.on("data", (chunk) => {
      for (const m of this.decoder.push(chunk)) this.inbox.push(new Incoming(m));
    });
    this.socket.on("close", () => (this.closed = true));
    this.socket.on("error", () => {});
  }

  async next(type: string): Promise<Incoming> {
    await until(() => this.inbox.some((m) => m.msgType === type) || this.closed, 10_000, `a ${type} message`);
    const i = this.inbox.findIndex((m) => m.msgType === type);
    if (i < 0) throw new Error(`connection closed before ${type}`);
    return this.inbox.splice(i, 1)[0]!;
  }

  /** Complete the handshake with `key` (and optionally another protocol version, or more hello fields: role, uuid). */
  async handshake(key: string, protocol = "1.0", extra: Json = {}): Promise<void> {
    const challenge = await this.next("challenge");
    const auth = new Authenticator(key);
    const hello = { role: "client", session: randomUUID(), protocol, tsparallel: VERSIONS.version, node: process.versions.node, nonce: challenge.content.nonce, ...extra };
    this.write(encodeMessage(auth, { header: makeHeader("hello", hello.session), content: hello }));
  }

  write(chunks: readonly Uint8Array[]): void {
    for (const c of chunks) this.socket.write(c);
  }

  close(): void {
    this.socket.destroy();
  }
}
