/**
 * The machine floor: `node --import tsx bench/floor/pingpong.ts [--calls 5000] [--warmup 500]`.
 * Two processes (this one and a child `echo.mjs`), 16-byte messages bounced over node:net, once
 * over TCP on 127.0.0.1 and once over a Unix socket. Prints one JSON line:
 * {peer: "floor", results: {Ztcp: {median_us, p90_us, p99_us}, Zunix: {...}}}.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { emit, errorText, parsePeerArgs, reportPids, type PeerOutput } from "../lib/peerio.ts";
import { latencyStats, now, type LatencyStats } from "../lib/stats.ts";

const ECHO = fileURLToPath(new URL("./echo.mjs", import.meta.url));
const MSG = Buffer.alloc(16, 7);

/** Start the echo child; resolves with it and the port or path it listens on. */
async function startEcho(kind: "tcp" | "unix", path: string): Promise<{ child: ChildProcess; where: string }> {
  const child = spawn(process.execPath, [ECHO, kind, path], { stdio: ["pipe", "pipe", "inherit"] });
  reportPids([child.pid!]);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  let text = "";
  for await (const chunk of child.stdout!) {
    text += String(chunk);
    if (text.includes("\n")) break;
  }
  clearTimeout(timer);
  const m = /^READY (\S+)/.exec(text);
  if (!m) throw new Error(`echo child did not start: ${text}`);
  return { child, where: m[1]! };
}

/** One round trip: send 16 B, resolve when 16 B came back. */
function roundTrip(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (b: Buffer) => {
      got += b.length;
      if (got >= MSG.length) {
        sock.off("data", onData);
        resolve();
      }
    };
    sock.on("data", onData);
    sock.write(MSG);
  });
}

async function measure(kind: "tcp" | "unix", calls: number, warmup: number): Promise<LatencyStats> {
  const dir = mkdtempSync(join(tmpdir(), "tsp-floor-"));
  const { child, where } = await startEcho(kind, join(dir, "echo.sock"));
  try {
    const sock = kind === "unix" ? connect(where) : connect(Number(where), "127.0.0.1");
    sock.setNoDelay(true);
    await once(sock, "connect");
    for (let i = 0; i < warmup; i++) await roundTrip(sock);
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = now();
      await roundTrip(sock);
      samples.push(now() - t0);
    }
    sock.destroy();
    return latencyStats(samples);
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

const { opts } = parsePeerArgs(["Z", ...process.argv.slice(2)]);
const out: PeerOutput = { peer: "floor", results: {}, errors: {} };
for (const kind of ["tcp", "unix"] as const) {
  const name = kind === "tcp" ? "Ztcp" : "Zunix";
  try {
    out.results[name] = { ...(await measure(kind, opts.calls ?? 5000, opts.warmup ?? 500)) };
  } catch (e) {
    out.errors[name] = errorText(e);
  }
}
emit(out);
