/**
 * An engine: registers with the controller, then runs the tasks it receives one at a time in its
 * namespace, in arrival order, and answers each with a reply stamped `started`/`completed`.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import process from "node:process";
import { setImmediate, setTimeout as sleep } from "node:timers/promises";
import { inspect } from "node:util";
import { Worker } from "node:worker_threads";
import { Authenticator, DigestHistory, macOf } from "../protocol/auth.js";
import type { ConnectionInfo } from "../protocol/connfile.js";
import { DropStats, type Connection } from "../protocol/connection.js";
import { dial, type Transport } from "../protocol/dial.js";
import type { Logger } from "../protocol/log.js";
import { encodeMessage, FrameMemo, Incoming, makeHeader, type Header, type Json, type OutMessage } from "../protocol/messages.js";
import { unpack } from "../protocol/serialize.js";
import { decodeRaw } from "../protocol/wire.js";
import { takesCompactReports, takesReplyStubs } from "../protocol/version.js";
import { isoMicro } from "../protocol/time.js";
import { rewriteCell, transpileTs } from "./cell.js";
import { Namespace } from "./namespace.js";
import { OutputCapture, type StreamName } from "./output.js";
import { interruptedError, taskError } from "./errors.js";
import { startSentinel } from "./sentinel.js";
import { TaskClaims } from "./claims.js";
import { DirectReport, LinkServer, RECORD_BUFFER_LIMIT } from "./links.js";
import { okMetadataText } from "../protocol/replyrecord.js";
import { recordReply, ReplyGroups } from "./replies.js";
import { isThenable, mapChunk, packValue, resolveFunction, reviveArgs } from "./calls.js";
import { Reclaimer } from "./reclaim.js";
import { dirname, join } from "node:path";
import { newMsgId } from "../protocol/ids.js";

/** How often an engine holding the controller's tasks (#cutOff) looks again. */
const HOLD_CHECK_MS = 50;
/**
 * Queued tasks that finish quickly run back to back for up to this long before the event loop gets
 * a turn: their replies leave together, in one write instead of one each. A task that takes longer
 * (or awaits) yields right after it, as every task did before.
 */
const BURST_MS = 1;
/**
 * A load-balanced task that ran for longer than this is answered through the controller even when
 * its client has a link here (see #replyToController): for such tasks the hop saved is a small part
 * of the round trip, and a reply straight to a client wakes it at once, where the controller, which
 * yields to busy engines, passes replies on when a core is free. Measured on 2 cores: 200 load-
 * balanced tasks of 2.5 ms kept both engines busy ~4 % less when answered over the links.
 */
const LINK_REPLY_MAX_MS = 1;

export interface EngineConfig {
  info: ConnectionInfo;
  transport?: Transport | undefined;
  requestedId?: number | undefined;
  log: Logger;
  /** Give up (exit) after this long without a controller, ms. */
  reconnectTimeout: number;
  cwd?: string;
}

type Method = "apply" | "execute";

/** A task and where it came from: the controller, or a client's direct link. */
interface Task {
  msg: Incoming;
  link: Connection | null;
}

/** How a task ended: the reply's status, content and buffers. */
interface Outcome {
  status: "ok" | "error";
  content: Json;
  buffers: Uint8Array[];
}

interface Running {
  task: Task;
  interrupt: ((err: Error) => void) | null;
  stdout: string;
  stderr: string;
  /** When it began to run (performance.now()); NaN for a task answered without running. */
  since: number;
}



