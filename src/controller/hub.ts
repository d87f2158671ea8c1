/**
 * The hub: who is connected, where each task goes, and the record of every task. It routes on
 * headers and metadata alone and forwards the bytes it received; payloads are never deserialized.
 */
import type { Connection, DropStats, Hello } from "../protocol/connection.js";
import type { Logger } from "../protocol/log.js";
import { encodeMessage, Incoming, makeHeader, type Header, type Json, type OutMessage } from "../protocol/messages.js";
import { GROUP_ITEM_MAX, POLY_THRESHOLD, signatureOf, type Authenticator, type DigestHistory } from "../protocol/auth.js";
import { isoMicro } from "../protocol/time.js";
import { decodeRaw, type Tail } from "../protocol/wire.js";
import { MSG_SPEC_VERSION, takesTaskHandoffs } from "../protocol/version.js";
import type { TaskDb } from "./db/memory.js";
import { headText, retain, retainAll, type ReplyStub, type TaskRecord, type TaskStatus } from "./db/record.js";
import { EngineRegistry, type EngineEntry } from "./engines.js";
import { Fanouts } from "./fanout.js";
import { recordResult } from "./queries.js";
import { HeartMonitor } from "./heartbeat.js";
import { ClientStalls, STALL_CHECK_MS, STALL_MS } from "./stalls.js";
import { parseDependency } from "./scheduler/dependency.js";
import type { SchemeName } from "./scheduler/schemes.js";
import { TaskScheduler, type Job } from "./scheduler/task.js";

/** How long a task purged before its engine reported it waits for that report (see `purgeWhenFinished`). */
const PURGE_WAIT_MS = 60_000;

export interface HubOptions {
  session: string;
  auth: Authenticator;
  stats: DropStats;
  log: Logger;
  /** The connections' replay history: the tasks of a group are entered in it too. */
  history: DigestHistory;
  db: TaskDb;
  scheme: SchemeName;
  hwm: number;
  hbPeriod: number;
  hbMisses: number;
  /** Called when a client asks the controller itself to shut down. */
  onShutdown: () => void;
}

type ClientHandler = (conn: Connection, session: string, msg: Incoming) => void;

export class Hub {
  readonly engines = new EngineRegistry();
  readonly clients = new Map<string, Connection>();
  readonly db: TaskDb;
  readonly scheduler: TaskScheduler;
  readonly monitor: HeartMonitor;
  readonly session: string;
  readonly #opts: HubOptions;
  readonly #log: Logger;
  readonly #entries = new WeakMap<Connection, EngineEntry>();
  readonly #pendingHearts = new Map<string, Connection>();
  readonly #fanouts: Fanouts;
  /** Aborts the scheduler sent to an engine itself (their replies are not for a client), by request msg_id: engine id. */
  readonly #ownAborts = new Map<string, number>();
  /** Clients (other than the sender) waiting for a task's reply: msg id → sessions. */
  readonly #watchers = new Map<string, Set<string>>();
  readonly #stalls = new ClientStalls();
  #stallTimer: NodeJS.Timeout | null = null;
  readonly #clientHandlers: Record<string, ClientHandler>;
  /** Large messages passed on while they arrived (cut-through), and where to. */
  readonly #passedOn = new WeakMap<Incoming, Connection>();
  /** Load-balanced tasks placed while they arrived: recorded when their last byte is in. */
  readonly #placedEarly = new WeakMap<Incoming, TaskRecord>();
  /** Where such a task's bytes come from (paused while its engine is backed up). */
  readonly #arrivingFrom = new WeakMap<Job, Connection>();
  /** Large messages passed on while they arrived, and their bytes (stats). */
  readonly passOnStats = { messages: 0, bytes: 0 };
  /** Task groups taken in, and the tasks in them (stats). */
  readonly groupStats = { groups: 0, tasks: 0 };
  /** Tasks handed to engines with `writeGrouped`, and the groups of engines gone since (their connections' counts). */
  #handedOff = 0;
  #handedOffGroups = 0;
  /** How often a sender was paused because a peer it wrote to was full (see `forwardLimit`). */
  readonly flowStats = { forwardLimit: 0, sendersPaused: 0 };
  /** Tasks that came through here and were answered over their client's direct link (stats). */
  #answeredOverLinks = 0;
  /**
   * Tasks purged by their client while still pending or unknown here (their engine's report to
   * come): dropped when they finish. Each waits at most PURGE_WAIT_MS (a report that never comes:
   * the engine died first, and its tasks were failed here already, or were never known).
   */
  readonly #purgeOnFinish = new Map<string, number>();

