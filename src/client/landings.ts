/**
 * Gathers into one array without a copy. A gather of typed arrays pulls each engine's part and
 * joins them: two passes over fresh memory (the parts, then the joined array). When the client can
 * tell the parts' sizes beforehand (the last scatter or gather of that name over those engines),
 * it allocates the joined array first and lets each reply's large binary frame be read straight
 * into its place in it (`Landing`, protocol/wire.ts). A prediction that turns out wrong costs
 * nothing but the copy it was meant to save: a reply whose frame has another length lands in fresh
 * memory, and `gatherInto` copies whatever is not already in place.
 *
 * A place is offered for one task and taken at most once, by the first message answering that
 * task with a frame of exactly its length; it is withdrawn when the task finishes. A message that
 * takes it and then fails its signature check is dropped as any other: the real reply then lands
 * in fresh memory and is copied.
 */
import { OWN_BUFFER_MIN } from "../protocol/wire.js";
import { type Memory, newTyped, type TypedCtor } from "./reserve.js";
import { isTypedArray, partitionSizes, type TypedArray } from "./sequences.js";

/** The parts a gather expects: their element type and lengths, in target order. */
export interface GatherLayout {
  ctor: TypedCtor<TypedArray>;
  lengths: number[];
}

/** Layouts remembered (most recent names and target sets). */
const LAYOUT_LIMIT = 64;

export class Landings {
  readonly #places = new Map<string, Buffer>();
  readonly #layouts = new Map<string, GatherLayout>();

  get size(): number {
    return this.#places.size;
  }

  /** Offer `place` to the reply of task `msgId`. */
  offer(msgId: string, place: Buffer): void {
    // a smaller frame never gets a buffer of its own (wire.ts): no landing would be asked for it
    if (place.byteLength >= OWN_BUFFER_MIN) this.#places.set(msgId, place);
  }

  withdraw(msgId: string): void {
    this.#places.delete(msgId);
  }

