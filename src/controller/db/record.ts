/**
 * The controller's record of a task: the request and the reply as received (the raw message bytes,
 * so a result can be sent again to any client), where it ran, its timestamps and output.
 */
import type { Header, Json } from "../../protocol/messages.js";
import { applyOkContentText, okMetadataText, replyRecord } from "../../protocol/replyrecord.js";
import { decodeRaw, encodeFrames } from "../../protocol/wire.js";
import { newMsgId } from "../../protocol/ids.js";

export type TaskStatus = "ok" | "error" | "aborted";

export interface TaskRecord {
  msgId: string;
  header: Header;
  metadata: Json;
  clientSession: string;
  queue: "direct" | "task";
  engineId: number | null;
  engineUuid: string | null;
  submitted: string;
  started: string | null;
  completed: string | null;
  received: string | null;
  resubmitted: string | null;
  status: TaskStatus | null;
  stdout: string;
  stderr: string;
  label: string | null;
  /** The request message as received (retained copy). */
  requestRaw: Buffer[];
  /** The reply message, once there is one (read it with `replyOf`: a reply stub has none until then). */
  replyRaw: Buffer[] | null;
  /** What a successful `apply` answered over a link holds (protocol 1.3), if the reply is kept as that. */
  replyStub: ReplyStub | null;
  /** The buffers of request and reply were dropped to save memory (or never kept: large direct tasks). */
  buffersCulled: boolean;
}

/**
 * A successful `apply` reply as its engine reported it (protocol 1.3): its value's buffers and what
 * the reply's record says besides them, which is the same for every such reply. Its bytes are built
 * only when something reads them (`replyOf`): a query, another client's `getResult`, a database
 * that persists records.
 */
export interface ReplyStub {
  /** The engine's session, its uuid and id. */
  session: string;
  engineUuid: string;
  engineId: number;
  started: string | null;
  /** When the task completed (the reply's date). */
  date: string;
  /** The value holds functions or references. */
  specials: boolean;
  buffers: Buffer[];
  /** The reply's msg_id, made when the reply is first read, so every read sees the same reply. */
  replyId: string | null;
}

/** Bytes a stub's record stands for besides its buffers (the size of the reply's JSON frames), for the database's size limit. */
const STUB_BYTES = 400;

/** The reply's bytes as the record keeps them (a stub's built from it), or null before there is a reply. */
export function replyOf(r: TaskRecord): Buffer[] | null {
  if (r.replyRaw !== null) return r.replyRaw;
  const s = r.replyStub;
  if (s === null) return null;
  s.replyId ??= newMsgId();
  return [replyRecord({
    parent: JSON.stringify(r.header), type: "apply_reply", replyId: s.replyId, session: s.session, date: s.date,
    metadata: okMetadataText(s.started, s.engineUuid, s.engineId), content: applyOkContentText(s.specials), buffers: s.buffers,
  })];
}

/** Keep a buffer without pinning the large read chunk a small slice may belong to. */
export function retain(buf: Uint8Array): Buffer {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.byteLength * 2 < b.buffer.byteLength ? Buffer.from(b) : b;
}

export function retainAll(raw: readonly Uint8Array[]): Buffer[] {
  if (raw.length > 1) {
    const total = raw.reduce((s, b) => s + b.byteLength, 0);
    // many small pieces: one compact copy
    if (total < 64 * 1024) return [Buffer.concat(raw as Uint8Array[], total)];
  }
  // one piece (every small message the controller records) has nothing to join
  return (raw.length > 1 ? joinAdjacent(raw) : raw).map(retain);
}

/**
 * Pieces that lie side by side in one block (the reads of a message passed on while it arrived,
 * see `Tail`) become one view of it: kept as they are, where each piece alone would be copied
 * out of a block it fills only in part.
 */
function joinAdjacent(raw: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of raw) {
    const last = out[out.length - 1];
    if (last !== undefined && last.buffer === b.buffer && last.byteOffset + last.byteLength === b.byteOffset) {
      out[out.length - 1] = new Uint8Array(b.buffer, last.byteOffset, last.byteLength + b.byteLength);
    } else out.push(b);
  }
  return out;
}