  constructor(opts: HubOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.session = opts.session;
    this.db = opts.db;
    this.scheduler = new TaskScheduler(this.#schedulerHost(), { scheme: opts.scheme, hwm: opts.hwm });
    this.monitor = new HeartMonitor({
      period: opts.hbPeriod,
      misses: opts.hbMisses,
      targets: () => this.engines.all().map((e) => this.#heartTarget(e)),
      onDead: (id) => this.#engineGone(id, "missed heartbeats"),
    });
    this.#fanouts = new Fanouts(this, opts.log);
    this.#clientHandlers = this.#makeClientHandlers();
  }

  start(): void {
    this.monitor.start();
    this.#stallTimer ??= setInterval(() => this.#dropStalledClients(), STALL_CHECK_MS).unref();
  }

  stop(): void {
    this.monitor.stop();
    if (this.#stallTimer !== null) clearInterval(this.#stallTimer);
    this.#stallTimer = null;
    this.#fanouts.cancelAll();
  }

  /** Clients that read nothing while engines wait on them are dropped (stalls.ts). */
  #dropStalledClients(): void {
    for (const conn of this.#stalls.check(this.clients.values())) {
      const session = [...this.clients].find(([, c]) => c === conn)?.[0];
      this.#opts.stats.count("client dropped: took nothing while backed up");
      this.#log.warn("dropped a client that took nothing while engines waited on it", { session, stalledMs: STALL_MS });
      conn.close(true);
    }
  }

  /** A connection passed its handshake. */
  attach(conn: Connection, hello: Hello): void {
    if (hello.role === "client") return this.#attachClient(conn, hello.session);
    if (hello.role === "engine") {
      conn.on("message", (m) => this.#fromEngine(conn, m));
      conn.on("head", (m) => this.#engineHead(conn, m));
      conn.on("close", () => this.#engineConnClosed(conn));
      return;
    }
    if (hello.role === "heart") return this.#attachHeart(conn, String(hello.uuid ?? ""));
    this.#opts.stats.count("unknown role");
    conn.close(true);
  }

  /** Sign and send a message made by the controller. */
  send(conn: Connection, msgType: string, content: Json, parent: Header | null = null, buffers: Uint8Array[] = [], metadata: Json = {}): void {
    conn.send({ header: makeHeader(msgType, this.session), parent, content, buffers, metadata });
  }

  drop(reason: string, msg: Incoming): void {
    this.#opts.stats.count(reason);
    this.#log.warn("dropped message", { reason, msgType: msg.msgType, msgId: msg.header.msg_id });
  }

  // ---- clients --------------------------------------------------------------------------------

  #attachClient(conn: Connection, session: string): void {
    this.clients.get(session)?.close(true);
    this.clients.set(session, conn);
    conn.on("head", (m) => this.#clientHead(conn, session, m));
    conn.on("message", (m) => {
      const handler = this.#clientHandlers[m.msgType];
      if (handler === undefined) return this.drop(`unknown message type ${JSON.stringify(m.msgType).slice(0, 40)}`, m);
      try {
        handler(conn, session, m);
      } catch (err) {
        this.#log.error("client request failed", { msgType: m.msgType, error: String(err) });
        this.send(conn, m.msgType.replace(/_request$/, "_reply"), errorContent(err), m.header);
      }
    });
    conn.on("close", () => {
      if (this.clients.get(session) === conn) this.clients.delete(session);
    });
  }

  #makeClientHandlers(): Record<string, ClientHandler> {
    const submit: ClientHandler = (conn, session, msg) => this.#submit(conn, session, msg);
    return {
      apply_request: submit,
      execute_request: submit,
      task_group: (conn, session, msg) => this.#submitGroup(conn, session, msg),
      connection_request: (conn, _s, msg) => this.send(conn, "connection_reply", { status: "ok", engines: this.#engineTable(), hosts: this.#hostTable() }, msg.header),
      queue_request: (conn, _s, msg) => this.send(conn, "queue_reply", this.#queueStatus(msg.content), msg.header),
      abort_request: (conn, _s, msg) => this.#abort(conn, msg),
      clear_request: (conn, _s, msg) => this.#fanouts.start(conn, msg, "clear_request", this.#targets(msg.content), {}),
      signal_request: (conn, _s, msg) => this.#fanouts.start(conn, msg, "signal_request", this.#targets(msg.content), { sig: msg.content.sig }, "heart"),
      shutdown_request: (conn, _s, msg) => this.#shutdown(conn, msg),
      stats_request: (conn, _s, msg) => this.send(conn, "stats_reply", this.#stats(), msg.header),
      ping_request: (conn, _s, msg) => this.send(conn, "ping_reply", {}, msg.header),
    };
  }

  /** Register extra client handlers (task-record queries live in their own module). */
  addClientHandlers(handlers: Record<string, ClientHandler>): void {
    Object.assign(this.#clientHandlers, handlers);
  }

  #stats(): Json {
    return {
      status: "ok", engines: this.engines.size, clients: this.clients.size, tasks: this.db.size,
      unassigned: this.scheduler.unassigned, scheme: this.scheduler.schemeName, hwm: this.scheduler.hwm,
      hearts: this.engines.all().filter((e) => e.heart !== null && e.heart.open).length,
      early: { ...this.scheduler.earlyStats, limits: Object.fromEntries(this.engines.ids().map((id) => [String(id), this.scheduler.earlyLimit(id)])) },
      dropped: this.#opts.stats.toJSON(), droppedTotal: this.#opts.stats.total,
      passedOn: { ...this.passOnStats },
      flowControl: { ...this.flowStats },
      grouped: { ...this.groupStats },
      handedOff: { groups: this.#handedOffGroups + this.engines.all().reduce((n, e) => n + e.conn.groupsSent, 0), tasks: this.#handedOff },
      answeredOverLinks: this.#answeredOverLinks,
    };
  }

  #engineTable(): Record<string, string> {
    return Object.fromEntries(this.engines.all().map((e) => [String(e.id), e.uuid]));
  }

  #hostTable(): Record<string, { pid: number; hostname: string; direct: string | null }> {
    return Object.fromEntries(this.engines.all().map((e) => [String(e.id), { pid: e.pid, hostname: e.hostname, direct: e.address }]));
  }

  #targets(content: Json): number[] {
    const t = content.targets;
    if (t === null || t === undefined || t === "all") return this.engines.ids();
    if (!Array.isArray(t) || !t.every((x) => Number.isInteger(x))) throw new TypeError("targets must be a list of engine ids");
    const unknown = t.filter((id) => this.engines.get(id as number) === undefined);
    if (unknown.length > 0) throw new RangeError(`no engine with id ${unknown.join(", ")} (registered: ${this.engines.ids().join(", ") || "none"})`);
    return t as number[];
  }

  #queueStatus(content: Json): Json {
    const verbose = content.verbose === true;
    const out: Json = { status: "ok" };
    for (const id of this.#targets(content)) {
      const e = this.engines.get(id)!;
      const tasks = this.scheduler.inFlight(id);
      out[String(id)] = verbose
        ? { queue: [...e.direct], completed: e.completed, tasks }
        : { queue: e.direct.size, completed: e.completed, tasks: tasks.length };
    }
    out.unassigned = verbose ? this.scheduler.unassignedIds() : this.scheduler.unassigned;
    return out;
  }

  // ---- tasks ----------------------------------------------------------------------------------

  /** Forward the task's reply to this client too when it arrives. */
  watch(msgId: string, session: string): void {
    let set = this.#watchers.get(msgId);
    if (set === undefined) this.#watchers.set(msgId, (set = new Set()));
    set.add(session);
  }

  /** Send the finished task's record (result, timestamps, output) to the clients watching it. */
  #notifyWatchers(record: TaskRecord): void {
    const sessions = this.#watchers.get(record.msgId);
    if (sessions === undefined) return;
    this.#watchers.delete(record.msgId);
    let content: Json;
    const buffers: Buffer[] = [];
    try {
      content = { status: "ok", results: { [record.msgId]: recordResult(this.db.get(record.msgId), buffers) } };
    } catch (err) {
      content = errorContent(err);
    }
    for (const s of sessions) {
      const c = this.clients.get(s);
      if (c !== undefined && s !== record.clientSession) this.send(c, "hub_result", content, null, buffers);
    }
  }

  /** Take a task request (from a client, or a resubmission made by the controller). */
  submitMessage(conn: Connection, session: string, msg: Incoming): void {
    this.#submit(conn, session, msg);
  }

  #submit(conn: Connection, session: string, msg: Incoming): void {
    const placed = this.#placedEarly.get(msg);
    if (placed !== undefined) {
      // placed while it arrived (#placeArriving): now its bytes are all in, the record keeps them
      if (this.db.has(placed.msgId)) this.db.update(placed.msgId, { requestRaw: retainAll(msg.raw) });
      return;
    }
    const md = msg.metadata;
    const record = this.#newRecord(msg, session, md.route === "direct" ? "direct" : "task");
    if (md.route === "direct") return this.#submitDirect(conn, record, msg);
    if (md.route !== "task") return this.failTask(record, "TypeError", `unknown route ${JSON.stringify(md.route)}`);
    let job: Job;
    try {
      job = this.#makeJob(record, msg.raw);
    } catch (err) {
      return this.failTask(record, (err as Error).name, (err as Error).message);
    }
    this.scheduler.submit(job);
  }

  /**
   * Tasks a client submitted in one turn, in one message (src/client/groups.ts). The group was
   * authenticated as a whole, its buffers included (a group stays below the size where buffers get a
   * MAC of their own); its index gives each task's id, date, type and metadata, so no task's message
   * is framed, verified or parsed here: each is recorded and scheduled as if it had come alone, and
   * its own signed bytes go on to its engine, which checks them. Each task's signature enters the
   * replay history, so none of them can be sent again alone.
   */
  #submitGroup(conn: Connection, session: string, msg: Incoming): void {
    const c = msg.content as { types?: unknown; mds?: unknown; tasks?: unknown };
    const buffers = msg.buffers;
    if (!Array.isArray(c.types) || !Array.isArray(c.mds) || !Array.isArray(c.tasks) || c.tasks.length !== buffers.length) {
      return this.drop("malformed task group", msg);
    }
    // below POLY_THRESHOLD the group's HMAC covers its buffers, which this controller does not check otherwise
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    if (bytes >= POLY_THRESHOLD) return this.drop("task group too large", msg);
    this.groupStats.groups += 1;
    for (let i = 0; i < buffers.length; i++) {
      const entry = groupEntry(c.tasks[i], c.types, c.mds, session);
      const raw = buffers[i]!;
      const mac = entry === null ? null : signatureOf(raw);
      if (entry === null || (mac === null && this.db.has(entry.header.msg_id))) {
        this.#opts.stats.count("malformed task in a group");
        continue;
      }
      if (mac === null) {
        // its engine could not check it: it fails here, where its client hears of it (an id already
        // recorded belongs to another task, which such an entry must not end)
        const record = emptyRecord(entry.header, entry.metadata, session, "task");
        this.#addRecord(record);
        this.failTask(record, "ProtocolError", `task ${entry.header.msg_id} came in a group without a valid frame`);
        continue;
      }
      if (!this.#opts.history.add(mac)) {
        this.#opts.stats.count("replayed message");
        continue;
      }
      this.groupStats.tasks += 1;
      this.#submit(conn, session, Incoming.known(raw, entry.header, entry.metadata));
    }
  }

  #submitDirect(conn: Connection, record: TaskRecord, msg: Incoming): void {
    const engine = this.engines.get(Number(msg.metadata.engine));
    if (engine === undefined) {
      return this.failTask(record, "EngineError", `engine ${String(msg.metadata.engine)} is not registered`);
    }
    record.engineId = engine.id;
    record.engineUuid = engine.uuid;
    engine.direct.add(record.msgId);
    if (this.#passedOn.get(msg) !== engine.conn) this.forward(engine.conn, msg.raw, conn);
  }

  // ---- large messages, passed on while they arrive -----------------------------------------------

  /**
   * The head of a large message from a client is in, its buffers are not. A task for one engine
   * (a DirectView's push, scatter, apply with big arguments) starts on its way to that engine now,
   * so both hops carry it at once; it is recorded when its last byte is in ("message"). A client
   * that goes away half-way leaves the engine a message that fails its buffer MAC and is dropped.
   * A load-balanced task goes on too if an engine can take it now (#placeArriving).
   */
  #clientHead(conn: Connection, session: string, msg: Incoming): void {
    if (msg.msgType !== "apply_request" && msg.msgType !== "execute_request") return;
    if (msg.metadata.route === "task") return this.#placeArriving(conn, session, msg);
    if (msg.metadata.route !== "direct") return;
    const engine = this.engines.get(Number(msg.metadata.engine));
    if (engine === undefined) return;
    this.#passOn(msg, engine.conn, conn);
  }

  /**
   * A large load-balanced task whose head is in: if it would go straight to an engine (no
   * dependencies, nothing queued ahead, an engine below the high-water mark), it is recorded and
   * placed now and its bytes passed on as they come; else it waits for its last byte, as before.
   * If its client goes away before then, it ends as TaskLost and its engine's slot is freed (the
   * engine drops the padded message).
   */
  #placeArriving(conn: Connection, session: string, msg: Incoming): void {
    const tail = msg.tail;
    if (tail === null) return;
    const record = emptyRecord(msg.header, msg.metadata, session, "task");
    let job: Job;
    try {
      job = this.#makeJob(record, msg.raw);
    } catch {
      return; // refused when it is complete, as any other
    }
    if (!this.scheduler.canPlaceNow(job)) return;
    job.arriving = tail;
    this.#arrivingFrom.set(job, conn);
    this.#placedEarly.set(msg, record);
    this.#addRecord(record);
    this.#countPassOn(tail);
    tail.listen(() => {
      if (!tail.aborted || record.status !== null) return;
      this.scheduler.lost(record.msgId);
      this.failTask(record, "TaskLost", `the client's connection closed before all of task ${record.msgId} had arrived`);
    });
    this.scheduler.submit(job);
  }

