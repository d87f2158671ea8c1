/**
 * Client: a connection to a running cluster's controller, and the views that send it work.
 *
 * @example
 * const rc = await Client.connect();            // the default profile's running cluster
 * await rc.waitForEngines(2);
 * const squares = await rc.loadBalancedView().map((x: number) => x * x, [1, 2, 3]);
 * await rc.close();
 */
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { clientFile, listClientFiles, localHostname, pidAlive, readConnectionFile, type ConnectionInfo } from "../protocol/connfile.js";
import type { Transport } from "../protocol/dial.js";
import { silentLogger, type Logger } from "../protocol/log.js";
import type { Json } from "../protocol/messages.js";
import { parseIsoMicro, toDate } from "../protocol/time.js";
import { AsyncHubResult, AsyncResult } from "./asyncresult.js";
import { ClientCore, type CoreEvents } from "./core.js";
import type { ReserveStats } from "./reserve.js";
import { DirectView } from "./directview.js";
import { ControllerError, TimeoutError } from "./errors.js";
import { LoadBalancedView, type LoadBalancedFlags } from "./lbview.js";
import type { TaskMetadata } from "./metadata.js";
import { checks, validate } from "./options.js";
import { jobIds, type Jobs, type QueueStatus, type Targets, type ViewHost } from "./view.js";
import { newMsgId } from "../protocol/ids.js";

export interface ClientOptions {
  /** Profile whose running cluster to use (default "default"). */
  profile?: string;
  clusterId?: string;
  /** A client connection file (overrides profile and clusterId). */
  connectionFile?: string;
  /** Seconds to wait for the cluster and the handshake (default 10). */
  timeout?: number;
  /** "unix" or "tcp" (default: a Unix socket when the controller is on this host). */
  transport?: Transport;
  /** Seconds to keep trying after the connection drops (default 10). */
  reconnectTimeout?: number;
  /** A pino-compatible logger (silent by default). */
  logger?: Logger;
  /** Send direct tasks straight to engines on this host (default true); false routes everything through the controller. */
  direct?: boolean;
  /**
   * Seconds a silent controller may leave a ping unanswered while this client waits for it
   * (tasks, results, requests) before the connection counts as lost, as if it had dropped: the
   * client reconnects, and fails what it waits for if it cannot (default 20; 0: never). A stopped
   * controller process or a cut network otherwise gives no error at all.
   */
  controllerTimeout?: number;
  /**
   * Bytes of memory this client may prepare ahead for the large arrays it receives (default 0:
   * none; 256 MiB holds two 100 MB arrays' buffers). After an array of 8 MiB or more lands
   * (`pull`, `gather`, a result), a worker thread readies a buffer of the same size, so the next one
   * like it is read into memory already touched instead of new pages: on VMs where new pages are
   * dear, repeated 100 MB pulls ran ~1.5x faster with time between them (docs/views.md, "Memory
   * prepared ahead"). Back to back on busy cores, and where memory is short, it gains nothing.
   * The thread runs at the lowest priority and waits while this client sends large messages.
   * Prepared buffers are held on top of what you hold, and given back after
   * `receiveReserveSeconds` unused.
   */
  receiveReserve?: number;
  /** Seconds a prepared buffer waits for an array of its size before it is given back (default 120). */
  receiveReserveSeconds?: number;
}

