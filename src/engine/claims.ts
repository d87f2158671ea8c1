/**
 * Early tasks and taking them back. The scheduler may hand a busy engine its next load-balanced
 * task early, so the engine starts it as soon as the current one ends instead of waiting a round
 * trip through the controller. If another engine frees up first, the controller asks this engine
 * to give the task back. The main thread may be inside a long synchronous task, so the engine's
 * heart (its own thread) answers, and the two threads decide through this shared memory, under
 * one lock: the main thread claims each task the controller sent as it starts it, and the heart
 * takes a task back only if it has not been claimed. Whichever comes first wins; the other side
 * sees it. Tasks are known by a 64-bit hash of their msg id.
 *
 * A task taken back stays listed until the main thread reads its message and drops it. Messages
 * the main thread never read die with its connection to the controller: when that connection
 * drops, the list is emptied and the heart gives nothing back ("gone") until the engine is
 * registered again. A stale entry would otherwise drop the same task if the controller sent it
 * here again later (a retry), and the task would never run.
 */

import { idHash } from "../protocol/idhash.js";

const LOCK = 0;
/** Next slot of the started ring. */
const STARTED_NEXT = 1;
/** Entries in the taken-back list. */
const TAKEN_COUNT = 2;
/** 1 while the main thread has no connection to the controller. */
const DISCONNECTED = 3;
const HEADER = 4;
/** The last tasks started: a take-back request can only be about one of the last few. */
const STARTED_SLOTS = 1024;
/**
 * Tasks taken back and not yet met by the main thread (each is met once its message is read). An
 * engine holds at most a few early tasks at a time, but a long task can see many given back.
 */
const TAKEN_SLOTS = 256;
const TAKEN_BASE = HEADER + 2 * STARTED_SLOTS;
/** Then a float64 (8-byte aligned): when the heart last heard the controller's heartbeat (epoch ms). */
const HEARD_AT = TAKEN_BASE + 2 * TAKEN_SLOTS;
const WORDS = HEARD_AT + 2;

/**
 * The heart's answer: given back; already started here; not given back because the list is full;
 * not given back because this engine lost its connection to the controller (which then puts the
 * engine's early tasks back in its queue itself).
 */
export type TakeBack = "taken" | "started" | "busy" | "gone";

export class TaskClaims {
  readonly buffer: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #heard: Float64Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(WORDS * 4)) {
    if (buffer.byteLength !== WORDS * 4) throw new RangeError(`claims buffer must be ${WORDS * 4} bytes`);
    this.buffer = buffer;
    this.#w = new Int32Array(buffer);
    this.#heard = new Float64Array(buffer, HEARD_AT * 4, 1);
  }

  /** Heart thread, on each heartbeat (and main thread, when registered): the controller is there. */
  heard(now = Date.now()): void {
    this.#heard[0] = now;
  }

  /** Milliseconds since the controller was last heard (0 before it ever was). */
  silentFor(now = Date.now()): number {
    const at = this.#heard[0]!;
    return at === 0 ? 0 : Math.max(0, now - at);
  }

  /** Main thread, before running a task the controller sent: false if it was taken back (drop it). */
  claim(msgId: string): boolean {
    return this.#locked(msgId, (a, b, w) => {
      const at = this.#takenAt(a, b);
      if (at >= 0) {
        const n = w[TAKEN_COUNT]! - 1;
        w[at] = w[TAKEN_BASE + 2 * n]!;
        w[at + 1] = w[TAKEN_BASE + 2 * n + 1]!;
        w[TAKEN_COUNT] = n;
        return false;
      }
      const slot = w[STARTED_NEXT]!;
      w[HEADER + 2 * slot] = a;
      w[HEADER + 2 * slot + 1] = b;
      w[STARTED_NEXT] = (slot + 1) % STARTED_SLOTS;
      return true;
    });
  }

  /** Heart thread: take the task back unless the main thread has started it. */
  takeBack(msgId: string): TakeBack {
    return this.#locked(msgId, (a, b, w): TakeBack => {
      for (let k = 0; k < STARTED_SLOTS; k++) {
        if (w[HEADER + 2 * k] === a && w[HEADER + 2 * k + 1] === b) return "started";
      }
      if (w[DISCONNECTED] === 1) return "gone";
      const n = w[TAKEN_COUNT]!;
      if (n >= TAKEN_SLOTS) return "busy";
      w[TAKEN_BASE + 2 * n] = a;
      w[TAKEN_BASE + 2 * n + 1] = b;
      w[TAKEN_COUNT] = n + 1;
      return "taken";
    });
  }

  /**
   * Main thread: the connection to the controller dropped (`false`) or the engine is registered
   * again (`true`). Dropping it forgets every task taken back: their messages went with it.
   */
  setConnected(connected: boolean): void {
    this.#locked("", (_a, _b, w) => {
      w[DISCONNECTED] = connected ? 0 : 1;
      if (!connected) w[TAKEN_COUNT] = 0;
    });
  }

  /** Taken back and not yet met by the main thread (an abort must leave it: it runs elsewhere). */
  isTakenBack(msgId: string): boolean {
    return this.#locked(msgId, (a, b) => this.#takenAt(a, b) >= 0);
  }

  /** Index of the id in the taken-back list, or -1 (call under the lock). */
  #takenAt(a: number, b: number): number {
    const w = this.#w;
    const end = TAKEN_BASE + 2 * w[TAKEN_COUNT]!;
    for (let at = TAKEN_BASE; at < end; at += 2) if (w[at] === a && w[at + 1] === b) return at;
    return -1;
  }

  #locked<T>(msgId: string, fn: (a: number, b: number, w: Int32Array) => T): T {
    const [a, b] = idHash(msgId);
    this.#lock();
    try {
      return fn(a, b, this.#w);
    } finally {
      this.#unlock();
    }
  }

  #lock(): void {
    // held for a few hundred nanoseconds at most, by the other thread: spin
    while (Atomics.compareExchange(this.#w, LOCK, 0, 1) !== 0);
  }

  #unlock(): void {
    Atomics.store(this.#w, LOCK, 0);
  }
}
