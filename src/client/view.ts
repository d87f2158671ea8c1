/** What DirectView and LoadBalancedView share: targets, submission, waiting and control. */
import type { Json } from "../protocol/messages.js";
import type { ModuleFunction, Reference } from "../protocol/reference.js";
import { AsyncMapResult, AsyncResult } from "./asyncresult.js";
import type { ClientCore } from "./core.js";
import { NoEnginesRegistered, UnknownEngineError } from "./errors.js";
import { isPlainObject } from "./options.js";
import { isSequence, type Sequence } from "./sequences.js";
import { functionSpec, packArgs, type FunctionSpec, type PackedArgs } from "./shipping.js";
import type { TaskState } from "./task.js";

/**
 * The JSON of the metadata and content that the tasks of one map share (same function, flags and
 * mode; only `specials` can differ from chunk to chunk): written once instead of once per task.
 */
export class RequestTexts {
  #metadata: string | null = null;
  /** Without and with `specials`: the same object for every task of the map. */
  readonly #texts: Array<{ metadata: string; content: string } | undefined> = [undefined, undefined];

  for(content: Json, metadata: Json): { metadata: string; content: string } {
    const i = content.specials === true ? 1 : 0;
    return (this.#texts[i] ??= { metadata: (this.#metadata ??= JSON.stringify(metadata)), content: JSON.stringify(content) });
  }
}

export type Fn = (...args: any[]) => any;
/** An argument may be its value or a Reference to an engine variable. */
export type RemoteArgs<A extends readonly unknown[]> = { [K in keyof A]: A[K] | Reference };
export type Applied<F> = F extends ModuleFunction<infer G> ? G : F extends Fn ? F : Fn;
export type Ret<F> = Awaited<ReturnType<Applied<F>>>;
export type Targets = number | number[] | "all";
/** Jobs: msg ids or AsyncResults, one or a list. */
export type Jobs = string | AsyncResult<any> | ReadonlyArray<string | AsyncResult<any>>;

export interface QueueStatusEntry {
  queue: number | string[];
  completed: number;
  tasks: number | string[];
}
export type QueueStatus = Record<number, QueueStatusEntry> & { unassigned: number | string[] };

/** What views need of their client. */
export interface ViewHost {
  readonly core: ClientCore;
  abort(jobs?: Jobs, targets?: Targets): Promise<string[]>;
  wait(jobs?: Jobs, timeout?: number | null): Promise<boolean>;
  queueStatus(targets?: Targets, opts?: { verbose?: boolean }): Promise<QueueStatus>;
}

export function jobIds(jobs: Jobs): string[] {
  const list = Array.isArray(jobs) ? (jobs as ReadonlyArray<string | AsyncResult<any>>) : [jobs as string | AsyncResult<any>];
  return list.flatMap((j) => {
    if (typeof j === "string") return [j];
    if (j instanceof AsyncResult) return j.msgIds;
    throw new TypeError(`jobs must be msg ids or AsyncResults, got ${typeof j}`);
  });
}

/** Separate trailing options from the sequences of a map call. */
export function splitMapArgs(rest: unknown[]): { seqs: Array<Sequence<unknown>>; opts: Record<string, unknown> } {
  const last = rest[rest.length - 1];
  if (rest.length > 0 && isPlainObject(last) && !isSequence(last)) {
    return { seqs: rest.slice(0, -1) as Array<Sequence<unknown>>, opts: last };
  }
  return { seqs: rest as Array<Sequence<unknown>>, opts: {} };
}

export abstract class View {
  protected readonly host: ViewHost;
  /** msg ids this view submitted, in order. */
  readonly history: string[] = [];

  constructor(host: ViewHost) {
    this.host = host;
  }

  protected get core(): ClientCore {
    return this.host.core;
  }

  /** The registered engines a targets value names now ("all" is resolved at each call). */
  protected resolveTargets(targets: Targets | null): number[] {
    const ids = this.core.ids;
    if (targets === null || targets === "all") {
      if (ids.length === 0) throw new NoEnginesRegistered();
      return ids;
    }
    const list = typeof targets === "number" ? [targets] : targets;
    const unknown = list.filter((t) => !this.core.engines.has(t));
    if (unknown.length > 0) {
      throw new UnknownEngineError(`no engine with id ${unknown.join(", ")} is registered (registered: ${ids.join(", ") || "none"})`);
    }
    return list;
  }

  /**
   * Send one apply request; the function and arguments are packed by the caller (once for many).
   * `texts` (the many tasks of one map): their metadata and content are stringified once, not per task.
   */
  protected send(spec: FunctionSpec, packed: PackedArgs, metadata: Json, extra: Json = {}, texts?: RequestTexts): TaskState {
    const content = { fn: spec.spec, specials: packed.specials, ...extra };
    const state = this.core.submit({
      msgType: "apply_request", content, metadata, buffers: packed.buffers, texts: texts?.for(content, metadata),
    });
    this.history.push(state.msgId);
    return state;
  }

  protected result<T, E = T extends unknown[] ? T[number] : T>(tasks: TaskState[], fname: string, single: boolean, combine?: (values: unknown[]) => T): AsyncResult<T, E> {
    return new AsyncResult<T, E>({ core: this.core, tasks, fname, single, abort: (ids) => this.host.abort(ids), combine });
  }

  protected mapResult<T>(tasks: TaskState[], fname: string, sizes: number[], ordered: boolean, returnExceptions: boolean): AsyncMapResult<T> {
    return new AsyncMapResult<T>({
      core: this.core, tasks, fname, single: false, chunkSizes: sizes, ordered, returnExceptions,
      abort: (ids) => this.host.abort(ids),
    });
  }

  /** Wait for `jobs` (default: everything this view sent). */
  wait(jobs?: Jobs, timeout?: number | null): Promise<boolean> {
    return this.host.wait(jobs ?? this.history, timeout);
  }

  /** Abort queued tasks (default: this view's outstanding ones). */
  abort(jobs?: Jobs): Promise<string[]> {
    const ids = jobs === undefined ? this.history.filter((id) => this.core.outstanding.has(id)) : jobIds(jobs);
    return this.host.abort(ids);
  }

  /** Apply `f` to every element: a view's map (see DirectView and LoadBalancedView). */
  abstract map(f: unknown, ...rest: unknown[]): AsyncMapResult<unknown>;
}

export { functionSpec, packArgs };
