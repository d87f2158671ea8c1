/**
 * Message authentication. Frame 0 of every message is
 *
 *   u8 version | u8 mode | 32-byte HMAC-SHA256 | (mode 1:) 12-byte nonce | 16-byte Poly1305 tag
 *
 * The HMAC covers the frame layout, the four JSON frames and either the buffers themselves
 * (mode 0, small messages) or the nonce and tag of a Poly1305 MAC over the buffers (mode 1, large
 * messages: Poly1305 runs ~4x faster than HMAC-SHA256 here). A forwarder checks the HMAC alone —
 * it never reads the buffers — and the receiving end checks the buffers end to end.
 */
import { type CipherChaCha20Poly1305, createCipheriv, createHash, createHmac, hash, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { RecentKeys } from "./recent.js";
import { MIN_FRAMES } from "./wire.js";

const AUTH_VERSION = 1;
const MODE_INLINE = 0;
const MODE_POLY = 1;
const HMAC_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;
/** SHA-256 block size: HMAC pads its key to this. */
const BLOCK = 64;
/** HMAC inputs up to this size are hashed in one call each (inner and outer) instead of streamed. */
const ONE_SHOT_MAX = 64 * 1024;
/** Buffers totalling at least this many bytes are authenticated with Poly1305. */
export const POLY_THRESHOLD = 64 * 1024;
/**
 * Messages grouped into one signed message (task groups, task handoffs, reply groups) keep the
 * group's buffers below POLY_THRESHOLD, so its one HMAC covers every grouped message's bytes: an
 * item larger than GROUP_ITEM_MAX goes alone, and a group is sent once it holds GROUP_MAX_BYTES or
 * GROUP_MAX_ITEMS (48 KB + one item stays below 64 KB).
 */
export const GROUP_ITEM_MAX = 8 * 1024;
export const GROUP_MAX_BYTES = 48 * 1024;
export const GROUP_MAX_ITEMS = 128;

/**
 * Whether a message's head authenticates it without its buffers (mode 1: the HMAC covers the
 * buffers' Poly1305 tag, which the receiving end checks), so a forwarder may pass its buffers on
 * as they arrive.
 */
export function headAuthenticates(auth: Buffer): boolean {
  return auth.length === 2 + HMAC_LEN + NONCE_LEN + TAG_LEN && auth[0] === AUTH_VERSION && auth[1] === MODE_POLY;
}

export type Verdict = { ok: true; digest: Uint8Array } | { ok: false; reason: string };

export class Authenticator {
  readonly #hmacKey: Buffer;
  readonly #polyKey: Buffer;
  /** Key XOR ipad, and a scratch of key XOR opad followed by room for the inner digest (RFC 2104). */
  readonly #ipad: Buffer;
  readonly #outer: Buffer;

  constructor(key: string) {
    if (key.length === 0) throw new Error("an empty key is not allowed: every message is signed");
    this.#hmacKey = Buffer.from(key, "utf8");
    this.#polyKey = Buffer.from(hkdfSync("sha256", this.#hmacKey, "tsparallel", "buffer-mac", 32));
    const k = this.#hmacKey.length > BLOCK ? createHash("sha256").update(this.#hmacKey).digest() : this.#hmacKey;
    this.#ipad = Buffer.alloc(BLOCK, 0x36);
    this.#outer = Buffer.alloc(BLOCK + HMAC_LEN);
    this.#outer.fill(0x5c, 0, BLOCK);
    for (let i = 0; i < k.length; i++) {
      this.#ipad[i]! ^= k[i]!;
      this.#outer[i]! ^= k[i]!;
    }
  }

  /** Build the auth frame for the given JSON frames and buffers. */
  sign(json: readonly Uint8Array[], buffers: readonly Uint8Array[]): Buffer {
    let total = 0;
    for (const b of buffers) total += b.byteLength;
    const poly = total >= POLY_THRESHOLD;
    const frame = Buffer.allocUnsafe(2 + HMAC_LEN + (poly ? NONCE_LEN + TAG_LEN : 0));
    frame[0] = AUTH_VERSION;
    frame[1] = poly ? MODE_POLY : MODE_INLINE;
    if (poly) {
      const nonce = randomBytes(NONCE_LEN);
      frame.set(nonce, 2 + HMAC_LEN);
      frame.set(this.#polyTag(nonce, buffers), 2 + HMAC_LEN + NONCE_LEN);
    }
    frame.set(this.#hmac(frame, json, buffers.map((b) => b.byteLength), poly ? null : buffers), 2);
    return frame;
  }

  /**
   * Frame and sign a small message (mode 0) in one pass: the JSON is written once, straight into
   * the HMAC input, and the wire message is a view of it. Returns the one chunk to write (frame
   * table, auth frame, frames) or null when the message is too large for this path (the caller
   * frames and signs it with `sign`; the bytes on the wire are the same).
   */
  encodeSmall(json: readonly string[], buffers: readonly Uint8Array[]): Uint8Array[] | null {
    const parts = json.length + buffers.length;
    const bodyStart = BLOCK + 2 + 4 * (1 + parts);
    const lens = new Array<number>(parts);
    let bufferBytes = 0;
    for (let i = 0; i < buffers.length; i++) bufferBytes += lens[json.length + i] = buffers[i]!.byteLength;
    let size = bodyStart + bufferBytes;
    for (let i = 0; i < json.length; i++) size += lens[i] = Buffer.byteLength(json[i]!, "utf8");
    if (size > ONE_SHOT_MAX || bufferBytes >= POLY_THRESHOLD) return null;
    const input = Buffer.allocUnsafe(size);
    input.set(this.#ipad, 0);
    input[BLOCK] = AUTH_VERSION;
    input[BLOCK + 1] = MODE_INLINE;
    let lp = input.writeUInt32LE(parts, BLOCK + 2);
    for (let i = 0; i < parts; i++) lp = input.writeUInt32LE(lens[i]!, lp);
    let at = bodyStart;
    for (const j of json) at += input.write(j, at, "utf8");
    for (const b of buffers) at += copyInto(input, b, at);
    const mac = this.#finish(input);
    // the MAC input's prefix (key pad and layout) is no longer needed: the frame table and the auth
    // frame take its place, so the message leaves as one buffer (the prefix is always long enough)
    const n = 1 + parts; // frames on the wire: auth + parts
    const start = bodyStart - (8 + 4 * n + 2 + HMAC_LEN);
    input.writeUInt32LE(size - start - 4, start);
    input.writeUInt32LE(n, start + 4);
    input.writeUInt32LE(2 + HMAC_LEN, start + 8);
    for (let i = 0; i < parts; i++) input.writeUInt32LE(lens[i]!, start + 12 + 4 * i);
    const authAt = start + 8 + 4 * n;
    input[authAt] = AUTH_VERSION;
    input[authAt + 1] = MODE_INLINE;
    input.set(mac, authAt + 2);
    return [input.subarray(start)];
  }

  /**
   * The buffers' Poly1305 MAC of a message with this auth frame, computed as their bytes arrive
   * (fed in order, in pieces of any size), or null when the frame does not call for one (mode 0,
   * malformed). A receiver that streams a large message into its frames so MACs each piece while
   * it is still in the cache, instead of reading the whole message again once it is in. It proves
   * nothing by itself: `verify` checks the HMAC, then compares this tag with the one it covers.
   */
  bufferMac(auth: Buffer): StreamMac | null {
    if (!headAuthenticates(auth)) return null;
    return new PolyStream(this.#polyKey, auth.subarray(2 + HMAC_LEN, 2 + HMAC_LEN + NONCE_LEN));
  }

  /**
   * Check a received message. Large buffers (mode 1) are checked only with `checkBuffers` (a
   * forwarder passes false); small ones (mode 0) are part of the HMAC and always checked.
   * `bufferTag`: the buffers' Poly1305 tag, if the receiver computed it as they arrived (`bufferMac`).
   */
  verify(auth: Buffer, json: readonly Buffer[], bufferLengths: readonly number[], buffers: () => readonly Uint8Array[], checkBuffers: boolean, bufferTag: Buffer | null = null): Verdict {
    if (auth.length < 2 + HMAC_LEN || auth[0] !== AUTH_VERSION) return { ok: false, reason: "missing or malformed signature" };
    const mode = auth[1];
    if (mode === MODE_INLINE) {
      if (auth.length !== 2 + HMAC_LEN) return { ok: false, reason: "malformed signature" };
      return this.#check(auth, json, bufferLengths, bufferLengths.length > 0 ? buffers() : []);
    }
    if (mode !== MODE_POLY || auth.length !== 2 + HMAC_LEN + NONCE_LEN + TAG_LEN) {
      return { ok: false, reason: "malformed signature" };
    }
    const verdict = this.#check(auth, json, bufferLengths, null);
    if (!verdict.ok || !checkBuffers) return verdict;
    const nonce = auth.subarray(2 + HMAC_LEN, 2 + HMAC_LEN + NONCE_LEN);
    const tag = auth.subarray(2 + HMAC_LEN + NONCE_LEN);
    if (!timingSafeEqual(bufferTag ?? this.#polyTag(nonce, buffers()), tag)) return { ok: false, reason: "buffer MAC mismatch" };
    return verdict;
  }

  /** HMAC over a one-off value (handshake proofs). */
  proof(text: string): string {
    return createHmac("sha256", this.#hmacKey).update(text).digest("hex");
  }

  #check(auth: Buffer, json: readonly Buffer[], lens: readonly number[], buffers: readonly Uint8Array[] | null): Verdict {
    const expected = this.#hmac(auth, json, lens, buffers);
    const got = auth.subarray(2, 2 + HMAC_LEN);
    if (!timingSafeEqual(expected, got)) return { ok: false, reason: "bad signature" };
    return { ok: true, digest: got };
  }

  /**
   * HMAC-SHA256 over: auth version and mode | frame layout | JSON frames | the buffers (mode 0) or
   * the nonce and tag of their Poly1305 MAC (mode 1). Small inputs (nearly every message) are laid
   * out in one buffer and hashed with two one-shot calls, which costs a fraction of a streaming
   * Hmac object and its updates; large ones are streamed (same bytes, same result).
   */
  #hmac(auth: Buffer, json: readonly Uint8Array[], lens: readonly number[], buffers: readonly Uint8Array[] | null): Buffer {
    const parts = json.length + lens.length;
    let size = BLOCK + 2 + 4 * (1 + parts);
    for (const j of json) size += j.byteLength;
    if (buffers !== null) for (const b of buffers) size += b.byteLength;
    else size += auth.length - 2 - HMAC_LEN;
    if (size > ONE_SHOT_MAX) return this.#hmacStreamed(auth, json, lens, buffers);
    const input = Buffer.allocUnsafe(size);
    input.set(this.#ipad, 0);
    input[BLOCK] = auth[0]!;
    input[BLOCK + 1] = auth[1]!;
    let at = BLOCK + 2;
    at = input.writeUInt32LE(parts, at);
    for (const j of json) at = input.writeUInt32LE(j.byteLength, at);
    for (const l of lens) at = input.writeUInt32LE(l, at);
    for (const j of json) at += copyInto(input, j, at);
    if (buffers !== null) for (const b of buffers) at += copyInto(input, b, at);
    else input.set(auth.subarray(2 + HMAC_LEN), at);
    return this.#finish(input);
  }

  /**
   * HMAC of a one-shot input laid out as key XOR ipad | message: the inner hash, then the outer.
   * The digests come back as "binary" (latin1) strings: a "buffer" digest is a new ArrayBuffer each time, a
   * string is not, and `Buffer.from` serves 32 bytes from Node's pool (~1.7 against ~2.4 µs).
   */
  #finish(input: Buffer): Buffer {
    this.#outer.write(hash("sha256", input, "binary"), BLOCK, "latin1");
    return Buffer.from(hash("sha256", this.#outer, "binary"), "latin1");
  }

  #hmacStreamed(auth: Buffer, json: readonly Uint8Array[], lens: readonly number[], buffers: readonly Uint8Array[] | null): Buffer {
    const layout = Buffer.allocUnsafe(4 * (1 + json.length + lens.length));
    layout.writeUInt32LE(json.length + lens.length, 0);
    json.forEach((j, i) => layout.writeUInt32LE(j.byteLength, 4 + 4 * i));
    lens.forEach((l, i) => layout.writeUInt32LE(l, 4 + 4 * (json.length + i)));
    const h = createHmac("sha256", this.#hmacKey);
    h.update(auth.subarray(0, 2));
    h.update(layout);
    for (const j of json) h.update(j);
    if (buffers !== null) for (const b of buffers) h.update(b);
    else h.update(auth.subarray(2 + HMAC_LEN));
    return h.digest();
  }

  #polyTag(nonce: Uint8Array, buffers: readonly Uint8Array[]): Buffer {
    const mac = new PolyStream(this.#polyKey, nonce);
    for (const b of buffers) mac.update(b);
    return mac.digest();
  }
}

/** A MAC over bytes given in pieces (a streamed message's binary frames as they arrive): the same tag whatever the pieces. */
export interface StreamMac {
  update(bytes: Uint8Array): void;
  digest(): Buffer;
}

/**
 * The buffers' MAC as every message of mode 1 computes it, for a tool that wants the same cost
 * without the protocol (the bench's authenticated bare transfer): a 32-byte key, a 12-byte nonce.
 */
export function polyMac(key: Buffer, nonce: Uint8Array): StreamMac {
  return new PolyStream(key, nonce);
}

/** Node's `chacha20-poly1305` with the bytes as additional data and no plaintext: its tag is their Poly1305 MAC. */
class PolyStream implements StreamMac {
  readonly #cipher: CipherChaCha20Poly1305;

  constructor(key: Buffer, nonce: Uint8Array) {
    this.#cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_LEN });
  }

  update(bytes: Uint8Array): void {
    this.#cipher.setAAD(bytes, { plaintextLength: 0 });
  }

  digest(): Buffer {
    this.#cipher.final();
    return this.#cipher.getAuthTag();
  }
}

function copyInto(dest: Buffer, src: Uint8Array, at: number): number {
  dest.set(src, at);
  return src.byteLength;
}

/**
 * The HMAC in the auth frame of one framed message, after a check of its frame table (total length,
 * frame count and lengths); null if the bytes are not one well-framed signed message.
 */
export function signatureOf(raw: Buffer): Buffer | null {
  if (raw.length < 8 || raw.readUInt32LE(0) + 4 !== raw.length) return null;
  const n = raw.readUInt32LE(4);
  if (n < MIN_FRAMES || 8 + 4 * n > raw.length) return null;
  let sum = 8 + 4 * n;
  for (let i = 0; i < n; i++) sum += raw.readUInt32LE(8 + 4 * i);
  const authLen = raw.readUInt32LE(8);
  const at = 8 + 4 * n;
  if (sum !== raw.length) return null;
  return macOf(raw.subarray(at, at + authLen));
}

/** The HMAC in an auth frame (frame 0 of a decoded message); null if it is no auth frame of ours. */
export function macOf(auth: Buffer): Buffer | null {
  return auth.length >= 2 + HMAC_LEN && auth[0] === AUTH_VERSION ? auth.subarray(2, 2 + HMAC_LEN) : null;
}

/**
 * Replay protection: the signatures seen recently, so that a message sent again is refused. A
 * signature is remembered for at least `capacity` messages after it, in bounded memory (RecentKeys:
 * two generations, 8 bytes per slot, nothing for the GC to trace). A MAC's bytes are uniformly
 * random: its first 64 bits are the key. Two different signatures share a key with probability
 * 2^-64 per pair, so a fresh message is mistaken for a replay about once in 10^14 messages.
 */
export class DigestHistory {
  readonly #seen: RecentKeys;

  constructor(capacity = 65_536) {
    this.#seen = new RecentKeys(capacity);
  }

  /** Record a signature (at least 8 bytes of a MAC); false if it was seen before (a replay). */
  add(digest: Uint8Array): boolean {
    if (digest.length < 8) throw new RangeError("a digest has at least 8 bytes");
    // (0, 0) marks an empty slot
    return this.#seen.add(word(digest, 0), word(digest, 4) || 1);
  }

  clear(): void {
    this.#seen.clear();
  }
}

/** A little-endian 32-bit word, signed (as RecentKeys stores it). */
function word(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);
}
