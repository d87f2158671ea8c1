/**
 * Noticing a controller that went silent. A connection whose peer hangs (a stopped process) or
 * whose network is cut (a host gone, a pulled cable, a NAT entry expired) stays open on this side:
 * no error comes, for hours with TCP's defaults, and a client waiting for results would wait as
 * long. So while the client awaits something from the controller, it checks that bytes keep
 * coming: after PROBE_AFTER_MS of silence it sends a ping (answered at once by a live controller,
 * behind whatever the controller is already sending), and if nothing at all arrives within
 * `timeoutMs` after that, the connection counts as lost. The client then reconnects as after any
 * drop, and fails what it waits for if it cannot.
 *
 * A large transfer keeps the check quiet, coming in (its bytes count) or going out (nothing is judged
 * while a write of ours is still queued: a ping would wait behind it, and a slow reader is not a dead
 * one), and so does a client whose own code blocked its event loop: a check that runs late only
 * notes the time and judges at the next one, after the socket has been read.
 */
import type { Socket } from "node:net";

/** Silence after which the client asks the controller for a sign of life. */
const PROBE_AFTER_MS = 2000;
/** How often the check runs. */
const CHECK_MS = 500;

export interface LivenessHost {
  /** The controller connection's socket, or null while there is none. */
  socket(): Socket | null;
  /** Whether the client awaits anything from the controller (tasks, watched tasks, requests). */
  awaiting(): boolean;
  /** Send the controller a ping. */
  probe(): void;
  /** Nothing arrived within the timeout after a ping: treat the connection as lost. */
  lost(silentMs: number): void;
}

export class Liveness {
  readonly #host: LivenessHost;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | null = null;
  #socket: Socket | null = null;
  #bytes = 0;
  #heardAt = 0;
  #probedAt = -1;
  #tickedAt = 0;

  /** `timeoutMs`: how long a ping may go unanswered (0: never check). */
  constructor(host: LivenessHost, timeoutMs: number) {
    this.#host = host;
    this.#timeoutMs = timeoutMs;
  }

  start(): void {
    if (this.#timeoutMs <= 0 || this.#timer !== null) return;
    this.#tickedAt = performance.now();
    this.#timer = setInterval(() => this.#check(), CHECK_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #check(): void {
    const now = performance.now();
    const late = now - this.#tickedAt > 2 * CHECK_MS; // our event loop was blocked: read the socket first
    this.#tickedAt = now;
    const socket = this.#host.socket();
    if (socket !== this.#socket || socket === null || !this.#host.awaiting()) {
      this.#socket = socket;
      this.#bytes = socket?.bytesRead ?? 0;
      this.#heard(now);
      return;
    }
    // bytes coming in are life; so is a write of ours still going out (a large upload to a slow
    // reader: a ping would only queue behind it)
    if (socket.bytesRead !== this.#bytes || socket.writableLength > 0) {
      this.#bytes = socket.bytesRead;
      this.#heard(now);
      return;
    }
    if (late) return;
    if (this.#probedAt < 0) {
      if (now - this.#heardAt >= PROBE_AFTER_MS) {
        this.#probedAt = now;
        this.#host.probe();
      }
      return;
    }
    if (now - this.#probedAt >= this.#timeoutMs) {
      const silent = now - this.#heardAt;
      this.#heard(now);
      this.#host.lost(silent);
    }
  }

  #heard(now: number): void {
    this.#heardAt = now;
    this.#probedAt = -1;
  }
}
