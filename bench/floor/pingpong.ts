/**
 * The machine floor: `node --import tsx bench/floor/pingpong.ts [Ztcp,Zunix,Zbulk] [--calls 5000]
 * [--warmup 500] [--bulk-mb 100] [--bulk-reps 5]`.
 * - Ztcp, Zunix: two processes (this one and a child `echo.mjs`), 16-byte messages bounced over
 *   node:net, over TCP on 127.0.0.1 and over a Unix socket: {median_us, p90_us, p99_us}.
 * - Zbulk, a bare transfer: 100 MB written one way over a Unix socket to a child that reads it
 *   straight into fresh memory and into reused memory (bulk.ts): {fresh_MBps, reused_MBps}; then
 *   with tsparallel's Poly1305 MAC at both ends, each 1 MB piece MAC'd as it is written and as it
 *   lands {fresh_mac_MBps, reused_mac_MBps}, and with the sender MACing all first (the tag ahead of
 *   the bytes, as tsparallel's protocol sends it) {reused_mac_ahead_MBps}.
 * Prints one JSON line: {peer: "floor", results: {...}}.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rawTransfer } from "./bulk.ts";
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

const { cases, opts } = parsePeerArgs(process.argv.slice(2));
const given = cases.filter((c) => c !== "-");
const wanted = given.length > 0 ? given : ["Ztcp", "Zunix"];
const out: PeerOutput = { peer: "floor", results: {}, errors: {} };
for (const name of wanted) {
  try {
    if (name === "Ztcp" || name === "Zunix") {
      out.results[name] = { ...(await measure(name === "Ztcp" ? "tcp" : "unix", opts.calls ?? 5000, opts.warmup ?? 500)) };
    } else if (name === "Zbulk") {
      const bytes = (opts.bulk_mb ?? 100) * 1e6;
      const reps = opts.bulk_reps ?? 5;
      const base = { env: { GLIBC_TUNABLES: "" }, onPid: (pid: number) => reportPids([pid]) };
      out.results[name] = {
        fresh_MBps: await rawTransfer(bytes, reps, "direct-fresh", base),
        reused_MBps: await rawTransfer(bytes, reps, "direct-reused", base),
        fresh_mac_MBps: await rawTransfer(bytes, reps, "direct-fresh", { ...base, auth: "pieces" }),
        reused_mac_MBps: await rawTransfer(bytes, reps, "direct-reused", { ...base, auth: "pieces" }),
        reused_mac_ahead_MBps: await rawTransfer(bytes, reps, "direct-reused", { ...base, auth: "head" }),
        MB: bytes / 1e6,
      };
    } else {
      out.errors[name] = `unknown floor case ${name}`;
    }
  } catch (e) {
    out.errors[name] = errorText(e);
  }
}
emit(out);
