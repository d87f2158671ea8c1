/**
 * What an engine calls: the function a request names (shipped source, a Reference, a module
 * export, or a builtin such as push/pull), arguments with their functions and References revived,
 * a map's chunk run element by element, and a result packed for the wire.
 */
import type { Json } from "../protocol/messages.js";
import { pack } from "../protocol/serialize.js";
import { collectSpecials, encodeSpecials, reviveSpecials, TAG, type Special } from "../protocol/specials.js";
import type { Namespace } from "./namespace.js";

type Callable = (...a: unknown[]) => unknown;

/** The function an apply request names: at once, except a module export (its module may need loading). */
export function resolveFunction(ns: Namespace, spec: Json): Callable | Promise<Callable> {
  switch (spec.kind) {
    case "source":
      return ns.compile(String(spec.src), String(spec.name ?? "")) as Callable;
    case "ref":
      return asFunction(ns.evaluate(String(spec.name)), `Reference(${String(spec.name)})`);
    case "module":
      return moduleExport(ns, String(spec.specifier), String(spec.exportName));
    case "builtin":
      return builtin(ns, String(spec.name));
    default:
      throw new TypeError(`unknown function kind ${JSON.stringify(spec.kind)}`);
  }
}

async function moduleExport(ns: Namespace, specifier: string, exportName: string): Promise<Callable> {
  const mod = await ns.importModule(specifier);
  const value = exportName === "default" ? (mod.default ?? mod) : mod[exportName];
  if (value === undefined) throw new ReferenceError(`module ${specifier} has no export named ${JSON.stringify(exportName)}`);
  return asFunction(value, `fromModule(${specifier}, ${exportName})`);
}

/** The engine's own operations behind push, pull and importModules. */
function builtin(ns: Namespace, name: string): Callable {
  switch (name) {
    case "push":
      return (values) => {
        for (const [k, v] of Object.entries(values as Record<string, unknown>)) ns.assign(k, v);
      };
    case "pull":
      return (names) => (Array.isArray(names) ? names.map((n) => ns.evaluate(String(n))) : ns.evaluate(String(names)));
    case "importModules":
      return async (modules) => {
        for (const [name, spec] of Object.entries(modules as Record<string, string>)) {
          const mod = await ns.importModule(spec);
          ns.assign(name, mod.default ?? mod);
        }
      };
    default:
      throw new TypeError(`unknown builtin ${name}`);
  }
}

/** Arguments with the functions, References and module functions inside them made real (modules loaded first). */
export async function reviveArgs(ns: Namespace, value: unknown): Promise<unknown> {
  const modules = new Map<string, unknown>();
  for (const s of collectSpecials(value)) {
    if (s[TAG] === "mod") {
      const m = s as Extract<Special, { specifier: string }>;
      modules.set(`${m.specifier}#${m.exportName}`, await moduleExport(ns, m.specifier, m.exportName));
    }
  }
  return reviveSpecials(value, (s) => {
    const kind = s[TAG];
    if (kind === "fn") return ns.compile((s as { src: string }).src, (s as { name: string }).name);
    if (kind === "ref") return ns.evaluate((s as { name: string }).name);
    const m = s as Extract<Special, { specifier: string }>;
    return modules.get(`${m.specifier}#${m.exportName}`);
  });
}


/**
 * The engine's part of a map: `f` over each element (argument tuples when zipped), in order.
 * Synchronous while `f` is; a returned promise is awaited before the next element.
 */
export function mapChunk(f: (...a: unknown[]) => unknown, chunk: ArrayLike<unknown>, zip: boolean): unknown[] | Promise<unknown[]> {
  const out: unknown[] = new Array(chunk.length);
  const call = (i: number) => (zip ? f(...(chunk[i] as unknown[])) : f(chunk[i]));
  for (let i = 0; i < chunk.length; i++) {
    const r = call(i);
    if (isThenable(r)) return finishAsync(out, i, r, call, chunk.length);
    out[i] = r;
  }
  return out;
}

async function finishAsync(out: unknown[], from: number, first: PromiseLike<unknown>, call: (i: number) => unknown, n: number): Promise<unknown[]> {
  out[from] = await first;
  for (let i = from + 1; i < n; i++) out[i] = await call(i);
  return out;
}


export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as PromiseLike<unknown>).then === "function";
}

function asFunction(value: unknown, what: string): (...a: unknown[]) => unknown {
  if (typeof value !== "function") throw new TypeError(`${what} is not a function (it is ${typeof value})`);
  return value as (...a: unknown[]) => unknown;
}

/** Serialize a result (functions inside travel as source); a value that cannot be cloned is a clear error. */
export function packValue(value: unknown, content: Json): { content: Json; buffers: Uint8Array[] } {
  const encoded = encodeSpecials(value);
  try {
    return { content: { status: "ok", specials: encoded.specials, ...content }, buffers: pack(encoded.value) };
  } catch (err) {
    throw new TypeError(
      `the result cannot be sent back: ${(err as Error).message}. Return structured-clone data (objects, arrays, Map, Set, Date, typed arrays…)`,
      { cause: err },
    );
  }
}