export class Engine {
  readonly uuid = randomUUID();
  id: number | null = null;
  readonly #config: EngineConfig;
  readonly #log: Logger;
  readonly #auth: Authenticator;
  readonly #history = new DigestHistory();
  readonly #stats = new DropStats();
  readonly #session = randomUUID();
  /** The tasks of a map (or of repeated calls) share their parent header, metadata and content: parsed once (task groups). */
  readonly #frames = new FrameMemo();
  readonly #ns: Namespace;
  readonly #output: OutputCapture;
  #conn: Connection | null = null;
  #heart: Worker | null = null;
  /** Shared with the heart: which tasks sent early the controller took back (claims.ts). */
  readonly #claims = new TaskClaims();
  #sentinel: Worker | null = null;
  #queue: Task[] = [];
  #links: LinkServer | null = null;
  /** What the controller has not yet been told about direct tasks (reported in batches, off the hot path). */
  readonly #report = new DirectReport(() => this.#conn);
  /** Replies of a burst to a client over its link, in one message (replies.ts). */
  readonly #replyGroups: ReplyGroups;
  #pumping = false;
  readonly #reclaim = new Reclaimer();
  /**
   * Silence from the controller's heartbeat after which this engine holds the tasks the controller
   * sent instead of starting them: one period less than the controller waits before it declares
   * the engine dead and fails or re-places them (set at registration).
   */
  #holdAfterMs = Number.POSITIVE_INFINITY;
  #current: Running | null = null;
  #executionCount = 0;
  #stopping = false;
  #registered: ((m: Incoming) => void) | null = null;
  #onExit: (code: number) => void = (code) => process.exit(code);

  constructor(config: EngineConfig) {
    this.#config = config;
    this.#log = config.log;
    this.#auth = new Authenticator(config.info.key);
    this.#ns = new Namespace(config.cwd);
    this.#output = new OutputCapture((_parent, name, text) => this.#sendStream(name, text));
    this.#replyGroups = new ReplyGroups({ auth: this.#auth, session: this.#session, engine: () => ({ uuid: this.uuid, id: this.id }) });
  }

