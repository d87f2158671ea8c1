/**
 * The bulk floor: what moving bulk data between two Node processes costs on this machine, apart
 * from any protocol. This process writes `bytes` over a Unix socket; a child (this file run with
 * `--receiver`) reads them one of the ways below and answers one byte; MB/s from the median of
 * `reps` round trips after one untimed. Used by the bench's floor peer (pingpong.ts) and by
 * bench/probe/bulk.ts.
 *
 * - `direct-fresh`: read straight into a new buffer each time: what a receiver must do when the data
 *   lands in memory it never had (a `pull` or `gather` into a new array);
 * - `direct-reused`: read straight into the same buffer each time: memory already faulted in (an
 *   engine that keeps freed memory for the next array);
 * - `copy-fresh`: copied out of a 256 KB read buffer into a new buffer.
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type BulkMode = "copy-fresh" | "direct-fresh" | "direct-reused";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The receiving process: reads `bytes` per round the chosen way, then answers one byte. */
function receiver(path: string, bytes: number, mode: BulkMode): void {
  const shared = Buffer.allocUnsafe(256 * 1024);
  let dest: Buffer | null = null;
  let got = 0;
  const into = () => (dest ??= Buffer.allocUnsafe(bytes));
  const done = () => {
    got = 0;
    if (mode !== "direct-reused") dest = null;
    socket.write("k");
  };
  const socket = connect({
    path,
    onread: {
      buffer: mode === "copy-fresh" ? shared : () => into().subarray(got),
      callback: (n: number, buf: Uint8Array) => {
        if (mode === "copy-fresh") into().set(buf.subarray(0, n), got);
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
 * One raw run: MB/s (10⁶ bytes per second), median of `reps` round trips of `bytes` and a one-byte
 * answer. `env` is added to the receiver's environment; `onPid` hears the receiver's pid.
 */
export async function rawTransfer(bytes: number, reps: number, mode: BulkMode, env: NodeJS.ProcessEnv = {}, onPid?: (pid: number) => void): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "tsp-bulk-"));
  const path = join(dir, "s.sock");
  const data = Buffer.alloc(bytes, 1);
  const child = fork(new URL(import.meta.url).pathname, ["--receiver", path, String(bytes), mode], {
    env: { ...process.env, ...env }, execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  if (child.pid !== undefined) onPid?.(child.pid);
  const deadline = setTimeout(() => child.kill("SIGKILL"), 120_000);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`the bulk receiver exited (${code}) before ${reps + 1} transfers`)));
      const server = createServer((c) => {
        const times: number[] = [];
        const go = () => {
          const t = performance.now();
          c.write(data);
          c.once("data", () => {
            times.push(performance.now() - t);
            if (times.length < reps + 1) return go();
            server.close();
            resolve(bytes / 1e6 / (median(times.slice(1)) / 1000));
          });
        };
        go();
      });
      server.listen(path);
    });
  } finally {
    clearTimeout(deadline);
    child.removeAllListeners("exit");
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--receiver") receiver(process.argv[3]!, Number(process.argv[4]), process.argv[5] as BulkMode);
