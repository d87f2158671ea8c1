/**
 * The client's connection to the controller and its bookkeeping: tasks it sent and their state,
 * requests awaiting replies, the engine table. It reads replies continuously, so `received`
 * stamps and progress are current without polling. A lost connection is retried with backoff;
 * if the controller cannot be reached again, everything pending fails here, in one place.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { Authenticator, DigestHistory } from "../protocol/auth.js";
import type { ConnectionInfo } from "../protocol/connfile.js";
import { DropStats, type Connection } from "../protocol/connection.js";
import { dial, type Transport } from "../protocol/dial.js";
import { silentLogger, type Logger } from "../protocol/log.js";
import { encodeMessage, makeHeader, type Incoming, type Json } from "../protocol/messages.js";
import { unpack } from "../protocol/serialize.js";
import { reviveSpecials } from "../protocol/specials.js";
import { isoMicro, nowMs, parseIsoMicro } from "../protocol/time.js";
import { takesTaskGroups } from "../protocol/version.js";
import { ControllerError, EngineError, remoteErrorFrom, TimeoutError } from "./errors.js";
import { Landings } from "./landings.js";
import { LandingReserve, type Memory, RESERVE_DEFAULT_KEEP_MS, RESERVE_MIN_BYTES, type ReserveStats } from "./reserve.js";
import { TaskGroups } from "./groups.js";
import { Liveness } from "./liveness.js";
import { EngineLinks, type EngineLink } from "./links.js";
import { ExecuteReply } from "./execute.js";
import type { TaskMetadata } from "./metadata.js";
import { TaskState } from "./task.js";

/** Seconds a ping to a silent controller may go unanswered by default (`controllerTimeout`). */
const DEFAULT_CONTROLLER_TIMEOUT = 20;

export interface CoreOptions {
  info: ConnectionInfo;
  transport?: Transport | undefined;
  timeout: number;
  logger: Logger;
  reconnectTimeout: number;
  /** Use direct links to engines on this host (default true). */
  direct?: boolean;
  /** Seconds a ping to a silent controller may go unanswered before the connection counts as lost (default 20; 0: never; liveness.ts). */
  controllerTimeout?: number | null | undefined;
  /** Bytes of memory prepared ahead for large received arrays (reserve.ts; default 0: none). */
  receiveReserve?: number | undefined;
  /** Seconds a prepared buffer waits for a frame of its size before it is given back. */
  receiveReserveSeconds?: number | undefined;
}

export interface TaskRequest {
  msgType: "apply_request" | "execute_request";
  content: Json;
  metadata: Json;
  buffers: readonly Uint8Array[];
  executeInput?: string;
  /** `metadata` and `content` as JSON, when the caller has them already (see OutMessage.texts). */
  texts?: { metadata: string; content: string };
}

export interface CoreEvents {
  engineRegistered: [id: number, uuid: string];
  engineUnregistered: [id: number, uuid: string];
  output: [msgId: string, stream: "stdout" | "stderr", text: string];
  disconnected: [];
  reconnected: [];
  closed: [];
}

