/**
 * The load-balancing task scheduler. Jobs wait until their dependencies are met, then go to an
 * engine chosen by the scheme among those below the high-water mark of tasks in flight. Jobs
 * submitted while no engine is registered wait for one.
 *
 * Early handoff: when every engine is at the high-water mark and jobs wait, each engine whose
 * heart is connected gets its next job early, so it starts it the moment its current one ends
 * instead of a round trip through the controller later. Such a job still counts as waiting (queue
 * status shows it unassigned). If an engine frees up while another holds an early job it could
 * run, the controller asks the holder's heart to give it back (engine/claims.ts decides, against
 * the engine's main thread, whether it has started) and places it on the free engine. So tasks
 * still spread as with one in flight per engine, while a busy engine never idles between tasks.
 */
import type { Tail } from "../../protocol/wire.js";
import { evaluate, type Dependency, type Outcome } from "./dependency.js";
import { SCHEMES, type SchemeName } from "./schemes.js";

const NO_IDS: readonly string[] = [];

/**
 * A load-balanced task in the scheduler. Every field is set when the job is made (none added
 * later), so all jobs share one shape and the scheduler's code stays optimized for it.
 */
export interface Job {
  msgId: string;
  raw: Buffer[];
  clientSession: string;
  targets: number[] | null;
  after: Dependency | null;
  follow: Dependency | null;
  timeout: number | null;
  retries: number;
  /** Engines it must not run on again (it failed or lost its engine there); null until there is one. */
  blacklist: Set<number> | null;
  timer: NodeJS.Timeout | null;
  /** The last error reply, forwarded if no engine is left to retry on. */
  lastFailure: Buffer[] | null;
  /** Set when the last try ended with its engine's death (reported if no engine is left to retry on). */
  engineDeath: string | null;
  /** The engine it was handed to early, while that engine may still give it back. */
  earlyOn: number | null;
  /** Aborted while early: once given back it ends as aborted instead of waiting again. */
  abortWhenTaken: boolean;
  /**
   * A large task placed while its last bytes were still arriving (passed on as they come); null
   * otherwise. Until they are all in, its bytes cannot be signed anew, so it is not handed early.
   */
  arriving: Tail | null;
}

export interface SchedulerHost {
  /** Send the job to the engine; `idle`: the engine had no task in flight (it waits for this one). */
  assign(job: Job, engineId: number, idle: boolean): void;
  /** Ask the engine's heart to give back a job handed over early; false if it cannot be asked. */
  takeBack(job: Job, engineId: number): boolean;
  /** Ask the engine itself to abort a job it holds and has not started (its heart could not give it back). */
  abortOn(job: Job, engineId: number): void;
  /**
   * Sign the job's message anew: the engine that gave it back has seen these exact bytes, and an
   * engine drops a message it has seen (replay protection), so sending them to it again would lose the job.
   */
  renew(job: Job): void;
  /** The job was aborted before it ran (it was given back by the engine it was handed to early). */
  aborted(job: Job): void;
  /** Fail the job with a scheduler-made error. */
  fail(job: Job, ename: string, evalue: string): void;
  /** Forward the job's last error reply (retries exhausted). */
  giveUp(job: Job): void;
  /** How a task ended (null while pending, undefined for an unknown id) and where it ran. */
  outcome(msgId: string): { outcome: Outcome | null; engineId: number | null } | undefined;
}

/** How long a dependency the controller has not heard of may take to appear before it is invalid. */
const UNKNOWN_DEPENDENCY_GRACE_MS = 1000;
/**
 * Jobs an engine at the high-water mark may hold early: as many as it runs in about
 * EARLY_WINDOW_MS at its recent pace, between 1 and EARLY_MAX (EARLY_FIRST until it has a pace).
 * The next tasks must already be there while a reply makes its way through the controller, which
 * on a machine whose cores are all busy waits milliseconds for one: tiny tasks need many (T1 ~+40 %
 * at 16-32 against 4, in alternating runs), while long ones get one, so few wait behind a long task
 * (and take-backs start from the newest).
 */
