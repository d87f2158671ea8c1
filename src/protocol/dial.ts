/**
 * Dialling the controller: pick the transport (a Unix socket on the same host when the controller
 * offers one, TCP otherwise), connect, and run the handshake — all within one deadline.
 */
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import type { Authenticator, DigestHistory } from "./auth.js";
import type { ConnectionInfo } from "./connfile.js";
import type { Landing } from "./wire.js";
import { Connection, connectReading, type DropStats, type ReadHook, type Role } from "./connection.js";
import type { Logger } from "./log.js";
import { connectPinned } from "./tls.js";
import type { Json } from "./messages.js";

export type Transport = "unix" | "tcp";

export interface DialOptions {
  info: ConnectionInfo;
  transport?: Transport | undefined;
  role: Role;
  session: string;
  hello?: Json;
  timeoutMs: number;
  auth: Authenticator;
  history: DigestHistory;
  stats: DropStats;
  log: Logger;
  verifyBuffers: boolean;
  landing?: Landing;
  /** Attach listeners before the handshake, so nothing sent right after the welcome is missed. */
  onConnection?: (conn: Connection) => void;
}

export function chooseTransport(info: ConnectionInfo, wanted?: Transport): Transport {
  if (wanted === "tcp") return "tcp";
  if (info.unixPath !== null && info.unixPath !== undefined && existsSync(info.unixPath)) {
    return wanted === "unix" || info.transport === "unix" ? "unix" : "tcp";
  }
  if (wanted === "unix") throw new Error(`the controller offers no Unix socket here (${info.unixPath ?? "none"})`);
  return "tcp";
}

export function describeAddress(info: ConnectionInfo, transport: Transport): string {
  if (transport === "unix") return `unix:${info.unixPath}`;
  return `${typeof info.tlsFingerprint === "string" ? "tls" : "tcp"}://${info.location || info.ip}:${info.port}`;
}

function openSocket(info: ConnectionInfo, transport: Transport): { socket: Socket; reader: ReadHook | undefined } {
  if (transport === "unix") return connectReading({ path: info.unixPath! });
  const host = info.location && info.location !== "0.0.0.0" ? info.location : info.ip === "0.0.0.0" ? "127.0.0.1" : info.ip;
  if (typeof info.tlsFingerprint === "string") return { socket: connectPinned(host, info.port, info.tlsFingerprint), reader: undefined };
  return connectReading({ host, port: info.port });
}

/** Connect and complete the handshake; rejects with a message naming the address on any failure. */
export async function dial(opts: DialOptions): Promise<{ conn: Connection; welcome: Json; transport: Transport }> {
  const transport = chooseTransport(opts.info, opts.transport);
  const where = describeAddress(opts.info, transport);
  const { socket, reader } = openSocket(opts.info, transport);
  const conn = new Connection(socket, {
    auth: opts.auth, history: opts.history, verifyBuffers: opts.verifyBuffers, log: opts.log, stats: opts.stats, reader,
    landing: opts.landing,
  });
  opts.onConnection?.(conn);
  const connectError = new Promise<never>((_, reject) => {
    socket.once("error", (err) => reject(new Error(`cannot reach the controller at ${where}: ${err.message}`, { cause: err })));
  });
  connectError.catch(() => {});
  try {
    const welcome = await Promise.race([
      conn.initiate({ role: opts.role, session: opts.session, ...opts.hello }, opts.timeoutMs),
      connectError,
    ]);
    return { conn, welcome, transport };
  } catch (err) {
    conn.close(true);
    const msg = (err as Error).message;
    throw new Error(msg.startsWith("cannot reach") ? msg : `handshake with the controller at ${where} failed: ${msg}`, { cause: err });
  }
}