  /** The head of a large reply is in: it starts on its way to the task's client now. */
  #engineHead(conn: Connection, msg: Incoming): void {
    if (msg.msgType !== "apply_reply" && msg.msgType !== "execute_reply") return;
    const entry = this.#entries.get(conn);
    const msgId = msg.parentId;
    if (entry === undefined || msgId === undefined || !this.db.has(msgId)) return;
    const record = this.db.get(msgId);
    if (record.status !== null) return;
    if (record.queue === "task") {
      // a reply the scheduler may retry elsewhere, or a leftover from an engine that no longer holds it, waits
      const ok = msg.metadata.status === "ok" || msg.metadata.status === "aborted";
      if (!ok || !this.scheduler.holds(entry.id, msgId)) return;
    } else if (!entry.direct.has(msgId)) return;
    const client = this.clients.get(record.clientSession);
    if (client !== undefined) this.#passOn(msg, client, conn);
  }

  #passOn(msg: Incoming, dest: Connection, src: Connection): void {
    const tail = msg.tail;
    if (tail === null || !dest.open) return;
    this.#passedOn.set(msg, dest);
    this.#countPassOn(tail);
    dest.writeTail(tail, src.socket);
  }

  #countPassOn(tail: Tail): void {
    this.passOnStats.messages += 1;
    this.passOnStats.bytes += tail.total;
  }

  #newRecord(msg: Incoming, session: string, queue: "direct" | "task"): TaskRecord {
    const record = emptyRecord(msg.header, msg.metadata, session, queue);
    record.requestRaw = retainAll(msg.raw);
    this.#addRecord(record);
    return record;
  }

  #addRecord(record: TaskRecord): void {
    this.db.add(record);
    this.scheduler.taskKnown(record.msgId);
  }

  #makeJob(record: TaskRecord, raw: Buffer[]): Job {
    const md = record.metadata;
    const targets = md.targets ?? null;
    if (targets !== null && (!Array.isArray(targets) || !targets.every(Number.isInteger))) {
      throw new TypeError("targets must be a list of engine ids");
    }
    const timeout = md.timeout ?? null;
    if (timeout !== null && (typeof timeout !== "number" || !(timeout >= 0))) throw new TypeError("timeout must be a number of seconds >= 0");
    const retries = md.retries ?? 0;
    if (!Number.isInteger(retries) || (retries as number) < 0) throw new TypeError("retries must be an integer >= 0");
    return {
      msgId: record.msgId,
      raw,
      clientSession: record.clientSession,
      targets: targets as number[] | null,
      after: parseDependency(md.after),
      follow: parseDependency(md.follow),
      timeout: timeout as number | null,
      retries: retries as number,
      blacklist: null,
      timer: null,
      lastFailure: null,
      engineDeath: null,
      earlyOn: null,
      abortWhenTaken: false,
      arriving: null,
    };
  }

  /**
   * Write to a peer; when it is full (more queued for it than the forward limit), stop reading from
   * the source until it drains. Below the limit the source goes on: a peer slow to read holds up
   * only what is meant for it, not the sender's messages to everyone else.
   */
  forward(dest: Connection, raw: readonly Uint8Array[], src: Connection | null): void {
    dest.write(raw);
    if (src !== null) dest.pauseWhileFull(src.socket);
  }

  /** Finish a task with an error made by the controller (engine death, abort, dependencies). */
  failTask(record: TaskRecord, ename: string, evalue: string, status: TaskStatus = "error"): void {
    if (record.status !== null) return;
    const metadata = { status, engine: record.engineUuid, engine_id: record.engineId, started: null, dependencies_met: ename !== "UnmetDependency" };
    const content = { status, ename, evalue, traceback: "", engine_info: {} };
    const msg: OutMessage = { header: makeHeader(replyType(record.header.msg_type), this.session), parent: record.header, metadata, content };
    const chunks = encodeMessage(this.#opts.auth, msg);
    this.#finish(record, outcomeOf(msg.header, metadata), chunks);
    const client = this.clients.get(record.clientSession);
    if (client !== undefined) this.#writeBeforeDependents(client, chunks, record.msgId);
    this.#notifyWatchers(record);
    this.scheduler.taskDone(record.msgId);
  }

  /**
   * Pass a reply to its client, handed to the socket at once when tasks wait for this one: the
   * client then has it before any of them can be answered (one may run at once on an idle engine,
   * and be answered over the client's direct link), as ipyparallel's scheduler orders them.
   */
  #writeBeforeDependents(client: Connection, raw: readonly Uint8Array[], msgId: string, src: Connection | null = null): void {
    this.forward(client, raw, src);
    if (this.scheduler.hasDependents(msgId)) client.flush();
  }

  /** Drop these pending tasks' records once they finish (see `purge` in queries.ts). */
  purgeWhenFinished(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const now = Date.now();
    for (const [id, since] of this.#purgeOnFinish) {
      if (now - since <= PURGE_WAIT_MS) break; // in insertion order: the rest are newer
      this.#purgeOnFinish.delete(id);
    }
    for (const id of ids) this.#purgeOnFinish.set(id, now);
  }

  /** Record a task's end. The reply's header and metadata stay inside its raw bytes (read when asked for). */
  #finish(record: TaskRecord, outcome: Outcome, raw: readonly Uint8Array[] | ReplyStub): void {
    const now = isoMicro();
    const stub = isStub(raw) ? raw : undefined;
    this.db.update(record.msgId, {
      status: outcome.status,
      started: outcome.started ?? record.started,
      completed: outcome.completed ?? now,
      received: now,
      // one patch shape either way (undefined fields are left as they are)
      replyRaw: stub === undefined ? retainAll(raw as readonly Uint8Array[]) : undefined,
      replyStub: stub,
    });
    // after this turn: what follows the end (watchers, dependants) still reads the record
    if (this.#purgeOnFinish.size > 0 && this.#purgeOnFinish.delete(record.msgId)) setImmediate(() => this.db.drop([record.msgId]));
  }

  #schedulerHost() {
    return {
      assign: (job: Job, engineId: number, idle: boolean) => {
        const e = this.engines.get(engineId)!;
        this.db.update(job.msgId, { engineId, engineUuid: e.uuid });
        const arriving = job.arriving;
        if (arriving !== null && !arriving.done) e.conn.writeTail(arriving, this.#arrivingFrom.get(job)?.socket ?? null);
        else if (e.handoffs && job.raw.length === 1 && job.raw[0]!.byteLength <= GROUP_ITEM_MAX) {
          e.conn.writeGrouped(job.raw[0]!, this.session);
          this.#handedOff += 1;
        } else this.forward(e.conn, job.raw, null);
        // an idle engine gets its task now, not after the rest of this batch of messages is handled
        if (idle) e.conn.flush();
      },
      takeBack: (job: Job, engineId: number) => {
        const heart = this.engines.get(engineId)?.heart ?? null;
        if (heart === null || !heart.open) return false;
        this.send(heart, "take_back_request", { msg_id: job.msgId });
        heart.flush();
        return true;
      },
      abortOn: (job: Job, engineId: number) => {
        const e = this.engines.get(engineId);
        if (e === undefined) return;
        const header = makeHeader("abort_request", this.session);
        this.#ownAborts.set(header.msg_id, engineId);
        e.conn.send({ header, parent: null, content: { msg_ids: [job.msgId] } });
      },
      renew: (job: Job) => {
        job.raw = resigned(this.#opts.auth, job.raw);
      },
      aborted: (job: Job) => this.#abortedBeforeRun(job),
      fail: (job: Job, ename: string, evalue: string) => {
        if (this.db.has(job.msgId)) this.failTask(this.db.get(job.msgId), ename, evalue);
      },
      giveUp: (job: Job) => {
        if (job.lastFailure !== null) this.#deliverReply(this.db.get(job.msgId), job.lastFailure, null);
      },
      outcome: (msgId: string) => {
        if (!this.db.has(msgId)) return undefined;
        const r = this.db.get(msgId);
        const outcome = r.status === null ? null : r.status === "ok" ? ("ok" as const) : ("failed" as const);
        return { outcome, engineId: r.engineId };
      },
    };
  }

  /** Record a reply and pass it to the task's client. */
  #deliverReply(record: TaskRecord, raw: Buffer[], parsed: Incoming | null): void {
    const { header, metadata } = parsed ?? decodeHead(raw);
    this.#finish(record, outcomeOf(header, metadata), raw);
    const client = this.clients.get(record.clientSession);
    const passed = parsed !== null && this.#passedOn.get(parsed) === client;
    if (client !== undefined && !passed) this.#writeBeforeDependents(client, raw, record.msgId, parsed === null ? null : this.engines.byUuid(String(metadata.engine))?.conn ?? null);
    this.#notifyWatchers(record);
    this.scheduler.taskDone(record.msgId);
  }

  #abort(conn: Connection, msg: Incoming): void {
    const ids = Array.isArray(msg.content.msg_ids) ? (msg.content.msg_ids as string[]) : null;
    const aborted: string[] = [];
    const { removed, takingBack } = this.scheduler.abort(ids);
    for (const job of removed) {
      this.#abortedBeforeRun(job);
      aborted.push(job.msgId);
    }
    // tasks handed early are taken back from their engine's heart: that busy engine need not answer
    const rest = ids?.filter((id) => !takingBack.has(id)) ?? null;
    const needed = rest === null ? [] : this.#enginesHolding(rest);
    const holders = new Set(takingBack.values());
    const hinted = Array.isArray(msg.content.engines)
      ? (msg.content.engines as number[]).filter((id) => this.engines.get(id) !== undefined && (needed.includes(id) || !holders.has(id)))
      : [];
    const engines = ids === null ? this.#targets(msg.content) : [...new Set([...needed, ...hinted])];
    this.#fanouts.start(conn, msg, "abort_request", engines, { msg_ids: ids }, "engine", (parts) => ({
      aborted: [...aborted, ...Object.values(parts).flatMap((p) => (Array.isArray(p.aborted) ? (p.aborted as string[]) : []))],
    }));
  }

  #abortedBeforeRun(job: Job): void {
    this.failTask(this.db.get(job.msgId), "TaskAborted", `task ${job.msgId} was aborted before it ran`, "aborted");
  }

  #enginesHolding(ids: string[]): number[] {
    const out = new Set<number>();
    for (const id of ids) {
      if (!this.db.has(id)) continue;
      const r = this.db.get(id);
      if (r.status === null && r.engineId !== null && this.engines.get(r.engineId) !== undefined) out.add(r.engineId);
    }
    return [...out];
  }

  #shutdown(conn: Connection, msg: Incoming): void {
    const hub = msg.content.hub === true;
    const targets = this.#targets(msg.content);
    this.#fanouts.start(conn, msg, "shutdown_request", targets, {}, "engine", () => ({}), () => {
      if (!hub) return;
      for (const c of this.clients.values()) this.send(c, "shutdown_notification", {});
      this.#opts.onShutdown();
    });
  }

  // ---- engines --------------------------------------------------------------------------------

  #fromEngine(conn: Connection, msg: Incoming): void {
    const entry = this.#entries.get(conn);
    if (entry === undefined) {
      if (msg.msgType === "registration_request") return this.#register(conn, msg);
      return this.drop("engine message before registration", msg);
    }
    switch (msg.msgType) {
      case "apply_reply":
      case "execute_reply":
        return this.#taskReply(entry, msg);
      case "stream":
      case "display_data":
      case "error":
        return this.#iopub(msg);
      case "direct_report":
        return this.#directReport(entry, msg);
      default:
        if (msg.msgType.endsWith("_reply") && this.#fanouts.reply(entry.id, msg)) return;
        // the answer to an abort the scheduler sent on its own (abortOn): the task's reply says the rest
        if (msg.msgType === "abort_reply" && this.#ownAborts.delete(String(msg.parent.msg_id ?? ""))) return;
        return this.drop(`unknown message type ${JSON.stringify(msg.msgType).slice(0, 40)}`, msg);
    }
  }

  #register(conn: Connection, msg: Incoming): void {
    const uuid = String(msg.content.uuid ?? "");
    if (uuid.length === 0 || this.engines.byUuid(uuid) !== undefined) {
      this.send(conn, "registration_reply", { status: "error", ename: "KeyError", evalue: `uuid ${JSON.stringify(uuid)} is missing or in use` }, msg.header);
      return;
    }
    const requested = typeof msg.content.id === "number" ? msg.content.id : undefined;
    const id = this.engines.assignId(uuid, requested);
    const now = Date.now();
    const entry: EngineEntry = {
      id, uuid, session: String(msg.header.session), conn, heart: null, registeredAt: now, lastBeat: now, direct: new Set(), completed: 0,
      handoffs: takesTaskHandoffs(conn.hello?.protocol),
      hostname: String(msg.content.hostname ?? ""), pid: Number(msg.content.pid ?? 0),
      address: typeof msg.content.direct === "string" ? msg.content.direct : null,
    };
    this.engines.add(entry);
    this.#entries.set(conn, entry);
    const heart = this.#pendingHearts.get(uuid);
    if (heart !== undefined) this.#bindHeart(entry, heart);
    this.send(conn, "registration_reply", { status: "ok", id, hb_period: this.monitor.period, hb_misses: this.monitor.misses }, msg.header);
    for (const c of this.clients.values()) this.send(c, "registration_notification", { id, uuid, pid: entry.pid, hostname: entry.hostname, direct: entry.address });
    this.scheduler.addEngine(id);
    this.#log.info("engine registered", { id, uuid, hostname: entry.hostname, enginePid: entry.pid });
  }

  #taskReply(entry: EngineEntry, msg: Incoming): void {
    const msgId = msg.parentId;
    if (msgId === undefined || !this.db.has(msgId)) return this.drop("reply to an unknown task", msg);
    const record = this.db.get(msgId);
    if (record.status !== null) return this.drop("reply to a finished task", msg);
    // the engine freed by this reply gets its next task before the reply is recorded and forwarded
    // (sent at once if the engine is idle; one with early tasks gets it with the turn's other writes)
    const verdict = this.#releaseEngine(entry, record, msg.metadata.status === "ok" || msg.metadata.status === "aborted", msg.raw);
    if (verdict === "retry") return;
    // the task was taken back from this engine and placed on another (a reply here is a leftover)
    if (verdict === "unknown") return this.drop("reply from an engine that no longer holds the task", msg);
    entry.completed += 1;
    this.#deliverReply(record, msg.raw, msg);
  }

  /** A task ended on this engine: the scheduler frees it (a load-balanced task), or its direct tasks lose one. */
  #releaseEngine(entry: EngineEntry, record: TaskRecord, ok: boolean, raw: Buffer[]): "done" | "retry" | "unknown" {
    if (record.queue === "task") return this.scheduler.finished(record.msgId, entry.id, ok, raw);
    entry.direct.delete(record.msgId);
    return "done";
  }

  /** A task reported by its engine ended: recorded, its watchers told, its dependants released (nothing to pass on). */
  #reportedEnd(record: TaskRecord, ended: Outcome, reply: Buffer | ReplyStub): void {
    this.#finish(record, ended, isStub(reply) ? reply : [retain(reply)]);
    this.#notifyWatchers(record);
    this.scheduler.taskDone(record.msgId);
  }

  /** Tasks clients sent straight to the engine, reported in batches: recorded as if they had come through here. */
  #directReport(entry: EngineEntry, msg: Incoming): void {
    const seen = Array.isArray(msg.content.seen) ? (msg.content.seen as Array<{ header: Header; metadata: Json }>) : [];
    for (const t of seen) {
      if (typeof t.header?.msg_id !== "string" || this.db.has(t.header.msg_id)) continue;
      const record = emptyRecord(t.header, t.metadata ?? {}, String(t.header.session), "direct");
      record.engineId = entry.id;
      record.engineUuid = entry.uuid;
      this.db.add(record);
      entry.direct.add(t.header.msg_id);
      this.scheduler.taskKnown(t.header.msg_id);
    }
    const done = Array.isArray(msg.content.done) ? (msg.content.done as Json[]) : [];
    const buffers = msg.buffers;
    for (const d of done) {
      const [at] = (d.buffers as [number, number]) ?? [0, 0];
      // a task that came through here has only its reply in the report; a direct one, request and reply
      const first = buffers[at];
      const second = buffers[at + 1];
      if (first === undefined) continue;
      // the engine sends the outcome beside the bytes, so the reply need not be parsed here
      if (d.via === "link") this.#answeredOverLink(entry, String(d.msg_id), directOutcome(d, first), first);
      else if (second !== undefined) this.#directDone(entry, d, first, second);
    }
    // successes answered over a link: [msg_id, started, date, buffer index] with the reply's record
    // (protocol 1.2), or [msg_id, started, date, first buffer, buffer count, specials] with the value's
    // buffers, a reply stub (1.3)
    const linked = Array.isArray(msg.content.linked) ? (msg.content.linked as unknown[][]) : [];
    for (const e of linked) {
      const reply = linkAnswer(entry, e, buffers);
      if (reply === null) {
        this.#opts.stats.count("malformed entry in a report");
        continue;
      }
      this.#answeredOverLink(entry, e[0] as string, outcome("ok", e[1], e[2]), reply);
    }
  }

  /**
   * A task that came through here, answered over its client's direct link (a load-balanced one,
   * or a direct one sent this way): recorded and scheduled as if its reply had come through here,
   * and not passed on. The engine sends only final, whole successes that way.
   */
  #answeredOverLink(entry: EngineEntry, msgId: string, ended: Outcome, reply: Buffer | ReplyStub): void {
    if (!this.db.has(msgId)) return;
    const record = this.db.get(msgId);
    if (record.status !== null) return;
    // a task taken back from this engine is not run there (it claims each task before it runs it)
    if (this.#releaseEngine(entry, record, true, NO_REPLY) === "unknown") {
      this.#opts.stats.count("report of a task the engine no longer held");
      return;
    }
    entry.completed += 1;
    this.#answeredOverLinks += 1;
    this.#reportedEnd(record, ended, reply);
  }

  #directDone(entry: EngineEntry, d: Json, request: Buffer, reply: Buffer): void {
    const msgId = String(d.msg_id);
    if (!this.db.has(msgId)) return;
    const record = this.db.get(msgId);
    if (record.status !== null) return;
    entry.direct.delete(msgId);
    entry.completed += 1;
    this.db.update(msgId, {
      requestRaw: [retain(request)], stdout: String(d.stdout ?? ""), stderr: String(d.stderr ?? ""), buffersCulled: d.stripped === true,
    });
    this.#reportedEnd(record, directOutcome(d, reply), reply);
  }

  #iopub(msg: Incoming): void {
    const msgId = msg.parentId;
    if (msgId === undefined || !this.db.has(msgId)) return this.drop("output of an unknown task", msg);
    const record = this.db.get(msgId);
    if (msg.msgType === "stream") {
      const name = msg.content.name === "stderr" ? "stderr" : "stdout";
      record[name] += String(msg.content.text ?? "");
    }
    const client = this.clients.get(record.clientSession);
    if (client !== undefined) this.forward(client, msg.raw, null);
    for (const s of this.#watchers.get(msgId) ?? []) {
      if (s !== record.clientSession) this.clients.get(s)?.write(msg.raw); // live output for getResult of a running task
    }
  }

  #engineConnClosed(conn: Connection): void {
    const entry = this.#entries.get(conn);
    if (entry !== undefined) this.#engineGone(entry.id, "connection closed");
  }

  /** An engine left or died: fail what it held, tell every client. */
  #engineGone(id: number, reason: string): void {
    const entry = this.engines.remove(id);
    if (entry === undefined) return;
    this.#log.warn("engine unregistered", { id, uuid: entry.uuid, reason });
    this.#handedOffGroups += entry.conn.groupsSent;
    entry.conn.close(true);
    entry.heart?.close(true);
    for (const msgId of entry.direct) {
      this.failTask(this.db.get(msgId), "EngineError", `Engine ${id} died while running task ${msgId} (${reason})`);
    }
    entry.direct.clear();
    this.scheduler.removeEngine(id);
    this.#fanouts.engineGone(id);
    for (const [msgId, engineId] of this.#ownAborts) if (engineId === id) this.#ownAborts.delete(msgId);
    for (const c of this.clients.values()) this.send(c, "unregistration_notification", { id, uuid: entry.uuid, reason });
  }

  // ---- hearts ---------------------------------------------------------------------------------

  #attachHeart(conn: Connection, uuid: string): void {
    const entry = this.engines.byUuid(uuid);
    if (entry !== undefined) this.#bindHeart(entry, conn);
    else this.#pendingHearts.set(uuid, conn);
    conn.on("close", () => {
      if (this.#pendingHearts.get(uuid) === conn) this.#pendingHearts.delete(uuid);
      const e = this.engines.byUuid(uuid);
      if (e?.heart === conn) e.heart = null;
    });
  }

  #bindHeart(entry: EngineEntry, conn: Connection): void {
    this.#pendingHearts.delete(entry.uuid);
    entry.heart = conn;
    entry.lastBeat = Date.now();
    this.scheduler.setCanTakeBack(entry.id, true);
    conn.on("close", () => {
      if (entry.heart === conn && this.engines.get(entry.id) === entry) this.scheduler.setCanTakeBack(entry.id, false);
    });
    conn.on("message", (m) => {
      if (m.msgType === "pong") entry.lastBeat = Date.now();
      else if (m.msgType === "take_back_reply") this.scheduler.tookBack(entry.id, String(m.content.msg_id), String(m.content.status));
      else if (!(m.msgType.endsWith("_reply") && this.#fanouts.reply(entry.id, m))) this.drop("unknown heart message", m);
    });
  }

  #heartTarget(e: EngineEntry) {
    return {
      id: e.id,
      lastBeat: e.lastBeat,
      ping: (beat: number) => {
        if (e.heart !== null) this.send(e.heart, "ping", { beat });
      },
    };
  }
}