  /** The landing for a connection's decoder: the place offered to the task this message answers. */
  take(head: readonly Buffer[], len: number): Buffer | null {
    if (this.#places.size === 0) return null;
    let parentId: unknown;
    try {
      parentId = (JSON.parse(head[2]!.toString("utf8")) as { msg_id?: unknown } | null)?.msg_id;
    } catch {
      return null; // not ours to judge: the connection drops a malformed message
    }
    if (typeof parentId !== "string") return null;
    const place = this.#places.get(parentId);
    if (place === undefined || place.byteLength !== len) return null;
    this.#places.delete(parentId);
    return place;
  }

  layout(name: string, targets: readonly number[]): GatherLayout | undefined {
    return this.#layouts.get(layoutKey(name, targets));
  }

  /** Remember the parts `name` has on `targets` (after a scatter or a gather of typed arrays). */
  remember(name: string, targets: readonly number[], parts: readonly unknown[]): void {
    const key = layoutKey(name, targets);
    this.#layouts.delete(key);
    const first = parts[0];
    // a Buffer part is left alone: its constructor is not one to allocate with
    if (parts.length !== targets.length || !isTypedArray(first) || Buffer.isBuffer(first)) return;
    const ctor = first.constructor as TypedCtor<TypedArray>;
    if (!parts.every((p) => isTypedArray(p) && p.constructor === ctor)) return;
    this.#layouts.set(key, { ctor, lengths: (parts as TypedArray[]).map((p) => p.length) });
    if (this.#layouts.size > LAYOUT_LIMIT) this.#layouts.delete(this.#layouts.keys().next().value!);
  }
}

function layoutKey(name: string, targets: readonly number[]): string {
  return `${targets.join(",")}\u0000${name}`;
}

/** The array a layout describes, in new memory or `memory`'s, and the place of each part in it. */
export function gatherTarget(layout: GatherLayout, memory?: Memory): { dest: TypedArray; places: Buffer[] } {
  const dest = newTyped(layout.ctor, layout.lengths.reduce((s, n) => s + n, 0), memory);
  return { dest, places: placesIn(dest, layout.lengths) };
}

/** The bytes of consecutive parts of `dest`, of `lengths` elements each. */
function placesIn(dest: TypedArray, lengths: readonly number[]): Buffer[] {
  const size = dest.BYTES_PER_ELEMENT;
  const places: Buffer[] = [];
  let at = 0;
  for (const n of lengths) {
    places.push(Buffer.from(dest.buffer, dest.byteOffset + at * size, n * size));
    at += n;
  }
  return places;
}

/** Copy each part to its place in `dest`, one after another, unless it was read there already. */
function copyParts(dest: TypedArray, parts: readonly TypedArray[]): void {
  let at = 0;
  for (const p of parts) {
    const inPlace = p.buffer === dest.buffer && p.byteOffset === dest.byteOffset + at * dest.BYTES_PER_ELEMENT;
    if (!inPlace) (dest as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(p as ArrayLike<unknown>, at);
    at += p.length;
  }
}

/**
 * The gathered array, if the parts are what the layout said (same type, same lengths): parts
 * already read into their place stay there, others are copied in. Otherwise null.
 */
export function gatherInto(dest: TypedArray, layout: GatherLayout, parts: readonly unknown[]): TypedArray | null {
  if (parts.length !== layout.lengths.length) return null;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (!isTypedArray(p) || p.constructor !== layout.ctor || (p as TypedArray).length !== layout.lengths[i]) return null;
  }
  copyParts(dest, parts as TypedArray[]);
  return dest;
}

// ---- pull and gather into the caller's own array ------------------------------------------------

/** A typed array's element type by name (a Buffer counts as a Uint8Array). */
function kindOf(a: TypedArray): string {
  return Buffer.isBuffer(a) ? "Uint8Array" : a.constructor.name;
}

function describe(v: unknown): string {
  if (isTypedArray(v)) return `a ${kindOf(v)} of ${v.length} elements`;
  if (v === null || v === undefined) return String(v);
  return typeof v === "object" ? `a ${(v as object).constructor?.name ?? "object"}` : `a ${typeof v}`;
}

/** The bytes of `a`, as the place a reply's frame may be read into. */
export function placeOf(a: TypedArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** `into`, holding `value` (read there in place, or copied in); a TypeError says what does not fit. */
export function fillInto(into: TypedArray, value: unknown, what: string): TypedArray {
  if (!isTypedArray(value) || kindOf(value) !== kindOf(into) || value.length !== into.length) {
    throw new TypeError(`pull(): ${what} is ${describe(value)}; into is ${describe(into)}`);
  }
  copyParts(into, [value]);
  return into;
}

/**
 * The parts of `into` that a gather over `n` engines reads into: the sizes this client knows for
 * the name if they add up to `into`, else the way `scatter` would split it.
 */
export function gatherPlaces(into: TypedArray, known: GatherLayout | undefined, n: number): Buffer[] {
  const fits = known !== undefined && known.ctor.name === kindOf(into) && known.lengths.reduce((s, k) => s + k, 0) === into.length;
  return placesIn(into, fits ? known.lengths : partitionSizes(into.length, n));
}

/** `into`, holding the parts in order (those read in place stay, others are copied); a TypeError says what does not fit. */
export function gatherFill(into: TypedArray, parts: readonly unknown[], name: string): TypedArray {
  let total = 0;
  for (const p of parts) {
    if (!isTypedArray(p) || kindOf(p) !== kindOf(into)) {
      throw new TypeError(`gather(): a part of ${JSON.stringify(name)} is ${describe(p)}; into is ${describe(into)}`);
    }
    total += p.length;
  }
  if (total !== into.length) throw new TypeError(`gather(): the parts of ${JSON.stringify(name)} hold ${total} elements; into holds ${into.length}`);
  copyParts(into, parts as TypedArray[]);
  return into;
}
