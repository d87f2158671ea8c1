/**
 * LoadBalancedView: tasks go to whichever engine the controller's scheduler picks. Flags shape
 * scheduling: dependencies (`after`, `follow`), `timeout` while waiting for them, `retries`
 * elsewhere after a failure, and for maps `chunksize` and `ordered`.
 */
import { AsyncResult, type AsyncMapResult } from "./asyncresult.js";
import { checks, validate, type Check } from "./options.js";
import { chunkSizes, mapInput, split, type Sequence } from "./sequences.js";
import type { TaskState } from "./task.js";
import {
  functionSpec, jobIds, packArgs, RequestTexts, splitMapArgs, View, type Applied, type Fn, type Jobs, type RemoteArgs, type Ret, type ViewHost,
} from "./view.js";
import type { ModuleFunction, Reference } from "../protocol/reference.js";

/** A dependency: AsyncResults or msg ids, or `{ ids, all, success, failure }`. */
export type DependencySpec = Jobs | { ids: Jobs; all?: boolean; success?: boolean; failure?: boolean };

export interface LoadBalancedFlags {
  /** Run after these tasks finished (successfully, unless said otherwise). */
  after?: DependencySpec | null;
  /** Run on the engine where these tasks ran (after they finished). */
  follow?: DependencySpec | null;
  /** Seconds a task may wait for its dependencies or an engine (DependencyTimeout after). */
  timeout?: number | null;
  /** Re-run on another engine after a failure or engine death, up to this many times. */
  retries?: number;
  /** Elements per task in `map`. */
  chunksize?: number;
  /** Iterate map results in input order (true) or completion order (false). */
  ordered?: boolean;
  /** Restrict scheduling to these engines. */
  targets?: number[] | null;
  /** Return errors in place of values instead of rejecting. */
  returnExceptions?: boolean;
  label?: string | null;
}

export interface ImapOptions {
  ordered?: boolean;
  /** Tasks in flight at most (default: the number of engines). */
  maxOutstanding?: number;
  chunksize?: number;
  returnExceptions?: boolean;
}

const dependency: Check = (v) => {
  if (v === null || typeof v === "string" || Array.isArray(v) || v instanceof AsyncResult) return null;
  if (typeof v !== "object" || !("ids" in v)) return "must be AsyncResults or msg ids, or { ids, all, success, failure }";
  const d = v as { success?: unknown; failure?: unknown };
  if (d.success === false && d.failure !== true) return "must count success, failure or both (success: false needs failure: true)";
  return null;
};
const targetList: Check = (v) => (v === null || (Array.isArray(v) && v.every(Number.isInteger)) ? null : "must be a list of engine ids or null");

const FLAG_SCHEMA: Record<string, Check> = {
  after: dependency, follow: dependency, timeout: checks.seconds, retries: checks.nonNegativeInt, chunksize: checks.positiveInt,
  ordered: checks.boolean, targets: targetList, returnExceptions: checks.boolean, label: (v) => (v === null ? null : checks.string(v)),
};

type Applicable = Fn | ModuleFunction<any> | Reference;

/** imap holds at most this many tasks per `maxOutstanding`, finished ones waiting for an earlier one included. */
const IMAP_HOLD = 4;

export class LoadBalancedView extends View {
  #flags: LoadBalancedFlags;

  constructor(host: ViewHost, flags: LoadBalancedFlags = {}) {
    super(host);
    this.#flags = { ...validate<LoadBalancedFlags>("loadBalancedView()", flags, FLAG_SCHEMA) };
  }

