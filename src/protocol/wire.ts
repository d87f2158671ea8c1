/**
 * Stream framing. One message on the stream is
 *
 *   u32 total | u32 nframes | u32 len[0] … u32 len[n-1] | frame 0 … frame n-1
 *
 * (little-endian; `total` counts every byte after itself). Frame 0 authenticates the message,
 * frames 1–4 are the Jupyter parts (header, parent header, metadata, content) as JSON, the rest
 * are binary buffers. The decoder keeps the received chunks as they came, so a forwarder can write
 * a message on without copying it, and copies a frame only when it spans chunks.
 */

import type { StreamMac } from "./auth.js";

export const JSON_FRAMES = 4;
export const MIN_FRAMES = 1 + JSON_FRAMES;
export const DEFAULT_MAX_MESSAGE = 2 ** 32 - 1;
export const DEFAULT_MAX_FRAMES = 100_000;
/** An assembling decoder streams messages at least this large straight into their frames' buffers. */
export const STREAM_MIN_MESSAGE = 1024 * 1024;
/** In a streamed message, binary frames at least this large get a buffer of their own (aligned at 0). */
export const OWN_BUFFER_MIN = 64 * 1024;
/** A socket may read straight into a frame's own buffer while at least this much of it is still to come. */
const DIRECT_READ_MIN = 64 * 1024;
/** A message passed on while it arrives is read into blocks of this size, each read after the last. */
const TAIL_BLOCK = 1024 * 1024;

/**
 * Where a streamed message's large binary frame should land: given the message's head frames (auth
 * and the four JSON frames, complete by then) and the frame's length, a buffer of exactly that
 * length to receive it, or null for a fresh one. A receiver that knows what is coming (a gather
 * into one array) can so have the bytes read straight into their final place.
 */
export type Landing = (head: readonly Buffer[], len: number) => Buffer | null;

/** The MAC to compute over a streamed message's binary frames, from its auth frame (frame 0), or null for none. */
export type MacStart = (auth: Buffer) => StreamMac | null;

export class FramingError extends Error {
  override name = "FramingError";
}

/**
 * A complete message as bytes: `raw` is the exact stream bytes (to forward), `head` the auth frame
 * and the four JSON frames, `buffers()` the binary frames (extracted on demand: a forwarder never
 * touches them).
 */
export interface RawMessage {
  raw: Buffer[];
  head: Buffer[];
  bufferLengths: number[];
  size: number;
  buffers(): Buffer[];
  /**
   * The MAC of the binary frames, computed while a streamed message arrived (`MacStart`), for the
   * auth check to compare instead of reading the frames again; else null.
   */
  bufferTag: Buffer | null;
  /** A message passed on while it arrives (see `Tail`): its bytes so far, and those to come; else null. */
  tail: Tail | null;
}

const OPEN = 0;
const DONE = 1;
const ABORTED = 2;

/**
 * The bytes of a large message that a forwarder passes on while they arrive (cut-through), instead
 * of holding the whole message before writing its first byte on. `chunks` is the message's `raw`:
 * what has arrived so far, growing until the message ends; listeners hear of each new chunk and of
 * the end. A message whose sender goes away half-sent is aborted: each receiver pads what is
 * missing, so that the framing holds and the receiving end's buffer MAC fails (dropped, counted).
 */
export class Tail {
  readonly chunks: Buffer[];
  /** Bytes of the whole message on the wire. */
  readonly total: number;
  received = 0;
  #state = OPEN;
  #keep = true;
  #listeners: Array<() => void> = [];

  constructor(chunks: Buffer[], total: number) {
    this.chunks = chunks;
    this.total = total;
    for (const c of chunks) this.received += c.length;
  }

  /** Every byte has arrived. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** The sender went away before the end. */
  get aborted(): boolean {
    return this.#state === ABORTED;
  }

  get ended(): boolean {
    return this.#state !== OPEN;
  }