/** Keep only the JSON parts of a record's messages. */
export function stripBuffers(r: TaskRecord): void {
  const headOnly = (raw: Buffer[]) => (raw.length === 0 ? raw : [Buffer.concat(encodeFrames(decodeRaw(raw).head) as Uint8Array[])]);
  r.requestRaw = headOnly(r.requestRaw);
  if (r.replyRaw !== null) r.replyRaw = headOnly(r.replyRaw);
  if (r.replyStub !== null) r.replyStub.buffers = [];
  r.buffersCulled = true;
}

/**
 * Apply a patch field by field (a field the patch leaves undefined is kept). `Object.assign` with
 * patches of many shapes went through V8's generic keyed store for every field: ~9 % of the
 * controller's CPU while it recorded direct tasks.
 */
export function patchRecord(r: TaskRecord, p: Partial<TaskRecord>): void {
  if (p.header !== undefined) r.header = p.header;
  if (p.metadata !== undefined) r.metadata = p.metadata;
  if (p.clientSession !== undefined) r.clientSession = p.clientSession;
  if (p.queue !== undefined) r.queue = p.queue;
  if (p.engineId !== undefined) r.engineId = p.engineId;
  if (p.engineUuid !== undefined) r.engineUuid = p.engineUuid;
  if (p.submitted !== undefined) r.submitted = p.submitted;
  if (p.started !== undefined) r.started = p.started;
  if (p.completed !== undefined) r.completed = p.completed;
  if (p.received !== undefined) r.received = p.received;
  if (p.resubmitted !== undefined) r.resubmitted = p.resubmitted;
  if (p.status !== undefined) r.status = p.status;
  if (p.stdout !== undefined) r.stdout = p.stdout;
  if (p.stderr !== undefined) r.stderr = p.stderr;
  if (p.label !== undefined) r.label = p.label;
  if (p.requestRaw !== undefined) r.requestRaw = p.requestRaw;
  if (p.replyRaw !== undefined) r.replyRaw = p.replyRaw;
  if (p.replyStub !== undefined) r.replyStub = p.replyStub;
  if (p.buffersCulled !== undefined) r.buffersCulled = p.buffersCulled;
}

/** The header and metadata frames of a stored message, as JSON text. */
export function headText(raw: readonly Buffer[]): { header: string; metadata: string } {
  const m = decodeRaw(raw);
  return { header: m.head[1]!.toString("utf8"), metadata: m.head[3]!.toString("utf8") };
}

export function recordBytes(r: TaskRecord): number {
  let n = 0;
  for (const b of r.requestRaw) n += b.byteLength;
  for (const b of r.replyRaw ?? []) n += b.byteLength;
  if (r.replyStub !== null) {
    n += STUB_BYTES;
    for (const b of r.replyStub.buffers) n += b.byteLength;
  }
  return n;
}

/** Columns a query may name. camelCase; ipyparallel's snake_case names are accepted too. */
export const RECORD_KEYS = [
  "msgId", "header", "metadata", "content", "buffers", "clientSession", "queue", "engineId", "engineUuid",
  "submitted", "started", "completed", "received", "resubmitted", "status", "resultHeader", "resultMetadata",
  "resultContent", "resultBuffers", "stdout", "stderr", "label",
] as const;

export type RecordKey = (typeof RECORD_KEYS)[number];

const SNAKE: Record<string, RecordKey> = {
  msg_id: "msgId", client_uuid: "clientSession", engine_id: "engineId", engine_uuid: "engineUuid",
  result_header: "resultHeader", result_metadata: "resultMetadata", result_content: "resultContent",
  result_buffers: "resultBuffers",
};

export function recordKey(name: string): RecordKey {
  const key = (SNAKE[name] ?? name) as RecordKey;
  if (!RECORD_KEYS.includes(key)) throw new KeyError(`Illegal testing key: ${JSON.stringify(name)}`);
  return key;
}

export class KeyError extends Error {
  override name = "KeyError";
}