/** A new record, every field present from the start (one object shape for all records: no per-record transitions). */
function emptyRecord(header: Header, metadata: Json, session: string, queue: "direct" | "task"): TaskRecord {
  return {
    msgId: header.msg_id, header, metadata, clientSession: session, queue, engineId: null, engineUuid: null,
    submitted: header.date, started: null, completed: null, received: null, resubmitted: null, status: null,
    stdout: "", stderr: "",
    label: typeof metadata.label === "string" ? metadata.label : null, requestRaw: [], replyRaw: null, replyStub: null, buffersCulled: false,
  };
}

export function replyType(requestType: string): string {
  return requestType.replace(/_request$/, "_reply");
}

export function errorContent(err: unknown): Json {
  const e = err instanceof Error ? err : new Error(String(err));
  return { status: "error", ename: e.name, evalue: e.message, traceback: e.stack ?? "", engine_info: {} };
}

/** The message signed anew, its header marked `resent` (a different signature: not a replay). */
function resigned(auth: Authenticator, raw: Buffer[]): Buffer[] {
  const m = new Incoming(decodeRaw(raw));
  const resent = (m.header as Header & { resent?: number }).resent ?? 0;
  const header = { ...m.header, resent: resent + 1 };
  return retainAll(encodeMessage(auth, { header, parent: m.parent as Header, metadata: m.metadata, content: m.content, buffers: m.buffers }));
}

