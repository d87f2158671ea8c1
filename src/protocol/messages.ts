/**
 * Messages: the Jupyter wire parts (header, parent header, metadata, content) plus binary buffers.
 */
import type { Authenticator } from "./auth.js";
import { newMsgId } from "./ids.js";
import { isoMicro } from "./time.js";
import { MSG_SPEC_VERSION } from "./version.js";
import { decodeRaw, encodeFrames, JSON_FRAMES, type RawMessage, type Tail } from "./wire.js";

export interface Header {
  msg_id: string;
  msg_type: string;
  session: string;
  date: string;
  version: string;
  username?: string;
}

export type Json = Record<string, unknown>;

export interface OutMessage {
  header: Header;
  parent?: Header | null;
  metadata?: Json;
  content?: Json;
  buffers?: readonly Uint8Array[];
  /** The metadata and content as JSON already (the many tasks of one map share them): used instead of stringifying those two. */
  texts?: { metadata: string; content: string };
}

/** A new header; `ms` (epoch milliseconds, default now) is its date. */
export function makeHeader(msgType: string, session: string, msgId: string = newMsgId(), ms?: number): Header {
  return { msg_id: msgId, msg_type: msgType, session, date: isoMicro(ms), version: MSG_SPEC_VERSION };
}

function jsonText(value: unknown): string {
  return value === undefined || value === null ? "{}" : JSON.stringify(value);
}

/** Sign and frame a message: the chunks to write on the stream. */
export function encodeMessage(auth: Authenticator, msg: OutMessage): Uint8Array[] {
  const t = msg.texts;
  const text = [jsonText(msg.header), jsonText(msg.parent), t?.metadata ?? jsonText(msg.metadata), t?.content ?? jsonText(msg.content)];
  const buffers = msg.buffers ?? [];
  const small = auth.encodeSmall(text, buffers);
  if (small !== null) return small;
  const json = text.map((t) => Buffer.from(t, "utf8"));
  return encodeFrames([auth.sign(json, buffers), ...json, ...buffers]);
}

/** Which repeated frame: the parent header, the metadata or the content. */
export type FrameSlot = 0 | 1 | 2;
const PARENT: FrameSlot = 0;
const METADATA: FrameSlot = 1;
const CONTENT: FrameSlot = 2;

/**
 * JSON frames that repeat byte for byte from one message to the next: every task of a map has the
 * same parent header (none), metadata and content, and so do repeated calls of one function. For
 * each of the three it keeps the last frame and its parsed value, and hands out that value again
 * while the bytes are the same: a comparison of a few hundred bytes instead of a string and a
 * parse per task. A value that may be handed out again is frozen, deeply, so no task can change
 * what the next one reads.
 */
export class FrameMemo {
  readonly #bytes: Array<Buffer | null> = [null, null, null];
  readonly #values: Json[] = [{}, {}, {}];

  parse(slot: FrameSlot, frame: Buffer, what: string): Json {
    const last = this.#bytes[slot]!;
    if (last !== null && last.equals(frame)) return this.#values[slot]!;
    const value = deepFreeze(parseObject(frame, what));
    this.#bytes[slot] = Buffer.from(frame); // a copy: the frame may be a view of a buffer that is reused
    this.#values[slot] = value;
    return value;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * A received, authenticated message. The header, parent header and metadata are parsed on arrival
 * (routing needs them); the content is parsed when first read, so a forwarder never parses it.
 * With a `FrameMemo`, the parent header, metadata and content come from it (frozen).
 */
export class Incoming {
  readonly header: Header;
  readonly parent: Header | Record<string, never>;
  readonly metadata: Json;
  readonly raw: Buffer[];
  readonly size: number;
  readonly #message: RawMessage;
  readonly #memo: FrameMemo | null;
  #content: Json | undefined;

  constructor(message: RawMessage, known?: { header: Header; metadata: Json }, memo: FrameMemo | null = null) {
    this.#message = message;
    this.raw = message.raw;
    this.size = message.size;
    this.#memo = memo;
    if (known !== undefined) {
      this.header = known.header;
      this.parent = {};
      this.metadata = known.metadata;
      return;
    }
    this.header = parseObject(message.head[1]!, "header") as unknown as Header;
    this.parent = (memo === null ? parseObject(message.head[2]!, "parent header") : memo.parse(PARENT, message.head[2]!, "parent header")) as Header | Record<string, never>;
    this.metadata = memo === null ? parseObject(message.head[3]!, "metadata") : memo.parse(METADATA, message.head[3]!, "metadata");
    if (typeof this.header.msg_type !== "string" || typeof this.header.msg_id !== "string") {
      throw new SyntaxError("header lacks msg_id or msg_type");
    }
  }

  /**
   * A message with no parent header whose header and metadata are known without reading it: a
   * task of a group the controller authenticated as a whole (see `task_group`). Its frames are
   * decoded only if its content or buffers are asked for.
   */
  static known(raw: Buffer, header: Header, metadata: Json): Incoming {
    return new Incoming(new Undecoded(raw), { header, metadata });
  }

  get msgType(): string {
    return this.header.msg_type;
  }

  get content(): Json {
    if (this.#content !== undefined) return this.#content;
    const frame = this.#message.head[JSON_FRAMES]!;
    return (this.#content = this.#memo === null ? parseObject(frame, "content") : this.#memo.parse(CONTENT, frame, "content"));
  }

  get buffers(): Buffer[] {
    return this.#message.buffers();
  }

  /** The header as the JSON text it arrived as (a reply's parent header, without stringifying it again). */
  get headerFrame(): Buffer {
    return this.#message.head[1]!;
  }

  /** A large message a forwarder passes on while it arrives (see `Tail`), or null. */
  get tail(): Tail | null {
    return this.#message.tail;
  }

  /** The parent's msg_id, or undefined. */
  get parentId(): string | undefined {
    return (this.parent as Partial<Header>).msg_id;
  }
}

function parseObject(frame: Buffer, what: string): Json {
  const value: unknown = JSON.parse(frame.toString("utf8"));
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new SyntaxError(`${what} is not a JSON object`);
  }
  return value as Json;
}

/** One framed message's bytes, decoded only when its frames are asked for (see `Incoming.known`). */
class Undecoded implements RawMessage {
  readonly raw: Buffer[];
  readonly size: number;
  readonly tail = null;
  readonly bufferTag = null;
  #decoded: RawMessage | null = null;

  constructor(raw: Buffer) {
    this.raw = [raw];
    this.size = raw.length;
  }

  #message(): RawMessage {
    return (this.#decoded ??= decodeRaw(this.raw));
  }

  get head(): Buffer[] {
    return this.#message().head;
  }

  get bufferLengths(): number[] {
    return this.#message().bufferLengths;
  }

  buffers(): Buffer[] {
    return this.#message().buffers();
  }
}