interface Pending {
  resolve: (m: Incoming) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ClientCore extends EventEmitter<CoreEvents> {
  readonly session = randomUUID();
  readonly info: ConnectionInfo;
  /**
   * Tasks not yet finished, and failed ones. A task that succeeded lives on as its metadata and its
   * result (`task()` makes its state again when asked): a client keeps every task until
   * purgeResults, so each one kept costs what the GC walks at every major collection.
   */
  readonly tasks = new Map<string, TaskState>();
  /** Every task's metadata (rc.metadata is read often: no copy per read). */
  readonly metadata = new Map<string, TaskMetadata>();
  readonly history: string[] = [];
  readonly outstanding = new Set<string>();
  readonly results = new Map<string, unknown>();
  readonly engines = new Map<number, string>();
  /** Where each engine runs: pid, hostname, and its direct-link address (same host only). */
  readonly hosts = new Map<number, { pid: number; hostname: string; direct: string | null }>();
  readonly stats = new DropStats();
  /** Reply groups received over links, and the replies in them (tests, tools). */
  readonly replyGroupStats = { groups: 0, replies: 0 };
  /** Places in gathered arrays that replies' large frames are read into (see landings.ts). */
  readonly landings = new Landings();
  readonly #opts: CoreOptions;
  readonly #log: Logger;
  readonly #auth: Authenticator;
  readonly #history = new DigestHistory();
  readonly #requests = new Map<string, Pending>();
  #conn: Connection | null = null;
  /** Load-balanced tasks of this turn, sent to the controller together (see groups.ts). */
  readonly groups: TaskGroups;
  #closed = false;
  /** The controller takes task groups (its protocol is 1.1 or later): else every task goes alone. */
  #groupsTaken = false;
  #reconnecting: Promise<void> | null = null;
  #refed = true;
  readonly #links: EngineLinks;
  /** Which link carries each direct task in flight. */
  readonly #viaLink = new Map<string, EngineLink>();
  /** Target engine of each direct task still outstanding. */
  readonly #directEngine = new Map<string, number>();
  /** Engines came or went since the links were last opened for load-balanced tasks. */
  #linksWanted = true;
  /** Tasks of others (getResult) or re-runs we wait for. */
  readonly #watching = new Set<string>();
  /** Tasks submitted while the connection is down and a reconnect is under way (see #viaController). */
  readonly #held: Array<{ chunks: readonly Uint8Array[]; state: TaskState }> = [];
  /** Notices a controller gone silent while we wait for it. */
  readonly #liveness: Liveness;

  /** Memory prepared ahead for large arrays this client receives (see reserve.ts). */
  readonly #reserve: LandingReserve;
  readonly memory: Memory = (bytes) => this.#reserve.take(bytes);
  /** Tasks whose large request holds the reserve's thread until they finish. */
  readonly #holding = new Set<string>();
  readonly #landing = (head: readonly Buffer[], len: number): Buffer | null => {
    const place = this.landings.take(head, len);
    if (place !== null) return place;
    return this.#reserve.landing(len);
  };

