/**
 * Memory a large transfer leaves behind, handed back at once. A push of a new 100 MB array under a
 * name the engine already holds needs fresh memory for the new one while the old one is still
 * bound; the old one's memory is free only once V8 collects it, which its heuristics may put off
 * past the next push. That push then lands in fresh memory too (~25 000 page faults, ~70 ms on
 * this kind of VM) instead of in the block glibc keeps for reuse (malloc.ts). So after a task whose
 * request brought `RECLAIM_BYTES` or more, the engine runs a full collection before it goes on:
 * a few ms on an engine's small heap, against tens of ms of page faults saved on the next transfer.
 * A collection's cost grows with the JavaScript heap, not with the arrays' bytes, so an engine whose
 * heap holds more than half the request's bytes in objects leaves it to V8's own timing.
 */
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** A request of at least this many bytes (nearly all of them its buffers) is followed by a full collection. */
export const RECLAIM_BYTES = 32 * 1024 * 1024;

export class Reclaimer {
  readonly #collect: (() => void) | null = fullCollection();
  #due = false;

  /** A task's request of `bytes` (its size on the wire, already known) is about to run: owe a collection if it was large. */
  received(bytes: number): void {
    if (bytes < RECLAIM_BYTES || this.#collect === null || this.#due) return;
    this.#due = getHeapStatistics().used_heap_size <= bytes / 2;
  }

  get due(): boolean {
    return this.#due;
  }

  run(): void {
    this.#due = false;
    this.#collect?.();
  }
}

/**
 * V8's full collection. Taken from a context of its own, so the user's code in the engine does not
 * get a `gc` global it did not ask for; the flag goes back off at once, so later contexts do not
 * either (a `gc` the process was started with is used as it is).
 */
function fullCollection(): (() => void) | null {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === "function") return () => (own as () => void)();
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? () => (gc as () => void)() : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}
