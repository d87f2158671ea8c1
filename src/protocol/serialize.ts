/**
 * Payload serialization: v8's structured clone, with large typed arrays and Buffers taken out of
 * the payload as frames of their own (sent and received without being copied into one big buffer),
 * and functions, References and module functions carried as tagged plain objects.
 */
import { Deserializer, Serializer } from "node:v8";

/** ArrayBufferViews of at least this many bytes travel as their own frames. */
export const OOB_THRESHOLD = 16 * 1024;
const OOB_FLAG = 0x100;

type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView;

const VIEW_TYPES: Array<[string, ViewCtor, number]> = [
  ["Int8Array", Int8Array, 1],
  ["Uint8Array", Uint8Array, 1],
  ["Uint8ClampedArray", Uint8ClampedArray, 1],
  ["Int16Array", Int16Array, 2],
  ["Uint16Array", Uint16Array, 2],
  ["Int32Array", Int32Array, 4],
  ["Uint32Array", Uint32Array, 4],
  ["Float32Array", Float32Array, 4],
  ["Float64Array", Float64Array, 8],
  ["DataView", DataView as unknown as ViewCtor, 1],
  ["BigInt64Array", BigInt64Array as unknown as ViewCtor, 8],
  ["BigUint64Array", BigUint64Array as unknown as ViewCtor, 8],
  ["Buffer", Buffer as unknown as ViewCtor, 1],
];
const TYPE_INDEX = new Map(VIEW_TYPES.map(([name], i) => [name, i]));

function typeIndexOf(view: ArrayBufferView): number {
  if (Buffer.isBuffer(view)) return TYPE_INDEX.get("Buffer")!;
  // toString tag, not instanceof: views made in an engine's vm context come from another realm
  const tag = Object.prototype.toString.call(view).slice(8, -1);
  const index = TYPE_INDEX.get(tag);
  if (index === undefined) throw new TypeError(`cannot serialize ${tag}`);
  return index;
}

class OobSerializer extends Serializer {
  readonly oob: ArrayBufferView[] = [];

  constructor() {
    super();
    // Node's hook (used by its DefaultSerializer) but missing from @types/node
    (this as unknown as { _setTreatArrayBufferViewsAsHostObjects(on: boolean): void })._setTreatArrayBufferViewsAsHostObjects(true);
  }

  /** Called by v8 for every ArrayBufferView (see the constructor). */
  _writeHostObject(object: object): void {
    const view = object as ArrayBufferView;
    const index = typeIndexOf(view);
    if (view.byteLength >= OOB_THRESHOLD) {
      this.writeUint32(index | OOB_FLAG);
      this.writeUint32(this.oob.length);
      this.oob.push(view);
      return;
    }
    this.writeUint32(index);
    this.writeUint32(view.byteLength);
    this.writeRawBytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  }
}

class OobDeserializer extends Deserializer {
  readonly #oob: readonly Uint8Array[];

  constructor(payload: Uint8Array, oob: readonly Uint8Array[]) {
    super(payload);
    this.#oob = oob;
  }

  /** Called by v8 for every host object written by `_writeHostObject`. */
  _readHostObject(): ArrayBufferView {
    const tag = this.readUint32();
    if (tag & OOB_FLAG) {
      const frame = this.#oob[this.readUint32()];
      if (frame === undefined) throw new RangeError("payload refers to a missing buffer frame");
      return makeView(tag & ~OOB_FLAG, frame);
    }
    const length = this.readUint32();
    return makeView(tag, this.readRawBytes(length) as Uint8Array);
  }
}

/** A view of the given type over `bytes`, copying only if the bytes are misaligned for the type. */
function makeView(index: number, bytes: Uint8Array): ArrayBufferView {
  const entry = VIEW_TYPES[index];
  if (entry === undefined) throw new RangeError(`unknown typed array type ${index}`);
  const [name, Ctor, size] = entry;
  if (bytes.byteLength % size !== 0) throw new RangeError(`${name} of ${bytes.byteLength} bytes`);
  let source = bytes;
  if (bytes.byteOffset % size !== 0) {
    source = new Uint8Array(bytes.byteLength);
    source.set(bytes);
  }
  if (name === "Buffer") return Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  const length = name === "DataView" ? source.byteLength : source.byteLength / size;
  return new Ctor(source.buffer, source.byteOffset, length);
}

// ---- small values without a v8 Serializer ------------------------------------------------------
// Constructing a v8 Serializer or Deserializer costs more than a small value itself (~2.5 µs warm
// for a number). Primitives, Latin-1 strings and small dense arrays of them are written and read
// here in v8's own format (the bytes v8.serialize writes for them), anything else goes to v8.

const TAG = { undefined: 0x5f, null: 0x30, true: 0x54, false: 0x46, int32: 0x49, double: 0x4e, oneByte: 0x22, array: 0x41, arrayEnd: 0x24 };
const HEADER = [0xff, 0x0f]; // v8 serialization format version 15 (Node 20); readers accept older versions
const FAST_MAX_ITEMS = 64;
const FAST_MAX_STRING = 256;
const doubleScratch = new Float64Array(1);
const doubleBytes = new Uint8Array(doubleScratch.buffer);