export interface ControllerStats {
  engines: number;
  clients: number;
  tasks: number;
  unassigned: number;
  scheme: string;
  hwm: number;
  /** Engines whose heart (the thread that answers heartbeats, signals and take-backs) is connected. */
  hearts: number;
  /**
   * Early handoff (docs/views.md): load-balanced tasks handed to a busy engine ahead of time,
   * those taken back for an engine that freed up first, and take-backs that came too late (the
   * engine had started the task). `limits`: per engine id, how many tasks it may hold early now
   * (about 10 ms of work at its recent pace, from 1 to 32; 4 until it has a pace).
   */
  early: { handed: number; takenBack: number; tooLate: number; limits: Record<string, number> };
  /** Messages and connections the controller dropped, by reason (bad signature, replay, garbage…). */
  dropped: Record<string, number>;
  droppedTotal: number;
  /**
   * Large messages (1 MB or more) the controller passed on while they arrived instead of holding
   * them whole first: tasks for one engine, load-balanced tasks an engine could take at once, and
   * replies (docs/architecture.md).
   */
  passedOn: { messages: number; bytes: number };
  /**
   * Flow control (docs/architecture.md): the bytes the controller queues for one peer that is slow
   * to read before it pauses the senders of more for it (the cluster's `forwardLimit`), and how often
   * it paused a sender so far.
   */
  flowControl: { forwardLimit: number; sendersPaused: number };
  /**
   * Load-balanced tasks that clients submitted in one turn and sent together, one message per
   * group of up to 128 (docs/architecture.md): the groups taken in, and the tasks in them.
   */
  grouped: { groups: number; tasks: number };
  /**
   * Tasks the controller handed to engines with the others it placed on the same engine in the same
   * turn, in one message (protocol 1.2): the tasks handed that way, and the messages that carried
   * two or more of them.
   */
  handedOff: { groups: number; tasks: number };
  /**
   * Tasks sent through the controller (load-balanced ones, mostly) whose engine answered them
   * straight to their client over its direct link, and told the controller in its next report.
   */
  answeredOverLinks: number;
}

/** Events a Client emits: engines arriving and leaving, task output as it arrives, connection changes. */
export type ClientEvents = CoreEvents;

const OPTION_SCHEMA = {
  profile: checks.string, clusterId: checks.string, connectionFile: checks.string, timeout: checks.seconds,
  transport: checks.oneOf("unix", "tcp"), reconnectTimeout: checks.seconds, logger: checks.any, direct: checks.boolean, controllerTimeout: checks.seconds,
  receiveReserve: checks.nonNegativeInt, receiveReserveSeconds: checks.positiveSeconds,
};

export class Client extends EventEmitter<ClientEvents> {
  readonly #core: ClientCore;
  readonly #host: ViewHost;
  #closing: Promise<void> | null = null;

