/**
 * The controller process's front door: one TCP port (and, for a local cluster, one Unix socket)
 * for engines and clients alike. Every connection must pass the handshake before anything else.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { dirname, join } from "node:path";
import { Authenticator, DigestHistory } from "../protocol/auth.js";
import {
  clientFile, engineFile, ensureDir, localHostname, profileDir, securityDir, unixSocketPath, writePrivateJson, type ConnectionInfo,
} from "../protocol/connfile.js";
import { adoptReading, Connection, DropStats } from "../protocol/connection.js";
import type { Logger } from "../protocol/log.js";
import { selfSignedCertificate, TLS_CIPHERS, TLS_MIN_VERSION, type ControllerCertificate } from "../protocol/tls.js";
import { MemoryDb, type MemoryDbOptions, type TaskDb } from "./db/memory.js";
import { SqliteDb } from "./db/sqlite.js";
import { Hub } from "./hub.js";
import { installQueries } from "./queries.js";
import type { SchemeName } from "./scheduler/schemes.js";

export interface ControllerConfig {
  profile: string;
  clusterId: string;
  key: string;
  ip: string;
  port: number;
  /** Also listen on a Unix socket (local clusters). */
  unix: boolean;
  /** Which transport the connection files recommend to same-host peers. */
  transport: "unix" | "tcp";
  location: string;
  scheme: SchemeName;
  hwm: number;
  hbPeriod: number;
  hbMisses: number;
  handshakeTimeout: number;
  /** TLS on the TCP port, with a self-signed certificate made now (its fingerprint goes in the connection files). */
  tls?: boolean;
  db: DbConfig;
  /** Bytes that may wait to be written to one peer before the senders of more for it are paused (default 256 MiB). */
  forwardLimit?: number;
  writeFiles: boolean;
  log: Logger;
}

/** Where task records are kept: in memory, or also in a SQLite file (default `<profile dir>/tasks.db`). */
export interface DbConfig extends MemoryDbOptions {
  kind?: "memory" | "sqlite";
  file?: string;
}

/**
 * What the controller may queue for one peer before it stops reading from the senders of more for
 * it: a busy engine (user code runs, its socket is not read) or a slow client then holds up only
 * what is meant for it, up to this much; past it the senders wait (memory stays bounded). The same
 * order as the task records' own default size limit.
 */
export const DEFAULT_FORWARD_LIMIT = 256 * 1024 * 1024;

export function defaultDbFile(profile: string): string {
  return join(profileDir(profile), "tasks.db");
}

export class Controller {
  readonly hub: Hub;
  readonly stats = new DropStats();
  readonly info: ConnectionInfo;
  readonly #config: ControllerConfig;
  readonly #auth: Authenticator;
  readonly #history = new DigestHistory();
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  #stopped: Promise<void> | null = null;
  #onStop: () => void = () => {};

