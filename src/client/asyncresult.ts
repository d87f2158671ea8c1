/**
 * AsyncResult: the handle on submitted work. Awaitable (`PromiseLike`), iterable as results arrive,
 * and a window on the tasks' metadata: timing, progress, engines, output.
 */
import { inspect } from "node:util";
import { nowMs } from "../protocol/time.js";
import type { ClientCore } from "./core.js";
import { CompositeError, ControllerError, TimeoutError } from "./errors.js";
import { kPrecise, type TaskMetadata } from "./metadata.js";
import { displayOutputs, type OutputGrouping } from "./display.js";
import { waitInteractive, type WaitInteractiveOptions } from "./progress.js";
import type { TaskState } from "./task.js";

export interface ResultInit {
  core: ClientCore;
  tasks: TaskState[];
  fname: string;
  /** One task whose value is not a list (a number-targeted DirectView, a load-balanced apply). */
  single: boolean;
  /** Elements per task, for maps. */
  chunkSizes?: number[] | null;
  returnExceptions?: boolean;
  /** Abort the tasks (the view or client decides how). */
  abort?: (msgIds: string[]) => Promise<unknown>;
  /** Compute the value from the task values (push, gather, execute…); default: one value or the list. */
  combine?: ((values: unknown[]) => unknown) | undefined;
}

export interface GetOptions {
  /** Return errors in place of values instead of rejecting. */
  returnExceptions?: boolean;
}


const noop = () => {};

/**
 * `T`: what `await` gives. `E`: one task's value, what iteration yields and `getDict` holds — by
 * default a list's element (a single result whose value is itself a list passes `E = T`).
 */
export class AsyncResult<T = unknown, E = T extends unknown[] ? T[number] : T> implements PromiseLike<T> {
  readonly #core: ClientCore;
  readonly #tasks: TaskState[];
  readonly #fname: string;
  readonly #single: boolean;
  readonly #chunkSizes: number[] | null;
  readonly #returnExceptions: boolean;
  readonly #abort: ((msgIds: string[]) => Promise<unknown>) | undefined;
  readonly #combine: ((values: unknown[]) => unknown) | undefined;
  readonly #settled: Promise<void>;
  readonly #promise: Promise<T>;

  constructor(init: ResultInit) {
    this.#core = init.core;
    this.#tasks = init.tasks;
    this.#fname = init.fname;
    this.#single = init.single;
    this.#chunkSizes = init.chunkSizes ?? null;
    this.#returnExceptions = init.returnExceptions ?? false;
    this.#abort = init.abort;
    this.#combine = init.combine;
    this.#settled = allSettled(this.#tasks);
    this.#promise = this.#settled.then(() => this.#outcome(this.#returnExceptions));
    this.#promise.catch(noop); // failures surface through await/get only, never as unhandled
  }

  // ---- promise interop ------------------------------------------------------------------------

  then<R1 = T, R2 = never>(onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null, onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null): Promise<R1 | R2> {
    return this.#promise.then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: any) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.#promise.catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.#promise.finally(onfinally);
  }

  /** The underlying promise (for APIs that check for a native Promise). */
  get promise(): Promise<T> {
    return this.#promise;
  }

  // With then/catch/finally, this makes an AsyncResult<T> assignable to Promise<T> (assert.rejects, typed APIs).
  get [Symbol.toStringTag](): string {
    return this.constructor.name;
  }

  // ---- results --------------------------------------------------------------------------------

