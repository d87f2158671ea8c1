/**
 * Direct links: clients on this host connect to the engine itself (a Unix socket next to the
 * controller's), so a direct task crosses one hop each way instead of two. The same handshake,
 * signing and drop rules apply as on the controller's port. The engine tells the controller about
 * every task that came this way, so the controller's record stays complete.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Authenticator, DigestHistory } from "../protocol/auth.js";
import { adoptReading, Connection, type DropStats } from "../protocol/connection.js";
import type { Logger } from "../protocol/log.js";
import { FrameMemo, makeHeader, type Incoming, type Json } from "../protocol/messages.js";
import { decodeRaw, encodeFrames } from "../protocol/wire.js";

export interface LinkServerOptions {
  /** A Unix socket path, or "127.0.0.1" for a loopback TCP port of the system's choosing. */
  listen: { path: string } | { host: "127.0.0.1" };
  auth: Authenticator;
  history: DigestHistory;
  stats: DropStats;
  log: Logger;
  /** The engine's uuid, told to each client in the welcome (so a client knows it reached the right engine). */
  uuid: string;
  onMessage: (msg: Incoming, link: Connection) => void;
  onClose: (link: Connection) => void;
}

export class LinkServer {
  /** Where clients on this host reach it: `unix:<path>` or `tcp:127.0.0.1:<port>`. */
  address = "";
  readonly #path: string | null;
  readonly #opts: LinkServerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #session = randomUUID();
  /** The open link of each client session: a load-balanced task's reply can take it (see `Engine.#reply`). */
  readonly #clients = new Map<string, Connection>();

  private constructor(opts: LinkServerOptions) {
    this.#opts = opts;
    this.#path = "path" in opts.listen ? opts.listen.path : null;
    this.#server = createServer({ pauseOnConnect: true }, (s) => this.#accept(s));
  }

