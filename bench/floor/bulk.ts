/**
 * The bulk floor: what moving bulk data between two Node processes costs on this machine, apart
 * from any protocol. This process writes `bytes` over a Unix socket; a child (this file run with
 * `--receiver`) reads them one of the ways below and answers with 16 bytes (its tag of them, or
 * zeros without a MAC); MB/s from the median of `reps` round trips after one untimed. Used by the
 * bench's floor peer (pingpong.ts) and by bench/probe/bulk.ts.
 *
 * - `direct-fresh`: read straight into a new buffer each time: what a receiver must do when the data
 *   lands in memory it never had (a `pull` or `gather` into a new array);
 * - `direct-reused`: read straight into the same buffer each time: memory already faulted in (an
 *   engine that keeps freed memory for the next array);
 * - `copy-fresh`: copied out of a 256 KB read buffer into a new buffer.
 *
 * And authenticated or not (`auth`), with the MAC tsparallel puts on large buffers (Poly1305, the
 * product's own `polyMac`), the receiver MACing each read as it lands:
 * - `none`: no MAC, the socket alone;
 * - `head`: the sender MACs all the bytes, then writes them (the tag travels ahead of the bytes, as in
 *   tsparallel's protocol);
 * - `pieces`: the sender MACs each 1 MB piece just before it writes it, waiting for the socket to
 *   drain between pieces (the tag would travel after the bytes): the two MACs overlap the transfer.
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { polyMac, type StreamMac } from "tsparallel/internal";
import { median } from "../lib/stats.ts";

export type BulkMode = "copy-fresh" | "direct-fresh" | "direct-reused";
export type BulkAuth = "none" | "head" | "pieces";

export interface TransferOptions {
  auth?: BulkAuth;
  /** Added to the receiver's environment. */
  env?: NodeJS.ProcessEnv;
  /** Hears the receiver's pid. */
  onPid?: (pid: number) => void;
}

const PIECE = 1 << 20;
/** Both ends know the key (as a cluster's processes do); transfer i has nonce i. */
const KEY = Buffer.alloc(32, 7);
/** What the receiver answers after each transfer: its tag of the bytes, or zeros without a MAC. */
const ANSWER = 16;

function newMac(transfer: number): StreamMac {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(transfer);
  return polyMac(KEY, nonce);
}

/** The receiving process: reads `bytes` per round the chosen way (MACing each read if `auth`), then answers with its tag. */
function receiver(path: string, bytes: number, mode: BulkMode, auth: BulkAuth): void {
  const shared = Buffer.allocUnsafe(256 * 1024);
  let dest: Buffer | null = null;
  let got = 0;
  let transfers = 0;
  let mac: StreamMac | null = null;
  const into = () => (dest ??= Buffer.allocUnsafe(bytes));
  const done = () => {
    socket.write(mac?.digest() ?? Buffer.alloc(ANSWER));
    got = 0;
    mac = null;
    transfers++;
    if (mode !== "direct-reused") dest = null;
  };
  const socket = connect({
    path,
    onread: {
      buffer: mode === "copy-fresh" ? shared : () => into().subarray(got),
      callback: (n: number, buf: Uint8Array) => {
        if (mode === "copy-fresh") into().set(buf.subarray(0, n), got);
        if (auth !== "none") (mac ??= newMac(transfers)).update(into().subarray(got, got + n));
        got += n;
        if (got >= bytes) done();
        return true;
      },
    },
  });
  socket.on("close", () => process.exit(0));
  socket.on("error", () => process.exit(0));
}

/**
 * Write `data` to `c` the `auth` way (the whole of it at once, MAC'd first or not, or MAC'd and
 * written piece by piece); resolves with the tag the receiver must answer (zeros without a MAC).
 */
async function send(c: Socket, data: Buffer, auth: BulkAuth, transfer: number): Promise<Buffer> {
  if (auth === "none") {
    c.write(data);
    return Buffer.alloc(ANSWER);
  }
  const mac = newMac(transfer);
  if (auth === "head") {
    mac.update(data);
    const tag = mac.digest();
    c.write(data);
    return tag;
  }
  for (let at = 0; at < data.length; at += PIECE) {
    const piece = data.subarray(at, at + PIECE);
    mac.update(piece);
    if (!c.write(piece)) await once(c, "drain");
  }
  return mac.digest();
}

/**
 * One raw run: MB/s (10⁶ bytes per second), median of `reps` round trips of `bytes` and the
 * receiver's 16-byte answer (its tag of the bytes, checked against the sender's), after one untimed.
 */
export async function rawTransfer(bytes: number, reps: number, mode: BulkMode, opts: TransferOptions = {}): Promise<number> {
  const auth = opts.auth ?? "none";
  const dir = mkdtempSync(join(tmpdir(), "tsp-bulk-"));
  const path = join(dir, "s.sock");
  const data = Buffer.alloc(bytes, 1);
  const child = fork(new URL(import.meta.url).pathname, ["--receiver", path, String(bytes), mode, auth], {
    env: { ...process.env, ...opts.env }, execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  if (child.pid !== undefined) opts.onPid?.(child.pid);
  const deadline = setTimeout(() => child.kill("SIGKILL"), 120_000);
  let server = null as Server | null; // made in the promise below, closed however it ends
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`the bulk receiver exited (${code}) before ${reps + 1} transfers`)));
      server = createServer((c) => {
        const times: number[] = [];
        const go = async () => {
          const t = performance.now();
          const [tag, answer] = await Promise.all([send(c, data, auth, times.length), answerOf(c)]);
          times.push(performance.now() - t);
          if (!answer.equals(tag)) throw new Error(`transfer ${times.length}: the receiver's tag ${answer.toString("hex")} is not the sender's ${tag.toString("hex")}`);
          if (times.length < reps + 1) return go();
          resolve(bytes / 1e6 / (median(times.slice(1)) / 1000));
        };
        go().catch((e: unknown) => {
          c.destroy();
          reject(e);
        });
      });
      server.listen(path);
    });
  } finally {
    server?.close();
    clearTimeout(deadline);
    child.removeAllListeners("exit");
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The receiver's next answer: ANSWER bytes, however they arrive. */
function answerOf(c: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let n = 0;
    const onData = (b: Buffer) => {
      parts.push(b);
      n += b.length;
      if (n < ANSWER) return;
      c.off("data", onData);
      resolve(Buffer.concat(parts, n));
    };
    c.on("data", onData);
  });
}

if (process.argv[2] === "--receiver") receiver(process.argv[3]!, Number(process.argv[4]), process.argv[5] as BulkMode, process.argv[6] as BulkAuth);