  /** Connect, register, start the heart. Resolves with the engine id. */
  async start(): Promise<number> {
    this.#output.install();
    // no process SIGINT listener: it would make every interruptible call cost ~250 µs (see sentinel.ts);
    // the sentinel starts alongside registration (until it is up, a task's SIGINT guard just costs more)
    const sentinel = startSentinel(() => this.#onSigint()).then((w) => (this.#sentinel = w));
    sentinel.catch((err: unknown) => this.#log.warn("no SIGINT sentinel", { error: String(err) }));
    process.on("uncaughtException", (err) => this.#onStrayError(err));
    process.on("unhandledRejection", (err) => this.#onStrayError(err));
    await this.#listenDirect();
    await this.#connect();
    this.#startHeart();
    return this.id!;
  }

  async stop(code = 0): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#heart?.postMessage("stop");
    await this.#heart?.terminate();
    await this.#sentinel?.terminate();
    this.#links?.close();
    this.#report.flush(); // the controller's record of direct tasks that finished since the last report
    this.#conn?.close();
    await sleep(10);
    this.#onExit(code);
  }

  // ---- connection ----------------------------------------------------------------------------

  async #connect(): Promise<void> {
    const { conn, welcome } = await dial({
      info: this.#config.info, transport: this.#config.transport, role: "engine", session: this.#session,
      hello: { uuid: this.uuid }, timeoutMs: 10_000, auth: this.#auth, history: this.#history, stats: this.#stats,
      log: this.#log, verifyBuffers: true,
      onConnection: (c) => {
        c.on("message", (m) => this.#onMessage(m));
        c.on("close", () => this.#onDisconnect(c));
      },
    });
    this.#conn = conn;
    this.#report.compact = takesCompactReports(welcome.protocol);
    this.#report.stubs = takesReplyStubs(welcome.protocol);
    const reply = await new Promise<Incoming>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no registration reply within 10 s")), 10_000);
      this.#registered = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
      conn.send({
        header: makeHeader("registration_request", this.#session),
        content: {
          uuid: this.uuid, id: this.id ?? this.#config.requestedId, hostname: hostname(), pid: process.pid,
          direct: this.#links?.address ?? null,
        },
      });
    });
    if (reply.content.status !== "ok") throw new Error(`registration refused: ${String(reply.content.evalue)}`);
    this.id = Number(reply.content.id);
    const period = Number(reply.content.hb_period);
    const misses = Number(reply.content.hb_misses);
    if (period > 0 && misses > 0) this.#holdAfterMs = period * Math.max(1, misses - 1);
    this.#claims.heard();
    this.#claims.setConnected(true); // the heart may give back what this connection brings
    this.#log.info("registered", { id: this.id, uuid: this.uuid });
  }

  #onDisconnect(conn: Connection): void {
    if (conn !== this.#conn || this.#stopping) return;
    this.#conn = null;
    // the controller failed what it sent us; do not run it twice (direct tasks stay: their clients wait)
    this.#queue = this.#queue.filter((t) => t.link !== null);
    this.#claims.setConnected(false);
    this.#log.warn("lost the controller; reconnecting");
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    const deadline = Date.now() + this.#config.reconnectTimeout;
    let delay = 100;
    while (!this.#stopping && Date.now() < deadline) {
      await sleep(delay);
      try {
        await this.#connect();
        return;
      } catch (err) {
        this.#log.warn("reconnect failed", { error: (err as Error).message });
        delay = Math.min(delay * 2, 5000);
      }
    }
    this.#log.error("no controller; exiting");
    await this.stop(1);
  }

  /**
   * Listen for direct links when the controller is on this host (its Unix socket tells where): on a
   * Unix socket beside the controller's, or on a loopback TCP port when the cluster's transport is
   * "tcp" (so that a TCP cluster's tasks travel over TCP all the way). A TLS cluster keeps them on
   * the Unix socket: nothing of it goes over TCP in the clear.
   */
  async #listenDirect(): Promise<void> {
    const info = this.#config.info;
    const controllerSocket = info.unixPath;
    if (controllerSocket === null || controllerSocket === undefined) return;
    try {
      this.#links = await LinkServer.listen({
        listen: info.transport === "tcp" && typeof info.tlsFingerprint !== "string"
          ? { host: "127.0.0.1" }
          : { path: join(dirname(controllerSocket), `engine-${this.uuid.slice(0, 18)}.sock`) },
        auth: this.#auth, history: this.#history, stats: this.#stats, log: this.#log, uuid: this.uuid,
        onMessage: (m, link) => this.#onLinkMessage(m, link),
        onClose: (link) => (this.#queue = this.#queue.filter((t) => t.link !== link)),
      });
    } catch (err) {
      this.#log.warn("no direct links (clients go through the controller)", { error: (err as Error).message });
    }
  }

  #startHeart(): void {
    const url = new URL(import.meta.url.endsWith(".ts") ? "./heart.ts" : "./heart.js", import.meta.url);
    this.#heart = new Worker(url, {
      workerData: { info: this.#config.info, transport: this.#config.transport, uuid: this.uuid, claims: this.#claims.buffer },
      stdout: false,
      stderr: false,
    });
    this.#heart.unref();
    this.#heart.on("error", (err) => this.#log.error("heart failed", { error: String(err) }));
  }

  #send(msgType: string, parent: Header, content: Json, buffers: Uint8Array[] = [], metadata: Json = {}): void {
    this.#conn?.send({ header: makeHeader(msgType, this.#session), parent, metadata, content, buffers });
  }

  #sendStream(name: StreamName, text: string): void {
    const current = this.#current;
    if (current === null) return;
    current[name] += text;
    const msg = { header: makeHeader("stream", this.#session), parent: current.task.msg.header, content: { name, text }, metadata: { engine: this.uuid, engine_id: this.id } };
    const link = current.task.link;
    if (link !== null && link.open) link.send(msg);
    else this.#conn?.send(msg);
  }

  // ---- messages --------------------------------------------------------------------------------

  #onMessage(msg: Incoming): void {
    switch (msg.msgType) {
      case "registration_reply":
        return this.#registered?.(msg);
      case "apply_request":
      case "execute_request":
        return this.#enqueue({ msg, link: null });
      case "task_group":
        return this.#taskGroup(msg);
      case "abort_request":
        return this.#abort(msg);
      case "clear_request":
        this.#ns.clear();
        return this.#send("clear_reply", msg.header, { status: "ok" });
      case "shutdown_request":
        this.#send("shutdown_reply", msg.header, { status: "ok" });
        void this.stop(0);
        return;
      default:
        this.#stats.count(`unknown message type ${msg.msgType.slice(0, 40)}`);
        this.#log.warn("dropped message", { reason: "unknown message type", msgType: msg.msgType });
    }
  }

  /**
   * The tasks the controller placed here in one turn, in one message (protocol 1.2): the group was
   * authenticated as a whole, its buffers included, so each task's own signature is not checked
   * again; it enters the replay history, so no task of it runs twice. Anything but a task, or bytes
   * that are no framed message, is dropped and counted.
   */
  #taskGroup(msg: Incoming): void {
    for (const raw of msg.buffers) {
      // one walk of the frame table: the MAC is read from the decoded auth frame
      let mac: Buffer | null = null;
      let task: Incoming | null = null;
      try {
        const message = decodeRaw([raw]);
        mac = macOf(message.head[0]!);
        if (mac !== null) task = new Incoming(message, undefined, this.#frames);
      } catch {
        task = null;
      }
      if (task === null || (task.msgType !== "apply_request" && task.msgType !== "execute_request")) {
        this.#stats.count("malformed task in a group");
        continue;
      }
      if (!this.#history.add(mac!)) {
        this.#stats.count("replayed message");
        continue;
      }
      this.#enqueue({ msg: task, link: null });
    }
  }

  #enqueue(task: Task): void {
    this.#queue.push(task);
    if (this.#pumping) return;
    this.#pumping = true;
    // start after this batch of messages is read, so an abort right behind a task is honoured
    globalThis.setImmediate(() => void this.#pump());
  }

  #onLinkMessage(msg: Incoming, link: Connection): void {
    if (msg.msgType !== "apply_request" && msg.msgType !== "execute_request") {
      this.#stats.count(`unexpected ${msg.msgType.slice(0, 40)} on a direct link`);
      this.#log.warn("dropped message", { reason: "not a task", msgType: msg.msgType });
      return;
    }
    this.#report.seen(msg);
    this.#enqueue({ msg, link });
  }

  async #pump(): Promise<void> {
    let turn = performance.now(); // when this turn of the event loop began running tasks
    while (this.#queue.length > 0 && !this.#stopping) {
      if (this.#queue[0]!.link === null && this.#cutOff()) {
        // the controller is about to give this engine up (a network cut: the connection has not
        // dropped here yet) and run its tasks elsewhere: wait until it is heard again, or until
        // the connection drops, which takes its tasks out of the queue
        await sleep(HOLD_CHECK_MS);
        continue;
      }
      const task = this.#queue.shift()!;
      // a task from the controller may have been handed over early and taken back since
      if (task.link === null && !this.#claims.claim(task.msg.header.msg_id)) continue;
      const pending = this.#run(task);
      if (pending !== undefined) await pending;
      if (this.#reclaim.due) {
        // after the reply has left: the memory of values a large push replaced is free for the next one
        await setImmediate();
        this.#reclaim.run();
        turn = performance.now();
      }
      // between tasks, yield to the event loop: replies go out, and control messages (abort) are
      // read in between (after the last one there is nothing to wait for: the engine goes idle);
      // quick synchronous tasks first run on for up to BURST_MS, so their replies leave together
      if (this.#queue.length > 0 && (pending !== undefined || performance.now() - turn >= BURST_MS)) {
        await setImmediate();
        turn = performance.now();
      }
    }
    this.#pumping = false;
  }

  /** Not heard from the controller for longer than it allows (see #holdAfterMs). */
  #cutOff(): boolean {
    return this.#claims.silentFor() > this.#holdAfterMs;
  }

  #abort(msg: Incoming): void {
    const ids = Array.isArray(msg.content.msg_ids) ? new Set(msg.content.msg_ids as string[]) : null;
    const aborted: string[] = [];
    this.#queue = this.#queue.filter((task) => {
      const id = task.msg.header.msg_id;
      if (ids !== null && !ids.has(id)) return true;
      if (task.link === null && this.#claims.isTakenBack(id)) return true; // it runs elsewhere; dropped when reached
      aborted.push(id);
      const content = { status: "aborted", ename: "TaskAborted", evalue: `task ${id} was aborted before it ran`, traceback: "", engine_info: this.#engineInfo(methodOf(task.msg)) };
      this.#reply({ task, interrupt: null, stdout: "", stderr: "", since: Number.NaN }, "aborted", null, content, []);
      return false;
    });
    this.#send("abort_reply", msg.header, { status: "ok", aborted });
  }

  // ---- running tasks -------------------------------------------------------------------------

  /**
   * Run a task and answer it. Synchronous (no promise, no microtask) when everything it needs is:
   * a function already compiled, plain arguments, a result that is not a promise.
   */
  #run(task: Task): Promise<void> | undefined {
    const msg = task.msg;
    this.#reclaim.received(msg.size);
    const started = isoMicro();
    const method = methodOf(msg);
    const running: Running = { task, interrupt: null, stdout: "", stderr: "", since: performance.now() };
    // the report timer cannot fire while user code computes: tell the controller about tasks waiting behind this one
    if (this.#queue.length > 0) this.#report.flushSeen();
    this.#current = running;
    this.#output.begin(msg.header);
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = method === "apply" ? this.#apply(msg) : this.#execute(msg);
    } catch (err) {
      outcome = this.#failed(err, method);
    }
    if (!isThenable(outcome)) return this.#complete(running, started, outcome);
    return outcome.then(
      (o) => this.#complete(running, started, o),
      (err: unknown) => this.#complete(running, started, this.#failed(err, method)),
    );
  }

  #failed(err: unknown, method: Method): Outcome {
    const content: Json = { ...taskError(err), engine_info: this.#engineInfo(method) };
    if (method === "execute") content.execution_count = this.#executionCount;
    return { status: "error", content, buffers: [] };
  }

  #complete(running: Running, started: string, outcome: Outcome): undefined {
    this.#output.end();
    this.#current = null;
    this.#reply(running, outcome.status, started, outcome.content, outcome.buffers);
    return undefined;
  }

  /** Answer a task where it came from; a direct task is also reported to the controller's record. */
  #reply(running: Running, status: string, started: string | null, content: Json, buffers: Uint8Array[]): void {
    const { msg, link } = running.task;
    if (link === null) return this.#replyToController(running, status, started, content, buffers);
    const reply = this.#replyMessage(msg, status, started, content, buffers);
    const chunks = encodeMessage(this.#auth, reply);
    this.#replyGroups.flush(link);
    if (link.open) link.write(chunks);
    else this.#conn?.write(chunks); // the link is gone: the controller passes it on
    this.#report.done(msg, chunks, { status, started, date: reply.header.date }, running.stdout, running.stderr);
  }

  /**
   * Answer a task that came through the controller. A load-balanced task of a client with a direct
   * link to this engine is answered over that link, one hop instead of two, when the task was quick
   * (LINK_REPLY_MAX_MS) and the answer is final and whole: it succeeded (a failure may be retried
   * elsewhere), printed nothing (its output went through the controller, and must not arrive after
   * its reply) and is small enough for the controller's record to keep all of it. The controller
   * learns of it from the report.
   */
  #replyToController(running: Running, status: string, started: string | null, content: Json, buffers: Uint8Array[]): void {
    const { msg } = running.task;
    const quick = performance.now() - running.since <= LINK_REPLY_MAX_MS;
    const link = quick && status === "ok" && running.stdout.length === 0 && running.stderr.length === 0 ? (this.#links?.client(msg.header.session) ?? null) : null;
    if (link !== null && msg.msgType === "apply_request" && this.#conn !== null && this.#conn.open && this.#replyGroups.takes(link, buffers)) {
      // in this turn's reply group; the report (queued first) still leaves ahead of it. No reply
      // message is made: the group's index and the report say all of it.
      const date = isoMicro();
      const specials = content.specials === true;
      if (this.#report.stubs) this.#report.answeredStub(msg.header.msg_id, { started, date }, specials, buffers);
      else {
        const metadata = okMetadataText(started, this.uuid, this.id);
        const record = recordReply(msg, newMsgId(), date, metadata, content, buffers, this.#session);
        this.#report.answered(msg.header.msg_id, [record], record.byteLength, { status, started, date });
      }
      this.#replyGroups.add(link, [msg.header.msg_id, date, started, specials ? 1 : 0, buffers.length], buffers);
      return;
    }
    const reply = this.#replyMessage(msg, status, started, content, buffers);
    const outcome = { status, started, date: reply.header.date };
    if (link === null) {
      this.#conn?.send(reply);
      return;
    }
    const chunks = encodeMessage(this.#auth, reply);
    let size = 0;
    for (const c of chunks) size += c.byteLength;
    if (size > RECORD_BUFFER_LIMIT || this.#conn === null || !this.#conn.open) {
      this.#conn?.write(chunks);
      return;
    }
    // the report first: it is handed to the socket just ahead of the reply, so the controller has
    // heard of the end (the engine is free) before the client can send its next task
    this.#report.answered(msg.header.msg_id, chunks, size, outcome);
    this.#replyGroups.flush(link);
    link.write(chunks);
  }

  #replyMessage(msg: Incoming, status: string, started: string | null, content: Json, buffers: Uint8Array[]): OutMessage & { header: Header } {
    const metadata = { status, started, engine: this.uuid, engine_id: this.id, dependencies_met: true };
    return { header: makeHeader(msg.msgType.replace(/_request$/, "_reply"), this.#session), parent: msg.header, content, buffers, metadata };
  }

  #engineInfo(method: Method): Json {
    return { engine_uuid: this.uuid, engine_id: this.id, method };
  }

  #apply(msg: Incoming): Outcome | Promise<Outcome> {
    const c = msg.content;
    const args = unpack(msg.buffers) as unknown[];
    if (c.specials === true) return reviveArgs(this.#ns, args).then((revived) => this.#applyWith(c, revived as unknown[]));
    return this.#applyWith(c, args);
  }

  #applyWith(c: Json, args: unknown[]): Outcome | Promise<Outcome> {
    const fn = resolveFunction(this.#ns, c.fn as Json);
    if (isThenable(fn)) return fn.then((f) => this.#call(f, c, args));
    return this.#call(fn, c, args);
  }

  #call(fn: (...a: unknown[]) => unknown, c: Json, args: unknown[]): Outcome | Promise<Outcome> {
    const value = c.mode === "map" ? this.#invoke(() => mapChunk(fn, args[0] as ArrayLike<unknown>, c.zip === true)) : this.#invoke(() => fn(...args));
    // a thenable here is #settle's promise
    if (isThenable(value)) return (value as Promise<unknown>).then((v) => okOutcome(v, {}));
    return okOutcome(value, {});
  }

  async #execute(msg: Incoming): Promise<Outcome> {
    const code = String(msg.content.code ?? "");
    const js = msg.content.lang === "ts" ? await transpileTs(code) : code;
    const cell = this.#ns.compile(rewriteCell(js), `cell-${this.#executionCount + 1}`) as () => unknown;
    this.#executionCount += 1;
    const value = await this.#invoke(cell);
    const data = value === undefined ? null : { "text/plain": inspect(value, { depth: 4, breakLength: 100 }) };
    const content = { execution_count: this.#executionCount, data };
    try {
      return okOutcome(value, content);
    } catch {
      return okOutcome(undefined, content); // a cell's value that cannot be cloned still shows as text
    }
  }

  /** Call user code: SIGINT interrupts it; a returned promise is awaited (also interruptibly), anything else returned as is. */
  #invoke(thunk: () => unknown): unknown {
    let result: unknown;
    try {
      result = this.#ns.callInterruptible(thunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") throw interruptedError();
      throw err;
    }
    return isThenable(result) ? this.#settle(result) : result;
  }

  async #settle(result: PromiseLike<unknown>): Promise<unknown> {
    const current = this.#current;
    const interrupted = new Promise<never>((_, reject) => {
      if (current !== null) current.interrupt = reject;
    });
    try {
      return await Promise.race([result, interrupted]);
    } finally {
      if (current !== null) current.interrupt = null;
    }
  }

  #onSigint(): void {
    // synchronous code is interrupted by breakOnSigint; here we only see SIGINT while awaiting or idle
    const interrupt = this.#current?.interrupt;
    if (interrupt) interrupt(interruptedError());
    else this.#log.info("ignoring SIGINT while idle (SIGTERM stops the engine)");
  }

  #onStrayError(err: unknown): void {
    // nothing to report to once stderr is gone (its own error is not uncaught: main.ts listens for it)
    if (process.stderr.destroyed || !process.stderr.writable) return;
    const text = `Uncaught ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`;
    if (this.#current !== null) process.stderr.write(text);
    else this.#log.error("uncaught error outside any task", { error: text });
  }
}

/** A task's value, packed for its reply. */
function okOutcome(value: unknown, content: Json): Outcome {
  const packed = packValue(value, content);
  return { status: "ok", content: packed.content, buffers: packed.buffers };
}

function methodOf(msg: Incoming): Method {
  return msg.msgType === "execute_request" ? "execute" : "apply";
}