/** What the record keeps of a reply. */
interface Outcome {
  status: TaskStatus;
  started: string | null;
  completed: string | null;
}

function outcome(status: unknown, started: unknown, date: unknown): Outcome {
  return {
    status: status === "ok" || status === "aborted" ? status : "error",
    started: typeof started === "string" ? started : null,
    completed: typeof date === "string" ? date : null,
  };
}

function outcomeOf(header: Header, metadata: Json): Outcome {
  return outcome(metadata.status, metadata.started, header.date);
}

/** A direct task's outcome as its engine reported it (`status`, `started`, `date`), else from its reply. */
function directOutcome(d: Json, reply: Buffer): Outcome {
  if (typeof d.status === "string") return outcome(d.status, d.started, d.date);
  const { header, metadata } = decodeHead([reply]);
  return outcomeOf(header, metadata);
}

/** A task group's index entry `[id, date, type index, metadata index]` as the task's header and metadata, or null if malformed. */
function groupEntry(t: unknown, types: unknown[], mds: unknown[], session: string): { header: Header; metadata: Json } | null {
  if (!Array.isArray(t) || typeof t[0] !== "string" || typeof t[1] !== "string") return null;
  const msgType = types[t[2] as number];
  const metadata = mds[t[3] as number];
  if (msgType !== "apply_request" && msgType !== "execute_request") return null;
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) return null;
  return { header: { msg_id: t[0], msg_type: msgType, session, date: t[1], version: MSG_SPEC_VERSION }, metadata: metadata as Json };
}

