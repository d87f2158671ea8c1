/**
 * The engine's heart: a worker thread with its own connection to the controller. It answers
 * heartbeats while the engine's main thread runs user code (even a long synchronous loop), and
 * delivers signals (SIGINT interrupts the running task), and gives back tasks the controller
 * handed over early when another engine is free first (claims.ts).
 */
import { randomUUID } from "node:crypto";
import process from "node:process";
import { parentPort, workerData } from "node:worker_threads";
import { Authenticator, DigestHistory } from "../protocol/auth.js";
import type { ConnectionInfo } from "../protocol/connfile.js";
import { DropStats, type Connection } from "../protocol/connection.js";
import { dial, type Transport } from "../protocol/dial.js";
import { jsonLogger } from "../protocol/log.js";
import { makeHeader, type Incoming } from "../protocol/messages.js";
import { TaskClaims } from "./claims.js";

export interface HeartData {
  info: ConnectionInfo;
  transport: Transport | undefined;
  uuid: string;
  /** The main thread's TaskClaims buffer. */
  claims: SharedArrayBuffer;
}

const SIGNALS = new Set(["SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGSTOP", "SIGCONT"]);

function start(data: HeartData): void {
  const log = jsonLogger("heart", "warn", { uuid: data.uuid });
  const auth = new Authenticator(data.info.key);
  const history = new DigestHistory(4096);
  const stats = new DropStats();
  const session = randomUUID();
  const claims = new TaskClaims(data.claims);
  let conn: Connection | null = null;
  let stopping = false;
  let delay = 100;

  const onMessage = (c: Connection, m: Incoming) => {
    if (m.msgType === "ping") {
      claims.heard();
      c.send({ header: makeHeader("pong", session), parent: m.header, content: { beat: m.content.beat } });
    } else if (m.msgType === "signal_request") {
      c.send({ header: makeHeader("signal_reply", session), parent: m.header, content: deliver(m.content.sig) });
    } else if (m.msgType === "take_back_request" && typeof m.content.msg_id === "string") {
      // a task handed over early: the controller wants it for an engine that is free now
      const status = claims.takeBack(m.content.msg_id);
      c.send({ header: makeHeader("take_back_reply", session), parent: m.header, content: { msg_id: m.content.msg_id, status } });
    } else {
      stats.count(`unexpected ${m.msgType.slice(0, 40)} on the heart connection`);
    }
  };

  const connect = () => {
    if (stopping) return;
    dial({ info: data.info, transport: data.transport, role: "heart", session, hello: { uuid: data.uuid }, timeoutMs: 10_000,
      auth, history, stats, log, verifyBuffers: true,
      onConnection: (c) => c.on("message", (m) => onMessage(c, m)) })
      .then(({ conn: c }) => {
        conn = c;
        delay = 100;
        c.on("close", () => retry());
      })
      .catch(() => retry());
  };
  const retry = () => {
    conn = null;
    if (stopping) return;
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 2000);
  };

  parentPort?.on("message", (msg: unknown) => {
    if (msg === "stop") {
      stopping = true;
      conn?.close();
      parentPort?.close();
    }
  });
  connect();
}

function deliver(sig: unknown): Record<string, unknown> {
  const name = typeof sig === "number" ? sig : String(sig).toUpperCase();
  const normalized = typeof name === "string" && !name.startsWith("SIG") ? `SIG${name}` : name;
  if (typeof normalized === "string" && !SIGNALS.has(normalized)) {
    return { status: "error", ename: "ValueError", evalue: `unknown signal ${String(sig)}` };
  }
  try {
    process.kill(process.pid, normalized as NodeJS.Signals | number);
    return { status: "ok" };
  } catch (err) {
    return { status: "error", ename: "OSError", evalue: (err as Error).message };
  }
}

if (parentPort !== null) start(workerData as HeartData);
