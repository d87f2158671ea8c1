/**
 * Reply groups (protocol 1.2): the load-balanced tasks of one burst that an engine answers over a
 * client's direct link go to that client in one signed `reply_group` message instead of one signed
 * reply each. Its content is an index of what the client needs of each reply (the task's id, its
 * start and end, how to decode its value); its buffers are the values' buffers, in order. The
 * controller's record still gets each reply: from a controller of 1.3 on as a stub in the engine's
 * report (the value's buffers; the controller builds the rest when the record is read), before that
 * as a message of its own (`recordReply`), unsigned: the record is read, never forwarded as it is.
 */
import { GROUP_ITEM_MAX, GROUP_MAX_BYTES, GROUP_MAX_ITEMS, type Authenticator } from "../protocol/auth.js";
import type { Connection } from "../protocol/connection.js";
import { encodeMessage, makeHeader, type Incoming, type Json } from "../protocol/messages.js";
import { replyRecord } from "../protocol/replyrecord.js";
import { takesReplyGroups } from "../protocol/version.js";

/** One reply in a group's index: [task id, completed, started, value has specials (1/0), buffer count]. */
export type ReplyEntry = [string, string, string | null, number, number];

interface Pending {
  entries: ReplyEntry[];
  buffers: Uint8Array[];
  bytes: number;
}

export interface ReplyGroupHost {
  auth: Authenticator;
  session: string;
  /** The engine's uuid and id, as each reply's metadata gives them. */
  engine(): { uuid: string; id: number | null };
}

export class ReplyGroups {
  readonly #host: ReplyGroupHost;
  readonly #pending = new Map<Connection, Pending>();
  /** Whether each link's client reads groups (from its hello's protocol version). */
  readonly #reads = new WeakMap<Connection, boolean>();
  #scheduled = false;

  constructor(host: ReplyGroupHost) {
    this.#host = host;
  }

  /** Whether a reply to this link may go in a group: the client reads them, and its value is small. */
  takes(link: Connection, buffers: readonly Uint8Array[]): boolean {
    let reads = this.#reads.get(link);
    if (reads === undefined) this.#reads.set(link, (reads = takesReplyGroups(link.hello?.protocol)));
    if (!reads) return false;
    let bytes = 0;
    for (const b of buffers) bytes += b.byteLength;
    return bytes <= GROUP_ITEM_MAX;
  }

  /** Add a reply; it leaves when this turn's callbacks are done (after the controller's report, queued before it). */
  add(link: Connection, entry: ReplyEntry, buffers: readonly Uint8Array[]): void {
    let p = this.#pending.get(link);
    if (p === undefined) this.#pending.set(link, (p = { entries: [], buffers: [], bytes: 0 }));
    p.entries.push(entry);
    for (const b of buffers) {
      p.buffers.push(b);
      p.bytes += b.byteLength;
    }
    if (p.bytes >= GROUP_MAX_BYTES || p.entries.length >= GROUP_MAX_ITEMS) this.flush(link);
    else if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#endOfTurn);
    }
  }

  readonly #endOfTurn = (): void => {
    this.#scheduled = false;
    for (const link of this.#pending.keys()) this.flush(link); // flush deletes the entry it sends: safe while iterating
  };

  /** Send what waits for this link now: before anything else written to it, which must not overtake it. */
  flush(link: Connection): void {
    const p = this.#pending.get(link);
    if (p === undefined) return;
    this.#pending.delete(link);
    if (!link.open) return; // the client is gone: its tasks failed with the link (and the controller's record has them)
    const { uuid, id } = this.#host.engine();
    const content: Json = { engine: uuid, engine_id: id, replies: p.entries };
    link.write(encodeMessage(this.#host.auth, { header: makeHeader("reply_group", this.#host.session), content, buffers: p.buffers }));
  }
}

/**
 * A reply as one unsigned message for the controller's record, in one buffer and without
 * stringifying what is text already: the parent header is the request's own header frame.
 */
export function recordReply(request: Incoming, replyId: string, date: string, metadata: string, content: Json, buffers: readonly Uint8Array[], session: string): Buffer {
  const type = request.msgType === "execute_request" ? "execute_reply" : "apply_reply";
  return replyRecord({ parent: request.headerFrame, type, replyId, session, date, metadata, content: JSON.stringify(content), buffers });
}