  /**
   * The result: one value for a single result, else a list. Rejects with the task's error (single)
   * or a `CompositeError` (several tasks), or `TimeoutError` after `timeout` seconds.
   */
  get(timeout?: number | null, opts: GetOptions = {}): Promise<T> {
    const returnExceptions = opts.returnExceptions ?? this.#returnExceptions;
    const result = returnExceptions === this.#returnExceptions ? this.#promise : this.#settled.then(() => this.#outcome(returnExceptions));
    if (timeout === undefined || timeout === null || timeout < 0) return result;
    return withTimeout(result, this.#settled, timeout);
  }

  /**
   * Results keyed by engine id; rejects if one engine ran more than one of the tasks. Each entry is
   * that engine's task value (for a map: its part of the list, not one element).
   */
  getDict<U>(this: AsyncMapResult<U>, timeout?: number | null): Promise<Record<number, U[]>>;
  getDict(timeout?: number | null): Promise<Record<number, E>>;
  async getDict(timeout?: number | null): Promise<Record<number, unknown>> {
    await this.get(timeout);
    // per task, not the combined value: a map's list is flattened, a gather's concatenated
    const values = this.#tasks.map((t) => t.error ?? t.value);
    const ids = this.#tasks.map((t) => t.metadata.engineId);
    const counts = new Map<number | null, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, n] of counts) {
      if (n > 1) throw new RangeError(`Cannot build dict, ${n} jobs ran on engine #${id}`);
    }
    const out: Record<number, unknown> = {};
    ids.forEach((id, i) => (out[id ?? -1] = values[i]));
    return out;
  }

  /** True once every task is done within `timeout` seconds; never rejects for task errors. */
  async wait(timeout?: number | null): Promise<boolean> {
    if (timeout === undefined || timeout === null || timeout < 0) {
      await this.#settled;
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(this.ready()), timeout * 1000)));
    return Promise.race([this.#settled.then(() => true), expired]).finally(() => clearTimeout(timer));
  }

  ready(): boolean {
    return this.#tasks.every((t) => t.done);
  }

  /** Whether every task succeeded; throws if not ready. */
  successful(): boolean {
    if (!this.ready()) throw new Error("Result not ready: call successful() after the result is ready");
    return this.#tasks.every((t) => t.error === null);
  }

  /** Abort the tasks still queued (they fail with TaskAborted); rejects if already done. */
  async abort(): Promise<void> {
    if (this.ready()) throw new Error("Can't abort, I am already done!");
    if (this.#abort === undefined) throw new Error("this result cannot be aborted");
    await this.#abort(this.#tasks.filter((t) => !t.done).map((t) => t.msgId));
  }

  #outcome(returnExceptions: boolean): T {
    const errors = this.#tasks.filter((t) => t.error !== null).map((t) => t.error!);
    if (errors.length > 0 && !returnExceptions) {
      if (this.#single) throw errors[0];
      // losing the controller is not a task failure: say so directly
      if (errors.every((e) => e instanceof ControllerError)) throw errors[0];
      throw new CompositeError(errors, this.#fname);
    }
    return this.combine(this.#tasks.map((t) => t.error ?? t.value));
  }

  /** Turn per-task values into the result. */
  protected combine(values: unknown[]): T {
    if (this.#combine !== undefined) return this.#combine(values) as T;
    return (this.#single ? values[0] : values) as T;
  }

  // ---- iteration ------------------------------------------------------------------------------

  /** Results one by one as they arrive, in task order (a task's error is thrown when reached). */
  async *[Symbol.asyncIterator](): AsyncGenerator<E, void, undefined> {
    for (const t of this.#tasks) yield (await t.promise) as E;
  }

  // ---- timing and progress --------------------------------------------------------------------

  /** Seconds since submission; once done, equal to `wallTime`. */
  get elapsed(): number {
    if (this.ready()) return this.wallTime;
    const start = min(this.#tasks.map((t) => t.metadata[kPrecise].submitted));
    return start === null ? 0 : (nowMs() - start) / 1000;
  }

  /** Completed count, in the unit of `length` (elements for maps). */
  get progress(): number {
    let n = 0;
    this.#tasks.forEach((t, i) => {
      if (t.done) n += this.#chunkSizes?.[i] ?? 1;
    });
    return n;
  }

  /** Number of tasks, or of elements for a map. */
  get length(): number {
    return this.#chunkSizes === null ? this.#tasks.length : this.#chunkSizes.reduce((s, n) => s + n, 0);
  }

  /** Σ (completed − started) over the tasks, seconds; throws TimeoutError before done. */
  get serialTime(): number {
    this.#requireReady("serialTime");
    let total = 0;
    for (const t of this.#tasks) {
      const { started, completed } = t.metadata[kPrecise];
      if (started !== null && completed !== null) total += completed - started;
    }
    return total / 1000;
  }

  /** Last received − first submitted, seconds; throws TimeoutError before done. */
  get wallTime(): number {
    this.#requireReady("wallTime");
    const first = min(this.#tasks.map((t) => t.metadata[kPrecise].submitted));
    const last = max(this.#tasks.map((t) => t.metadata[kPrecise].received));
    return first === null || last === null ? 0 : (last - first) / 1000;
  }

  #requireReady(what: string): void {
    if (!this.ready()) throw new TimeoutError(`Result not ready: ${what} is known once every task is done`);
  }

  /** Seconds between two dates, or from the earliest of `start` to the latest of `end`. */
  timedelta(start: Date | null | ReadonlyArray<Date | null>, end: Date | null | ReadonlyArray<Date | null>): number {
    const s = min(toArray(start).map((d) => d?.getTime() ?? null));
    const e = max(toArray(end).map((d) => d?.getTime() ?? null));
    if (s === null || e === null) throw new TypeError("timedelta needs dates");
    return (e - s) / 1000;
  }

  /** Wait, showing progress on stderr (a redrawn bar on a TTY, a status line per interval otherwise). */
  waitInteractive(opts: WaitInteractiveOptions = {}): Promise<boolean> {
    return waitInteractive(this, opts);
  }

  // ---- metadata -------------------------------------------------------------------------------

  get metadata(): TaskMetadata[] {
    return this.#tasks.map((t) => t.metadata);
  }

  get msgIds(): string[] {
    return this.#tasks.map((t) => t.msgId);
  }

  /** The engine id (single result) or one per task. */
  get engineId(): number | null | Array<number | null> {
    return this.#pick((m) => m.engineId);
  }

  get stdout(): string | string[] {
    return this.#pick((m) => m.stdout);
  }

  get stderr(): string | string[] {
    return this.#pick((m) => m.stderr);
  }

  get outputs(): unknown[] | unknown[][] {
    return this.#pick((m) => m.outputs) as unknown[] | unknown[][];
  }

  /** True once every message left the client. */
  get sent(): boolean {
    return this.#tasks.every((t) => t.sent);
  }

  /** The name of what ran (function name, "execute", …). */
  get fname(): string {
    return this.#fname;
  }

  #pick<V>(f: (m: TaskMetadata) => V): V | V[] {
    const values = this.#tasks.map((t) => f(t.metadata));
    return this.#single ? values[0]! : values;
  }

  /**
   * Print captured output in `[stdout:0]`-headed blocks (stderr to stderr), as ipyparallel's
   * `display_outputs`: "type" (default) shows all stdout, then all stderr, then rich outputs;
   * "engine" shows each engine's output together; "order" is "type" with the rich outputs collated
   * (every task's first output, then every second…). Empty streams print nothing. Throws
   * TimeoutError before the result is ready.
   */
  displayOutputs(groupby: OutputGrouping = "type"): void {
    if (groupby !== "type" && groupby !== "engine" && groupby !== "order") {
      throw new TypeError(`Invalid groupby ${JSON.stringify(groupby)}: use "type", "engine" or "order"`);
    }
    this.#requireReady("displayOutputs()");
    displayOutputs(this.metadata, groupby);
  }

  // ---- display --------------------------------------------------------------------------------

  get #state(): "pending" | "finished" | "failed" {
    if (!this.ready()) return "pending";
    return this.#tasks.some((t) => t.error !== null) ? "failed" : "finished";
  }

  [inspect.custom](): string {
    const state = this.#state;
    const progress = state === "pending" ? ` ${this.progress}/${this.length}` : "";
    return `<${this.constructor.name}(${this.#fname}): ${state}${progress}>`;
  }

  toString(): string {
    return this[inspect.custom]();
  }

  /** Rendering in notebook kernels that know this hook (Deno). */
  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/plain": this[inspect.custom]() };
  }

  /** Internal: the task states (for subclasses and the client). */
  protected get tasks(): readonly TaskState[] {
    return this.#tasks;
  }

  protected get chunkSizes(): readonly number[] | null {
    return this.#chunkSizes;
  }

  protected get returnsExceptions(): boolean {
    return this.#returnExceptions;
  }
}

/**
 * The result of a map: `await amr` is the whole list in input order; iterating yields elements as
 * they arrive (chunks flattened), in input order or, with `ordered: false`, in completion order.
 */
export class AsyncMapResult<T = unknown> extends AsyncResult<T[], T> {
  readonly #ordered: boolean;

  constructor(init: ResultInit & { ordered?: boolean }) {
    super({ ...init, single: false });
    this.#ordered = init.ordered ?? true;
  }

  /** Whether iteration follows input order. */
  get ordered(): boolean {
    return this.#ordered;
  }

  protected override combine(values: unknown[]): T[] {
    const out: unknown[] = [];
    values.forEach((v, i) => {
      if (v instanceof Error) out.push(...new Array(this.chunkSizes?.[i] ?? 1).fill(v));
      else out.push(...(v as unknown[]));
    });
    return out as T[];
  }

  override async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    const order = this.#ordered ? this.tasks.map((_, i) => Promise.resolve(i)) : completionOrder(this.tasks);
    for (const next of order) {
      const i = await next;
      const t = this.tasks[i]!;
      try {
        yield* (await t.promise) as T[];
      } catch (err) {
        if (!this.returnsExceptions) throw err;
        for (let k = 0; k < (this.chunkSizes?.[i] ?? 1); k++) yield err as T;
      }
    }
  }
}

/** Results fetched from the controller's record (tasks of another client, or resubmitted). */
export class AsyncHubResult<T = unknown> extends AsyncResult<T> {}

/** One promise per task that resolves, in completion order, to task indices (none is ever dropped). */
function completionOrder(tasks: readonly TaskState[]): Array<Promise<number>> {
  const resolvers: Array<(i: number) => void> = [];
  const slots = tasks.map(() => new Promise<number>((r) => resolvers.push(r)));
  let next = 0;
  tasks.forEach((t, i) => {
    const done = () => resolvers[next++]!(i);
    t.promise.then(done, done);
  });
  return slots;
}

/** Resolves once every task has settled: one countdown, no promise per task. */
function allSettled(tasks: readonly TaskState[]): Promise<void> {
  return new Promise((resolve) => {
    let left = tasks.length;
    if (left === 0) return resolve();
    const one = (): void => {
      if (--left === 0) resolve();
    };
    for (const t of tasks) t.whenSettled(one);
  });
}

function withTimeout<T>(result: Promise<T>, settled: Promise<void>, timeout: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`Result not ready within ${timeout} s`)), timeout * 1000);
  });
  void settled.then(() => clearTimeout(timer));
  return Promise.race([result, expired]).finally(() => clearTimeout(timer));
}

function min(values: Array<number | null>): number | null {
  let best: number | null = null;
  for (const v of values) if (v !== null && (best === null || v < best)) best = v;
  return best;
}

function max(values: Array<number | null>): number | null {
  let best: number | null = null;
  for (const v of values) if (v !== null && (best === null || v > best)) best = v;
  return best;
}

function toArray<V>(v: V | ReadonlyArray<V>): V[] {
  return Array.isArray(v) ? [...(v as V[])] : [v as V];
}

export type { ClientCore };

export type { OutputGrouping };
