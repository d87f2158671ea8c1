/**
 * Message ids: random (version 4) UUIDs, as `crypto.randomUUID()` makes them, made for the per-task
 * path. `randomUUID()` assembles its text from 20 pieces, so each id is a chain of strings that
 * V8 flattens the first time a Map hashes it: ~600 bytes of garbage and ~0.6 µs per id, and a
 * client makes one per task. Here the 36 characters are written into a scratch buffer and read out
 * as one flat string. The random bytes come from `randomFillSync`, 256 ids' worth at a time.
 */
import { randomFillSync } from "node:crypto";

const IDS_PER_FILL = 256;
const POOL_BYTES = 16 * IDS_PER_FILL;
const HYPHEN = 0x2d;

/** Each byte's two lowercase hex digits, as one little-endian 16-bit unit of ASCII. */
const HEX = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  const digits = i.toString(16).padStart(2, "0");
  HEX[i] = digits.charCodeAt(0) | (digits.charCodeAt(1) << 8);
}

const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let used = POOL_BYTES;
const text = Buffer.allocUnsafeSlow(36);

function hexAt(byte: number, at: number): void {
  text.writeUInt16LE(HEX[byte]!, at);
}

/** A new random UUID (version 4, RFC 9562), e.g. "3b241101-e2bb-4255-8caf-4136c566a962". */
export function newMsgId(): string {
  if (used === POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const p = pool;
  const i = used;
  used += 16;
  hexAt(p[i]!, 0);
  hexAt(p[i + 1]!, 2);
  hexAt(p[i + 2]!, 4);
  hexAt(p[i + 3]!, 6);
  text[8] = HYPHEN;
  hexAt(p[i + 4]!, 9);
  hexAt(p[i + 5]!, 11);
  text[13] = HYPHEN;
  hexAt((p[i + 6]! & 0x0f) | 0x40, 14); // version 4
  hexAt(p[i + 7]!, 16);
  text[18] = HYPHEN;
  hexAt((p[i + 8]! & 0x3f) | 0x80, 19); // variant 10xx
  hexAt(p[i + 9]!, 21);
  text[23] = HYPHEN;
  for (let k = 0; k < 6; k++) hexAt(p[i + 10 + k]!, 24 + 2 * k);
  return text.toString("latin1", 0, 36);
}
