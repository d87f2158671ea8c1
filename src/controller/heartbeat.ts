/**
 * Heartbeats: each engine runs a heart on a thread of its own, with its own connection, so it
 * answers while the engine computes. An engine whose heart has not answered for `misses` periods
 * is declared dead.
 */
export interface HeartTarget {
  id: number;
  lastBeat: number;
  ping(beat: number): void;
}

export class HeartMonitor {
  readonly period: number;
  readonly misses: number;
  #beat = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #targets: () => HeartTarget[];
  readonly #onDead: (id: number) => void;

  constructor(opts: { period: number; misses: number; targets: () => HeartTarget[]; onDead: (id: number) => void }) {
    this.period = opts.period;
    this.misses = opts.misses;
    this.#targets = opts.targets;
    this.#onDead = opts.onDead;
  }

  start(): void {
    this.#timer = setInterval(() => this.#tick(), this.period);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    this.#beat += 1;
    const deadline = Date.now() - this.period * this.misses;
    for (const t of this.#targets()) {
      if (t.lastBeat < deadline) this.#onDead(t.id);
      else t.ping(this.#beat);
    }
  }
}
