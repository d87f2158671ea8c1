/**
 * One authenticated, framed connection over a node:net socket (TCP or Unix). Handles the handshake,
 * drops what does not verify (counting why), batches writes per event-loop turn and reports
 * backpressure. Used by the controller, engines and clients alike.
 */
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { connect, Socket, type NetConnectOpts, type OnReadOpts } from "node:net";
import { GROUP_MAX_BYTES, GROUP_MAX_ITEMS, headAuthenticates, type Authenticator, type DigestHistory } from "./auth.js";
import type { Logger } from "./log.js";
import { encodeMessage, Incoming, makeHeader, type FrameMemo, type Json, type OutMessage } from "./messages.js";
import { major, NODE_VERSION, PROTOCOL_VERSION, TSPARALLEL_VERSION } from "./version.js";
import { DEFAULT_MAX_MESSAGE, FrameDecoder, FramingError, type Landing, type RawMessage, type Tail } from "./wire.js";

export type Role = "client" | "engine" | "heart";

/** Counters of dropped input, by reason; shared by every connection of a process. */
export class DropStats {
  readonly counts = new Map<string, number>();
  total = 0;

  count(reason: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.total += 1;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

export interface ConnectionOptions {
  auth: Authenticator;
  history: DigestHistory;
  /** Check buffer MACs (endpoints); a forwarder that never reads buffers passes false. */
  verifyBuffers: boolean;
  log: Logger;
  stats: DropStats;
  maxMessage?: number;
  /** Bytes queued for writing above which `send` reports backpressure. */
  highWater?: number;
  /**
   * A forwarder: bytes that may wait to be written to this peer before a sender of more for it is
   * paused (`full`; default `highWater`). Set far above `highWater`, a peer that is slow to read (an
   * engine busy in user code) does not stop a sender's messages to everyone else.
   */
  forwardLimit?: number;
  /** Called when passing a message on to this peer paused its sender (see `forwardLimit`). */
  onSenderPaused?: () => void;
  /** The socket reads into a buffer of its own (see `connectReading`): its data arrives here, not as "data" events. */
  reader?: ReadHook;
  /** Where large binary frames of incoming messages land (see `Landing`); default: fresh memory. */
  landing?: Landing;
  /**
   * Parse JSON frames that repeat from one message to the next once (see `FrameMemo`): the parent
   * header, metadata and content of the messages read here are then frozen. For a reader that
   * never changes them (an engine's direct links).
   */
  frames?: FrameMemo;
  /**
   * A forwarder (verifyBuffers false): emit "head" for a large message as soon as its head is in
   * and authenticated, so its bytes can be passed on while they arrive (`writeTail`); "message"
   * follows when its last byte is in.
   */
  passOn?: boolean;
  /**
   * Hand writes to the socket once per event-loop round, after every I/O callback of the round
   * (setImmediate), instead of after the callback that made them (nextTick). A forwarder that
   * hears from several peers at once so writes to each of them once, not once per message it read:
   * fewer writes, and fewer wake-ups of the peers. Costs a peer a few microseconds of latency.
   */
  coalesce?: boolean;
}

/**
 * Where a socket made by `connectReading` delivers what it reads: `deliver` gets a view of the
 * shared read buffer; or, while `target` names a buffer (the rest of a large frame being received),
 * the socket reads straight into it and `direct` gets the byte count.
 */
export interface ReadHook {
  deliver: (chunk: Buffer) => void;
  target: () => Buffer | null;
  direct: (n: number) => void;
}

/**
 * The read buffer of every socket of this process that reads with `onread`: large enough that bulk
 * data arrives in few reads. One is enough: the event loop reads one socket at a time and the
 * decoder copies what it keeps before the next read, so a process with a thousand connections
 * still holds 256 KB of read buffer, not 256 MB.
 */
const READ_BUFFER = 256 * 1024;
let sharedReadBuffer: Buffer | null = null;

/**
 * A hook and the `onread` option that feeds it. Node asks for a buffer before each read and calls
 * back with that buffer: the shared one, or the hook's target (a large frame's own buffer, which
 * then needs no copy out of the read buffer).
 */
function readHook(): { reader: ReadHook; onread: OnReadOpts } {
  const reader: ReadHook = { deliver: () => {}, target: () => null, direct: () => {} };
  const shared = (sharedReadBuffer ??= Buffer.allocUnsafe(READ_BUFFER));
  let into: Buffer | null = null;
  const buffer = (): Buffer => (into = reader.target()) ?? shared;
  const callback = (n: number, buf: Uint8Array): boolean => {
    if (into !== null && buf.buffer === into.buffer && buf.byteOffset === into.byteOffset) reader.direct(n);
    else reader.deliver(Buffer.from(buf.buffer, buf.byteOffset, n));
    return true; // keep reading; backpressure pauses the socket itself
  };
  return { reader, onread: { buffer, callback } };
}

/**
 * Take over an accepted socket (from a server made with `pauseOnConnect: true`) so that it reads
 * like `connectReading`'s: its handle moves to a new Socket made with `onread`, and the paused
 * original is destroyed empty-handed (the server's connection count stays right). Node offers
 * `onread` only when a Socket is constructed, hence the move. If the handle cannot be moved, the
 * original socket is resumed and read as usual (reader: undefined).
 */
export function adoptReading(accepted: Socket): { socket: Socket; reader: ReadHook | undefined } {
  const raw = accepted as Socket & { _handle?: unknown };
  const handle = raw._handle;
  if (handle === null || handle === undefined || accepted.destroyed) {
    accepted.resume();
    return { socket: accepted, reader: undefined };
  }
  const { reader, onread } = readHook();
  let socket: Socket;
  try {
    socket = new Socket({ handle, readable: true, writable: true, onread } as ConstructorParameters<typeof Socket>[0]);
  } catch {
    accepted.resume();
    return { socket: accepted, reader: undefined };
  }
  raw._handle = null;
  accepted.destroy();
  return { socket, reader };
}

/**
 * Open an outgoing socket that reads into one reused buffer and hands each read straight to its
 * Connection: no allocation per read and none of the stream machinery between the socket and
 * the decoder (only sockets we open can do this: Node offers `onread` to `connect` alone).
 */
export function connectReading(options: NetConnectOpts): { socket: Socket; reader: ReadHook } {
  const { reader, onread } = readHook();
  return { socket: connect({ ...options, onread }), reader };
}

export interface Hello extends Json {
  role: Role;
  session: string;
  protocol: string;
  tsparallel: string;
  node: string;
}

export class HandshakeError extends Error {
  override name = "HandshakeError";
}

type State = "handshake" | "open" | "closed";

const EMPTY_CHUNK = Buffer.alloc(0);
/** Bytes written in one turn after which they are handed to the socket at once instead of at the end of the turn. */
const EARLY_FLUSH_BYTES = 64 * 1024;
/**
 * The first early flush of a turn comes sooner: the head of a burst (the first tasks of a map)
 * reaches the peer while the rest is still being encoded, so the peer's work starts at once.
 */
const FIRST_FLUSH_BYTES = 4 * 1024;
/** Chunks smaller than this are copied together before writing; larger ones are written as they are. */
const COALESCE_MAX_CHUNK = 16 * 1024;

/** Merge runs of small chunks into single buffers (few, large stream writes instead of many small ones). */
function coalesce(chunks: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const endRun = (): void => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const c of chunks) {
    if (c.byteLength >= COALESCE_MAX_CHUNK) {
      endRun();
      out.push(c);
    } else if (c.byteLength > 0) {
      run.push(c);
      runBytes += c.byteLength;
    }
  }
  endRun();
  return out;
}
const HANDSHAKE_MAX_MESSAGE = 64 * 1024;
/** What pads a passed-on message whose sender went away. */
const ZEROS = Buffer.alloc(256 * 1024);

/** A message this connection passes on while it arrives: the next of its chunks to write, bytes written. */
interface OutTail {
  tail: Tail;
  next: number;
  sent: number;
  source: Socket | null;
}

interface Events {
  message: [Incoming];
  head: [Incoming];
  close: [Error | null];
  drain: [];
}

export class Connection extends EventEmitter<Events> {
  readonly socket: Socket;
  readonly peer: string;
  hello: Hello | null = null;
  #state: State = "handshake";
  readonly #opts: ConnectionOptions;
  readonly #decoder: FrameDecoder;
  /** Chunks written this turn, handed to the socket together at the end of it. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** This turn has already flushed early: later writes wait for EARLY_FLUSH_BYTES. */
  #flushedEarly = false;
  /** Callbacks for "everything written this turn has been handed to the kernel". */
  #flushWaiters: Array<() => void> = [];
  #handshakeWaiter: ((m: Incoming | Error) => void) | null = null;
  #closeError: Error | null = null;
  /** The incoming message whose head was emitted and whose last bytes are still arriving (null if it was dropped). */
  #arriving: Incoming | null = null;
  /** The message being passed on through this connection while it arrives; writes made meanwhile wait in #held. */
  #outTail: OutTail | null = null;
  #held: Array<{ run: () => void; bytes: number }> = [];
  #heldBytes = 0;
  /** Task messages written with `writeGrouped` this turn, not yet sent; and the session that signs their group. */
  #group: Uint8Array[] | null = null;
  #groupBytes = 0;
  #groupSession = "";
  /** `task_group` messages of two or more tasks sent by `writeGrouped`. */
  groupsSent = 0;

