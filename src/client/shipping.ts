/**
 * What travels in an apply request: the function (source, module export or Reference) and the
 * arguments (structured clone, with References and functions inside them tagged).
 */
import type { Json } from "../protocol/messages.js";
import { functionSource } from "../protocol/functions.js";
import { ModuleFunction, Reference } from "../protocol/reference.js";
import { pack } from "../protocol/serialize.js";
import { encodeSpecials } from "../protocol/specials.js";

/** A function the engine can call. */
export type Shippable = ((...args: any[]) => unknown) | ModuleFunction<any> | Reference;

export interface FunctionSpec {
  spec: Json;
  name: string;
}

/** Describe `f` for the engine; throws TypeError (before anything is sent) when it cannot be shipped. */
export function functionSpec(f: unknown, where = "apply()"): FunctionSpec {
  if (typeof f === "function") {
    return { spec: { kind: "source", src: functionSource(f), name: f.name }, name: f.name || "<anonymous>" };
  }
  if (f instanceof ModuleFunction) {
    return { spec: { kind: "module", specifier: f.specifier, exportName: f.exportName }, name: f.exportName };
  }
  if (f instanceof Reference) return { spec: { kind: "ref", name: f.name }, name: f.name };
  throw new TypeError(`${where} needs a function, fromModule(...) or a Reference; got ${describe(f)}`);
}

export function builtinSpec(name: string): FunctionSpec {
  return { spec: { kind: "builtin", name }, name };
}

export interface PackedArgs {
  buffers: Uint8Array[];
  specials: boolean;
}

/** Serialize arguments once (a DirectView sends the same frames to every engine). */
export function packArgs(args: readonly unknown[]): PackedArgs {
  const encoded = encodeSpecials(args);
  try {
    return { buffers: pack(encoded.value), specials: encoded.specials };
  } catch (err) {
    throw new TypeError(
      `cannot send these arguments: ${(err as Error).message}. Arguments must be structured-clone data (objects, arrays, Map, Set, Date, BigInt, typed arrays, Error), functions, or References`,
      { cause: err },
    );
  }
}

/**
 * A function exported by a module, loaded on the engine by reference: a `node:` builtin, a package
 * (resolved from the engine's working directory), or a local `.js`/`.ts` file given as an absolute
 * path or a `file:` URL. Without `exportName` the default export is used.
 *
 * @example
 * await dv.apply(fromModule("node:os", "cpus"));
 */
export function fromModule<F extends (...args: any[]) => any = (...args: any[]) => any>(specifier: string, exportName = "default"): ModuleFunction<F> {
  if (typeof specifier !== "string" || specifier.length === 0) throw new TypeError("fromModule() needs a module specifier");
  if (specifier.startsWith(".")) {
    throw new TypeError(`fromModule(${JSON.stringify(specifier)}): give a local file as an absolute path or a file: URL (engines resolve it, not this process)`);
  }
  if (typeof exportName !== "string" || exportName.length === 0) throw new TypeError("fromModule(): exportName must be a non-empty string");
  return new ModuleFunction<F>(specifier, exportName);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return `an object (${Object.prototype.toString.call(v).slice(8, -1)})`;
  return `${typeof v} ${String(v).slice(0, 40)}`;
}
