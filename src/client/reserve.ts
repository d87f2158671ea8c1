/**
 * Memory made ready ahead for the large arrays a client receives. A pulled or gathered array
 * lands in memory new to the process, and on this kind of VM touching 100 MB of new pages costs
 * more than moving the bytes: a 100 MB pull reads at ~300–1 300 MB/s into new memory and at
 * ~2 500 MB/s into memory already touched (docs/performance.md, "Bulk data"). Engines keep their
 * freed memory for the next array through glibc's settings (engine/malloc.ts); a client is the
 * user's process, whose allocator is not ours to set. So after a large frame of some size has
 * landed, a worker thread allocates another buffer of that size and touches its pages while the
 * client does other things, and hands it over (moved, not copied) for the next frame of that size.
 * A prepared buffer holds only zeros, as a new one would.
 *
 * What it costs: the prepared buffers (at most `limit` bytes, given back after `keepMs` unused),
 * a thread started at the first large landing, and the CPU time of touching the pages, now spent
 * on another core ahead of time instead of on the receiving thread while the bytes arrive. On a
 * machine whose cores are all busy that time is taken from whatever runs, so the thread runs at
 * the lowest priority, and waits while the client sends a large message (`hold`).
 */
import { Worker } from "node:worker_threads";

/** Frames smaller than this land in new memory: their page faults cost little. */
export const RESERVE_MIN_BYTES = 8 * 1024 * 1024;
/** A bound on the bytes prepared or being prepared at once that holds two 100 MB arrays' buffers (the reserve is off unless asked for). */
export const RESERVE_SUGGESTED_LIMIT = 256 * 1024 * 1024;
/** Default time a prepared buffer is kept for a frame of its size before it is given back. */
export const RESERVE_DEFAULT_KEEP_MS = 120_000;

const STOP = 0;
const HOLDS = 1;