  private constructor(core: ClientCore) {
    super();
    this.#core = core;
    this.#host = {
      core,
      abort: (jobs, targets) => this.abort(jobs, targets),
      wait: (jobs, timeout) => this.wait(jobs, timeout),
      queueStatus: (targets, opts) => this.queueStatus(targets, opts),
    };
    for (const event of ["engineRegistered", "engineUnregistered", "output", "disconnected", "reconnected", "closed"] as const) {
      core.on(event, (...args: unknown[]) => (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args));
    }
  }

  /** Connect to a running cluster: a connection file, a cluster id, or the profile's newest running cluster. */
  static async connect(opts: ClientOptions = {}): Promise<Client> {
    const o = validate<ClientOptions>("Client.connect()", opts, OPTION_SCHEMA);
    const timeout = o.timeout ?? 10;
    const info = await findConnectionInfo(o, timeout);
    const core = new ClientCore({
      info, transport: o.transport, timeout, logger: o.logger ?? silentLogger, reconnectTimeout: o.reconnectTimeout ?? 10,
      direct: o.direct ?? true, controllerTimeout: o.controllerTimeout,
      receiveReserve: o.receiveReserve, receiveReserveSeconds: o.receiveReserveSeconds,
    });
    await core.connect();
    return new Client(core);
  }

  /** Registered engine ids, ascending, kept current. */
  get ids(): number[] {
    return this.#core.ids;
  }

  /** Where each engine runs: `{ pid, hostname, direct }` by engine id (`direct`: its link address for same-host clients, or null). */
  get hosts(): ReadonlyMap<number, { pid: number; hostname: string; direct: string | null }> {
    return this.#core.hosts;
  }

  get clusterId(): string {
    return this.#core.info.clusterId;
  }

  /** Metadata of every task this client sent (kept until `purgeResults`). */
  get metadata(): Map<string, TaskMetadata> {
    return this.#core.metadata;
  }

  /** Values of successful tasks, by msg id. */
  get results(): Map<string, unknown> {
    return this.#core.results;
  }

  /** msg ids in submission order. */
  get history(): string[] {
    return this.#core.history;
  }

  /** msg ids not yet completed. */
  get outstanding(): Set<string> {
    return this.#core.outstanding;
  }

  /**
   * The memory this client prepares ahead for large received arrays (`receiveReserve`): arrays
   * that landed in it (`hits`) and in new memory (`misses`), and the bytes ready now.
   */
  get receiveReserve(): ReserveStats {
    return this.#core.reserveStats;
  }

  /** Dropped (unverifiable or unexpected) messages, by reason. */
  get dropped(): Record<string, number> {
    return this.#core.stats.toJSON();
  }

  /** Resolves once at least `n` engines are registered. */
  waitForEngines(n: number, opts: { timeout?: number } = {}): Promise<void> {
    validate("waitForEngines()", opts, { timeout: checks.seconds });
    if (!Number.isInteger(n) || n < 0) throw new TypeError("waitForEngines() needs a number of engines");
    const timeout = opts.timeout ?? 60;
    if (this.ids.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.ids.length < n) return;
        cleanup();
        resolve();
      };
      const onClosed = () => {
        cleanup();
        reject(new ControllerError("the client closed while waiting for engines"));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new TimeoutError(`${n} engines not ready in ${timeout} seconds. Currently ready: ${this.ids.length}`));
      }, timeout * 1000);
      const cleanup = () => {
        clearTimeout(timer);
        this.#core.off("engineRegistered", check);
        this.#core.off("closed", onClosed);
      };
      this.#core.on("engineRegistered", check);
      this.#core.on("closed", onClosed);
    });
  }

  /** A view on named engines: a number (single values), a list, or "all" (default; resolved at each call). */
  directView(targets: number): DirectView<true>;
  directView(targets?: number[] | "all"): DirectView<false>;
  directView(targets: Targets = "all"): DirectView<boolean> {
    return new DirectView(this.#host, targets);
  }

  /** A view whose tasks the controller places on engines (optionally restricted to `targets`). */
  loadBalancedView(targets?: number[] | "all" | null, flags: LoadBalancedFlags = {}): LoadBalancedView {
    const t = targets === "all" || targets === undefined ? null : targets;
    return new LoadBalancedView(this.#host, { ...flags, targets: t });
  }

  /** True when `jobs` (default: everything outstanding) finished within `timeout` seconds. */
  async wait(jobs?: Jobs, timeout?: number | null): Promise<boolean> {
    const ids = jobs === undefined ? [...this.outstanding] : jobIds(jobs);
    const tasks = ids.map((id) => this.#core.task(id)).filter((t) => t !== undefined);
    const all = Promise.allSettled(tasks.map((t) => t.promise)).then(() => true);
    if (timeout === undefined || timeout === null || timeout < 0) return all;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((r) => (timer = setTimeout(() => r(tasks.every((t) => t.done)), timeout * 1000)));
    return Promise.race([all, expired]).finally(() => clearTimeout(timer));
  }

  /** Abort tasks still queued (default: every outstanding task); returns the aborted msg ids. */
  async abort(jobs?: Jobs, targets?: Targets): Promise<string[]> {
    const ids = jobs === undefined ? [...this.outstanding] : jobIds(jobs);
    if (ids.length === 0) return [];
    // engines this client sent direct tasks to (the controller may not have heard of them yet)
    const engines = [...new Set(ids.map((id) => this.#core.directEngineOf(id)).filter((e): e is number => e !== null))];
    const reply = await this.#core.request("abort_request", { msg_ids: ids, targets: targetList(targets), engines });
    return (reply.content.aborted as string[]) ?? [];
  }

  /** `{0: {queue, completed, tasks}, …, unassigned}` (counts, or msg ids with `verbose`). */
  async queueStatus(targets?: Targets, opts: { verbose?: boolean } = {}): Promise<QueueStatus> {
    validate("queueStatus()", opts, { verbose: checks.boolean });
    const reply = await this.#core.request("queue_request", { targets: targetList(targets), verbose: opts.verbose ?? false });
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(reply.content)) if (k !== "status") out[k] = v;
    return out as QueueStatus;
  }

  /** Results of earlier tasks, also another client's, from the controller's record. Returned at once. */
  getResult(msgIds: string | readonly string[]): AsyncHubResult<unknown> {
    const single = typeof msgIds === "string";
    const ids = single ? [msgIds] : [...msgIds];
    const tasks = ids.map((id) => this.#core.adopt(id, null));
    const pending = tasks.filter((t) => !t.done).map((t) => t.msgId);
    if (pending.length > 0) this.#fetch(pending);
    return new AsyncHubResult({ core: this.#core, tasks, fname: "getResult", single, abort: (x) => this.abort(x) });
  }

  /** Fetch (and watch) tasks from the controller's record; ids it has not heard of yet get a moment to appear. */
  #fetch(ids: string[], delay = 50): void {
    this.#core.request("result_request", { msg_ids: ids, watch: true }).then(
      (reply) => this.#core.fillFromRecord(reply),
      (err: Error) => {
        const unknown = /No such message/.test(err.message);
        if (unknown && delay <= 800) {
          setTimeout(() => this.#fetch(ids, delay * 2), delay);
          return;
        }
        for (const id of ids) {
          this.#core.tasks.get(id)?.reject(err);
          this.#core.unwatch(id);
        }
      },
    );
  }

  /** Run earlier tasks again (load-balanced); an AsyncHubResult for the re-runs, returned at once. */
  resubmit(msgIds: string | readonly string[]): AsyncHubResult<unknown> {
    const single = typeof msgIds === "string";
    const ids = single ? [msgIds] : [...msgIds];
    const newIds = ids.map(() => newMsgId());
    const tasks = newIds.map((id) => this.#core.adopt(id, null));
    for (const t of tasks) this.#core.outstanding.add(t.msgId);
    this.#core.request("resubmit_request", { msg_ids: ids, new_ids: newIds }).then(
      () => {},
      (err: Error) => tasks.forEach((t) => t.reject(err)),
    );
    return new AsyncHubResult({ core: this.#core, tasks, fname: "resubmit", single, abort: (x) => this.abort(x) });
  }

  /** Forget results locally and in the controller's record ("all": every finished task). */
  async purgeResults(jobs: Jobs | "all"): Promise<void> {
    const ids = jobs === "all" ? null : jobIds(jobs);
    const busy = (ids ?? []).filter((id) => this.outstanding.has(id));
    if (busy.length > 0) throw new Error(`cannot purge outstanding tasks: ${busy.join(", ")}`);
    // tasks finished here whose engine may not have reported them to the controller yet (answered
    // over a direct link): the controller drops those when the report comes
    const doneHere = (ids ?? []).filter((id) => (this.#core.metadata.get(id)?.status ?? null) !== null);
    await this.#core.request("purge_request", { msg_ids: ids ?? "all", done_here: doneHere });
    for (const id of ids ?? [...this.#core.metadata.keys()]) {
      if (this.outstanding.has(id)) continue;
      this.#core.tasks.delete(id);
      this.#core.metadata.delete(id);
      this.#core.results.delete(id);
    }
  }

  /** Query the task record: `{ completed: { $ne: null }, engineUuid: "…" }`; keys limit the columns. */
  async dbQuery(query: Record<string, unknown>, keys?: string[]): Promise<Array<Record<string, unknown>>> {
    const reply = await this.#core.request("db_request", { query: jsonQuery(query), keys: keys ?? null });
    const buffers = reply.buffers;
    return ((reply.content.records ?? []) as Json[]).map((r) => reviveRecord(r, buffers));
  }

  /** The controller's counters: engines, clients, task records, and input it dropped (by reason). */
  async controllerStats(): Promise<ControllerStats> {
    const reply = await this.#core.request("stats_request", {});
    const { status: _status, ...stats } = reply.content;
    return stats as unknown as ControllerStats;
  }

  /** Every msg id in the controller's record, in submission order. */
  async hubHistory(): Promise<string[]> {
    const reply = await this.#core.request("history_request", {});
    return reply.content.history as string[];
  }

  /** Reset the namespaces of the targets (default all). */
  async clear(targets?: Targets): Promise<void> {
    await this.#core.request("clear_request", { targets: targetList(targets) });
  }

  /** Send a signal to engines (SIGINT interrupts the running task; the engine keeps serving). */
  async signalEngines(signal: string | number = "SIGINT", targets?: Targets): Promise<void> {
    await this.#core.request("signal_request", { sig: signal, targets: targetList(targets) });
  }

  /** Stop engines (default all); `hub: true` also stops the controller and closes this client. */
  async shutdown(opts: { targets?: Targets; hub?: boolean } = {}): Promise<void> {
    validate("shutdown()", opts, { targets: checks.any, hub: checks.boolean });
    await this.#core.request("shutdown_request", { targets: targetList(opts.targets), hub: opts.hub ?? false });
    if (opts.hub === true) await this.close();
  }

  /** Close the connection. Idempotent; a closed client keeps nothing alive. */
  close(): Promise<void> {
    this.#closing ??= this.#core.close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Internal: cut the connection as a network failure would (for tests of reconnection). */
  [Symbol.for("tsparallel.dropConnection")](): void {
    this.#core.dropConnection();
  }

  /** Internal: stop reading the direct links to engines, or go on (for tests of answers lost on a link). */
  [Symbol.for("tsparallel.holdLinks")](on: boolean): void {
    this.#core.holdLinks(on);
  }

  /** Internal: reply groups received over direct links, and the replies in them (for tests). */
  [Symbol.for("tsparallel.replyGroups")](): { groups: number; replies: number } {
    return { ...this.#core.replyGroupStats };
  }
}

function targetList(targets: Targets | undefined): number[] | null {
  if (targets === undefined || targets === "all") return null;
  return typeof targets === "number" ? [targets] : targets;
}

const DATE_KEYS = new Set(["submitted", "started", "completed", "received", "resubmitted"]);

function jsonQuery(query: Record<string, unknown>): Json {
  return JSON.parse(JSON.stringify(query, (_k, v: unknown) => (v instanceof Date ? v.toISOString() : v))) as Json;
}

function reviveRecord(r: Json, buffers: Buffer[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (DATE_KEYS.has(k)) out[k] = typeof v === "string" ? toDate(parseIsoMicro(v)) : null;
    else if ((k === "buffers" || k === "resultBuffers") && Array.isArray(v)) out[k] = buffers.slice(v[0] as number, (v[0] as number) + (v[1] as number));
    else out[k] = v;
  }
  return out;
}

/** Find the connection info: explicit file, cluster id, or the profile's newest live cluster (waiting up to `timeout`). */
async function findConnectionInfo(o: ClientOptions, timeout: number): Promise<ConnectionInfo> {
  const deadline = Date.now() + timeout * 1000;
  const profile = o.profile ?? "default";
  for (;;) {
    const path = o.connectionFile ?? (o.clusterId !== undefined ? clientFile(profile, o.clusterId) : newestLive(profile));
    if (path !== undefined && existsSync(path)) return readConnectionFile(path);
    if (Date.now() >= deadline) {
      const what = o.connectionFile ?? (o.clusterId !== undefined ? `cluster ${o.clusterId} (${path})` : `a running cluster in profile "${profile}"`);
      throw new TimeoutError(`no connection file for ${what} within ${timeout} s: start one with \`tsparallel cluster start -n 2\``);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function newestLive(profile: string): string | undefined {
  for (const path of listClientFiles(profile)) {
    try {
      const info = readConnectionFile(path);
      const local = info.location === "127.0.0.1" || info.location === localHostname() || info.unixPath !== null;
      if (!local || pidAlive(info.controllerPid)) return path;
    } catch {
      // unreadable or half-written: skip
    }
  }
  return undefined;
}

export { AsyncResult };
