/**
 * A client that stops reading must not stop the cluster. When a client's connection backs up, the
 * controller stops reading from the engine whose replies fill it (flow control: its memory stays
 * bounded), and everything else that engine sends (replies to other clients, reports) waits too.
 * For a slow client that is right; for one that reads nothing at all (a stopped process, a client
 * blocked in its own code, a network cut) the engine would wait as long. So a client whose
 * connection is backed up and has taken no byte for STALL_MS is dropped: the engines go on, and
 * the client, if it is alive, reconnects and fetches what it missed from the task records.
 */
import type { Socket } from "node:net";
import type { Connection } from "../protocol/connection.js";

/** How long a backed-up client may take nothing before it is dropped. */
export const STALL_MS = 10_000;
/** How often the clients are looked at. */
export const STALL_CHECK_MS = 1000;

interface Watch {
  drained: number;
  since: number;
}

export class ClientStalls {
  readonly #watches = new Map<Connection, Watch>();
  readonly #stallMs: number;

  constructor(stallMs = STALL_MS) {
    this.#stallMs = stallMs;
  }

  /** The connections among `clients` that are backed up and took nothing for too long (to be dropped). */
  check(clients: Iterable<Connection>, now = performance.now()): Connection[] {
    const stalled: Connection[] = [];
    const seen = new Set<Connection>();
    for (const conn of clients) {
      seen.add(conn);
      if (!conn.backedUp || conn.closed) {
        this.#watches.delete(conn);
        continue;
      }
      const drained = drainedBytes(conn.socket);
      const w = this.#watches.get(conn);
      if (w === undefined || drained !== w.drained) {
        this.#watches.set(conn, { drained, since: now });
        continue;
      }
      if (now - w.since >= this.#stallMs) {
        this.#watches.delete(conn);
        stalled.push(conn);
      }
    }
    for (const conn of this.#watches.keys()) if (!seen.has(conn)) this.#watches.delete(conn);
    return stalled;
  }
}

/**
 * Bytes the kernel has taken from this socket so far: what Node handed to libuv, less what libuv
 * still queues (internal fields, read defensively; without them, what Node still buffers, which
 * only changes a chunk at a time).
 */
function drainedBytes(socket: Socket): number {
  const s = socket as Socket & { _bytesDispatched?: unknown; _handle?: { writeQueueSize?: unknown } | null };
  const dispatched = s._bytesDispatched;
  const queued = s._handle?.writeQueueSize;
  if (typeof dispatched === "number" && typeof queued === "number") return dispatched - queued;
  return -socket.writableLength;
}
