/**
 * Values v8 cannot clone — functions, References, module functions — travel inside payloads as
 * tagged plain objects. `encodeSpecials` replaces them (copying only the containers on the way to
 * one); `reviveSpecials` puts engine-side values back.
 */
import { functionSource } from "./functions.js";
import { ModuleFunction, Reference } from "./reference.js";

export const TAG = "\u0000tsp";

export type Special =
  | { [TAG]: "fn"; src: string; name: string }
  | { [TAG]: "ref"; name: string }
  | { [TAG]: "mod"; specifier: string; exportName: string };

const MAX_DEPTH = 64;

export interface Encoded {
  value: unknown;
  specials: boolean;
}

/** Replace functions, References and module functions by tagged objects. */
export function encodeSpecials(value: unknown): Encoded {
  const state = { specials: false };
  const out = encode(value, state, 0);
  return { value: out, specials: state.specials };
}

function encode(value: unknown, state: { specials: boolean }, depth: number): unknown {
  if (typeof value === "function") {
    state.specials = true;
    return { [TAG]: "fn", src: functionSource(value), name: value.name };
  }
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH || ArrayBuffer.isView(value)) return value;
  // arrays first: the brand checks below read a property of whatever object they get, and every
  // apply's arguments are an array
  if (Array.isArray(value)) return mapArray(value, (v) => encode(v, state, depth + 1));
  if (value instanceof Reference) {
    state.specials = true;
    return { [TAG]: "ref", name: value.name };
  }
  if (value instanceof ModuleFunction) {
    state.specials = true;
    return { [TAG]: "mod", specifier: value.specifier, exportName: value.exportName };
  }
  return mapContainer(value, (v) => encode(v, state, depth + 1));
}

/** Map over the members of an array, plain object, Map or Set (any realm); other values as they are. */
function mapContainer(value: object, f: (v: unknown) => unknown): unknown {
  if (Array.isArray(value)) return mapArray(value, f);
  const tag = Object.prototype.toString.call(value);
  if (tag === "[object Map]") return mapMap(value as Map<unknown, unknown>, f);
  if (tag === "[object Set]") return mapSet(value as Set<unknown>, f);
  if (isPlainObject(value)) return mapObject(value, f);
  return value;
}

export type Reviver = (special: Special) => unknown;

/** Replace tagged objects using `revive` (the engine compiles and resolves; modules are loaded first). */
export function reviveSpecials(value: unknown, revive: Reviver): unknown {
  return reviveIn(value, revive, 0);
}

function reviveIn(value: unknown, revive: Reviver, depth: number): unknown {
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH || ArrayBuffer.isView(value)) return value;
  if (isSpecial(value)) return revive(value);
  return mapContainer(value, (v) => reviveIn(v, revive, depth + 1));
}

/** Every tagged object inside `value` (to load modules before reviving). */
export function collectSpecials(value: unknown, out: Special[] = [], depth = 0): Special[] {
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH || ArrayBuffer.isView(value)) return out;
  if (isSpecial(value)) {
    out.push(value);
    return out;
  }
  mapContainer(value, (v) => {
    collectSpecials(v, out, depth + 1);
    return v;
  });
  return out;
}

export function isSpecial(value: unknown): value is Special {
  return typeof value === "object" && value !== null && typeof (value as Record<string, unknown>)[TAG] === "string";
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

function mapArray(arr: unknown[], f: (v: unknown) => unknown): unknown[] {
  let out: unknown[] | null = null;
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    const w = f(v);
    if (w !== v && out === null) out = arr.slice(0, i);
    if (out !== null) out.push(w);
  }
  return out ?? arr;
}

function mapObject(obj: Record<string, unknown>, f: (v: unknown) => unknown): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    const w = f(v);
    if (w !== v && out === null) out = { ...obj };
    if (out !== null) out[key] = w;
  }
  return out ?? obj;
}

function mapMap(map: Map<unknown, unknown>, f: (v: unknown) => unknown): Map<unknown, unknown> {
  let changed = false;
  const entries: Array<[unknown, unknown]> = [];
  for (const [k, v] of map) {
    const w = f(v);
    if (w !== v) changed = true;
    entries.push([k, w]);
  }
  return changed ? new Map(entries) : map;
}

function mapSet(set: Set<unknown>, f: (v: unknown) => unknown): Set<unknown> {
  let changed = false;
  const values: unknown[] = [];
  for (const v of set) {
    const w = f(v);
    if (w !== v) changed = true;
    values.push(w);
  }
  return changed ? new Set(values) : set;
}
