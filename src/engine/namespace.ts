/**
 * The engine's namespace: the engine process's own global scope (one realm, so values pushed in,
 * Node's modules and user code all share Array, Error, Map…, and `instanceof` just works).
 * Shipped functions are compiled at global scope, so their free names resolve to engine variables.
 */
import { createRequire } from "node:module";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { Script } from "node:vm";
import { isAbsolute, resolve } from "node:path";

/** The global the call script calls (non-enumerable, read-only): a plain name is the cheapest lookup for a script without feedback. */
const CALL_SLOT = "__tsparallel_call__";
const TMP_SLOT = "__tsparallel_tmp__";
const IDENT_RE = /^[A-Za-z_$][\w$]*$/;
const COMPILE_CACHE_LIMIT = 1000;

/** Helpers that TypeScript and esbuild inject into compiled functions, so shipped source still runs. */
const HELPERS: Record<string, unknown> = {
  // esbuild's keepNames helper: keep the name it gives (as esbuild's own helper does)
  __name: (target: object, value: string) => Object.defineProperty(target, "name", { value, configurable: true }),
  __awaiter: (thisArg: unknown, _args: unknown, P: PromiseConstructor | undefined, generator: (...a: unknown[]) => Generator) =>
    runGenerator(generator.apply(thisArg, (_args as unknown[]) ?? []), P ?? Promise),
  __async: (thisArg: unknown, args: unknown[] | null, generator: (...a: unknown[]) => Generator) =>
    runGenerator(generator.apply(thisArg, args ?? []), Promise),
};

function runGenerator(gen: Generator, P: PromiseConstructor): Promise<unknown> {
  return new P((resolvePromise, reject) => {
    const step = (method: "next" | "throw", arg?: unknown) => {
      let r: IteratorResult<unknown>;
      try {
        r = gen[method](arg);
      } catch (err) {
        reject(err);
        return;
      }
      if (r.done) resolvePromise(r.value);
      else P.resolve(r.value).then((v) => step("next", v), (e) => step("throw", e));
    };
    step("next");
  });
}

export class Namespace {
  readonly cwd: string;
  readonly #initial: Set<string | symbol>;
  readonly #compiled = new Map<string, Function>();
  readonly #modules = new Map<string, Promise<Record<string, unknown>>>();
  readonly #callScript = new Script(`${CALL_SLOT}()`, { filename: "tsparallel-call" });

  constructor(cwd: string = process.cwd()) {
    this.cwd = cwd;
    // installed once, never reassigned: writing and deleting a global per call missed V8's inline
    // caches every time (~4 % of an engine's CPU on no-op tasks)
    Object.defineProperty(globalThis, CALL_SLOT, { value: callPending, configurable: true });
    this.#install();
    this.#initial = new Set(Reflect.ownKeys(globalThis));
  }

  #install(): void {
    const g = globalThis as Record<string, unknown>;
    g.require = createRequire(resolve(this.cwd, "__tsparallel_engine__.js"));
    for (const [name, value] of Object.entries(HELPERS)) g[name] ??= value;
  }

  /** Compile shipped source (a function expression) at global scope; cached by source. */
  compile(src: string, name = "anonymous"): Function {
    let fn = this.#compiled.get(src);
    if (fn === undefined) {
      const label = name.replace(/[^\w$.-]/g, "_") || "anonymous";
      fn = evalGlobal(`(${src}\n)\n//# sourceURL=tsparallel/apply/${label}`) as Function;
      if (typeof fn !== "function") throw new TypeError("shipped source did not evaluate to a function");
      if (this.#compiled.size >= COMPILE_CACHE_LIMIT) this.#compiled.clear();
      this.#compiled.set(src, fn);
    }
    return fn;
  }

  /** Evaluate a name or path ("a", "a.b[0]") in the namespace. */
  evaluate(path: string): unknown {
    return evalGlobal(path);
  }

  /** Assign a value to a name or path. */
  assign(name: string, value: unknown): void {
    if (IDENT_RE.test(name)) {
      (globalThis as Record<string, unknown>)[name] = value;
      return;
    }
    const g = globalThis as Record<string, unknown>;
    g[TMP_SLOT] = value;
    try {
      evalGlobal(`${name} = globalThis.${TMP_SLOT}`);
    } finally {
      delete g[TMP_SLOT];
    }
  }

  /** Run `fn` so that a SIGINT interrupts it even while it runs synchronous code. */
  callInterruptible<T>(fn: () => T): T {
    pending = fn;
    try {
      return this.#callScript.runInThisContext({ breakOnSigint: true }) as T;
    } finally {
      pending = null;
    }
  }

  /** Import a module for `fromModule`: builtins, packages (resolved from the engine's cwd), files. */
  importModule(specifier: string): Promise<Record<string, unknown>> {
    let p = this.#modules.get(specifier);
    if (p === undefined) {
      p = this.#load(specifier);
      this.#modules.set(specifier, p);
      p.catch(() => this.#modules.delete(specifier));
    }
    return p;
  }

  async #load(specifier: string): Promise<Record<string, unknown>> {
    const target = this.#resolveSpecifier(specifier);
    if (/\.(c|m)?tsx?$/.test(target)) {
      const { tsImport } = await import("tsx/esm/api");
      return (await tsImport(target, pathToFileURL(resolve(this.cwd, "index.js")).href)) as Record<string, unknown>;
    }
    return (await import(target)) as Record<string, unknown>;
  }

  #resolveSpecifier(specifier: string): string {
    if (specifier.startsWith("file:") || specifier.startsWith("node:")) return specifier;
    if (isAbsolute(specifier)) return pathToFileURL(specifier).href;
    if (specifier.startsWith(".")) return pathToFileURL(resolve(this.cwd, specifier)).href;
    try {
      const req = createRequire(resolve(this.cwd, "__tsparallel_engine__.js"));
      return pathToFileURL(req.resolve(specifier)).href;
    } catch {
      return specifier; // ESM-only packages and builtins without the node: prefix
    }
  }

  /** Names the user defined (everything not present when the engine started). */
  userNames(): string[] {
    return Reflect.ownKeys(globalThis).filter((k): k is string => typeof k === "string" && !this.#initial.has(k));
  }

  /** Forget every user variable (`clear`). */
  clear(): void {
    for (const name of this.userNames()) {
      try {
        delete (globalThis as Record<string, unknown>)[name];
      } catch {
        // non-configurable: leave it
      }
    }
    this.#compiled.clear();
    this.#modules.clear();
    this.#install();
  }
}

/** The function the call script runs next (set by callInterruptible, taken by callPending). */
let pending: (() => unknown) | null = null;

function callPending(): unknown {
  const fn = pending!;
  pending = null; // a nested call sets its own
  return fn();
}

/** Indirect eval: global scope, sloppy mode, and dynamic import() works. */
const evalGlobal: (code: string) => unknown = globalThis.eval;
