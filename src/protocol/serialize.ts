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

/** Serialize a value: the payload frame followed by its out-of-band buffers. */
export function pack(value: unknown): Uint8Array[] {
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
  const d = new OobDeserializer(payload, frames.slice(1));
  d.readHeader();
  return d.readValue();
}