/** v8's bytes for a small value, or null when it is not one this path handles. */
function packSmall(value: unknown): Buffer | null {
  const out = [...HEADER];
  const budget = { items: FAST_MAX_ITEMS };
  return writeSmall(value, out, budget) ? Buffer.from(out) : null;
}

function writeSmall(v: unknown, out: number[], budget: { items: number }): boolean {
  if (--budget.items < 0) return false;
  switch (typeof v) {
    case "undefined":
      out.push(TAG.undefined);
      return true;
    case "boolean":
      out.push(v ? TAG.true : TAG.false);
      return true;
    case "number":
      if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff && !Object.is(v, -0)) {
        out.push(TAG.int32);
        writeVarint(out, ((v << 1) ^ (v >> 31)) >>> 0); // zigzag
      } else {
        doubleScratch[0] = v;
        out.push(TAG.double, ...doubleBytes);
      }
      return true;
    case "string":
      return writeLatin1(v, out);
    case "object":
      if (v === null) {
        out.push(TAG.null);
        return true;
      }
      return Array.isArray(v) && writeArray(v, out, budget);
    default:
      return false;
  }
}

function writeLatin1(s: string, out: number[]): boolean {
  if (s.length > FAST_MAX_STRING) return false;
  out.push(TAG.oneByte);
  writeVarint(out, s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) return false;
    out.push(c);
  }
  return true;
}

/** A dense array of the plain Array prototype, no holes and no extra properties. */
function writeArray(a: unknown[], out: number[], budget: { items: number }): boolean {
  if (Object.getPrototypeOf(a) !== Array.prototype || a.length > budget.items) return false;
  if (Object.keys(a).length !== a.length) return false; // holes, or named properties v8 would keep
  out.push(TAG.array);
  writeVarint(out, a.length);
  for (const x of a) if (!writeSmall(x, out, budget)) return false;
  out.push(TAG.arrayEnd);
  writeVarint(out, 0); // no named properties
  writeVarint(out, a.length);
  return true;
}

function writeVarint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
}

const NOT_SMALL = Symbol("not small");

/** Read what `packSmall` (or v8) wrote for a small value; NOT_SMALL for anything else. */
function unpackSmall(p: Uint8Array): unknown {
  if (p.length < 3 || p[0] !== 0xff || p.length > 16 * FAST_MAX_ITEMS + FAST_MAX_STRING) return NOT_SMALL;
  const r = { p, at: 1 };
  const version = readVarint(r);
  if (version < 13 || version > 15) return NOT_SMALL;
  const value = readSmall(r, 0);
  return r.at === p.length ? value : NOT_SMALL;
}

function readSmall(r: { p: Uint8Array; at: number }, depth: number): unknown {
  const { p } = r;
  if (r.at >= p.length) return NOT_SMALL;
  switch (p[r.at++]) {
    case TAG.undefined:
      return undefined;
    case TAG.null:
      return null;
    case TAG.true:
      return true;
    case TAG.false:
      return false;
    case TAG.int32: {
      const z = readVarint(r);
      return z < 0 ? NOT_SMALL : (z >>> 1) ^ -(z & 1);
    }
    case TAG.double: {
      if (r.at + 8 > p.length) return NOT_SMALL;
      doubleBytes.set(p.subarray(r.at, r.at + 8));
      r.at += 8;
      return doubleScratch[0];
    }
    case TAG.oneByte: {
      const n = readVarint(r);
      if (n < 0 || r.at + n > p.length) return NOT_SMALL;
      const s = String.fromCharCode(...p.subarray(r.at, r.at + n));
      r.at += n;
      return s;
    }
    case TAG.array: {
      const n = readVarint(r);
      if (n < 0 || n > FAST_MAX_ITEMS || depth > 16) return NOT_SMALL;
      const a: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const x = readSmall(r, depth + 1);
        if (x === NOT_SMALL) return NOT_SMALL;
        a.push(x);
      }
      if (p[r.at++] !== TAG.arrayEnd || readVarint(r) !== 0 || readVarint(r) !== n) return NOT_SMALL;
      // push() left room for 17 elements; a client keeps results until purged: keep them exact
      return a.length < 17 ? a.slice() : a;
    }
    default:
      return NOT_SMALL;
  }
}

/** An unsigned LEB128 of up to 32 bits; -1 when malformed or cut short. */
function readVarint(r: { p: Uint8Array; at: number }): number {
  let n = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (r.at >= r.p.length) return -1;
    const b = r.p[r.at++]!;
    n += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return n <= 0xffffffff ? n : -1;
  }
  return -1;
}

/** Serialize a value: the payload frame followed by its out-of-band buffers. */
export function pack(value: unknown): Uint8Array[] {
  const small = packSmall(value);
  if (small !== null) return [small];
  const s = new OobSerializer();
  s.writeHeader();
  s.writeValue(value);
  const payload = s.releaseBuffer();
  return [payload, ...s.oob.map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength))];
}

/** Deserialize what `pack` produced. `frames[0]` is the payload, the rest its buffers. */
export function unpack(frames: readonly Uint8Array[]): unknown {
  const payload = frames[0];
  if (payload === undefined) throw new RangeError("no payload frame");
  if (frames.length === 1) {
    const small = unpackSmall(payload);
    if (small !== NOT_SMALL) return small;
  }
  const d = new OobDeserializer(payload, frames.slice(1));
  d.readHeader();
  return d.readValue();
}