const EARLY_WINDOW_MS = 10;
const EARLY_MAX = 32;
const EARLY_FIRST = 4;
/** How far one task's time moves an engine's pace: a longer one by half, a shorter one by a fifth. */
const PACE_UP = 0.5;
const PACE_DOWN = 0.2;

/** An engine's time per task, measured from one reply to the next while it goes straight on. */
interface Pace {
  /** When its current task started (the previous reply, if it held the next task then), or -1. */
  since: number;
  /** Milliseconds per task, NaN until measured. */
  ms: number;
  /** Jobs it may hold early, from `ms` (set when `ms` changes: placing a job only reads it). */
  limit: number;
}

export interface SchedulerOptions {
  scheme: SchemeName;
  hwm: number;
}

export class TaskScheduler {
  readonly #host: SchedulerHost;
  readonly #scheme: (loads: readonly number[]) => number;
  readonly hwm: number;
  readonly schemeName: SchemeName;
  /** Registered engines, least recently used first. */
  #order: number[] = [];
  readonly #loads = new Map<number, number>();
  readonly #inFlight = new Map<number, Map<string, Job>>();
  #queue: Job[] = [];
  #head = 0;
  #deferred: Job[] = [];
  /** dependency msg id → jobs waiting on it */
  readonly #graph = new Map<string, Set<Job>>();
  readonly #waiting = new Map<string, Job>();
  /** Jobs naming dependencies the controller has not heard of yet: dependency id → jobs. */
  readonly #unknown = new Map<string, Set<Job>>();
  /** Engines whose heart can give a job back: only they get jobs early. */
  readonly #canTakeBack = new Set<number>();
  /** Jobs handed over early, per engine, oldest first (also counted in #loads and #inFlight). */
  readonly #early = new Map<number, Job[]>();
  #earlyCount = 0;
  /** Each engine's pace, which sets how many jobs it may hold early (earlyLimit). */
  readonly #paces = new Map<number, Pace>();
  /** Jobs with a take-back request out, by msg id (until answered, or the job or its engine is gone). */
  readonly #takingBack = new Map<string, Job>();
  /** Jobs handed over early, taken back, and take-backs that came too late (controllerStats). */
  readonly earlyStats = { handed: 0, takenBack: 0, tooLate: 0 };

  constructor(host: SchedulerHost, opts: SchedulerOptions) {
    this.#host = host;
    this.#scheme = SCHEMES[opts.scheme];
    this.schemeName = opts.scheme;
    this.hwm = opts.hwm;
  }

  /** Jobs not yet on an engine (early ones included: they may still go elsewhere). */
  get unassigned(): number {
    return this.#waiting.size + this.#earlyCount;
  }