// Touches one byte per page, so every page of the new buffer is the process's own before it is
// handed over (reading a new page would only map the kernel's shared zero page). The thread runs at
// the lowest priority (Linux: a thread's nice value is its own), so it takes idle cores only.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
try { require("node:os").setPriority(Number(require("node:fs").readlinkSync("/proc/thread-self").split("/").pop()), 19); } catch {}
const flags = new Int32Array(workerData);
parentPort.on("message", (bytes) => {
  Atomics.store(flags, ${STOP}, 0);
  const buffer = new ArrayBuffer(bytes);
  const view = new Uint8Array(buffer);
  for (let i = 0; i < bytes; i += 4096) {
    if ((i & 0x3ffff) === 0) {
      for (let held; (held = Atomics.load(flags, ${HOLDS})) !== 0 && Atomics.load(flags, ${STOP}) === 0;) Atomics.wait(flags, ${HOLDS}, held, 100);
      if (Atomics.load(flags, ${STOP}) !== 0) break;
    }
    view[i] = 0;
  }
  parentPort.postMessage(buffer, [buffer]);
});
`;

/** Where a new array's memory may come from: a prepared buffer of exactly `bytes`, or null for new memory. */
export type Memory = (bytes: number) => ArrayBuffer | null;

export type TypedCtor<T> = { new (length: number): T; new (buffer: ArrayBuffer): T; readonly BYTES_PER_ELEMENT: number };

/** A new typed array of `length` elements, in memory from `memory` if it has some (a Buffer always gets new memory). */
export function newTyped<T>(ctor: TypedCtor<T>, length: number, memory?: Memory): T {
  const prepared = (ctor as unknown) === Buffer ? null : (memory?.(length * ctor.BYTES_PER_ELEMENT) ?? null);
  return prepared === null ? new ctor(length) : new ctor(prepared);
}

export interface ReserveStats {
  /** Large frames that landed in a prepared buffer. */
  hits: number;
  /** Large frames that landed in new memory (none of their size was ready). */
  misses: number;
  /** Bytes ready now. */
  readyBytes: number;
}

export class LandingReserve {
  readonly #limit: number;
  readonly #keepMs: number;
  /** Ready buffers by size, each with the time it became ready. */
  readonly #ready = new Map<number, Array<{ buffer: ArrayBuffer; since: number }>>();
  /** Sizes taken (hit or miss) since the last `settle`, to prepare again then. */
  #wanted: Array<{ bytes: number; evict: boolean }> = [];
  /** Sizes asked of the worker, in order (it answers in order). */
  readonly #asked: number[] = [];
  #bytes = 0; // ready + asked
  #worker: Worker | null = null;
  /**
   * Shared with the thread. STOP set to 1: it stops touching the buffer it prepares and hands it
   * over as it is. HOLDS above 0: it waits (large sends of this client under way, see `hold`).
   */
  readonly #flags = new Int32Array(new SharedArrayBuffer(8));
  #broken = false;
  #sweep: NodeJS.Timeout | null = null;
  readonly #stats = { hits: 0, misses: 0 };

  constructor(limit: number, keepMs = RESERVE_DEFAULT_KEEP_MS) {
    this.#limit = limit;
    this.#keepMs = keepMs;
  }

  /** Configured to prepare anything at all (a limit of at least RESERVE_MIN_BYTES) and not closed. */
  get enabled(): boolean {
    return this.#limit >= RESERVE_MIN_BYTES && !this.#broken;
  }

  get stats(): ReserveStats {
    let readyBytes = 0;
    for (const [size, list] of this.#ready) readyBytes += size * list.length;
    return { ...this.#stats, readyBytes };
  }

  /**
   * A prepared buffer of exactly `bytes`, or null (small, none ready, or the reserve is off).
   * Either way a buffer of this size is prepared for the next frame like it.
   */
  take(bytes: number): ArrayBuffer | null {
    if (bytes < RESERVE_MIN_BYTES || bytes > this.#limit || this.#broken) return null;
    const list = this.#ready.get(bytes);
    const entry = list?.pop();
    if (list !== undefined && list.length === 0) this.#ready.delete(bytes);
    if (entry !== undefined) this.#bytes -= bytes;
    this.#stats[entry === undefined ? "misses" : "hits"] += 1;
    // a frame landing in new memory while the thread touches pages of another buffer: both slow
    // down several times over (~260 against ~80 ms for 80 MB here), so the thread stops touching
    // and hands over what it has; the rest of that buffer's pages fault in where it is used
    if (entry === undefined && this.#asked.length > 0) {
      Atomics.store(this.#flags, STOP, 1);
      Atomics.notify(this.#flags, HOLDS);
    }
    // one already on its way serves the next frame like this: another may only take free room
    this.#wanted.push({ bytes, evict: entry !== undefined || !this.#asked.includes(bytes) });
    return entry?.buffer ?? null;
  }

  /**
   * A message has arrived whole: prepare what the frames taken so far call for. Not at `take`,
   * which comes as a frame's first bytes arrive: touching new pages while that frame lands slows
   * both down.
   */
  settle(): void {
    if (this.#wanted.length === 0) return;
    const wanted = this.#wanted;
    this.#wanted = [];
    for (const w of wanted) this.#prepare(w.bytes, w.evict);
  }

  /**
   * This client is sending a large message: the thread waits until `release`, so that touching pages
   * does not take a core from the send (on 2 busy cores it slowed 100 MB pushes by ~25 %).
   */
  hold(): void {
    Atomics.add(this.#flags, HOLDS, 1);
  }

  release(): void {
    if (Atomics.sub(this.#flags, HOLDS, 1) === 1) Atomics.notify(this.#flags, HOLDS);
  }

  /** `take` as a connection's landing (wire.ts): a prepared buffer of exactly `len` bytes, or null. */
  landing(len: number): Buffer | null {
    const prepared = this.take(len);
    return prepared === null ? null : Buffer.from(prepared);
  }

  /** Give everything back and stop the thread. */
  close(): void {
    this.#broken = true;
    this.#ready.clear();
    this.#wanted = [];
    this.#asked.length = 0;
    this.#bytes = 0;
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
    void this.#worker?.terminate();
    this.#worker = null;
  }

  #prepare(bytes: number, evict: boolean): void {
    if (!this.#makeRoom(bytes, evict)) return;
    const worker = this.#thread();
    if (worker === null) return;
    this.#asked.push(bytes);
    this.#bytes += bytes;
    worker.postMessage(bytes);
  }

  /** Within the limit, giving back the oldest ready buffers if need be (and allowed). */
  #makeRoom(bytes: number, evict: boolean): boolean {
    while (this.#bytes + bytes > this.#limit) {
      const oldest = evict ? this.#oldest() : null;
      if (oldest === null) return false;
      this.#drop(oldest);
    }
    return true;
  }

  #oldest(): number | null {
    let found: number | null = null;
    let since = Infinity;
    for (const [size, list] of this.#ready) {
      if (list[0]!.since < since) {
        since = list[0]!.since;
        found = size;
      }
    }
    return found;
  }

  #drop(size: number): void {
    const list = this.#ready.get(size)!;
    list.shift();
    if (list.length === 0) this.#ready.delete(size);
    this.#bytes -= size;
  }

  #thread(): Worker | null {
    if (this.#worker !== null) return this.#worker;
    try {
      const worker = new Worker(WORKER_SOURCE, { eval: true, name: "tsparallel receive reserve", workerData: this.#flags.buffer });
      worker.unref(); // a reserve never keeps the process alive
      worker.on("message", (buffer: ArrayBuffer) => this.#arrived(buffer));
      worker.on("error", () => this.#fail());
      worker.on("exit", () => this.#fail());
      this.#worker = worker;
      this.#sweep = setInterval(() => this.#expire(), Math.max(1000, this.#keepMs / 4));
      this.#sweep.unref();
      return worker;
    } catch {
      this.#fail();
      return null;
    }
  }

  #arrived(buffer: ArrayBuffer): void {
    const size = this.#asked.shift();
    if (size === undefined || size !== buffer.byteLength) return; // closed meanwhile
    let list = this.#ready.get(size);
    if (list === undefined) this.#ready.set(size, (list = []));
    list.push({ buffer, since: performance.now() });
  }

  #expire(): void {
    const cutoff = performance.now() - this.#keepMs;
    for (const [size, list] of [...this.#ready]) {
      while (list.length > 0 && list[0]!.since <= cutoff) this.#drop(size);
    }
  }

  /** The thread is gone (a resource limit, or closed): frames land in new memory from now on. */
  #fail(): void {
    if (this.#broken) return;
    this.close();
  }
}
