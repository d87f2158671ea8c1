/**
 * 64-bit keys seen recently, remembered in two generations: a key is remembered for at least
 * `capacity` adds after it, and memory stays bounded. Each generation is an open-addressed hash
 * table of (a, b) pairs in an Int32Array (nothing for the collector to trace), at most half full,
 * grown as it fills (8 bytes per slot); when the newest holds `capacity` keys it becomes the old
 * one, and the old one's table, emptied, takes the new keys. Keys are pairs of 32-bit words, never
 * both zero ((0, 0) marks an empty slot), spread evenly (a MAC's bytes, a hash).
 *
 * Used for the signatures a receiver has seen (replay protection, auth.ts) and the controller's
 * culled task ids (controller/db/culled.ts).
 */
export class RecentKeys {
  #current = new Table();
  #previous = new Table();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Remember the key; false if it is remembered already. */
  add(a: number, b: number): boolean {
    if (this.#previous.has(a, b) || !this.#current.put(a, b)) return false;
    if (this.#current.size >= this.#capacity) {
      const old = this.#previous;
      old.clear();
      this.#previous = this.#current;
      this.#current = old;
    }
    return true;
  }

  has(a: number, b: number): boolean {
    return this.#current.has(a, b) || this.#previous.has(a, b);
  }

  /** Keys held (both generations). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  /** Bytes of the tables. */
  get bytes(): number {
    return this.#current.bytes + this.#previous.bytes;
  }

  clear(): void {
    this.#current.clear();
    this.#previous.clear();
  }
}

class Table {
  #slots = new Int32Array(2 * 1024);
  #mask = 1024 - 1;
  size = 0;

  get bytes(): number {
    return this.#slots.byteLength;
  }

  has(a: number, b: number): boolean {
    const i = probe(this.#slots, this.#mask, a, b);
    return this.#slots[i] !== 0 || this.#slots[i + 1] !== 0;
  }

  /** Put the key in; false when it was there already. */
  put(a: number, b: number): boolean {
    if (2 * (this.size + 1) > this.#mask + 1) this.#grow();
    if (!place(this.#slots, this.#mask, a, b)) return false;
    this.size += 1;
    return true;
  }

  clear(): void {
    if (this.size > 0) this.#slots.fill(0);
    this.size = 0;
  }

  #grow(): void {
    const old = this.#slots;
    const mask = 2 * (this.#mask + 1) - 1;
    const slots = new Int32Array(2 * (mask + 1));
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) place(slots, mask, old[i]!, old[i + 1]!);
    }
    this.#slots = slots;
    this.#mask = mask;
  }
}

/** The index of the slot holding (a, b), or of the empty slot where it would go. */
function probe(slots: Int32Array, mask: number, a: number, b: number): number {
  for (let slot = (a ^ (b >>> 7)) & mask; ; slot = (slot + 1) & mask) {
    const i = 2 * slot;
    const x = slots[i]!;
    const y = slots[i + 1]!;
    if ((x === a && y === b) || (x === 0 && y === 0)) return i;
  }
}

/** Put (a, b) in; false when it was there already. */
function place(slots: Int32Array, mask: number, a: number, b: number): boolean {
  const i = probe(slots, mask, a, b);
  if (slots[i] !== 0 || slots[i + 1] !== 0) return false;
  slots[i] = a;
  slots[i + 1] = b;
  return true;
}