  constructor(socket: Socket, opts: ConnectionOptions) {
    super();
    this.socket = socket;
    this.#opts = opts;
    // until the peer proves the key, accept only handshake-sized messages
    // (a decoder that assembles, as verifyBuffers asks, never passes on: it ignores passOn)
    this.#decoder = new FrameDecoder({
      maxMessage: HANDSHAKE_MAX_MESSAGE, assemble: opts.verifyBuffers, landing: opts.landing,
      mac: opts.verifyBuffers ? (frame) => opts.auth.bufferMac(frame) : undefined,
      passOn: opts.passOn === true ? headAuthenticates : undefined,
    });
    this.peer = socket.remoteAddress !== undefined ? `${socket.remoteAddress}:${socket.remotePort}` : "unix";
    socket.setNoDelay?.(true);
    if (opts.reader !== undefined) {
      opts.reader.deliver = (chunk) => this.#onData(chunk, true);
      opts.reader.target = () => this.#decoder.directTarget();
      opts.reader.direct = (n) => this.#onData(n, false);
    } else socket.on("data", (chunk: Buffer) => this.#onData(chunk, false));
    socket.on("drain", () => this.emit("drain"));
    socket.on("error", (err) => (this.#closeError ??= err));
    socket.on("close", () => this.#onClose());
  }

  get open(): boolean {
    return this.#state === "open";
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  /** True while the socket holds more unsent bytes than the high-water mark. */
  get backedUp(): boolean {
    return this.socket.writableLength + this.#pendingBytes + this.#heldBytes > this.#highWater;
  }

  get #highWater(): number {
    return this.#opts.highWater ?? 8 * 1024 * 1024;
  }

  /** True while more bytes wait to be written to this peer than `forwardLimit` allows: a forwarder pauses the sender. */
  get full(): boolean {
    return this.socket.writableLength + this.#pendingBytes + this.#heldBytes > (this.#opts.forwardLimit ?? this.#highWater);
  }

  /**
   * A forwarder wrote to this peer what `source` sent: while this peer is `full`, stop reading from
   * `source` (counted by `onSenderPaused`) until it drains or closes.
   */
  pauseWhileFull(source: Socket): void {
    if (source.isPaused() || !this.full) return;
    source.pause();
    this.#opts.onSenderPaused?.();
    const resume = (): void => {
      this.off("drain", resume);
      this.off("close", resume);
      source.resume();
    };
    this.on("drain", resume);
    this.on("close", resume);
  }

  /** Sign and send. Returns false when the peer is backed up (wait for "drain"). */
  send(msg: OutMessage): boolean {
    if (this.#state === "closed") return false;
    return this.write(encodeMessage(this.#opts.auth, msg));
  }

  /**
   * Write one task's signed message (at most GROUP_ITEM_MAX bytes) together with the others written
   * this way to this peer in the same callback: in one `task_group` message, signed by `session`,
   * whose buffers are the tasks' messages (protocol 1.2; the controller to an engine). Any other
   * write to this peer sends the pending group first, so nothing overtakes it; a group of one task
   * goes as that task's own message.
   */
  writeGrouped(chunk: Uint8Array, session: string): void {
    if (this.#group === null) {
      this.#group = [];
      this.#groupSession = session;
      process.nextTick(this.#sendGroup);
    }
    this.#group.push(chunk);
    this.#groupBytes += chunk.byteLength;
    if (this.#groupBytes >= GROUP_MAX_BYTES || this.#group.length >= GROUP_MAX_ITEMS) this.#sendGroup();
  }

  readonly #sendGroup = (): void => {
    const items = this.#group;
    if (items === null) return;
    this.#group = null;
    this.#groupBytes = 0;
    if (items.length === 1) return void this.write(items);
    this.groupsSent += 1;
    this.write(encodeMessage(this.#opts.auth, { header: makeHeader("task_group", this.#groupSession), content: { tasks: items.length }, buffers: items }));
  };

  /** Write already-framed chunks (a forwarded message). */
  write(chunks: readonly Uint8Array[]): boolean {
    if (this.#group !== null) this.#sendGroup();
    if (this.#state === "closed" || this.socket.destroyed) return false;
    if (this.#outTail !== null) return this.#hold(chunks);
    if (this.#pending.length === 0) {
      if (this.#opts.coalesce === true) setImmediate(this.#flushTurn);
      else process.nextTick(this.#flushTurn);
    }
    for (const c of chunks) {
      this.#pending.push(c);
      this.#pendingBytes += c.byteLength;
    }
    // a long run of writes in one turn (a map submitting thousands of tasks) goes out as it grows,
    // its head at once, so the peer starts on the first tasks while the rest are still being encoded
    if (this.#pendingBytes >= (this.#flushedEarly ? EARLY_FLUSH_BYTES : FIRST_FLUSH_BYTES)) {
      this.#flushedEarly = true;
      this.#flush();
    }
    return !this.backedUp;
  }

  /** Call `cb` once everything written so far has been handed to the kernel. */
  onFlushed(cb: () => void): void {
    if (this.#group !== null) this.#sendGroup();
    if (this.#state === "closed" || this.socket.destroyed) return;
    if (this.#outTail !== null) {
      this.#held.push({ run: () => this.onFlushed(cb), bytes: 0 });
      return;
    }
    this.#flushWaiters.push(cb);
    if (this.#pending.length === 0) this.#flush();
  }

  readonly #flushTurn = (): void => {
    this.#flushedEarly = false;
    if (this.#pending.length > 0) this.#flush();
  };

  /** Hand what was written so far to the socket now instead of at the end of this turn. */
  flush(): void {
    if (this.#group !== null) this.#sendGroup();
    if (this.#pending.length > 0 && this.#state !== "closed") this.#flush();
  }

  /**
   * Hand this turn's writes to the socket: runs of small chunks are copied into one buffer (one
   * stream write instead of one per frame), large chunks go as they are, all in one writev.
   */
  #flush(): void {
    const pending = this.#pending;
    const waiters = this.#flushWaiters;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#flushWaiters = [];
    const socket = this.socket;
    if (socket.destroyed) return;
    const done = waiters.length === 0 ? undefined : () => { for (const cb of waiters) cb(); };
    const out = coalesce(pending);
    if (out.length === 0) {
      if (done === undefined) return;
      // everything written so far is already in the kernel: no empty write (a syscall) to learn it
      if (socket.writableLength === 0) process.nextTick(done);
      else socket.write(EMPTY_CHUNK, done);
      return;
    }
    if (out.length > 1) socket.cork();
    for (let i = 0; i < out.length - 1; i++) socket.write(out[i]!);
    socket.write(out[out.length - 1]!, done);
    if (out.length > 1) socket.uncork();
  }

  /**
   * Pass on a message that is still arriving (cut-through): its bytes so far go out now and the
   * rest as they come, and writes made meanwhile wait until its last byte is out. `source` (the
   * socket the bytes come from) is paused while this one is `full`. If the message is aborted
   * (its sender went away), the missing bytes are sent as zeros: the framing holds and the
   * receiving end drops the message when its buffer MAC fails.
   */
  writeTail(tail: Tail, source: Socket | null): boolean {
    if (this.#group !== null) this.#sendGroup();
    if (this.#state === "closed" || this.socket.destroyed) return false;
    if (this.#outTail !== null) {
      this.#held.push({ run: () => this.writeTail(tail, source), bytes: 0 });
      return !this.backedUp;
    }
    if (this.#pending.length > 0) this.#flush(); // what was written before it goes first
    const out: OutTail = { tail, next: 0, sent: 0, source };
    this.#outTail = out;
    tail.listen(() => this.#pumpTail(out));
    this.#pumpTail(out);
    return !this.backedUp;
  }

  #pumpTail(out: OutTail): void {
    if (this.#outTail !== out) return;
    const socket = this.socket;
    if (this.#state === "closed" || socket.destroyed || socket.writableEnded) {
      this.#outTail = null;
      this.#held = [];
      this.#heldBytes = 0;
      return;
    }
    const { tail } = out;
    const chunks = tail.chunks;
    const corked = chunks.length - out.next > 1;
    if (corked) socket.cork();
    for (; out.next < chunks.length; out.next++) {
      const c = chunks[out.next]!;
      out.sent += c.length;
      socket.write(c);
    }
    if (corked) socket.uncork();
    if (tail.aborted) {
      for (let left = tail.total - out.sent; left > 0; left -= ZEROS.length) socket.write(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
      out.sent = tail.total;
    }
    if (!tail.ended) {
      if (out.source !== null) this.pauseWhileFull(out.source);
      return;
    }
    this.#outTail = null;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (let i = 0; i < held.length; i++) {
      held[i]!.run();
      if (this.#outTail !== null) {
        // another message passed on while it arrives: the rest waits behind it
        const rest = held.slice(i + 1);
        this.#held.unshift(...rest);
        for (const h of rest) this.#heldBytes += h.bytes;
        break;
      }
    }
    // a sender paused because of what was held here resumes on "drain" (the socket may not emit one)
    if (held.length > 0 && !this.backedUp) this.emit("drain");
  }

  #hold(chunks: readonly Uint8Array[]): boolean {
    let bytes = 0;
    for (const c of chunks) bytes += c.byteLength;
    this.#heldBytes += bytes;
    this.#held.push({ run: () => this.write(chunks), bytes });
    return !this.backedUp;
  }

  /** Close the connection; pending writes are flushed first unless `hard`. */
  close(hard = false): void {
    if (this.#state === "closed") return;
    if (hard) this.socket.destroy();
    else {
      if (this.#pending.length > 0) this.#flush();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
  }

  // ---- handshake ------------------------------------------------------------------------------

  /** Server side: challenge, check the hello, answer welcome or refuse. */
  async accept(session: string, timeoutMs: number, extra: Json = {}): Promise<Hello> {
    const nonce = randomBytes(16).toString("hex");
    this.send({ header: makeHeader("challenge", session), content: { nonce, ...versions() } });
    const msg = await this.#nextHandshakeMessage(timeoutMs);
    const hello = msg.content as Hello;
    if (msg.msgType !== "hello" || hello.nonce !== nonce) {
      this.#dropHandshake("handshake: expected a hello answering this connection's challenge");
      throw new HandshakeError("bad hello");
    }
    const mismatch = versionMismatch(hello);
    if (mismatch !== null) {
      this.send({ header: makeHeader("refuse", session), content: { reason: mismatch } });
      this.close();
      throw new HandshakeError(mismatch);
    }
    this.hello = hello;
    this.#opened();
    this.send({ header: makeHeader("welcome", session), content: { ...versions(), ...extra } });
    return hello;
  }

  /** Client/engine side: answer the challenge and wait for the welcome. */
  async initiate(hello: { role: Role; session: string } & Json, timeoutMs: number): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    const challenge = await this.#nextHandshakeMessage(timeoutMs);
    if (challenge.msgType !== "challenge") throw new HandshakeError(`expected a challenge, got ${challenge.msgType}`);
    const mismatch = versionMismatch(challenge.content);
    if (mismatch !== null) throw new HandshakeError(mismatch);
    this.send({ header: makeHeader("hello", hello.session), content: { ...hello, ...versions(), nonce: challenge.content.nonce } });
    const answer = await this.#nextHandshakeMessage(Math.max(1, deadline - Date.now()));
    if (answer.msgType === "refuse") throw new HandshakeError(String(answer.content.reason));
    if (answer.msgType !== "welcome") throw new HandshakeError(`expected welcome, got ${answer.msgType}`);
    return answer.content;
  }

  #opened(): void {
    this.#state = "open";
    this.#decoder.maxMessage = this.#opts.maxMessage ?? DEFAULT_MAX_MESSAGE;
  }

  #nextHandshakeMessage(timeoutMs: number): Promise<Incoming> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#handshakeWaiter = null;
        this.#dropHandshake("handshake: timed out");
        reject(new HandshakeError(`no handshake answer within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#handshakeWaiter = (m) => {
        clearTimeout(timer);
        this.#handshakeWaiter = null;
        if (m instanceof Error) reject(m);
        else resolve(m);
      };
    });
  }

  #dropHandshake(reason: string): void {
    this.#opts.stats.count(reason);
    this.#opts.log.warn("dropped connection", { peer: this.peer, reason });
    this.close(true);
  }

  // ---- input ----------------------------------------------------------------------------------

  /** What a read brought: a chunk, or the number of bytes read straight into the frame being assembled. */
  #onData(chunk: Buffer | number, transient: boolean): void {
    let messages: RawMessage[];
    try {
      messages = typeof chunk === "number" ? this.#decoder.pushDirect(chunk) : this.#decoder.push(chunk, transient);
    } catch (err) {
      this.#garbage(err as Error);
      return;
    }
    for (const raw of messages) {
      if (this.#state === "closed") return;
      this.#receive(raw);
    }
  }

  #receive(raw: RawMessage): void {
    const tail = raw.tail;
    if (tail !== null && tail.ended) {
      // the last bytes of a message whose head was emitted before
      const msg = this.#arriving;
      this.#arriving = null;
      if (msg !== null) this.emit("message", msg);
      return;
    }
    const { auth, history } = this.#opts;
    const json = raw.head.slice(1);
    const verdict = auth.verify(raw.head[0]!, json, raw.bufferLengths, raw.buffers, this.#opts.verifyBuffers, raw.bufferTag);
    if (!verdict.ok) return this.#drop(verdict.reason, raw);
    if (!history.add(verdict.digest)) return this.#drop("replayed message", raw);
    let msg: Incoming;
    try {
      msg = new Incoming(raw, undefined, this.#opts.frames ?? null);
    } catch (err) {
      return this.#drop(`invalid JSON (${(err as Error).message})`, raw);
    }
    if (tail !== null && this.#state === "open") {
      this.#arriving = msg;
      this.emit("head", msg);
      return;
    }
    if (this.#state === "handshake") {
      // open synchronously: messages right behind the welcome in the same chunk must not be dropped
      if (msg.msgType === "welcome") this.#opened();
      if (this.#handshakeWaiter !== null) this.#handshakeWaiter(msg);
      else this.#drop("message before the handshake", raw);
      return;
    }
    this.emit("message", msg);
  }

  #drop(reason: string, raw: RawMessage): void {
    raw.tail?.discard();
    this.#opts.stats.count(reason);
    this.#opts.log.warn("dropped message", { peer: this.peer, reason, bytes: raw.size });
    if (this.#state === "handshake") {
      // during the handshake a bad message means the peer does not hold the key
      this.#handshakeWaiter?.(new HandshakeError(handshakeReason(reason)));
      this.close(true);
    }
  }

  #garbage(err: Error): void {
    const reason = err instanceof FramingError ? `garbage: ${err.message}` : `garbage: ${String(err)}`;
    this.#opts.stats.count("garbage");
    this.#opts.log.warn("closing connection", { peer: this.peer, reason });
    this.#handshakeWaiter?.(new HandshakeError(reason));
    this.close(true);
  }

  #onClose(): void {
    if (this.#state === "closed") return;
    const wasHandshake = this.#state === "handshake";
    this.#state = "closed";
    this.#arriving = null;
    this.#decoder.abortTail();
    this.#held = [];
    this.#heldBytes = 0;
    if (wasHandshake) this.#handshakeWaiter?.(new HandshakeError("the connection closed during the handshake"));
    this.emit("close", this.#closeError);
  }
}

function versions(): Json {
  return { protocol: PROTOCOL_VERSION, tsparallel: TSPARALLEL_VERSION, node: NODE_VERSION };
}

/** Why two peers cannot talk, or null. Node majors must match: v8 serialization is not forward-compatible. */
export function versionMismatch(peer: Json): string | null {
  const protocol = String(peer.protocol);
  if (major(protocol) !== major(PROTOCOL_VERSION)) {
    return `protocol ${protocol} (tsparallel ${String(peer.tsparallel)}) cannot talk to protocol ${PROTOCOL_VERSION} (tsparallel ${TSPARALLEL_VERSION}): install the same tsparallel version everywhere`;
  }
  const node = String(peer.node);
  if (major(node) !== major(NODE_VERSION)) {
    return `Node ${node} cannot exchange values with Node ${NODE_VERSION} (v8 serialization differs between majors): run the same Node major on every host`;
  }
  return null;
}

function handshakeReason(reason: string): string {
  if (reason === "bad signature" || reason.includes("signature")) {
    return "the peer's signature does not match our key: the connection file's key is wrong or stale";
  }
  return reason;
}