  /** Call `fn` on each new chunk and at the end (not for what is already here). */
  listen(fn: () => void): void {
    if (this.#state === OPEN) this.#listeners.push(fn);
  }

  /** Nobody will read this message (it failed its checks): count the rest of its bytes, keep none. */
  discard(): void {
    this.#keep = false;
    this.#listeners = [];
    this.chunks.length = 0;
  }

  append(chunk: Buffer): void {
    this.received += chunk.length;
    if (!this.#keep) return;
    this.chunks.push(chunk);
    for (const fn of this.#listeners) fn();
  }

  finish(): void {
    this.#end(DONE);
  }

  abort(): void {
    this.#end(ABORTED);
  }

  #end(state: number): void {
    if (this.#state !== OPEN) return;
    this.#state = state;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const fn of listeners) fn();
  }
}

/**
 * Decides, from its auth frame, whether a large message may be passed on before its buffers are
 * in: only when the head alone authenticates it (its buffers are checked by the receiving end).
 */
export type PassOn = (auth: Buffer) => boolean;

/** Encode frames into the chunks to write: a prefix (lengths) followed by the frames themselves. */
export function encodeFrames(frames: readonly Uint8Array[]): Uint8Array[] {
  const n = frames.length;
  const prefix = Buffer.allocUnsafe(8 + 4 * n);
  let total = 4 + 4 * n;
  for (let i = 0; i < n; i++) {
    const len = frames[i]!.byteLength;
    prefix.writeUInt32LE(len, 8 + 4 * i);
    total += len;
  }
  if (total > DEFAULT_MAX_MESSAGE) throw new RangeError(`message of ${total} bytes exceeds the 4 GiB frame limit`);
  prefix.writeUInt32LE(total, 0);
  prefix.writeUInt32LE(n, 4);
  return [prefix, ...frames];
}

/**
 * A message with an empty auth frame, in one buffer: frames given as text (UTF-8) or bytes. For
 * what is stored, never sent (the controller's record of a reply): no signature, one allocation.
 */
export function frameUnsigned(frames: readonly (string | Uint8Array)[]): Buffer {
  const n = frames.length + 1;
  const lens = new Array<number>(n);
  lens[0] = 0;
  let total = 4 + 4 * n;
  for (let i = 1; i < n; i++) {
    const f = frames[i - 1]!;
    total += lens[i] = typeof f === "string" ? Buffer.byteLength(f, "utf8") : f.byteLength;
  }
  const out = Buffer.allocUnsafe(4 + total);
  out.writeUInt32LE(total, 0);
  let at = out.writeUInt32LE(n, 4);
  for (let i = 0; i < n; i++) at = out.writeUInt32LE(lens[i]!, at);
  for (const f of frames) at += typeof f === "string" ? out.write(f, at, "utf8") : (out.set(f, at), f.byteLength);
  return out;
}

/** Incremental decoder: feed chunks, get whole messages. Throws FramingError on garbage. */
export class FrameDecoder {
  /** Largest message accepted (a connection lowers it until the peer is authenticated). */
  maxMessage: number;
  readonly #maxFrames: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1; // total bytes of the message at the head, once known
  #checked = false; // frame table of the head message validated
  #lens: number[] = []; // its frame lengths, once validated
  readonly #assemble: boolean;
  readonly #landing: Landing | null;
  readonly #mac: MacStart | null;
  #assembly: Assembly | null = null;
  #directBytes = 0;
  readonly #passOn: PassOn | null;
  /** The message being passed on while it arrives, and how many of its bytes are still to come. */
  #tail: RawMessage | null = null;
  #tailLeft = 0;
  /** The head message was already looked at for passing on (and refused). */
  #passChecked = false;
  /** Where a passed-on message's bytes are read (`directTarget`), and how much of it is filled. */
  #block: Buffer | null = null;
  #blockAt = 0;

  /**
   * `assemble`: the reader keeps the frames, not the stream bytes (an endpoint, not a forwarder):
   * large messages are then copied into their frames' own buffers as they arrive, instead of
   * being kept as chunks and copied once complete. `mac` then gives the MAC to compute over the
   * binary frames of such a message as their bytes come in (the result is `bufferTag`).
   *
   * `passOn` (a forwarder): a message of at least STREAM_MIN_MESSAGE bytes is returned as soon as
   * its head frames are in, with a `tail` that receives the rest as it comes; when the last byte
   * is in, the same message is returned again, its tail done.
   */
  constructor(opts: { maxMessage?: number; maxFrames?: number; assemble?: boolean; landing?: Landing; mac?: MacStart; passOn?: PassOn } = {}) {
    this.maxMessage = opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
    this.#maxFrames = opts.maxFrames ?? DEFAULT_MAX_FRAMES;
    this.#assemble = opts.assemble ?? false;
    this.#landing = opts.landing ?? null;
    this.#mac = opts.mac ?? null;
    this.#passOn = opts.assemble === true ? null : (opts.passOn ?? null);
  }

  /** The sender went away: a message being passed on ends here, aborted. */
  abortTail(): void {
    const m = this.#tail;
    if (m === null) return;
    this.#tail = null;
    this.#block = null;
    m.tail!.abort();
  }

  get buffered(): number {
    return this.#buffered;
  }

  /** Bytes that were read straight into their frames (`pushDirect`), none copied out of a read buffer. */
  get directBytes(): number {
    return this.#directBytes;
  }

  /**
   * Add a chunk; returns every message it completes. A `transient` chunk is a view of a read
   * buffer that the next read overwrites: what the decoder keeps of it is copied (bytes streamed
   * into a message being assembled are copied there anyway).
   */
  push(chunk: Buffer, transient = false): RawMessage[] {
    const out: RawMessage[] = [];
    if (this.#assembly !== null) {
      const rest = this.#feed(chunk, out);
      if (rest === null) return out;
      chunk = rest;
    }
    if (this.#tail !== null) {
      const rest = this.#feedTail(chunk, transient, out);
      if (rest === null) return out;
      chunk = rest;
    }
    if (transient) chunk = copyOf(chunk);
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < 4) break;
        const total = this.#peekU32(0);
        if (total < 4 + 4 * MIN_FRAMES || total > this.maxMessage) {
          throw new FramingError(`bad message length ${total}`);
        }
        this.#need = total + 4;
      }
      // check the frame table as soon as it is here: garbage is refused without waiting for "the rest"
      if (!this.#checked && !this.#checkTable()) break;
      if (this.#assemble && this.#need >= STREAM_MIN_MESSAGE && this.#buffered < this.#need) {
        this.#startAssembly(out);
        if (this.#assembly !== null) break;
        continue;
      }
      if (this.#passOn !== null && !this.#passChecked && this.#need >= STREAM_MIN_MESSAGE && this.#buffered < this.#need) {
        if (this.#buffered < this.#headEnd()) break;
        if (this.#startTail(out)) break;
      }
      if (this.#buffered < this.#need) break;
      const raw = this.#take(this.#need);
      this.#nextMessage();
      out.push(split(raw, this.#lens));
    }
    return out;
  }

  /**
   * Where the next read may go directly, or null: the rest of the big binary frame being
   * assembled. A socket that reads there saves the copy out of its read buffer, and then reports
   * the bytes with `pushDirect`. The view ends where the frame ends, so a read cannot spill into
   * what follows.
   */
  directTarget(): Buffer | null {
    if (this.#assembly !== null) return this.#assembly.target(DIRECT_READ_MIN);
    if (this.#tail === null || this.#tailLeft < DIRECT_READ_MIN) return null;
    // a message passed on: its bytes are read into blocks of their own, one read after another,
    // which are then written on and kept as they are (no copy out of a shared read buffer)
    let block = this.#block;
    if (block === null || block.length - this.#blockAt < DIRECT_READ_MIN) {
      block = this.#block = Buffer.allocUnsafeSlow(Math.min(this.#tailLeft, TAIL_BLOCK));
      this.#blockAt = 0;
    }
    return block.subarray(this.#blockAt, this.#blockAt + Math.min(block.length - this.#blockAt, this.#tailLeft));
  }

  /** `n` bytes were read into the view the last `directTarget()` gave; returns the message they complete, if any. */
  pushDirect(n: number): RawMessage[] {
    const a = this.#assembly;
    if (a === null && this.#tail !== null && this.#block !== null && n <= this.#tailLeft && this.#blockAt + n <= this.#block.length) {
      const part = this.#block.subarray(this.#blockAt, this.#blockAt + n);
      this.#blockAt += n;
      this.#directBytes += n;
      const out: RawMessage[] = [];
      this.#feedTail(part, false, out);
      return out;
    }
    if (a === null) throw new FramingError("bytes read into a frame that is not being assembled");
    a.advance(n);
    this.#directBytes += n;
    return a.pos < a.need ? [] : [this.#assembled(a)];
  }

  /** Bytes from the start of the head message to the end of its head frames (auth and JSON). */
  #headEnd(): number {
    let end = 8 + 4 * this.#lens.length;
    for (let i = 0; i < MIN_FRAMES; i++) end += this.#lens[i]!;
    return end;
  }

  /**
   * The head message's head frames are in and the rest is not: return it now, with a tail for the
   * rest, if its auth frame allows. True when it was started (everything buffered went into it).
   */
  #startTail(out: RawMessage[]): boolean {
    this.#passChecked = true;
    const lens = this.#lens;
    const reader = new SpanReader(this.#chunks);
    let offset = 8 + 4 * lens.length;
    const head: Buffer[] = [];
    for (let i = 0; i < MIN_FRAMES; i++) {
      head.push(reader.slice(offset, lens[i]!));
      offset += lens[i]!;
    }
    if (!this.#passOn!(head[0]!)) return false;
    const raw = this.#take(this.#buffered);
    const tail = new Tail(raw, this.#need);
    const bufferLengths = lens.slice(MIN_FRAMES);
    let cached: Buffer[] | undefined;
    const buffers = (): Buffer[] => {
      if (!tail.done) throw new FramingError("the message's buffers are still arriving");
      return (cached ??= split(raw, lens).buffers());
    };
    const message: RawMessage = { raw, head, bufferLengths, size: this.#need, buffers, bufferTag: null, tail };
    this.#tail = message;
    this.#tailLeft = this.#need - tail.received;
    out.push(message);
    return true;
  }

  /** Feed bytes of the message being passed on; returns what is left over after it, or null. */
  #feedTail(chunk: Buffer, transient: boolean, out: RawMessage[]): Buffer | null {
    const message = this.#tail!;
    const n = Math.min(chunk.length, this.#tailLeft);
    const part = n === chunk.length ? chunk : chunk.subarray(0, n);
    message.tail!.append(transient ? copyOf(part) : part);
    this.#tailLeft -= n;
    if (this.#tailLeft > 0) return null;
    this.#tail = null;
    this.#block = null;
    this.#nextMessage();
    message.tail!.finish();
    out.push(message);
    return n < chunk.length ? chunk.subarray(n) : null;
  }

  /** Begin streaming the head message into its frames: what is buffered goes in now, the rest as it comes. */
  #startAssembly(out: RawMessage[]): void {
    this.#assembly = new Assembly(this.#lens, this.#need, this.#landing, this.#mac);
    const buffered = this.#take(this.#buffered);
    for (const part of buffered) this.#feed(part, out);
  }

  /** Feed bytes of the message being assembled; returns what is left over after it, or null. */
  #feed(chunk: Buffer, out: RawMessage[]): Buffer | null {
    const a = this.#assembly!;
    const n = Math.min(chunk.length, a.need - a.pos);
    a.write(chunk, n);
    if (a.pos < a.need) return null;
    out.push(this.#assembled(a));
    return n < chunk.length ? chunk.subarray(n) : null;
  }

  /** The message being assembled is complete: the decoder moves on to the next. */
  #assembled(a: Assembly): RawMessage {
    this.#assembly = null;
    this.#nextMessage();
    return a.message();
  }

  /** The head message is done with: the next one's lengths are read afresh. */
  #nextMessage(): void {
    this.#need = -1;
    this.#checked = false;
    this.#passChecked = false;
  }

  #peekU32(offset: number): number {
    const head = this.#chunks[0]!;
    if (head.length >= offset + 4) return head.readUInt32LE(offset);
    return Buffer.concat(this.#chunks, offset + 4).readUInt32LE(offset);
  }

  /** Validate frame count and lengths of the head message; false while they have not all arrived. */
  #checkTable(): boolean {
    if (this.#buffered < 8) return false;
    const n = this.#peekU32(4);
    const total = this.#need - 4;
    if (n < MIN_FRAMES || n > this.#maxFrames || 4 + 4 * n > total) throw new FramingError(`bad frame count ${n}`);
    if (this.#buffered < 8 + 4 * n) return false;
    const head = this.#chunks[0]!;
    const table = head.length >= 8 + 4 * n ? head : Buffer.concat(this.#chunks, 8 + 4 * n);
    const lens = new Array<number>(n);
    let sum = 4 + 4 * n;
    for (let i = 0; i < n; i++) sum += lens[i] = table.readUInt32LE(8 + 4 * i);
    if (sum !== total) throw new FramingError(`frame lengths do not add up (${sum} of ${total} bytes)`);
    this.#lens = lens;
    this.#checked = true;
    return true;
  }

  /** Remove exactly n bytes from the front, as slices of the received chunks. */
  #take(n: number): Buffer[] {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const head = this.#chunks[0]!;
      if (head.length <= left) {
        parts.push(head);
        this.#chunks.shift();
        left -= head.length;
      } else {
        parts.push(head.subarray(0, left));
        this.#chunks[0] = head.subarray(left);
        left = 0;
      }
    }
    this.#buffered -= n;
    return parts;
  }

}

const EMPTY = Buffer.alloc(0);

function copyOf(chunk: Buffer): Buffer {
  const out = Buffer.allocUnsafe(chunk.length);
  out.set(chunk, 0);
  return out;
}

/** A whole message's frames, from its chunks and the frame lengths the decoder already validated. */
function split(raw: Buffer[], lens: readonly number[]): RawMessage {
  const size = raw.reduce((s, b) => s + b.length, 0);
  const reader = new SpanReader(raw);
  let offset = 8 + 4 * lens.length;
  const head: Buffer[] = [];
  const spans: Array<[number, number]> = [];
  lens.forEach((len, i) => {
    if (i < MIN_FRAMES) head.push(reader.slice(offset, len));
    else spans.push([offset, len]);
    offset += len;
  });
  let cached: Buffer[] | undefined;
  const buffers = () => (cached ??= spans.map(([o, l]) => reader.slice(o, l)));
  return { raw, head, bufferLengths: spans.map((sp) => sp[1]), size, buffers, bufferTag: null, tail: null };
}

/** A byte range of a message being assembled and where it goes; `own`: a frame's own buffer, made when first reached. */
interface Segment {
  start: number;
  end: number;
  dest: Buffer | null;
  at: number;
  own: boolean;
  frame: number;
}

/**
 * A large message being received straight into its frames: each big binary frame into a buffer of
 * its own (offset 0, so typed arrays over it are aligned, unless a landing gives the place),
 * everything else into one small buffer. The binary frames' bytes go through the MAC as they land,
 * in stream order (which is frame order), while they are still in the cache.
 */
class Assembly {
  readonly need: number;
  pos = 0;
  readonly #frames: Buffer[] = [];
  readonly #lens: number[];
  readonly #segments: Segment[] = [];
  readonly #landing: Landing | null;
  #macStart: MacStart | null;
  /** Made when the first binary frame's bytes arrive (the auth frame is in by then); null until then or without one. */
  #mac: StreamMac | null = null;
  #segment = 0;

  constructor(lens: number[], need: number, landing: Landing | null, mac: MacStart | null) {
    this.need = need;
    this.#lens = lens;
    this.#landing = landing;
    this.#macStart = mac;
    const own = lens.map((len, i) => i >= MIN_FRAMES && len >= OWN_BUFFER_MIN);
    const restSize = need - lens.reduce((s, len, i) => s + (own[i] ? len : 0), 0);
    const rest = Buffer.allocUnsafe(restSize);
    let offset = 8 + 4 * lens.length;
    let restAt = offset;
    this.#segments.push({ start: 0, end: offset, dest: rest, at: 0, own: false, frame: -1 });
    lens.forEach((len, i) => {
      if (own[i]) {
        // made when the bytes reach it: by then the head frames are in, for the landing to read
        this.#frames.push(EMPTY);
        this.#segments.push({ start: offset, end: offset + len, dest: null, at: 0, own: true, frame: i });
      } else {
        this.#frames.push(rest.subarray(restAt, restAt + len));
        this.#segments.push({ start: offset, end: offset + len, dest: rest, at: restAt, own: false, frame: i });
        restAt += len;
      }
      offset += len;
    });
  }

  /** Copy the first `n` bytes of `chunk` to where they belong. */
  write(chunk: Buffer, n: number): void {
    let from = 0;
    while (from < n) {
      const seg = this.#segments[this.#segment]!;
      const take = Math.min(n - from, seg.end - this.pos);
      const piece = chunk.subarray(from, from + take);
      (seg.dest ?? this.#own(seg)).set(piece, seg.at + (this.pos - seg.start));
      if (seg.frame >= MIN_FRAMES) this.#authenticate(piece);
      from += take;
      this.pos += take;
      if (this.pos === seg.end) this.#segment += 1;
    }
  }

  /** The rest of the current segment, if it is a frame's own buffer with at least `min` bytes to come. */
  target(min: number): Buffer | null {
    const seg = this.#segments[this.#segment];
    if (seg === undefined || !seg.own || seg.end - this.pos < min) return null;
    return (seg.dest ?? this.#own(seg)).subarray(this.pos - seg.start);
  }

  /** A frame's own buffer: where the landing says, else fresh memory. */
  #own(seg: Segment): Buffer {
    const len = seg.end - seg.start;
    const landed = this.#landing?.(this.#frames.slice(0, MIN_FRAMES), len) ?? null;
    const dest = landed !== null && landed.byteLength === len ? landed : Buffer.allocUnsafeSlow(len);
    seg.dest = dest;
    this.#frames[seg.frame] = dest;
    return dest;
  }

  /** `n` bytes were written into the view `target` gave. */
  advance(n: number): void {
    const seg = this.#segments[this.#segment]!;
    if (!seg.own || this.pos + n > seg.end) throw new FramingError("a direct read ran past its frame");
    const at = this.pos - seg.start;
    this.#authenticate(seg.dest!.subarray(at, at + n));
    this.pos += n;
    if (this.pos === seg.end) this.#segment += 1;
  }

  /** Feed bytes of a binary frame, just landed, to the MAC. */
  #authenticate(piece: Buffer): void {
    if (this.#macStart === null) return;
    // the first binary bytes: the auth frame (frame 0, in the small buffer) is complete
    if (this.#mac === null) {
      this.#mac = this.#macStart(this.#frames[0]!);
      if (this.#mac === null) {
        this.#macStart = null;
        return;
      }
    }
    this.#mac.update(piece);
  }

  message(): RawMessage {
    const frames = this.#frames;
    // the same shape as split()'s, so the code reading messages sees one kind of object whatever
    // their size (two kinds made V8 drop its optimized code for the small ones after a large one);
    // the stream bytes are the frames framed again (no copy)
    const buffers = frames.slice(MIN_FRAMES);
    return {
      raw: encodeFrames(frames) as Buffer[], head: frames.slice(0, MIN_FRAMES), bufferLengths: this.#lens.slice(MIN_FRAMES),
      size: this.need, buffers: () => buffers, bufferTag: this.#mac?.digest() ?? null, tail: null,
    };
  }
}

/** Random access into a list of chunks; copies only when a span crosses chunk boundaries. */
class SpanReader {
  readonly #parts: Buffer[];
  readonly #starts: number[] = [];

  constructor(parts: Buffer[]) {
    this.#parts = parts;
    let pos = 0;
    for (const p of parts) {
      this.#starts.push(pos);
      pos += p.length;
    }
  }

  slice(offset: number, len: number): Buffer {
    let i = this.#find(offset);
    const first = this.#parts[i]!;
    const at = offset - this.#starts[i]!;
    if (at + len <= first.length) return first.subarray(at, at + len);
    // crosses chunks: one copy into a buffer of its own (so large frames start aligned at offset 0)
    const out = len >= 4096 ? Buffer.allocUnsafeSlow(len) : Buffer.allocUnsafe(len);
    out.set(first.subarray(at), 0);
    let written = first.length - at;
    while (written < len) {
      i += 1;
      const part = this.#parts[i]!;
      const n = Math.min(part.length, len - written);
      out.set(n === part.length ? part : part.subarray(0, n), written);
      written += n;
    }
    return out;
  }

  #find(offset: number): number {
    // chunks are few for small messages and scanned once per frame for large ones
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** Decode one whole message held as chunks (a stored or self-made message). */
export function decodeRaw(raw: readonly Uint8Array[]): RawMessage {
  const decoder = new FrameDecoder();
  let out: RawMessage[] = [];
  for (const chunk of raw) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    out = out.concat(decoder.push(b));
  }
  if (out.length !== 1 || decoder.buffered !== 0) throw new FramingError("not exactly one message");
  return out[0]!;
}
