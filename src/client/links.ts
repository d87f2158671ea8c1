/**
 * Direct links from the client to engines on this host: a direct task then crosses one hop each
 * way (client ↔ engine) instead of two (client ↔ controller ↔ engine); the engine still reports
 * every task to the controller. A link is opened on first use; messages sent while it connects
 * wait in order, and if it cannot be opened they go through the controller instead, in the same
 * order. When an open link drops, the tasks in flight on it fail with EngineError.
 */
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import type { Authenticator, DigestHistory } from "../protocol/auth.js";
import { Connection, connectReading, type DropStats } from "../protocol/connection.js";
import type { Logger } from "../protocol/log.js";
import type { Incoming } from "../protocol/messages.js";
import type { Landing } from "../protocol/wire.js";
import type { TaskState } from "./task.js";

export interface LinkHost {
  session: string;
  auth: Authenticator;
  history: DigestHistory;
  stats: DropStats;
  log: Logger;
  /** Where large frames of replies land (gathers into one array). */
  landing: Landing;
  timeoutMs: number;
  onMessage: (msg: Incoming) => void;
  /** Send through the controller instead (the link could not be opened). */
  viaController: (chunks: readonly Uint8Array[], state: TaskState) => void;
  /** The link dropped while these tasks were on it. */
  onLost: (engineId: number, tasks: TaskState[]) => void;
}

interface Queued {
  chunks: readonly Uint8Array[];
  state: TaskState;
}

export class EngineLink {
  readonly engineId: number;
  state: "connecting" | "open" | "dead" = "connecting";
  readonly pending = new Map<string, TaskState>();
  #conn: Connection | null = null;
  #queue: Queued[] = [];
  readonly #host: LinkHost;

  constructor(engineId: number, target: LinkTarget, uuid: string | null, host: LinkHost) {
    this.engineId = engineId;
    this.#host = host;
    void this.#open(target, uuid);
  }

  send(chunks: readonly Uint8Array[], state: TaskState): void {
    if (this.state === "dead") return this.#host.viaController(chunks, state);
    this.pending.set(state.msgId, state);
    if (this.state === "connecting") {
      this.#queue.push({ chunks, state });
      return;
    }
    this.#write(chunks, state);
  }

  done(msgId: string): void {
    this.pending.delete(msgId);
  }

  close(): void {
    this.state = "dead";
    this.#conn?.close();
  }

  /** Stop reading from the engine, or go on (tests: what arrives meanwhile waits in the socket). */
  hold(on: boolean): void {
    if (on) this.#conn?.socket.pause();
    else this.#conn?.socket.resume();
  }

  #write(chunks: readonly Uint8Array[], state: TaskState): void {
    const conn = this.#conn!;
    conn.write(chunks);
    conn.onFlushed(() => (state.sent = true));
  }

  async #open(target: LinkTarget, uuid: string | null): Promise<void> {
    const h = this.#host;
    const { socket, reader } = connectReading(target);
    const conn = new Connection(socket, { auth: h.auth, history: h.history, verifyBuffers: true, log: h.log, stats: h.stats, reader, landing: h.landing });
    conn.socket.unref();
    conn.on("message", (m) => h.onMessage(m));
    conn.socket.on("error", () => {});
    try {
      const welcome = await conn.initiate({ role: "client", session: h.session }, h.timeoutMs);
      // the address could be another process's on this host (a reused port, another network namespace)
      if (uuid !== null && welcome.engine_uuid !== uuid) throw new Error(`the link answered as engine ${String(welcome.engine_uuid)}, not ${uuid}`);
    } catch (err) {
      h.log.warn("no direct link; using the controller", { engine: this.engineId, error: (err as Error).message });
      conn.close(true);
      this.#fallBack();
      return;
    }
    if (this.state === "dead") {
      conn.close();
      this.#fallBack();
      return;
    }
    this.#conn = conn;
    this.state = "open";
    conn.on("close", () => this.#lost());
    for (const q of this.#queue) this.#write(q.chunks, q.state);
    this.#queue = [];
  }

  #fallBack(): void {
    this.state = "dead";
    const queued = this.#queue;
    this.#queue = [];
    for (const q of queued) {
      this.pending.delete(q.state.msgId);
      this.#host.viaController(q.chunks, q.state);
    }
  }

  #lost(): void {
    this.state = "dead";
    const tasks = [...this.pending.values()];
    this.pending.clear();
    if (tasks.length > 0) this.#host.onLost(this.engineId, tasks);
  }
}

/** Where an engine on this host listens for direct links. */
type LinkTarget = { path: string } | { host: string; port: number };

/** An engine's direct-link address (`unix:<path>`, `tcp:127.0.0.1:<port>`), or null when there is none to use. */
function linkTarget(address: string | null): LinkTarget | null {
  if (address === null) return null;
  if (address.startsWith("unix:")) return existsSync(address.slice(5)) ? { path: address.slice(5) } : null;
  const tcp = /^tcp:(127\.0\.0\.1):(\d{1,5})$/.exec(address);
  return tcp === null ? null : { host: tcp[1]!, port: Number(tcp[2]) };
}

/** One link per local engine, opened on first use. */
export class EngineLinks {
  readonly #links = new Map<number, EngineLink>();
  readonly #host: LinkHost;
  readonly #hostname = hostname();

  constructor(host: LinkHost) {
    this.#host = host;
  }

  /** The link to use for `engineId` (whose uuid is `uuid`), or null to go through the controller. */
  get(engineId: number, where: { hostname: string; direct: string | null } | undefined, uuid: string | null): EngineLink | null {
    const existing = this.#links.get(engineId);
    if (existing !== undefined) return existing;
    if (where === undefined || where.hostname !== this.#hostname) return null;
    const target = linkTarget(where.direct);
    if (target === null) return null;
    const link = new EngineLink(engineId, target, uuid, this.#host);
    this.#links.set(engineId, link);
    return link;
  }

  /** The engine is gone (or re-registered): drop its link. */
  forget(engineId: number): void {
    this.#links.get(engineId)?.close();
    this.#links.delete(engineId);
  }

  hold(on: boolean): void {
    for (const link of this.#links.values()) link.hold(on);
  }

  closeAll(): void {
    for (const link of this.#links.values()) link.close();
    this.#links.clear();
  }
}
