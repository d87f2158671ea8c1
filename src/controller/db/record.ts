/**
 * The controller's record of a task: the request and the reply as received (the raw message bytes,
 * so a result can be sent again to any client), where it ran, its timestamps and output.
 */
import type { Header, Json } from "../../protocol/messages.js";
import { decodeRaw, encodeFrames } from "../../protocol/wire.js";

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
  /** The reply message, once there is one. */
  replyRaw: Buffer[] | null;
  /** The buffers of request and reply were dropped to save memory (or never kept: large direct tasks). */
  buffersCulled: boolean;
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
  if (p.buffersCulled !== undefined) r.buffersCulled = p.buffersCulled;
}

/**
 * The reply's header and metadata as JSON text, or null before there is a reply. They are kept only
 * inside the raw reply (read when asked for, which is rare): parsed objects kept per record were
 * most of what the controller's garbage collector walked.
 */
export function replyHeadText(r: TaskRecord): { header: string; metadata: string } | null {
  return r.replyRaw === null || r.replyRaw.length === 0 ? null : headText(r.replyRaw);
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