/** Header and metadata of a raw message we made or stored. */
function decodeHead(raw: Buffer[]): { header: Header; metadata: Json } {
  const text = headText(raw);
  return { header: JSON.parse(text.header) as Header, metadata: JSON.parse(text.metadata) as Json };
}

/** The reply bytes a success gives the scheduler (it keeps a reply only to send again after the last failed try). */
const NO_REPLY: Buffer[] = [];

function isStub(reply: readonly Uint8Array[] | Uint8Array | ReplyStub): reply is ReplyStub {
  return !Array.isArray(reply) && !(reply instanceof Uint8Array);
}

/**
 * A report's entry for a success answered over a link: the reply's record (protocol 1.2), or a stub of
 * it holding the value's buffers (1.3); null if the entry is malformed.
 */
function linkAnswer(entry: EngineEntry, e: unknown, buffers: readonly Buffer[]): Buffer | ReplyStub | null {
  if (!Array.isArray(e) || typeof e[0] !== "string" || typeof e[2] !== "string" || (e[1] !== null && typeof e[1] !== "string")) return null;
  const at = e[3] as number;
  if (!Number.isInteger(at) || at < 0) return null;
  if (e.length === 4) return buffers[at] ?? null;
  const n = e[4] as number;
  if (e.length !== 6 || !Number.isInteger(n) || n < 0 || at + n > buffers.length || (e[5] !== 0 && e[5] !== 1)) return null;
  const kept = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) kept[i] = retain(buffers[at + i]!);
  return {
    session: entry.session, engineUuid: entry.uuid, engineId: entry.id, started: e[1] as string | null, date: e[2] as string,
    specials: e[5] === 1, buffers: kept, replyId: null,
  };
}