  static async listen(opts: LinkServerOptions): Promise<LinkServer> {
    const server = new LinkServer(opts);
    const path = server.#path;
    if (path !== null) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      rmSync(path, { force: true });
    }
    await new Promise<void>((resolve, reject) => {
      server.#server.once("error", reject);
      if (path !== null) server.#server.listen(path, () => resolve());
      else server.#server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
    });
    const bound = server.#server.address();
    server.address = path !== null ? `unix:${path}` : `tcp:127.0.0.1:${typeof bound === "object" && bound !== null ? bound.port : 0}`;
    server.#server.unref();
    return server;
  }

  /** The open link of the client whose session this is, if it has one. */
  client(session: unknown): Connection | null {
    if (typeof session !== "string") return null;
    const conn = this.#clients.get(session);
    return conn !== undefined && conn.open ? conn : null;
  }

  close(): void {
    this.#server.close();
    for (const s of this.#sockets) s.destroy();
    if (this.#path !== null) rmSync(this.#path, { force: true });
  }

  #accept(accepted: Socket): void {
    // read into one reused buffer, straight into the decoder (see adoptReading)
    const { socket, reader } = adoptReading(accepted);
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    const { auth, history, stats, log } = this.#opts;
    // a client's calls of one function repeat their parent header, metadata and content: parsed once
    const conn = new Connection(socket, { auth, history, verifyBuffers: true, log, stats, reader, frames: new FrameMemo() });
    conn.on("message", (m) => this.#opts.onMessage(m, conn));
    conn.on("close", () => {
      const session = conn.hello?.session;
      if (session !== undefined && this.#clients.get(session) === conn) this.#clients.delete(session);
      this.#opts.onClose(conn);
    });
    conn.accept(this.#session, 10_000, { engine_uuid: this.#opts.uuid }).then(
      (hello) => {
        if (hello.role === "client") {
          if (conn.open && typeof hello.session === "string") this.#clients.set(hello.session, conn);
          return;
        }
        stats.count("direct link from a non-client");
        conn.close(true);
      },
      (err: Error) => log.warn("direct link handshake failed", { reason: err.message }),
    );
  }
}

/** Direct-link messages larger than this reach the controller's record without their buffers (a copy would double their cost). */
export const RECORD_BUFFER_LIMIT = 256 * 1024;
const REPORT_INTERVAL_MS = 20;
const REPORT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * What the controller learns of direct tasks, batched: arrivals and completions (with the request
 * and reply bytes, for its record) go in one message at most every 20 ms, so the record costs the
 * hot path nothing and the controller little.
 */
export class DirectReport {
  readonly #conn: () => Connection | null;
  readonly #session = randomUUID();
  #seen: Json[] = [];
  #done: Json[] = [];
  /**
   * Link answers as `[msg_id, started, date, buffer index]` with the reply's record (the controller
   * reads them: protocol 1.2), or as reply stubs, `[msg_id, started, date, first buffer, buffer count,
   * specials]` with the value's buffers (1.3).
   */
  #linked: Array<[string, string | null, string, number] | [string, string | null, string, number, number, number]> = [];
  /** The controller reads compact link answers (`linked`); else each is an entry of `done`. */
  compact = false;
  /** The controller takes reply stubs (`answeredStub`). */
  stubs = false;
  #buffers: Uint8Array[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | null = null;
  #soon = false;

  constructor(conn: () => Connection | null) {
    this.#conn = conn;
  }

  seen(msg: Incoming): void {
    this.#seen.push({ header: msg.header, metadata: msg.metadata });
    this.#schedule();
  }

  /** A direct task answered: its bytes for the record, and its outcome (so the controller need not parse the reply). */
  done(request: Incoming, reply: readonly Uint8Array[], outcome: { status: string; started: string | null; date: string }, stdout: string, stderr: string): void {
    const replySize = reply.reduce((n, c) => n + c.byteLength, 0);
    const stripped = request.size > RECORD_BUFFER_LIMIT || replySize > RECORD_BUFFER_LIMIT;
    const req = forRecord(request.raw, request.size);
    const rep = forRecord(reply, replySize);
    this.#done.push({
      msg_id: request.header.msg_id, status: outcome.status, started: outcome.started, date: outcome.date, stdout, stderr, stripped,
      buffers: [this.#buffers.length, 2],
    });
    this.#buffers.push(req, rep);
    this.#bytes += req.byteLength + rep.byteLength;
    if (this.#bytes > REPORT_MAX_BYTES) this.flush();
    else this.#schedule();
  }

  /**
   * A load-balanced task answered over its client's link: the controller's scheduler learns of it
   * with the engine's other answers of this turn, in one message handed to the socket as the turn
   * ends, ahead of the replies if this is called before they are written (it frees this engine for
   * the next task), and records the reply's bytes.
   */
  answered(msgId: string, reply: readonly Uint8Array[], size: number, outcome: { status: string; started: string | null; date: string }): void {
    const rep = forRecord(reply, size);
    // an array, not an object: a third of the bytes, and less to stringify here and to parse there
    if (this.compact && outcome.status === "ok") this.#linked.push([msgId, outcome.started, outcome.date, this.#buffers.length]);
    else this.#done.push({ msg_id: msgId, status: outcome.status, started: outcome.started, date: outcome.date, via: "link", buffers: [this.#buffers.length, 1] });
    this.#buffers.push(rep);
    this.#bytes += rep.byteLength;
    this.#soonAfterTurn();
  }

  /**
   * A successful `apply` answered over its client's link, reported as a stub (protocol 1.3): the
   * value's buffers, and what the controller needs to build the reply's record itself if it is ever
   * read (every other part of such a reply is the same for all of them).
   */
  answeredStub(msgId: string, outcome: { started: string | null; date: string }, specials: boolean, buffers: readonly Uint8Array[]): void {
    this.#linked.push([msgId, outcome.started, outcome.date, this.#buffers.length, buffers.length, specials ? 1 : 0]);
    for (const b of buffers) {
      this.#buffers.push(b);
      this.#bytes += b.byteLength;
    }
    this.#soonAfterTurn();
  }

  #soonAfterTurn(): void {
    if (this.#soon) return;
    this.#soon = true;
    process.nextTick(this.#flushSoon);
  }

  readonly #flushSoon = (): void => {
    this.#soon = false;
    this.flush();
    this.#conn()?.flush();
  };

  /**
   * Report arrivals now, handed to the socket at once: a task is about to run while others wait
   * behind it, and queue status must see them even if that task blocks the engine.
   */
  flushSeen(): void {
    if (this.#seen.length === 0) return;
    this.flush();
    this.#conn()?.flush();
  }

  flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#seen.length === 0 && this.#done.length === 0 && this.#linked.length === 0) return;
    const content: Json = { seen: this.#seen, done: this.#done };
    if (this.#linked.length > 0) content.linked = this.#linked;
    const buffers = this.#buffers;
    this.#seen = [];
    this.#done = [];
    this.#linked = [];
    this.#buffers = [];
    this.#bytes = 0;
    this.#conn()?.send({ header: makeHeader("direct_report", this.#session), content, buffers });
  }

  #schedule(): void {
    if (this.#timer !== null) return;
    this.#timer = setTimeout(() => this.flush(), REPORT_INTERVAL_MS);
    this.#timer.unref();
  }
}

/** A message as one buffer for the controller's record; a large one without its buffers. */
function forRecord(raw: readonly Uint8Array[], size: number): Buffer {
  // one chunk (a reply we encoded, or a request the decoder already copied out of the read
  // buffer) is never written to again: keep it instead of copying it
  if (raw.length === 1 && size <= RECORD_BUFFER_LIMIT) return Buffer.from(raw[0]!.buffer, raw[0]!.byteOffset, raw[0]!.byteLength);
  if (size <= RECORD_BUFFER_LIMIT) return Buffer.concat(raw as Uint8Array[], size);
  return Buffer.concat(encodeFrames(decodeRaw(raw).head) as Uint8Array[]);
}
