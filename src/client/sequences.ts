/**
 * Sequences for map and scatter: builtin-map semantics (several sequences zipped, the shortest
 * wins), ipyparallel's partitioning (contiguous parts, earlier parts get the extra element), and
 * typed arrays kept as typed arrays (split with `subarray`, never element by element).
 */

import { type Memory, newTyped, type TypedCtor } from "./reserve.js";

export type Sequence<T> = Iterable<T> | ArrayLike<T>;

export type TypedArray =
  | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array | Int32Array | Uint32Array
  | Float32Array | Float64Array | BigInt64Array | BigUint64Array;

export function isTypedArray(v: unknown): v is TypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

export function isSequence(v: unknown): boolean {
  if (v === null || v === undefined || typeof v === "string") return false;
  if (Array.isArray(v) || isTypedArray(v)) return true;
  return typeof (v as Iterable<unknown>)[Symbol.iterator] === "function";
}

/** A sequence with random access: arrays and typed arrays as they are, iterables materialized. */
export type Indexed<T> = T[] | TypedArray;

export function indexed<T>(seq: Sequence<T>, what: string): Indexed<T> {
  if (Array.isArray(seq) || isTypedArray(seq)) return seq as Indexed<T>;
  if (seq !== null && typeof seq === "object" && typeof (seq as Iterable<T>)[Symbol.iterator] === "function") return Array.from(seq as Iterable<T>);
  if (seq !== null && typeof seq === "object" && typeof (seq as ArrayLike<T>).length === "number") return Array.from(seq as ArrayLike<T>);
  throw new TypeError(`${what}: expected an array, typed array or iterable, got ${seq === null ? "null" : typeof seq}`);
}

/** The items to map over: one sequence as is, several zipped into argument tuples (shortest wins). */
export interface MapInput {
  items: Indexed<unknown>;
  /** True when items are argument tuples. */
  zip: boolean;
  length: number;
}

export function mapInput(seqs: ReadonlyArray<Sequence<unknown>>, what: string): MapInput {
  if (seqs.length === 0) throw new TypeError(`${what} needs at least one sequence`);
  const lists = seqs.map((s) => indexed(s, what));
  if (lists.length === 1) return { items: lists[0]!, zip: false, length: lists[0]!.length };
  const length = Math.min(...lists.map((l) => l.length));
  const items = Array.from({ length }, (_, i) => lists.map((l) => (l as ArrayLike<unknown>)[i]));
  return { items, zip: true, length };
}

/** Sizes of `parts` contiguous parts of `n` items; earlier parts get the extra ones. */
export function partitionSizes(n: number, parts: number): number[] {
  const base = Math.floor(n / parts);
  const extra = n % parts;
  return Array.from({ length: parts }, (_, p) => base + (p < extra ? 1 : 0));
}

/** Slice [start, end) of an indexed sequence (typed arrays: a view, not a copy). */
export function slice<T>(items: Indexed<T>, start: number, end: number): Indexed<T> {
  return (isTypedArray(items) ? items.subarray(start, end) : (items as T[]).slice(start, end)) as Indexed<T>;
}

/** Split into parts of the given sizes. */
export function split<T>(items: Indexed<T>, sizes: readonly number[]): Array<Indexed<T>> {
  const out: Array<Indexed<T>> = [];
  let at = 0;
  for (const size of sizes) {
    out.push(slice(items, at, at + size));
    at += size;
  }
  return out;
}

/** Chunks of `chunksize` items (the last may be shorter). */
export function chunkSizes(n: number, chunksize: number): number[] {
  const sizes: number[] = [];
  for (let at = 0; at < n; at += chunksize) sizes.push(Math.min(chunksize, n - at));
  return sizes;
}

/** Concatenate gathered parts: typed arrays into one of the same type, arrays flattened one level, scalars listed. */
export function concatParts(parts: unknown[], memory?: Memory): unknown {
  if (parts.length > 0 && parts.every(isTypedArray)) {
    const typed = parts as TypedArray[];
    const Ctor = typed[0]!.constructor as TypedCtor<TypedArray>;
    if (typed.every((p) => p.constructor === Ctor)) {
      const out = newTyped(Ctor, typed.reduce((s, p) => s + p.length, 0), memory);
      let at = 0;
      for (const p of typed) {
        (out as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(p as ArrayLike<unknown>, at);
        at += p.length;
      }
      return out;
    }
  }
  const out: unknown[] = [];
  for (const p of parts) {
    if (Array.isArray(p)) out.push(...p);
    else if (isTypedArray(p)) out.push(...Array.from(p as ArrayLike<unknown>));
    else out.push(p);
  }
  return out;
}
