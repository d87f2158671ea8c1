/**
 * The ids of culled task records, so that asking for one answers "has been culled" instead of "No
 * such message". A controller culls a record for nearly every task it runs, so this set sees
 * millions of ids over a long session. It keeps a 64-bit hash of each id in typed arrays (outside
 * the JavaScript heap, so the collector never walks them: a set of strings was up to 100 000
 * objects the controller's collections marked again and again) and forgets in generations, as the
 * replay history does (RecentKeys): the last `generation` ids culled are always remembered; a full
 * generation's table takes 4 MB.
 *
 * Two different ids share a hash (`idHash`, the engine's claims use it too) with odds of about
 * n / 2^64: the price would be a wrong word in an error message ("culled" for an id never seen).
 */
import { idHash } from "../../protocol/idhash.js";
import { RecentKeys } from "../../protocol/recent.js";

/** Ids remembered per generation, by default. */
export const CULLED_GENERATION = 250_000;

export class CulledIds {
  readonly #ids: RecentKeys;

  constructor(generation = CULLED_GENERATION) {
    if (!Number.isInteger(generation) || generation < 1) throw new RangeError(`generation must be an integer >= 1, got ${generation}`);
    this.#ids = new RecentKeys(generation);
  }

  add(id: string): void {
    const [a, b] = idHash(id);
    this.#ids.add(a, b);
  }

  has(id: string): boolean {
    const [a, b] = idHash(id);
    return this.#ids.has(a, b);
  }

  /** Ids held (both generations). */
  get size(): number {
    return this.#ids.size;
  }

  /** Bytes of the tables. */
  get bytes(): number {
    return this.#ids.bytes;
  }
}