  get flags(): Readonly<LoadBalancedFlags> {
    return { ...this.#flags };
  }

  get targets(): number[] | null {
    return this.#flags.targets ?? null;
  }

  /** Change this view's flags. */
  setFlags(flags: LoadBalancedFlags): this {
    this.#flags = { ...this.#flags, ...validate<LoadBalancedFlags>("setFlags()", flags, FLAG_SCHEMA) };
    return this;
  }

  /** A copy of this view with other flags (ipyparallel's temp_flags). */
  withFlags(flags: LoadBalancedFlags): LoadBalancedView {
    return new LoadBalancedView(this.host, { ...this.#flags, ...validate<LoadBalancedFlags>("withFlags()", flags, FLAG_SCHEMA) });
  }

  #metadata(flags: LoadBalancedFlags): Record<string, unknown> {
    const md: Record<string, unknown> = { route: "task" };
    if (flags.targets !== undefined && flags.targets !== null) md.targets = flags.targets;
    if (flags.after !== undefined && flags.after !== null) md.after = depWire(flags.after);
    if (flags.follow !== undefined && flags.follow !== null) md.follow = depWire(flags.follow);
    if (flags.timeout !== undefined && flags.timeout !== null) md.timeout = flags.timeout;
    if (flags.retries !== undefined && flags.retries > 0) md.retries = flags.retries;
    if (typeof flags.label === "string") md.label = flags.label;
    return md;
  }

  /** Run `f(...args)` on one engine chosen by the scheduler. Returns at once (a single result). */
  apply<F extends Applicable>(f: F, ...args: RemoteArgs<Parameters<Applied<F>>>): AsyncResult<Ret<F>, Ret<F>> {
    const spec = functionSpec(f);
    const task = this.send(spec, packArgs(args), this.#metadata(this.#flags));
    return this.result([task], spec.name, true);
  }

  applyAsync<F extends Applicable>(f: F, ...args: RemoteArgs<Parameters<Applied<F>>>): AsyncResult<Ret<F>, Ret<F>> {
    return this.apply(f, ...args);
  }

  applySync<F extends Applicable>(f: F, ...args: RemoteArgs<Parameters<Applied<F>>>): Promise<Ret<F>> {
    return this.apply(f, ...args).get();
  }

  remote<F extends Applicable>(f: F): (...args: RemoteArgs<Parameters<Applied<F>>>) => AsyncResult<Ret<F>, Ret<F>> {
    functionSpec(f);
    return (...args) => this.apply(f, ...args);
  }

  parallel<A, R>(f: ((a: A) => R) | ModuleFunction<(a: A) => R> | Reference): (seq: Sequence<A>) => AsyncMapResult<Awaited<R>> {
    functionSpec(f);
    return (seq) => this.map(f as (a: A) => R, seq);
  }

  /**
   * Like `Array.prototype.map` over the (zipped) sequences, in `ceil(n / chunksize)` load-balanced
   * tasks. Options (also any flag): `{ chunksize, ordered, returnExceptions, … }`.
   */
  map<A, R>(f: ((a: A) => R) | ModuleFunction<(a: A) => R> | Reference, seq: Sequence<A>, opts?: LoadBalancedFlags): AsyncMapResult<Awaited<R>>;
  map<A, B, R>(f: ((a: A, b: B) => R) | ModuleFunction<(a: A, b: B) => R>, a: Sequence<A>, b: Sequence<B>, opts?: LoadBalancedFlags): AsyncMapResult<Awaited<R>>;
  map<A, B, C, R>(f: (a: A, b: B, c: C) => R, a: Sequence<A>, b: Sequence<B>, c: Sequence<C>, opts?: LoadBalancedFlags): AsyncMapResult<Awaited<R>>;
  map(f: Applicable, ...rest: unknown[]): AsyncMapResult<unknown>;
  map(f: Applicable, ...rest: unknown[]): AsyncMapResult<unknown> {
    const { seqs, opts } = splitMapArgs(rest);
    const flags = { ...this.#flags, ...validate<LoadBalancedFlags>("map()", opts, FLAG_SCHEMA) };
    const spec = functionSpec(f, "map()");
    const input = mapInput(seqs, "map()");
    const sizes = chunkSizes(input.length, flags.chunksize ?? 1);
    const md = this.#metadata(flags);
    const extra = { mode: "map", zip: input.zip };
    const texts = new RequestTexts();
    const tasks: TaskState[] = split(input.items, sizes).map((chunk) => this.send(spec, packArgs([chunk]), md, extra, texts));
    return this.mapResult(tasks, spec.name, sizes, flags.ordered ?? true, flags.returnExceptions ?? false);
  }

  mapSync<A, R>(f: ((a: A) => R) | ModuleFunction<(a: A) => R> | Reference, seq: Sequence<A>, opts?: LoadBalancedFlags): Promise<Array<Awaited<R>>>;
  mapSync(f: Applicable, ...rest: unknown[]): Promise<unknown[]>;
  mapSync(f: Applicable, ...rest: unknown[]): Promise<unknown[]> {
    return this.map(f, ...rest).get();
  }

  mapAsync(f: Applicable, ...rest: unknown[]): AsyncMapResult<unknown> {
    return this.map(f, ...rest);
  }

  /**
   * Map lazily: the input is consumed as results come back, with at most `maxOutstanding` tasks in
   * flight, so it works on infinite generators. Breaking out of the loop stops submitting.
   */
  imap<A, R>(f: ((a: A) => R) | ModuleFunction<(a: A) => R> | Reference, seq: Iterable<A> | AsyncIterable<A>, opts: ImapOptions = {}): AsyncGenerator<Awaited<R>, void, undefined> {
    const o = validate<ImapOptions>("imap()", opts, {
      ordered: checks.boolean, maxOutstanding: checks.positiveInt, chunksize: checks.positiveInt, returnExceptions: checks.boolean,
    });
    const spec = functionSpec(f, "imap()");
    return this.#imap<Awaited<R>>(spec, seq as Iterable<unknown> | AsyncIterable<unknown>, o);
  }

  /**
   * At most `maxOutstanding` tasks run at once. Finished results that wait for an earlier one
   * (ordered) do not count, so a slow task at the head does not leave the other engines idle
   * (ipyparallel #743); they are held up to IMAP_HOLD × maxOutstanding, which keeps memory bounded.
   */
  async *#imap<R>(spec: ReturnType<typeof functionSpec>, seq: Iterable<unknown> | AsyncIterable<unknown>, o: ImapOptions): AsyncGenerator<R, void, undefined> {
    const iterator = Symbol.asyncIterator in seq ? seq[Symbol.asyncIterator]() : (seq as Iterable<unknown>)[Symbol.iterator]();
    const limit = o.maxOutstanding ?? Math.max(1, this.core.ids.length);
    const chunk = o.chunksize ?? 1;
    const md = this.#metadata(this.#flags);
    const extra = { mode: "map", zip: false };
    const texts = new RequestTexts();
    const pending: TaskState[] = []; // submitted, not yet yielded, in submission order
    let running = 0;
    let wake: (() => void) | null = null;
    const finished = (): void => {
      running -= 1;
      wake?.();
    };
    let exhausted = false;
    try {
      for (;;) {
        while (!exhausted && running < limit && pending.length < limit * IMAP_HOLD) {
          const items: unknown[] = [];
          while (items.length < chunk) {
            const next = await iterator.next();
            if (next.done === true) {
              exhausted = true;
              break;
            }
            items.push(next.value);
          }
          if (items.length === 0) continue;
          const task = this.send(spec, packArgs([items]), md, extra, texts);
          running += 1;
          task.promise.then(finished, finished);
          pending.push(task);
        }
        if (pending.length === 0) return;
        const index = o.ordered === false ? pending.findIndex((t) => t.done) : pending[0]!.done ? 0 : -1;
        if (index < 0) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
          continue;
        }
        const [task] = pending.splice(index, 1);
        try {
          yield* (await task!.promise) as R[];
        } catch (err) {
          if (o.returnExceptions !== true) throw err;
          yield err as R;
        }
      }
    } finally {
      await iterator.return?.();
    }
  }

  /** Queue status of every engine. */
  queueStatus(opts: { verbose?: boolean } = {}) {
    return this.host.queueStatus(this.#flags.targets ?? "all", opts);
  }

  get [Symbol.toStringTag](): string {
    return "LoadBalancedView";
  }
}

function depWire(dep: DependencySpec): unknown {
  if (typeof dep === "object" && dep !== null && !Array.isArray(dep) && !(dep instanceof AsyncResult) && "ids" in dep) {
    const d = dep as { ids: Jobs; all?: boolean; success?: boolean; failure?: boolean };
    return { ids: jobIds(d.ids), all: d.all ?? true, success: d.success ?? true, failure: d.failure ?? false };
  }
  return jobIds(dep as Jobs);
}

