/**
 * DirectView: work and data addressed to named engines. `rc.directView(0)` gives single values;
 * a list or "all" gives one value per engine, in target order. "all" is resolved at each call.
 */
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import type { AsyncMapResult, AsyncResult } from "./asyncresult.js";
import { ExecuteReply } from "./execute.js";
import { fillInto, gatherFill, gatherInto, gatherPlaces, gatherTarget, placeOf } from "./landings.js";
import { checks, validate } from "./options.js";
import { concatParts, isTypedArray, mapInput, partitionSizes, split, type Indexed, type Sequence, type TypedArray } from "./sequences.js";
import { builtinSpec } from "./shipping.js";
import type { TaskState } from "./task.js";
import {
  functionSpec, packArgs, splitMapArgs, View, type Applied, type Fn, type RemoteArgs, type Ret, type Targets, type ViewHost,
} from "./view.js";
import type { ModuleFunction, Reference } from "../protocol/reference.js";

export interface DirectViewFlags {
  targets?: Targets;
  label?: string;
}

export interface DirectMapOptions {
  /** Return errors in place of values instead of rejecting. */
  returnExceptions?: boolean;
  label?: string;
}

export interface ScatterOptions {
  /** A part of one element becomes the element itself. */
  flatten?: boolean;
}

export interface PullOptions {
  /**
   * Read the value into this typed array instead of fresh memory (one per engine, in target order,
   * on a view of several): the value must be a typed array of the same type and length. The result
   * is `into` itself. Repeated pulls of large arrays into one array skip the page faults of fresh
   * memory. Its contents are unspecified if the pull fails.
   */
  into?: TypedArray | readonly TypedArray[];
}

export interface GatherOptions {
  /** Gather into this typed array (same type, as many elements as the parts together): the result is `into` itself. */
  into?: TypedArray;
}

export interface ExecuteOptions {
  lang?: "js" | "ts";
}

type PerTarget<S extends boolean, V> = S extends true ? V : V[];
type Applicable = Fn | ModuleFunction<any> | Reference;

const FLAG_SCHEMA = { targets: checks.any, label: checks.string };
const MAP_SCHEMA = { returnExceptions: checks.boolean, label: checks.string };

export class DirectView<S extends boolean = boolean> extends View {
  #targets: Targets;
  #label: string | undefined;

  constructor(host: ViewHost, targets: Targets = "all", flags: DirectViewFlags = {}) {
    super(host);
    checkTargets(targets);
    this.#targets = targets;
    this.#label = flags.label;
  }

  /** The targets as given (a number, a list, or "all"). */
  get targets(): Targets {
    return this.#targets;
  }