  get #forwardLimit(): number {
    return this.#config.forwardLimit ?? DEFAULT_FORWARD_LIMIT;
  }

  private constructor(config: ControllerConfig, info: ConnectionInfo) {
    this.#config = config;
    this.info = info;
    this.#auth = new Authenticator(config.key);
    this.hub = new Hub({
      session: randomUUID(), auth: this.#auth, stats: this.stats, log: config.log, history: this.#history, db: openDb(config),
      scheme: config.scheme, hwm: config.hwm, hbPeriod: config.hbPeriod, hbMisses: config.hbMisses,
      onShutdown: () => void this.stop(),
    });
    this.hub.flowStats.forwardLimit = this.#forwardLimit;
    installQueries(this.hub, this.#auth);
    if (this.hub.db instanceof SqliteDb) this.#failOrphans(this.hub.db);
  }

  /** Tasks an earlier controller left pending in the file: their engines are gone, so they fail now. */
  #failOrphans(db: SqliteDb): void {
    for (const id of db.orphans) {
      this.hub.failTask(db.get(id), "TaskLost", `the controller stopped before task ${id} finished`);
    }
    if (db.orphans.length > 0) this.#config.log.warn("tasks left pending by an earlier controller failed", { count: db.orphans.length });
  }

  /** Listen, write the connection files, start heartbeats. */
  static async start(config: ControllerConfig): Promise<Controller> {
    const info: ConnectionInfo = {
      clusterId: config.clusterId, profile: config.profile, transport: config.transport, ip: config.ip,
      location: config.location, port: 0, unixPath: null, key: config.key,
      signatureScheme: "hmac-sha256+poly1305", controllerPid: process.pid, hbPeriod: config.hbPeriod,
    };
    const c = new Controller(config, info);
    const cert = config.tls === true ? selfSignedCertificate() : null;
    if (cert !== null) info.tlsFingerprint = cert.fingerprint;
    info.port = await c.#listenTcp(config.ip, config.port, cert);
    if (config.unix) info.unixPath = await c.#listenUnix(unixSocketPath(config.profile, config.clusterId));
    if (!config.unix) info.transport = "tcp";
    if (config.writeFiles) c.#writeFiles();
    c.hub.start();
    config.log.info("controller started", { port: info.port, unixPath: info.unixPath, clusterId: config.clusterId });
    return c;
  }

  /** Resolves when the controller has stopped (by `stop()` or a client's shutdown request). */
  waitStopped(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped !== null) void this.#stopped.then(resolve);
      else this.#onStop = resolve;
    });
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.hub.stop();
    for (const c of this.hub.clients.values()) this.hub.send(c, "shutdown_notification", {});
    for (const s of this.#servers) s.close();
    // let the notifications flush, then cut every connection
    await new Promise((r) => setTimeout(r, 20));
    for (const s of this.#sockets) s.destroy();
    if (this.#config.writeFiles) this.#removeFiles();
    if (this.info.unixPath !== null) rmSync(this.info.unixPath, { force: true });
    this.hub.db.close?.();
    this.#config.log.info("controller stopped", { dropped: this.stats.toJSON() });
    this.#onStop();
  }

  #accept(accepted: Socket, encrypted = false): void {
    // read into one reused buffer, straight into the decoder (see adoptReading); TLS reads its own way
    const { socket, reader } = encrypted ? { socket: accepted, reader: undefined } : adoptReading(accepted);
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    // writes leave once per event-loop round: replies read from both engines go to a client in one write
    const conn = new Connection(socket, {
      auth: this.#auth, history: this.#history, verifyBuffers: false, log: this.#config.log, stats: this.stats, reader, passOn: true,
      coalesce: true, forwardLimit: this.#forwardLimit, onSenderPaused: () => (this.hub.flowStats.sendersPaused += 1),
    });
    conn.accept(this.hub.session, this.#config.handshakeTimeout).then(
      (hello) => this.hub.attach(conn, hello),
      (err: Error) => this.#config.log.warn("handshake failed", { peer: conn.peer, reason: err.message }),
    );
  }

  #listenTcp(ip: string, port: number, cert: ControllerCertificate | null): Promise<number> {
    const server = cert === null ? createServer({ pauseOnConnect: true }, (s) => this.#accept(s)) : this.#tlsServer(cert);
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: ip, port, backlog: 1024 }, () => {
        const addr = server.address();
        resolve(typeof addr === "object" && addr !== null ? addr.port : port);
      });
    });
  }

  #tlsServer(cert: ControllerCertificate): Server {
    const server = createTlsServer(
      {
        key: cert.key, cert: cert.cert, minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS, honorCipherOrder: true,
        ALPNProtocols: ["tsparallel"], handshakeTimeout: this.#config.handshakeTimeout,
      },
      (s) => this.#accept(s, true),
    );
    server.on("tlsClientError", (err, socket) => {
      this.stats.count("TLS handshake failed");
      this.#config.log.warn("TLS handshake failed", { peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: err.message });
    });
    return server;
  }

  #listenUnix(path: string): Promise<string> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    rmSync(path, { force: true });
    const server = createServer({ pauseOnConnect: true }, (s) => this.#accept(s));
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve(path));
    });
  }

  #writeFiles(): void {
    ensureDir(securityDir(this.#config.profile));
    writePrivateJson(clientFile(this.#config.profile, this.#config.clusterId), this.info);
    writePrivateJson(engineFile(this.#config.profile, this.#config.clusterId), this.info);
  }

  #removeFiles(): void {
    rmSync(clientFile(this.#config.profile, this.#config.clusterId), { force: true });
    rmSync(engineFile(this.#config.profile, this.#config.clusterId), { force: true });
  }
}

function openDb(config: ControllerConfig): TaskDb {
  const { kind = "memory", file, ...limits } = config.db;
  if (kind === "memory") return new MemoryDb(limits);
  const path = file ?? defaultDbFile(config.profile);
  const db = new SqliteDb({
    ...limits, file: path, clusterId: config.clusterId,
    onError: (err) => config.log.error("task database write failed", { file: path, reason: err.message }),
  });
  config.log.info("task database", { file: path, table: db.table, records: db.size });
  return db;
}

export function defaultLocation(ip: string): string {
  return ip === "0.0.0.0" || ip === "::" || ip === "*" ? localHostname() : ip;
}
