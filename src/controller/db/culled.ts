/**
 * The ids of culled task records, so that asking for one answers "has been culled" instead of "No
 * such message". A controller culls a record for nearly every task it runs, so this set sees
 * millions of ids over a long session. It keeps a 64-bit hash of each id in typed arrays (outside
 * the JavaScript heap, so the collector never walks them: a set of strings was up to 100 000
 * objects the controller's collections marked again and again) and forgets in generations: when
 * the newest holds `generation` ids it becomes the old one and the one before it goes. The last
 * `generation` ids culled are always remembered; a full generation's table takes 4 MB.
 *
 * Two different ids share a hash with odds of about n / 2^64: the price would be a wrong word in an
 * error message ("culled" for an id never seen).
 */

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
    this.#current.add(hashLo(id), hashHi(id));
  }

  has(id: string): boolean {
    const lo = hashLo(id);
    const hi = hashHi(id);
    return this.#current.has(lo, hi) || (this.#previous?.has(lo, hi) ?? false);
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

/** FNV-1a over the UTF-16 code units, 32 bits. */
function hashLo(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A second, independent 32 bits: another basis and multiplier, and the length mixed in. */
function hashHi(s: string): number {
  let h = 0x9e3779b9 ^ s.length;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x5bd1e995) ^ (h >>> 15);
  return h >>> 0;
}

/** Open addressing with linear probing over (lo, hi) pairs; (0, 0) marks an empty slot. At most half full. */
class HashTable {
  #slots = new Uint32Array(2 * 1024);
  #mask = 1024 - 1;
  size = 0;

  get bytes(): number {
    return this.#slots.byteLength;
  }

  add(lo: number, hi: number): void {
    if (lo === 0 && hi === 0) hi = 1;
    if (2 * (this.size + 1) > this.#mask + 1) this.#grow();
    if (this.#put(this.#slots, this.#mask, lo, hi)) this.size += 1;
  }

  has(lo: number, hi: number): boolean {
    if (lo === 0 && hi === 0) hi = 1;
    const slots = this.#slots;
    for (let i = (lo ^ (hi >>> 7)) & this.#mask; ; i = (i + 1) & this.#mask) {
      const a = slots[2 * i]!;
      const b = slots[2 * i + 1]!;
      if (a === lo && b === hi) return true;
      if (a === 0 && b === 0) return false;
    }
  }

  /** Put a pair in; false when it was there already. */
  #put(slots: Uint32Array, mask: number, lo: number, hi: number): boolean {
    for (let i = (lo ^ (hi >>> 7)) & mask; ; i = (i + 1) & mask) {
      const a = slots[2 * i]!;
      const b = slots[2 * i + 1]!;
      if (a === lo && b === hi) return false;
      if (a === 0 && b === 0) {
        slots[2 * i] = lo;
        slots[2 * i + 1] = hi;
        return true;
      }
    }
  }

  #grow(): void {
    const old = this.#slots;
    const mask = 2 * (this.#mask + 1) - 1;
    const slots = new Uint32Array(2 * (mask + 1));
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.#put(slots, mask, old[i]!, old[i + 1]!);
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}