  /** Whether results are single values (a number target). */
  get single(): S {
    return (typeof this.#targets === "number") as S;
  }

  /** The engine ids this view addresses now. */
  get engineIds(): number[] {
    return this.resolveTargets(this.#targets);
  }

  /** Change this view's flags (`targets`, `label`). */
  setFlags(flags: DirectViewFlags): this {
    validate("setFlags()", flags, FLAG_SCHEMA);
    if (flags.targets !== undefined) {
      checkTargets(flags.targets);
      this.#targets = flags.targets;
    }
    if (flags.label !== undefined) this.#label = flags.label;
    return this;
  }

  /** A copy of this view with other flags. */
  withFlags(flags: DirectViewFlags): DirectView<S> {
    validate("withFlags()", flags, FLAG_SCHEMA);
    return new DirectView<S>(this.host, flags.targets ?? this.#targets, { label: flags.label ?? this.#label });
  }

  #metadata(engine: number): Record<string, unknown> {
    return this.#label === undefined ? { route: "direct", engine } : { route: "direct", engine, label: this.#label };
  }

  // ---- apply ----------------------------------------------------------------------------------

  /** Call `f(...args)` on every target engine. Returns at once. */
  apply<F extends Applicable>(f: F, ...args: RemoteArgs<Parameters<Applied<F>>>): AsyncResult<PerTarget<S, Ret<F>>, Ret<F>> {
    const spec = functionSpec(f);
    const packed = packArgs(args);
    const targets = this.resolveTargets(this.#targets);
    const tasks = targets.map((t) => this.send(spec, packed, this.#metadata(t)));
    return this.result(tasks, spec.name, this.single);
  }

  /** Same as `apply`. */
  applyAsync<F extends Applicable>(f: F, ...args: RemoteArgs<Parameters<Applied<F>>>): AsyncResult<PerTarget<S, Ret<F>>, Ret<F>> {
    return this.apply(f, ...args);
  }

  /** `apply`, then its value. */
  applySync<F extends Applicable>(f: F, ...args: RemoteArgs<Parameters<Applied<F>>>): Promise<PerTarget<S, Ret<F>>> {
    return this.apply(f, ...args).get();
  }

  /** `(...args) => view.apply(f, ...args)`. */
  remote<F extends Applicable>(f: F): (...args: RemoteArgs<Parameters<Applied<F>>>) => AsyncResult<PerTarget<S, Ret<F>>, Ret<F>> {
    functionSpec(f); // refuse an unshippable function now, not at the first call
    return (...args) => this.apply(f, ...args);
  }

  /** `(seq) => view.map(f, seq)`: `f` applied to each element, the work split over the engines. */
  parallel<A, R>(f: ((a: A) => R) | ModuleFunction<(a: A) => R> | Reference): (seq: Sequence<A>) => AsyncMapResult<Awaited<R>> {
    functionSpec(f);
    return (seq) => this.map(f as (a: A) => R, seq);
  }

  // ---- map ------------------------------------------------------------------------------------

  /**
   * Like `Array.prototype.map` over the (zipped) sequences, one task per engine over contiguous
   * parts. Typed arrays travel as typed-array parts.
   */
  map<A, R>(f: ((a: A) => R) | ModuleFunction<(a: A) => R> | Reference, seq: Sequence<A>, opts?: DirectMapOptions): AsyncMapResult<Awaited<R>>;
  map<A, B, R>(f: ((a: A, b: B) => R) | ModuleFunction<(a: A, b: B) => R>, a: Sequence<A>, b: Sequence<B>, opts?: DirectMapOptions): AsyncMapResult<Awaited<R>>;
  map<A, B, C, R>(f: (a: A, b: B, c: C) => R, a: Sequence<A>, b: Sequence<B>, c: Sequence<C>, opts?: DirectMapOptions): AsyncMapResult<Awaited<R>>;
  map(f: Applicable, ...rest: unknown[]): AsyncMapResult<unknown>;
  map(f: Applicable, ...rest: unknown[]): AsyncMapResult<unknown> {
    const { seqs, opts } = splitMapArgs(rest);
    const o = validate<DirectMapOptions>("map()", opts, MAP_SCHEMA);
    const spec = functionSpec(f, "map()");
    const input = mapInput(seqs, "map()");
    const targets = this.resolveTargets(this.#targets);
    const sizes = partitionSizes(input.length, targets.length);
    const parts = split(input.items, sizes);
    const tasks: TaskState[] = [];
    const used: number[] = [];
    parts.forEach((part, i) => {
      if (sizes[i] === 0) return;
      const md = { ...this.#metadata(targets[i]!), ...(o.label !== undefined ? { label: o.label } : {}) };
      tasks.push(this.send(spec, packArgs([part]), md, { mode: "map", zip: input.zip }));
      used.push(sizes[i]!);
    });
    return this.mapResult(tasks, spec.name, used, true, o.returnExceptions ?? false);
  }

  /** `map`, then the list. */
  mapSync<A, R>(f: ((a: A) => R) | ModuleFunction<(a: A) => R> | Reference, seq: Sequence<A>, opts?: DirectMapOptions): Promise<Array<Awaited<R>>>;
  mapSync(f: Applicable, ...rest: unknown[]): Promise<unknown[]>;
  mapSync(f: Applicable, ...rest: unknown[]): Promise<unknown[]> {
    return this.map(f, ...rest).get();
  }

  /** Same as `map`. */
  mapAsync(f: Applicable, ...rest: unknown[]): AsyncMapResult<unknown> {
    return this.map(f, ...rest);
  }

  // ---- code -----------------------------------------------------------------------------------

  /**
   * Run code in every target's namespace (JS by default, or TS): top-level await works and
   * `const`/`let`/`function` declarations persist. Resolves to an ExecuteReply per engine.
   */
  execute(code: string, opts: ExecuteOptions = {}): AsyncResult<PerTarget<S, ExecuteReply>, ExecuteReply> {
    const o = validate<ExecuteOptions>("execute()", opts, { lang: checks.oneOf("js", "ts") });
    if (typeof code !== "string") throw new TypeError("execute() needs the code as a string");
    const targets = this.resolveTargets(this.#targets);
    const tasks = targets.map((t) => {
      const state = this.core.submit({
        msgType: "execute_request",
        content: { code, lang: o.lang ?? "js", silent: false },
        metadata: this.#metadata(t),
        buffers: [],
        executeInput: code,
      });
      this.history.push(state.msgId);
      return state;
    });
    return this.result(tasks, "execute", this.single);
  }

  /** Execute a local .js/.ts file's text on the targets (TS chosen by the extension). */
  run(path: string): AsyncResult<PerTarget<S, ExecuteReply>, ExecuteReply> {
    const text = readFileSync(path, "utf8");
    const lang = /^\.(c|m)?tsx?$/.test(extname(path)) ? "ts" : "js";
    return this.execute(`${text}\n`, { lang });
  }

  /** Bind modules to names in every namespace: `{ fs: "node:fs", _: "lodash" }` (default export, else the namespace). */
  importModules(modules: Record<string, string>): AsyncResult<void> {
    for (const [name, spec] of Object.entries(modules)) {
      if (!/^[A-Za-z_$][\w$]*$/.test(name) || typeof spec !== "string") throw new TypeError(`importModules(): ${JSON.stringify(name)} must be an identifier mapped to a module specifier`);
    }
    return this.#builtin("importModules", [modules], () => undefined);
  }

  // ---- data -----------------------------------------------------------------------------------

  /** Assign names in every target's namespace. */
  push(ns: Record<string, unknown>): AsyncResult<void> {
    if (ns === null || typeof ns !== "object" || Array.isArray(ns)) throw new TypeError("push() needs an object of names and values");
    return this.#builtin("push", [ns], () => undefined);
  }

  /** Values of names (or paths) on the targets: one name → its value, a list → a list of values. */
  pull<V = unknown>(names: string, opts?: PullOptions): AsyncResult<PerTarget<S, V>, V>;
  pull<V extends unknown[] = unknown[]>(names: readonly string[]): AsyncResult<PerTarget<S, V>, V>;
  pull(names: string | readonly string[], opts: PullOptions = {}): AsyncResult<unknown> {
    if (typeof names !== "string" && !(Array.isArray(names) && names.every((n) => typeof n === "string"))) {
      throw new TypeError("pull() needs a name or a list of names");
    }
    const o = validate<PullOptions>("pull()", opts, { into: checks.any });
    if (o.into === undefined) return this.#builtin("pull", [names]);
    if (typeof names !== "string") throw new TypeError("pull(): into takes the value of one name");
    const into = this.#intoList(o.into);
    const { targets, tasks } = this.#sendBuiltin("pull", [names]);
    tasks.forEach((task, i) => this.core.landings.offer(task.msgId, placeOf(into[i]!)));
    return this.result(tasks, "pull", this.single, (values) => {
      const filled = values.map((v, i) => fillInto(into[i]!, v, `engine ${targets[i]}'s ${JSON.stringify(names)}`));
      return this.single ? filled[0] : filled;
    });
  }

  /** `into` as one typed array per target, or a TypeError that says what this view needs. */
  #intoList(into: unknown): TypedArray[] {
    if (this.single) {
      if (!isTypedArray(into)) throw new TypeError("pull(): into must be a typed array on a view of one engine");
      return [into];
    }
    const n = this.resolveTargets(this.#targets).length;
    if (!Array.isArray(into) || into.length !== n || !into.every(isTypedArray)) {
      throw new TypeError(`pull(): into must be a list of ${n} typed arrays, one per engine of the view`);
    }
    return into as TypedArray[];
  }

  /** `push({ [name]: value })` and wait. */
  async set(name: string, value: unknown): Promise<void> {
    await this.push({ [name]: value });
  }

  /** `pull(name)`, its value. */
  get<V = unknown>(name: string): Promise<PerTarget<S, V>> {
    return this.pull<V>(name).get();
  }

  /** Split `seq` into contiguous parts, one per target (earlier engines get the extra element), assigned to `name`. */
  scatter(name: string, seq: Sequence<unknown>, opts: ScatterOptions = {}): AsyncResult<void> {
    const o = validate<ScatterOptions>("scatter()", opts, { flatten: checks.boolean });
    const items = mapInput([seq], "scatter()").items;
    const targets = this.resolveTargets(this.#targets);
    const parts = split(items, partitionSizes(items.length, targets.length));
    const spec = builtinSpec("push");
    const tasks = targets.map((t, i) => {
      const part: Indexed<unknown> = parts[i]!;
      const value = o.flatten === true && part.length === 1 && !isTypedArray(part) ? (part as unknown[])[0] : part;
      return this.send(spec, packArgs([{ [name]: value }]), this.#metadata(t));
    });
    // what a gather of this name will get back, if nothing changes it meanwhile
    this.core.landings.remember(name, targets, parts);
    return this.result(tasks, "scatter", false, () => undefined);
  }

  /**
   * Pull `name` from every target and concatenate in target order (typed arrays into one). When
   * the parts' sizes are known from the last scatter or gather of `name` on these engines, the
   * joined array is allocated first and each part is read from the socket straight into its place
   * (no second copy); the per-task values (`getDict`, `rc.results`) are then views into it.
   * `{ into }` gathers into an array of yours instead (see `GatherOptions`).
   */
  gather(name: string, opts: GatherOptions = {}): AsyncResult<unknown> {
    const o = validate<GatherOptions>("gather()", opts, { into: checks.any });
    if (o.into !== undefined && !isTypedArray(o.into)) throw new TypeError("gather(): into must be a typed array");
    const { targets, tasks } = this.#sendBuiltin("pull", [name]);
    const landings = this.core.landings;
    const layout = landings.layout(name, targets);
    const mine = o.into;
    if (mine !== undefined) {
      const places = gatherPlaces(mine, layout, targets.length);
      tasks.forEach((task, i) => landings.offer(task.msgId, places[i]!));
      return this.result(tasks, "pull", false, (values) => {
        landings.remember(name, targets, values);
        return gatherFill(mine, values, name);
      });
    }
    const memory = this.core.memory;
    const into = layout === undefined ? null : gatherTarget(layout, memory);
    if (into !== null) tasks.forEach((task, i) => landings.offer(task.msgId, into.places[i]!));
    return this.result(tasks, "pull", false, (values) => {
      landings.remember(name, targets, values);
      return (into === null ? null : gatherInto(into.dest, layout!, values)) ?? concatParts(values, memory);
    });
  }

  #builtin<T>(name: string, args: unknown[], combine?: (values: unknown[]) => T, single: boolean = this.single): AsyncResult<T> {
    return this.result(this.#sendBuiltin(name, args).tasks, name, single, combine);
  }

  /** Send a builtin call to every target: one task each, in target order. */
  #sendBuiltin(name: string, args: unknown[]): { targets: number[]; tasks: TaskState[] } {
    const spec = builtinSpec(name);
    const packed = packArgs(args);
    const targets = this.resolveTargets(this.#targets);
    return { targets, tasks: targets.map((t) => this.send(spec, packed, this.#metadata(t))) };
  }

  // ---- control --------------------------------------------------------------------------------

  /** Queue status of this view's engines. */
  queueStatus(opts: { verbose?: boolean } = {}) {
    return this.host.queueStatus(this.resolveTargets(this.#targets), opts);
  }

  get [Symbol.toStringTag](): string {
    return `DirectView ${JSON.stringify(this.#targets)}`;
  }
}

function checkTargets(targets: unknown): asserts targets is Targets {
  const ok = targets === "all" || Number.isInteger(targets) || (Array.isArray(targets) && targets.every(Number.isInteger));
  if (!ok) throw new TypeError(`targets must be an engine id, a list of ids or "all", got ${JSON.stringify(targets)}`);
}

export { ExecuteReply };