  constructor(opts: CoreOptions) {
    super();
    this.#opts = opts;
    this.info = opts.info;
    this.#log = opts.logger ?? silentLogger;
    this.#auth = new Authenticator(opts.info.key);
    this.#reserve = new LandingReserve(opts.receiveReserve ?? 0, (opts.receiveReserveSeconds ?? RESERVE_DEFAULT_KEEP_MS / 1000) * 1000);
    this.groups = new TaskGroups({
      auth: this.#auth,
      session: this.session,
      open: () => this.#conn !== null && this.#conn.open && this.#groupsTaken,
      write: (chunks, states) => {
        const conn = this.#conn!;
        conn.write(chunks);
        conn.onFlushed(() => {
          for (const s of states) s.sent = true;
        });
      },
      alone: (chunk, state) => this.#viaController([chunk], state),
    });
    this.#links = new EngineLinks({
      session: this.session, auth: this.#auth, history: this.#history, stats: this.stats, log: this.#log,
      landing: this.#landing, timeoutMs: opts.timeout * 1000,
      onMessage: (m) => this.#onMessage(m),
      viaController: (chunks, state) => this.#viaController(chunks, state),
      onLost: (id, tasks) => this.#linkLost(id, tasks),
    });
    this.#liveness = new Liveness({
      socket: () => this.#conn?.socket ?? null,
      // direct tasks on links do not need the controller
      awaiting: () => this.outstanding.size > this.#viaLink.size || this.#watching.size > 0 || this.#requests.size > 0,
      probe: () => {
        this.groups.flush();
        this.#conn?.send({ header: makeHeader("ping_request", this.session), content: {} });
      },
      lost: (ms) => {
        this.#log.warn("the controller went silent; reconnecting", { silentMs: Math.round(ms) });
        this.#conn?.socket.destroy();
      },
    }, (opts.controllerTimeout ?? DEFAULT_CONTROLLER_TIMEOUT) * 1000);
  }

  get reserveStats(): ReserveStats {
    return this.#reserve.stats;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get ids(): number[] {
    return [...this.engines.keys()].sort((a, b) => a - b);
  }

  async connect(): Promise<void> {
    const { conn, welcome } = await dial({
      info: this.info, transport: this.#opts.transport, role: "client", session: this.session,
      timeoutMs: this.#opts.timeout * 1000, auth: this.#auth, history: this.#history, stats: this.stats,
      log: this.#log, verifyBuffers: true, landing: this.#landing,
      onConnection: (c) => {
        c.on("message", (m) => this.#onMessage(m));
        c.on("close", () => this.#onClose(c));
      },
    });
    if (this.#closed) {
      // closed while this connection was being made (a reconnect under way)
      conn.close(true);
      throw new ControllerError("the client is closed");
    }
    this.#conn = conn;
    this.#groupsTaken = takesTaskGroups(welcome.protocol);
    this.#updateRef();
    this.#liveness.start();
    // the engine table is applied as the reply is read (#onMessage), not after this await: a
    // registration read in the same chunk right after the reply would otherwise be overwritten
    await this.request("connection_request", {}, this.#opts.timeout);
  }

  /** The controller's engine table, as of its connection_reply. */
  #applyEngineTable(content: Json): void {
    this.#linksWanted = true;
    this.engines.clear();
    for (const [id, uuid] of Object.entries((content.engines ?? {}) as Record<string, string>)) this.engines.set(Number(id), uuid);
    this.hosts.clear();
    for (const [id, h] of Object.entries((content.hosts ?? {}) as Record<string, { pid: number; hostname: string; direct: string | null }>)) {
      this.hosts.set(Number(id), { pid: h.pid, hostname: h.hostname, direct: h.direct ?? null });
    }
  }

  // ---- sending -------------------------------------------------------------------------------

  /** Send a task; its state is tracked until the reply (or a failure) arrives. */
  submit(req: TaskRequest): TaskState {
    const sent = nowMs(); // the header's date and the metadata's submitted: one clock read, no parse back
    const header = makeHeader(req.msgType, this.session, undefined, sent);
    const state = new TaskState(header.msg_id);
    this.#track(state, req, sent);
    if (this.#reserve.enabled && req.buffers.length > 0 && bytesOf(req.buffers) >= RESERVE_MIN_BYTES) {
      // the reserve's thread leaves the cores to this send until the task is done
      this.#reserve.hold();
      this.#holding.add(state.msgId);
    }
    const msg = { header, metadata: req.metadata, content: req.content, buffers: req.buffers, texts: req.texts };
    if (req.metadata.route === "direct") this.#directEngine.set(state.msgId, Number(req.metadata.engine));
    else if (this.#linksWanted) this.#openLinks();
    const link = this.#opts.direct !== false && req.metadata.route === "direct" ? this.#linkFor(Number(req.metadata.engine)) : null;
    if (link !== null) {
      this.#viaLink.set(state.msgId, link);
      link.send(encodeMessage(this.#auth, msg), state);
    } else if (req.metadata.route === "task") {
      // the group's index carries the metadata as JSON: make it once, for the message and the index
      const texts = req.texts ?? { metadata: JSON.stringify(req.metadata), content: JSON.stringify(req.content) };
      const chunks = encodeMessage(this.#auth, { header, metadata: req.metadata, content: req.content, buffers: req.buffers, texts });
      if (!this.groups.add(chunks, state, header, texts.metadata)) this.#viaController(chunks, state);
    } else {
      this.#viaController(encodeMessage(this.#auth, msg), state);
    }
    return state;
  }

  /**
   * Open a link to every engine on this host: an engine answers a load-balanced task over its
   * client's link when it can (one hop instead of two back), and the controller still schedules and
   * records it. Done once, and again when engines come and go; tasks sent meanwhile are answered
   * through the controller.
   */
  #openLinks(): void {
    this.#linksWanted = false;
    if (this.#opts.direct === false) return;
    for (const id of this.hosts.keys()) this.#linkFor(id);
  }

  /** The engine a direct task of ours was sent to, or null. */
  directEngineOf(msgId: string): number | null {
    return this.#directEngine.get(msgId) ?? null;
  }

  #linkFor(engineId: number): EngineLink | null {
    if (this.#closed) return null;
    return this.#links.get(engineId, this.hosts.get(engineId), this.engines.get(engineId) ?? null);
  }

  #viaController(chunks: readonly Uint8Array[], state: TaskState): void {
    this.groups.flush(); // what was submitted before goes first
    this.#viaLink.delete(state.msgId);
    const conn = this.#conn;
    if (conn === null || !conn.open) {
      if (!this.#closed && this.#reconnecting !== null) {
        this.#held.push({ chunks, state }); // sent once the connection is back (or failed with the rest)
        return;
      }
      state.reject(new ControllerError(this.#closed ? "the client is closed" : "not connected to the controller"));
      this.#finish(state);
      return;
    }
    conn.write(chunks);
    conn.onFlushed(() => (state.sent = true));
  }

  /** A direct link dropped: its engine died (or went away) with these tasks on it. */
  #linkLost(engineId: number, tasks: TaskState[]): void {
    for (const state of tasks) {
      if (state.done) continue;
      const error = new EngineError("EngineError", `Engine ${engineId} died while running task ${state.msgId} (the direct connection dropped)`, "", {
        engineId, engineUuid: this.engines.get(engineId) ?? null, method: null,
      });
      state.metadata.status = "error";
      state.metadata.error = error;
      state.metadata.engineId = engineId;
      state.metadata.setTime("received", nowMs());
      state.reject(error);
      this.#finish(state);
    }
  }

  #track(state: TaskState, req: TaskRequest, submittedMs: number): void {
    const md = state.metadata;
    md.setTime("submitted", submittedMs);
    md.executeInput = req.executeInput ?? null;
    md.after = depIds(req.metadata.after) ?? md.after;
    md.follow = depIds(req.metadata.follow) ?? md.follow;
    md.label = typeof req.metadata.label === "string" ? req.metadata.label : null;
    this.tasks.set(state.msgId, state);
    this.metadata.set(state.msgId, md);
    this.history.push(state.msgId);
    this.outstanding.add(state.msgId);
    this.#updateRef();
  }

  /** A request to the controller answered by one reply. Rejects on an error reply, timeout or disconnect. */
  request(msgType: string, content: Json, timeoutSec = 60): Promise<Incoming> {
    const conn = this.#conn;
    if (conn === null || !conn.open) return Promise.reject(new ControllerError(this.#closed ? "the client is closed" : "not connected to the controller"));
    const header = makeHeader(msgType, this.session);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(header.msg_id);
        this.#updateRef();
        reject(new TimeoutError(`${msgType} got no reply within ${timeoutSec} s`));
      }, timeoutSec * 1000);
      const settle = (m: Incoming) => {
        if (m.content.status === "error" && m.content.ename !== undefined) reject(remoteErrorFrom(m.content));
        else resolve(m);
      };
      this.#requests.set(header.msg_id, { resolve: settle, reject, timer });
      this.#updateRef();
      this.groups.flush(); // tasks submitted before (an abort of them, a status that counts them) go first
      conn.send({ header, content });
    });
  }

  // ---- receiving -----------------------------------------------------------------------------

  #onMessage(msg: Incoming): void {
    this.#reserve.settle();
    if (msg.msgType === "connection_reply" && msg.content.status === "ok") this.#applyEngineTable(msg.content); // (then settles its request)
    switch (msg.msgType) {
      case "apply_reply":
      case "execute_reply":
        return this.#taskReply(msg);
      case "reply_group":
        return this.#replyGroup(msg);
      case "stream":
        return this.#stream(msg);
      case "ping_reply":
        return; // a sign of life (liveness.ts)
      case "registration_notification":
        this.engines.set(Number(msg.content.id), String(msg.content.uuid));
        this.#links.forget(Number(msg.content.id));
        this.#linksWanted = true;
        this.hosts.set(Number(msg.content.id), {
          pid: Number(msg.content.pid), hostname: String(msg.content.hostname),
          direct: typeof msg.content.direct === "string" ? msg.content.direct : null,
        });
        this.emit("engineRegistered", Number(msg.content.id), String(msg.content.uuid));
        return;
      case "unregistration_notification":
        this.engines.delete(Number(msg.content.id));
        this.hosts.delete(Number(msg.content.id));
        this.#links.forget(Number(msg.content.id));
        this.#afterEngineLeft();
        this.emit("engineUnregistered", Number(msg.content.id), String(msg.content.uuid));
        return;
      case "hub_result":
        if (msg.content.status === "ok") this.fillFromRecord(msg);
        return;
      case "shutdown_notification":
        void this.close(new ControllerError("the controller shut down"));
        return;
      default: {
        const pending = msg.parentId === undefined ? undefined : this.#requests.get(msg.parentId);
        if (pending === undefined) {
          this.stats.count(`unexpected ${msg.msgType}`);
          return;
        }
        this.#requests.delete(msg.parentId!);
        clearTimeout(pending.timer);
        this.#updateRef();
        pending.resolve(msg);
      }
    }
  }

  #taskReply(msg: Incoming): void {
    const state = msg.parentId === undefined ? undefined : this.tasks.get(msg.parentId);
    if (state === undefined || state.done) {
      this.stats.count("stale or unknown reply");
      return;
    }
    this.applyReply(state, msg.header.date, msg.metadata, msg.content, msg.buffers, msg.msgType === "execute_reply");
  }

  /**
   * Replies of a burst of load-balanced tasks, in one message over an engine's link (protocol 1.2,
   * src/engine/replies.ts): each entry settles its task as a reply of its own would. A malformed
   * group is dropped whole and counted.
   */
  #replyGroup(msg: Incoming): void {
    const c = msg.content;
    const buffers = msg.buffers;
    if (typeof c.engine !== "string" || !validReplyEntries(c.replies, buffers.length)) {
      this.stats.count("malformed reply group");
      return;
    }
    const uuid = c.engine;
    const engineId = typeof c.engine_id === "number" ? c.engine_id : this.#engineIdOf(uuid);
    this.replyGroupStats.groups += 1;
    let at = 0;
    for (const [id, date, started, specials, n] of c.replies as ReplyEntry[]) {
      const values = buffers.slice(at, (at += n));
      const state = this.tasks.get(id);
      if (state === undefined || state.done) {
        this.stats.count("stale or unknown reply");
        continue;
      }
      this.replyGroupStats.replies += 1;
      this.#settle(state, date, started, uuid, engineId, specials === 1 ? OK_WITH_SPECIALS : OK, values, false);
    }
  }

  /** Fill a task's state from a reply (live, or fetched from the controller's record). */
  applyReply(state: TaskState, date: string, metadata: Json, content: Json, buffers: Buffer[], isExecute: boolean): void {
    const started = typeof metadata.started === "string" ? metadata.started : null;
    const uuid = typeof metadata.engine === "string" ? metadata.engine : null;
    const engineId = typeof metadata.engine_id === "number" ? metadata.engine_id : this.#engineIdOf(uuid);
    this.#settle(state, date, started, uuid, engineId, content, buffers, isExecute);
  }

  #settle(state: TaskState, date: string, started: string | null, uuid: string | null, engineId: number | null, content: Json, buffers: Buffer[], isExecute: boolean): void {
    const md = state.metadata;
    md.setTime("received", nowMs());
    md.setTime("started", started === null ? null : parseIsoMicro(started));
    md.setTime("completed", parseIsoMicro(date));
    md.engineId = engineId;
    // the engine table's copy of the uuid, not one more string per task kept until purgeResults
    const known = md.engineId === null ? undefined : this.engines.get(md.engineId);
    md.engineUuid = known === uuid ? known : uuid;
    md.status = content.status === "ok" ? "ok" : content.status === "aborted" ? "aborted" : "error";
    if (md.status === "ok") {
      try {
        const value = decodeValue(content, buffers);
        const result = isExecute ? new ExecuteReply(md.engineId, Number(content.execution_count ?? 0), value, content.data as Json | null) : value;
        if (isExecute) md.executeResult = (content.data as Record<string, unknown>) ?? null;
        this.results.set(state.msgId, result);
        state.resolve(result);
        this.tasks.delete(state.msgId);
      } catch (err) {
        state.reject(err as Error);
      }
    } else {
      const error = remoteErrorFrom(content, { engineId: md.engineId, engineUuid: md.engineUuid, method: isExecute ? "execute" : "apply" });
      md.error = error;
      state.reject(error);
    }
    this.#finish(state);
  }

  #finish(state: TaskState): void {
    this.#watching.delete(state.msgId);
    this.#viaLink.get(state.msgId)?.done(state.msgId);
    this.#viaLink.delete(state.msgId);
    this.#directEngine.delete(state.msgId);
    this.outstanding.delete(state.msgId);
    if (this.landings.size > 0) this.landings.withdraw(state.msgId);
    if (this.#holding.size > 0 && this.#holding.delete(state.msgId)) this.#reserve.release();
    this.#updateRef();
  }

  #stream(msg: Incoming): void {
    const md = msg.parentId === undefined ? undefined : this.metadata.get(msg.parentId);
    if (md === undefined) return;
    const name = msg.content.name === "stderr" ? "stderr" : "stdout";
    const text = String(msg.content.text ?? "");
    md[name] += text;
    this.emit("output", md.msgId, name, text);
  }

  #engineIdOf(uuid: string | null): number | null {
    if (uuid === null) return null;
    for (const [id, u] of this.engines) if (u === uuid) return id;
    return null;
  }

  // ---- connection loss -----------------------------------------------------------------------

  #onClose(conn: Connection): void {
    if (conn !== this.#conn) return;
    this.#conn = null;
    for (const [id, p] of this.#requests) {
      clearTimeout(p.timer);
      p.reject(new ControllerError("the connection to the controller was lost"));
      this.#requests.delete(id);
    }
    if (this.#closed) return;
    this.#reconnecting ??= this.#reconnect().finally(() => (this.#reconnecting = null));
    this.emit("disconnected");
  }

  async #reconnect(): Promise<void> {
    const deadline = Date.now() + this.#opts.reconnectTimeout * 1000;
    let delay = 100;
    while (!this.#closed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, delay));
      try {
        await this.connect();
        this.#sendHeld(); // ahead of the catch-up on the same connection: the controller knows them when it answers
        await this.#catchUp();
        this.emit("reconnected");
        return;
      } catch (err) {
        this.#log.warn("reconnect failed", { error: (err as Error).message });
        // a connection made before the catch-up failed is not kept: the next try makes a new one
        const stale = this.#conn;
        this.#conn = null;
        stale?.close(true);
        delay = Math.min(delay * 2, 2000);
      }
    }
    await this.close(new ControllerError(`lost the connection to the controller and could not reconnect within ${this.#opts.reconnectTimeout} s`));
  }

  /**
   * An engine left. A task of ours that went through the controller may have been answered over
   * our link to that engine just before it went: the controller has its record (the engine's report
   * came before its end), but if the answer itself was lost with the engine, only the record has it.
   */
  #afterEngineLeft(): void {
    const ids = [...this.outstanding].filter((id) => !this.#viaLink.has(id));
    this.#catchUp(ids).catch((err: Error) => this.#log.warn("catch-up after an engine left failed", { error: err.message }));
  }

  /** Tasks submitted while the connection was down, in order. */
  #sendHeld(): void {
    const held = this.#held.splice(0);
    for (const { chunks, state } of held) if (!state.done) this.#viaController(chunks, state);
  }

  /**
   * After a reconnect: fetch replies that arrived while we were away, for our tasks and for the
   * tasks of others we wait for (`getResult`: the controller's notice of their end may have come
   * while we were away), and watch those still running. A task the controller has no record of is
   * not held against the others: one on a direct link is still answered there (the engine may not
   * have reported it yet); one sent through the controller never reached it (its request was lost
   * with the connection) and fails on its own.
   */
  async #catchUp(ids = [...new Set([...this.outstanding, ...this.#watching])]): Promise<void> {
    if (ids.length === 0) return;
    const reply = await this.request("result_request", { msg_ids: ids, missing_ok: true, watch: true });
    this.fillFromRecord(reply);
    for (const [id, reason] of Object.entries((reply.content.missing ?? {}) as Record<string, string>)) {
      const state = this.tasks.get(id);
      if (state === undefined || state.done || this.#viaLink.has(id)) continue;
      state.reject(new ControllerError(`task ${id} is lost: the controller cannot answer for it after the connection dropped (${reason})`));
      this.#finish(state);
    }
  }

  /** Apply a `result_reply` (records of finished tasks) to the matching task states. */
  fillFromRecord(reply: Incoming): void {
    for (const [id, r] of Object.entries((reply.content.records ?? {}) as Record<string, Json>)) {
      const state = this.tasks.get(id);
      if (state === undefined || state.done) continue;
      if (typeof r.submitted === "string") state.metadata.setTime("submitted", parseIsoMicro(r.submitted));
      if (typeof r.engine_id === "number") state.metadata.engineId = r.engine_id;
      if (state.metadata.stdout === "") state.metadata.stdout = String(r.stdout ?? "");
      if (state.metadata.stderr === "") state.metadata.stderr = String(r.stderr ?? "");
    }
    const results = (reply.content.results ?? {}) as Record<string, Json>;
    const all = reply.buffers;
    for (const [id, r] of Object.entries(results)) {
      const state = this.tasks.get(id);
      if (state === undefined || state.done) continue;
      const [start, count] = (r.buffers as [number, number]) ?? [0, 0];
      const header = r.result_header as Json;
      const metadata = (r.result_metadata ?? {}) as Json;
      if (typeof r.submitted === "string") state.metadata.setTime("submitted", parseIsoMicro(r.submitted));
      state.metadata.stdout = String(r.stdout ?? "");
      state.metadata.stderr = String(r.stderr ?? "");
      this.applyReply(state, String(header.date), metadata, r.result_content as Json, all.slice(start, start + count), String(header.msg_type) === "execute_reply");
      if (typeof r.received === "string") state.metadata.setTime("received", parseIsoMicro(r.received));
    }
  }

  /** Track a task this client did not send (or sent in an earlier session): filled from the controller. */
  adopt(msgId: string, record: Json | null): TaskState {
    let state = this.task(msgId);
    if (state !== undefined) return state;
    state = new TaskState(msgId);
    state.sent = true;
    const submitted = record?.submitted;
    state.metadata.setTime("submitted", typeof submitted === "string" ? parseIsoMicro(submitted) : nowMs());
    this.tasks.set(msgId, state);
    this.metadata.set(msgId, state.metadata);
    this.#watching.add(msgId);
    this.#updateRef();
    return state;
  }

  /** A task this client knows: pending, failed, or one that succeeded (its state made again, settled). */
  task(msgId: string): TaskState | undefined {
    const state = this.tasks.get(msgId);
    if (state !== undefined) return state;
    const md = this.metadata.get(msgId);
    return md === undefined || !this.results.has(msgId) ? undefined : TaskState.succeeded(md, this.results.get(msgId));
  }

  /** Stop waiting for an adopted task (its fetch failed). */
  unwatch(msgId: string): void {
    this.#watching.delete(msgId);
    this.#updateRef();
  }

  /** Cut the controller connection as a network failure would (tests of reconnection). */
  dropConnection(): void {
    this.#conn?.socket.destroy();
  }

  /** Stop reading the direct links, or go on (tests of answers lost on a link). */
  holdLinks(on: boolean): void {
    this.#links.hold(on);
  }

  /** Close the connection; everything still pending fails with `reason`. */
  async close(reason: Error = new ControllerError("the client is closed")): Promise<void> {
    if (this.#closed) return;
    this.groups.flush(); // tasks of this turn leave as they would have alone
    this.#closed = true;
    this.#held.length = 0; // their tasks are outstanding: failed below with the rest
    this.#liveness.stop();
    this.#links.closeAll();
    this.#reserve.close();
    for (const id of [...this.outstanding, ...this.#watching]) {
      const state = this.tasks.get(id);
      state?.reject(reason);
      if (state !== undefined) this.#finish(state);
    }
    for (const [id, p] of this.#requests) {
      clearTimeout(p.timer);
      p.reject(reason);
      this.#requests.delete(id);
    }
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null && !conn.closed) {
      conn.socket.ref(); // keep the process alive until the close completes
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        conn.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        conn.close();
      });
    }
    this.emit("closed");
  }

  /** Keep Node alive only while something is pending. */
  #updateRef(): void {
    const want = this.outstanding.size > 0 || this.#watching.size > 0 || this.#requests.size > 0 || this.#reconnecting !== null;
    if (want === this.#refed || this.#conn === null) return;
    this.#refed = want;
    if (want) this.#conn.socket.ref();
    else this.#conn.socket.unref();
  }
}

