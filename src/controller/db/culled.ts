/**
 * The ids of culled task records, so that asking for one answers "has been culled" instead of "No
 * such message". A controller culls a record for nearly every task it runs, so this set sees
 * millions of ids over a long session. It keeps a 64-bit hash of each id in typed arrays (outside
 * the JavaScript heap, so the collector never walks them: a set of strings was up to 100 000
 * objects the controller's collections marked again and again) and forgets in generations: when
 * the newest holds `generation` ids it becomes the old one and the one before it goes. The last
 * `generation` ids culled are always remembered; a full generation's table takes 4 MB.
 *
 * Two different ids share a hash (`idHash`, the engine's claims use it too) with odds of about
 * n / 2^64: the price would be a wrong word in an error message ("culled" for an id never seen).
 */
import { idHash } from "../../protocol/idhash.js";

/** Ids remembered per generation, by default. */
export const CULLED_GENERATION = 250_000;

export class CulledIds {
  #current = new HashTable();
  #previous: HashTable | null = null;
  readonly #generation: number;

  constructor(generation = CULLED_GENERATION) {
    if (!Number.isInteger(generation) || generation < 1) throw new RangeError(`generation must be an integer >= 1, got ${generation}`);
    this.#generation = generation;
  }

  add(id: string): void {
    if (this.#current.size >= this.#generation) {
      this.#previous = this.#current;
      this.#current = new HashTable();
    }
    const [a, b] = idHash(id);
    this.#current.add(a, b);
  }

  has(id: string): boolean {
    const [a, b] = idHash(id);
    return this.#current.has(a, b) || (this.#previous?.has(a, b) ?? false);
  }

  /** Ids held (both generations). */
  get size(): number {
    return this.#current.size + (this.#previous?.size ?? 0);
  }

  /** Bytes of the tables. */
  get bytes(): number {
    return this.#current.bytes + (this.#previous?.bytes ?? 0);
  }
}

/** Open addressing with linear probing over (a, b) pairs (never both zero); (0, 0) marks an empty slot. At most half full. */
class HashTable {
  #slots = new Int32Array(2 * 1024);
  #mask = 1024 - 1;
  size = 0;

  get bytes(): number {
    return this.#slots.byteLength;
  }

  add(a: number, b: number): void {
    if (2 * (this.size + 1) > this.#mask + 1) this.#grow();
    if (put(this.#slots, this.#mask, a, b)) this.size += 1;
  }

  has(a: number, b: number): boolean {
    const i = probe(this.#slots, this.#mask, a, b);
    return this.#slots[2 * i] !== 0 || this.#slots[2 * i + 1] !== 0;
  }

  #grow(): void {
    const old = this.#slots;
    const mask = 2 * (this.#mask + 1) - 1;
    const slots = new Int32Array(2 * (mask + 1));
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) put(slots, mask, old[i]!, old[i + 1]!);
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}

/** The slot holding (a, b), or the empty slot where it would go. */
function probe(slots: Int32Array, mask: number, a: number, b: number): number {
  for (let i = (a ^ (b >>> 7)) & mask; ; i = (i + 1) & mask) {
    const x = slots[2 * i]!;
    const y = slots[2 * i + 1]!;
    if ((x === a && y === b) || (x === 0 && y === 0)) return i;
  }
}

/** Put a pair in; false when it was there already. */
function put(slots: Int32Array, mask: number, a: number, b: number): boolean {
  const i = probe(slots, mask, a, b);
  if (slots[2 * i] !== 0 || slots[2 * i + 1] !== 0) return false;
  slots[2 * i] = a;
  slots[2 * i + 1] = b;
  return true;
}