  unassignedIds(): string[] {
    return [...this.#waiting.keys(), ...[...this.#early.values()].flat().map((j) => j.msgId)];
  }

  /** Jobs running or queued on the engine for good (not the early ones). */
  inFlight(engineId: number): string[] {
    return [...(this.#inFlight.get(engineId)?.values() ?? [])].filter((j) => j.earlyOn == null).map((j) => j.msgId);
  }

  addEngine(id: number): void {
    this.#order.unshift(id); // new engines go first
    this.#loads.set(id, 0);
    this.#inFlight.set(id, new Map());
    this.#early.set(id, []);
    this.#paces.set(id, { since: -1, ms: Number.NaN, limit: EARLY_FIRST });
    this.#schedule();
  }

  /** Whether the engine's heart is connected (it can give back a job handed over early). */
  setCanTakeBack(id: number, can: boolean): void {
    if (can) this.#canTakeBack.add(id);
    else {
      this.#canTakeBack.delete(id);
      for (const job of this.#takingBack.values()) {
        if (this.#inFlight.get(id)?.get(job.msgId) !== job) continue;
        // no answer will come: a job being taken back to be aborted is aborted by its engine instead
        this.#takingBack.delete(job.msgId);
        if (job.abortWhenTaken) {
          job.abortWhenTaken = false;
          this.#host.abortOn(job, id);
        }
      }
    }
    this.#schedule();
  }

  /**
   * The heart's answer to a take-back request (`status`, engine/claims.ts): the job comes back to
   * the queue, or stays.
   */
  tookBack(engineId: number, msgId: string, status: string): void {
    const taken = status === "taken";
    if (!taken) this.earlyStats.tooLate += 1;
    this.#takingBack.delete(msgId);
    const jobs = this.#inFlight.get(engineId);
    const job = jobs?.get(msgId);
    if (job === undefined || jobs === undefined) return; // finished, or the engine is gone
    const abort = job.abortWhenTaken;
    if (!taken) {
      // "gone": the engine lost its connection, its early jobs come back when the controller sees
      // that (removeEngine), and an aborted one then ends as aborted
      if (status === "gone") return;
      job.abortWhenTaken = false;
      // "busy": the heart's list of given-back tasks is full; the job still waits there unstarted,
      // and the engine's main thread drops it when it reads the abort (between two tasks)
      if (abort && status === "busy") this.#host.abortOn(job, engineId);
      // "started": it runs there; an abort comes too late, as for any started task
      return;
    }
    job.abortWhenTaken = false;
    this.earlyStats.takenBack += 1;
    jobs.delete(msgId);
    this.#unload(engineId);
    this.#dropEarly(job);
    if (abort) {
      this.#host.aborted(job);
      this.#schedule();
      return;
    }
    this.#host.renew(job);
    this.#waiting.set(job.msgId, job);
    this.#enqueue(job, true);
    this.#schedule();
  }

  /** The engine is gone: retry or fail what ran there; jobs it held early never started: they wait again. */
  removeEngine(id: number): void {
    const jobs = [...(this.#inFlight.get(id)?.values() ?? [])];
    this.#order = this.#order.filter((e) => e !== id);
    this.#loads.delete(id);
    this.#inFlight.delete(id);
    this.#canTakeBack.delete(id);
    for (const job of jobs) {
      const answered = !this.#takingBack.delete(job.msgId);
      // aborted while early, or its heart said "gone" (the engine had lost the controller before
      // it started the job): it ends aborted instead of being placed again
      if (job.abortWhenTaken && (job.earlyOn === id || answered)) {
        job.abortWhenTaken = false;
        this.#dropEarly(job);
        this.#host.aborted(job);
        continue;
      }
      if (job.earlyOn === id) {
        this.#dropEarly(job);
        this.#waiting.set(job.msgId, job);
        this.#enqueue(job, true);
        continue;
      }
      const why = `Engine ${id} died while running task ${job.msgId}`;
      if (job.retries > 0) {
        job.retries -= 1;
        (job.blacklist ??= new Set()).add(id);
        job.lastFailure = null;
        job.engineDeath = why;
        // back to waiting: placing it again must not take it for a job that was aborted meanwhile
        this.#waiting.set(job.msgId, job);
        this.#enqueue(job, true);
      } else {
        this.#host.fail(job, "EngineError", why);
      }
    }
    this.#early.delete(id);
    this.#paces.delete(id);
    this.#recheckAll();
    this.#schedule();
  }

  submit(job: Job): void {
    const invalid = this.#invalid(job);
    if (invalid !== null) return this.#host.fail(job, "InvalidDependency", invalid);
    this.#waiting.set(job.msgId, job);
    if (job.timeout !== null) {
      job.timer = setTimeout(() => this.#timedOut(job), job.timeout * 1000);
      job.timer.unref();
    }
    const unknown = this.#unknownDeps(job);
    if (unknown.length > 0) return this.#awaitKnown(job, unknown);
    this.#admit(job);
    this.#schedule();
  }

  /** A task the controller now knows of (a direct task is reported a little after it was sent). */
  taskKnown(msgId: string): void {
    const jobs = this.#unknown.get(msgId);
    if (jobs === undefined) return;
    this.#unknown.delete(msgId);
    for (const job of jobs) {
      if (this.#waiting.has(job.msgId) && this.#unknownDeps(job).length === 0) this.#admit(job);
    }
    this.#schedule();
  }

  #unknownDeps(job: Job): readonly string[] {
    if (job.after === null && job.follow === null) return NO_IDS; // most tasks: nothing to look up, nothing to allocate
    return [job.after, job.follow].flatMap((d) => d?.ids ?? []).filter((id) => this.#host.outcome(id) === undefined);
  }

  /** Wait a moment for dependencies not heard of yet; still unknown after that, they are invalid. */
  #awaitKnown(job: Job, ids: readonly string[]): void {
    for (const id of ids) {
      let set = this.#unknown.get(id);
      if (set === undefined) this.#unknown.set(id, (set = new Set()));
      set.add(job);
    }
    setTimeout(() => {
      for (const id of ids) this.#unknown.get(id)?.delete(job);
      const still = this.#unknownDeps(job);
      if (!this.#waiting.has(job.msgId) || still.length === 0) return;
      this.#forget(job);
      this.#host.fail(job, "InvalidDependency", `unknown dependency: no task ${still[0]} has been submitted`);
    }, UNKNOWN_DEPENDENCY_GRACE_MS).unref();
  }

  /**
   * Whether a job submitted now would go straight to an engine: no dependencies, nothing queued
   * ahead of it, and an engine it may run on below the high-water mark.
   */
  canPlaceNow(job: Job): boolean {
    if (job.after !== null || job.follow !== null || this.#invalid(job) !== null) return false;
    if (this.#deferred.length > 0 || this.#head < this.#queue.length) return false;
    const allowed = this.#allowedEngines(job);
    return typeof allowed !== "string" && allowed.some((id) => this.hwm === 0 || this.#loads.get(id)! < this.hwm);
  }

  /** The job will never reply (its message never arrived whole): forget it wherever it is. */
  lost(msgId: string): void {
    const waiting = this.#waiting.get(msgId);
    if (waiting !== undefined) this.#forget(waiting);
    for (const [engineId, jobs] of this.#inFlight) {
      const job = jobs.get(msgId);
      if (job === undefined) continue;
      jobs.delete(msgId);
      this.#unload(engineId);
      this.#dropEarly(job);
    }
    this.#schedule();
  }

  /** Whether this engine holds the task now (placed there, not taken back). */
  holds(engineId: number, msgId: string): boolean {
    return this.#inFlight.get(engineId)?.has(msgId) === true;
  }

  /** A task this scheduler placed has replied. Returns "retry" when the reply must not be forwarded. */
  finished(msgId: string, engineId: number, ok: boolean, reply: Buffer[]): "done" | "retry" | "unknown" {
    const jobs = this.#inFlight.get(engineId);
    const job = jobs?.get(msgId);
    if (job === undefined || jobs === undefined) return "unknown";
    jobs.delete(msgId);
    const load = (this.#loads.get(engineId) ?? 1) - 1;
    this.#loads.set(engineId, load);
    this.#notePace(engineId, load > 0);
    this.#dropEarly(job);
    this.#promoteEarly(engineId);
    let result: "done" | "retry" = "done";
    if (!ok && job.retries > 0) {
      job.retries -= 1;
      (job.blacklist ??= new Set()).add(engineId);
      job.lastFailure = reply;
      job.engineDeath = null;
      this.#waiting.set(job.msgId, job);
      this.#enqueue(job, true);
      result = "retry";
    }
    this.#schedule();
    return result;
  }

  /** Whether jobs wait for this task to finish. */
  hasDependents(msgId: string): boolean {
    return this.#graph.has(msgId);
  }

  /** Any task (direct or load-balanced) finished: wake the jobs that depend on it. */
  taskDone(msgId: string): void {
    const waiters = this.#graph.get(msgId);
    if (waiters === undefined) return;
    this.#graph.delete(msgId);
    for (const job of waiters) if (this.#waiting.has(job.msgId)) this.#admit(job);
    this.#schedule();
  }

  /**
   * Abort: waiting jobs are removed and returned; early ones are taken back from their engine
   * (and reported through `host.aborted` once the heart gives them back), and their ids returned
   * as `takingBack`: their engine need not be asked.
   */
  abort(msgIds: readonly string[] | null): { removed: Job[]; takingBack: Map<string, number> } {
    const removed: Job[] = [];
    const takingBack = new Map<string, number>();
    const early = new Map<string, Job>();
    for (const jobs of this.#early.values()) for (const job of jobs) early.set(job.msgId, job);
    for (const id of msgIds ?? [...this.#waiting.keys(), ...early.keys()]) {
      const job = this.#waiting.get(id);
      if (job !== undefined) {
        this.#forget(job);
        removed.push(job);
        continue;
      }
      const held = early.get(id);
      if (held === undefined || held.earlyOn == null) continue;
      if (!this.#takingBack.has(id)) {
        if (!this.#host.takeBack(held, held.earlyOn)) continue; // no heart: its engine aborts it
        this.#takingBack.set(id, held);
      }
      held.abortWhenTaken = true;
      takingBack.set(id, held.earlyOn);
    }
    return { removed, takingBack };
  }

  // ---- internals ------------------------------------------------------------------------------

  #invalid(job: Job): string | null {
    for (const dep of [job.after, job.follow]) {
      for (const id of dep?.ids ?? []) {
        if (id === job.msgId) return `task ${id} cannot depend on itself`;
      }
    }
    return null;
  }

  /** Put the job in the run queue if its dependencies allow, else park it on them. */
  #admit(job: Job): void {
    const outcomeOf = (id: string) => this.#host.outcome(id)?.outcome ?? null;
    for (const dep of [job.after, job.follow]) {
      if (dep === null) continue;
      const state = evaluate(dep, outcomeOf);
      if (state === "unreachable") {
        this.#forget(job);
        this.#host.fail(job, "ImpossibleDependency", `task ${job.msgId}'s dependencies can no longer be met`);
        return;
      }
      if (state === "wait") {
        for (const id of dep.ids) {
          if (outcomeOf(id) !== null) continue;
          let set = this.#graph.get(id);
          if (set === undefined) this.#graph.set(id, (set = new Set()));
          set.add(job);
        }
        return;
      }
    }
    this.#enqueue(job, false);
  }

  #enqueue(job: Job, front: boolean): void {
    if (front) this.#deferred.unshift(job);
    else this.#queue.push(job);
  }

  /** Place as many queued jobs as there is room for. */
  #schedule(): void {
    if (this.#order.length === 0) return;
    if (this.#deferred.length > 0) {
      const deferred = this.#deferred;
      this.#deferred = [];
      for (const job of deferred) if (!this.#tryPlace(job)) this.#deferred.push(job);
    }
    while (this.#head < this.#queue.length && this.#hasRoom()) {
      const job = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Job;
      if (!this.#waiting.has(job.msgId)) continue; // aborted or failed meanwhile
      if (!this.#tryPlace(job)) this.#deferred.push(job);
    }
    if (this.hwm > 0 && this.#canTakeBack.size > 0) {
      this.#handEarly();
      if (this.#earlyCount > 0) this.#takeBackForFree();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Engines at the high-water mark get their next job early, in queue order. */
  #handEarly(): void {
    if (!this.#order.some((id) => this.#earlyRoom(id))) return; // no engine takes one now: nothing to try
    while (this.#head < this.#queue.length) {
      const job = this.#queue[this.#head]!;
      if (job.arriving !== null && !job.arriving.done && this.#waiting.has(job.msgId)) return;
      if (this.#waiting.has(job.msgId) && !this.#tryPlace(job, true)) return;
      this.#queue[this.#head++] = undefined as unknown as Job;
    }
  }

  /** An engine with room found nothing to run: take back an early job it could run from its holder. */
  #takeBackForFree(): void {
    let free = 0;
    for (const id of this.#order) if (this.#loads.get(id)! < this.hwm) free += 1;
    if (free <= this.#takingBack.size) return;
    for (const id of this.#order) {
      if (this.#loads.get(id)! >= this.hwm) continue;
      const job = this.#earlyFor(id);
      if (job === null) continue;
      this.#takingBack.set(job.msgId, job);
      if (--free <= this.#takingBack.size) return;
    }
  }

  /** Ask some holder for an early job the free engine could run (its newest: furthest from starting). */
  #earlyFor(id: number): Job | null {
    for (const [holder, jobs] of this.#early) {
      if (holder === id) continue;
      for (let k = jobs.length - 1; k >= 0; k--) {
        const job = jobs[k]!;
        if (this.#takingBack.has(job.msgId)) continue;
        const allowed = this.#allowedEngines(job);
        if (typeof allowed === "string" || !allowed.includes(id)) continue;
        if (this.#host.takeBack(job, holder)) return job;
      }
    }
    return null;
  }

  /** Room for one more early job: at the high-water mark with its own jobs, heart connected. */
  #earlyRoom(id: number): boolean {
    const early = this.#early.get(id)?.length ?? EARLY_MAX;
    return this.#canTakeBack.has(id) && early < this.earlyLimit(id) && (this.#loads.get(id) ?? 0) - early >= this.hwm;
  }

  /** How many jobs the engine may hold early now, from its pace (EARLY_WINDOW_MS of work). */
  earlyLimit(id: number): number {
    return this.#paces.get(id)?.limit ?? EARLY_FIRST;
  }

  /** A job left the engine without a reply (taken back, lost): if it now holds none, it idles. */
  #unload(id: number): void {
    const load = this.#loads.get(id)! - 1;
    this.#loads.set(id, load);
    const pace = this.#paces.get(id);
    if (load === 0 && pace !== undefined) pace.since = -1;
  }

  /** An engine replied: one task's time if it went straight on from the last reply; `next`: it does now. */
  #notePace(id: number, next: boolean): void {
    const pace = this.#paces.get(id);
    if (pace === undefined) return;
    const now = performance.now();
    if (pace.since >= 0) {
      const ms = now - pace.since;
      pace.ms = Number.isNaN(pace.ms) ? ms : pace.ms + (ms - pace.ms) * (ms > pace.ms ? PACE_UP : PACE_DOWN);
      pace.limit = Math.max(1, Math.min(EARLY_MAX, Math.floor(EARLY_WINDOW_MS / pace.ms)));
    }
    pace.since = next ? now : -1;
  }

  #dropEarly(job: Job): void {
    this.#takingBack.delete(job.msgId);
    if (job.earlyOn == null) return;
    const list = this.#early.get(job.earlyOn);
    const at = list?.indexOf(job) ?? -1;
    if (at >= 0) {
      list!.splice(at, 1);
      this.#earlyCount -= 1;
    }
    job.earlyOn = null;
  }

  /** The engine finished a job: its oldest early job is now its own (it runs next). */
  #promoteEarly(engineId: number): void {
    const list = this.#early.get(engineId);
    while (list !== undefined && list.length > 0 && this.#loads.get(engineId)! - list.length < this.hwm) {
      const job = list.shift()!;
      this.#earlyCount -= 1;
      job.earlyOn = null;
      // a take-back request may still be out: if the heart gives it back, tookBack() requeues it
    }
  }

  #hasRoom(): boolean {
    if (this.hwm === 0) return true;
    for (const id of this.#order) if (this.#loads.get(id)! < this.hwm) return true;
    return false;
  }

  /** Place the job now (`early`: on an engine at the high-water mark); false means it has to wait. */
  #tryPlace(job: Job, early = false): boolean {
    if (!this.#waiting.has(job.msgId)) return true;
    const allowed = this.#allowedEngines(job);
    if (typeof allowed === "string") {
      if (early) return false; // the regular placement reports it
      this.#forget(job);
      if (job.lastFailure !== null) this.#host.giveUp(job);
      else if (typeof job.engineDeath === "string") this.#host.fail(job, "EngineError", `${job.engineDeath}; no other engine is left to retry on`);
      else this.#host.fail(job, "ImpossibleDependency", allowed);
      return true;
    }
    const free = allowed.filter((id) => (early ? this.#earlyRoom(id) : this.hwm === 0 || this.#loads.get(id)! < this.hwm));
    if (free.length === 0) return false;
    const engineId = free[this.#scheme(free.map((id) => this.#loads.get(id)!))]!;
    this.#forget(job);
    const load = this.#loads.get(engineId)!;
    this.#loads.set(engineId, load + 1);
    this.#inFlight.get(engineId)!.set(job.msgId, job);
    if (early) {
      this.earlyStats.handed += 1;
      job.earlyOn = engineId;
      this.#early.get(engineId)!.push(job);
      this.#earlyCount += 1;
    }
    // least recently used first: the engine just given a job goes to the end (in place: no new list per job)
    this.#order.splice(this.#order.indexOf(engineId), 1);
    this.#order.push(engineId);
    this.#host.assign(job, engineId, load === 0);
    return true;
  }

  /** Engines the job may run on, in LRU order, ignoring load; a string says why there are none. */
  #allowedEngines(job: Job): readonly number[] | string {
    const blacklist = job.blacklist !== null && job.blacklist.size > 0 ? job.blacklist : null;
    // most jobs may run anywhere: the engine order itself, read before #tryPlace reorders it
    if (blacklist === null && job.targets === null && job.follow === null) return this.#order;
    let engines = blacklist === null ? this.#order : this.#order.filter((id) => !blacklist.has(id));
    if (job.targets !== null) {
      const targets = new Set(job.targets);
      engines = engines.filter((id) => targets.has(id));
    }
    if (job.follow !== null) {
      const where = this.#followEngines(job.follow);
      if (typeof where === "string") return where;
      engines = engines.filter((id) => where.has(id));
    }
    if (engines.length === 0) {
      if (blacklist !== null && (job.lastFailure !== null || typeof job.engineDeath === "string")) return "no engine left to retry on";
      const why = job.follow !== null ? "the engine its `follow` dependencies ran on is gone" : "none of its target engines is registered";
      return `task ${job.msgId} cannot run: ${why}`;
    }
    return engines;
  }

  #followEngines(dep: Dependency): Set<number> | string {
    const where = new Set<number>();
    for (const id of dep.ids) {
      const o = this.#host.outcome(id);
      if (o?.outcome === null || o === undefined || o.engineId === null) continue;
      if ((o.outcome === "ok" && dep.success) || (o.outcome === "failed" && dep.failure)) where.add(o.engineId);
    }
    if (dep.all && where.size > 1) return "its `follow` dependencies ran on different engines";
    return where;
  }

  #recheckAll(): void {
    // an engine left: queued jobs that follow it, or that only it could run, may now be impossible
    const jobs = [...this.#deferred];
    this.#deferred = [];
    for (const job of jobs) if (!this.#tryPlace(job)) this.#deferred.push(job);
  }

  #timedOut(job: Job): void {
    if (!this.#waiting.has(job.msgId)) return;
    this.#forget(job);
    this.#host.fail(job, "DependencyTimeout", `task ${job.msgId} timed out after ${job.timeout} s waiting for its dependencies or an engine`);
  }

  #forget(job: Job): void {
    this.#waiting.delete(job.msgId);
    if (job.timer !== null) clearTimeout(job.timer);
    job.timer = null;
    for (const dep of [job.after, job.follow]) {
      for (const id of dep?.ids ?? []) this.#graph.get(id)?.delete(job);
    }
  }
}