function depIds(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === "string") return [value];
  if (value !== null && typeof value === "object" && Array.isArray((value as Json).ids)) return ((value as Json).ids as unknown[]).map(String);
  return undefined;
}

/** A reply group's entry: [task id, completed, started, value has specials (1/0), buffer count] (src/engine/replies.ts). */
type ReplyEntry = [string, string, string | null, number, number];
const OK: Json = { status: "ok" };
const OK_WITH_SPECIALS: Json = { status: "ok", specials: true };

function validReplyEntries(replies: unknown, buffers: number): boolean {
  if (!Array.isArray(replies)) return false;
  let total = 0;
  for (const e of replies as unknown[]) {
    if (!Array.isArray(e) || e.length !== 5) return false;
    const [id, date, started, specials, n] = e as unknown[];
    if (typeof id !== "string" || typeof date !== "string" || (started !== null && typeof started !== "string")) return false;
    if ((specials !== 0 && specials !== 1) || !Number.isInteger(n) || (n as number) < 0) return false;
    total += n as number;
  }
  return total === buffers;
}

/** A result's value: deserialized, with functions it contains rebuilt from their source. */
function decodeValue(content: Json, buffers: Buffer[]): unknown {
  if (buffers.length === 0) return undefined;
  const value = unpack(buffers);
  if (content.specials !== true) return value;
  return reviveSpecials(value, (s) => {
    if (s["\u0000tsp"] === "fn") return globalThis.eval(`(${(s as { src: string }).src}\n)`);
    return s;
  });
}

export { isoMicro };

function bytesOf(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}
