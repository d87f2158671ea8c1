/**
 * Questions about the task record: results of earlier tasks (also another client's), the history,
 * Mongo-style queries, purging, and resubmission.
 */
import type { Authenticator } from "../protocol/auth.js";
import type { Connection } from "../protocol/connection.js";
import { encodeMessage, Incoming, makeHeader, type Header, type Json } from "../protocol/messages.js";
import { isoMicro } from "../protocol/time.js";
import { decodeRaw } from "../protocol/wire.js";
import { KeyError, recordKey, RECORD_KEYS, replyOf, type RecordKey, type TaskRecord } from "./db/record.js";
import type { Hub } from "./hub.js";

interface Parts {
  header: Header;
  parent: Json;
  metadata: Json;
  content: Json;
  buffers: Buffer[];
}

/** The parts of a stored message. */
export function messageParts(raw: readonly Buffer[]): Parts {
  const m = decodeRaw(raw);
  const json = (i: number) => JSON.parse(m.head[i]!.toString("utf8")) as Json;
  return { header: json(1) as unknown as Header, parent: json(2), metadata: json(3), content: json(4), buffers: m.buffers() };
}

/** The parts of a record's reply, or null before there is one. */
function replyParts(r: TaskRecord): Parts | null {
  const reply = replyOf(r);
  return reply === null ? null : messageParts(reply);
}

/** A record field, computing the ones kept only inside the raw messages. */
export function recordField(r: TaskRecord, key: RecordKey): unknown {
  switch (key) {
    case "content": return messageParts(r.requestRaw).content;
    case "buffers": return messageParts(r.requestRaw).buffers;
    case "resultHeader": return replyParts(r)?.header ?? null;
    case "resultMetadata": return replyParts(r)?.metadata ?? null;
    case "resultContent": return replyParts(r)?.content ?? null;
    case "resultBuffers": return replyParts(r)?.buffers ?? [];
    default: return r[key];
  }
}

const BUFFER_KEYS = new Set<RecordKey>(["buffers", "resultBuffers"]);
/** What a query returns unless told which keys: every field but the buffers. */
export const DEFAULT_KEYS = RECORD_KEYS.filter((k) => !BUFFER_KEYS.has(k));

export function installQueries(hub: Hub, auth: Authenticator): void {
  const reply = (conn: Connection, msg: Incoming, content: Json, buffers: Buffer[] = []) =>
    hub.send(conn, msg.msgType.replace(/_request$/, "_reply"), { status: "ok", ...content }, msg.header, buffers);
  hub.addClientHandlers({
    result_request: (conn, session, msg) => {
      const { content, buffers } = results(hub, session, msg.content);
      reply(conn, msg, content, buffers);
    },
    history_request: (conn, _s, msg) => reply(conn, msg, { history: hub.db.history() }),
    db_request: (conn, _s, msg) => {
      const { content, buffers } = query(hub, msg.content);
      reply(conn, msg, content, buffers);
    },
    purge_request: (conn, _s, msg) => reply(conn, msg, purge(hub, msg.content)),
    resubmit_request: (conn, session, msg) => reply(conn, msg, { resubmitted: resubmit(hub, auth, conn, session, msg.content) }),
  });
}

function idList(value: unknown, what: string): string[] {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) throw new TypeError(`${what} must be a list of msg ids`);
  return list as string[];
}

function results(hub: Hub, session: string, content: Json): { content: Json; buffers: Buffer[] } {
  const ids = idList(content.msg_ids, "msg_ids");
  const statusOnly = content.status_only === true;
  const pending: string[] = [];
  const completed: string[] = [];
  const out: Record<string, Json> = {};
  const buffers: Buffer[] = [];
  const records: Record<string, Json> = {};
  // missing_ok (a reconnected client catching up): ids this controller cannot answer for are listed
  // with the reason instead of failing the whole request
  const missing: Record<string, string> | null = content.missing_ok === true ? {} : null;
  for (const id of ids) {
    let r: TaskRecord;
    try {
      r = hub.db.get(id); // KeyError for unknown or culled ids
    } catch (err) {
      if (missing === null || !(err instanceof KeyError)) throw err;
      missing[id] = err.message;
      continue;
    }
    if (r.status === null) {
      pending.push(id);
      records[id] = summary(r); // submitted time and output so far
      if (content.watch === true && r.clientSession !== session) hub.watch(id, session); // the owner gets the reply anyway
      continue;
    }
    completed.push(id);
    if (statusOnly || (r.replyRaw === null && r.replyStub === null)) continue;
    if (missing !== null && r.buffersCulled === true && r.status === "ok") missing[id] = culledMessage(r);
    else out[id] = recordResult(r, buffers);
  }
  return { content: { pending, completed, results: out, records, ...(missing === null ? {} : { missing }) }, buffers };
}

function culledMessage(r: TaskRecord): string {
  return `Record ${r.msgId}'s result buffers have been culled for size`;
}

/** A finished task's result for a client: summary and reply content, its buffers appended to `buffers`. */
export function recordResult(r: TaskRecord, buffers: Buffer[]): Json {
  if (r.buffersCulled === true && r.status === "ok") throw new KeyError(culledMessage(r));
  const reply = replyParts(r)!;
  const out = { ...summary(r, reply), result_content: reply.content, buffers: [buffers.length, reply.buffers.length] };
  buffers.push(...reply.buffers);
  return out;
}

/** What a client needs to rebuild a task's metadata (`reply`: the reply's parts, if already parsed). */
function summary(r: TaskRecord, reply: Parts | null = replyParts(r)): Json {
  return {
    msg_id: r.msgId, header: r.header, metadata: r.metadata, result_header: reply?.header ?? null, result_metadata: reply?.metadata ?? null,
    submitted: r.submitted, started: r.started, completed: r.completed, received: r.received,
    engine_id: r.engineId, engine_uuid: r.engineUuid, status: r.status, stdout: r.stdout, stderr: r.stderr, label: r.label,
  };
}

function query(hub: Hub, content: Json): { content: Json; buffers: Buffer[] } {
  const q = (content.query ?? {}) as Json;
  if (typeof q !== "object" || Array.isArray(q)) throw new TypeError("query must be an object");
  const keys: RecordKey[] = Array.isArray(content.keys) ? (content.keys as string[]).map(recordKey) : DEFAULT_KEYS;
  if (!keys.includes("msgId")) keys.unshift("msgId");
  const buffers: Buffer[] = [];
  const records = hub.db.find(q, recordField).map((r) => {
    const row: Json = {};
    for (const k of keys) {
      const v = recordField(r, k);
      if (BUFFER_KEYS.has(k)) {
        row[k] = [buffers.length, (v as Buffer[]).length];
        buffers.push(...(v as Buffer[]));
      } else row[k] = v;
    }
    return row;
  });
  return { content: { records }, buffers };
}

function purge(hub: Hub, content: Json): Json {
  let ids: string[];
  if (content.msg_ids === "all") ids = hub.db.find({ status: { $ne: null } }, recordField).map((r) => r.msgId);
  else ids = idList(content.msg_ids ?? [], "msg_ids");
  if (Array.isArray(content.engine_ids)) {
    const engines = new Set(content.engine_ids as number[]);
    ids = ids.concat(hub.db.find({ status: { $ne: null } }, recordField).filter((r) => r.engineId !== null && engines.has(r.engineId)).map((r) => r.msgId));
  }
  // a task its client has finished may still be pending here: answered over the client's direct
  // link, it is recorded when its engine's report comes, and dropped then
  const doneThere = new Set(Array.isArray(content.done_here) ? (content.done_here as unknown[]) : []);
  const later: string[] = [];
  for (const id of ids) {
    // a direct task its engine has not reported at all yet is not known here either
    if (!hub.db.has(id)) {
      if (doneThere.has(id)) later.push(id);
      continue;
    }
    if (hub.db.get(id).status !== null) continue;
    if (!doneThere.has(id)) throw new RangeError(`cannot purge ${id}: it is still pending`);
    later.push(id);
  }
  hub.purgeWhenFinished(later);
  const waiting = new Set(later);
  hub.db.drop(waiting.size === 0 ? ids : ids.filter((id) => !waiting.has(id)));
  return { purged: ids.length };
}

function resubmit(hub: Hub, auth: Authenticator, conn: Connection, session: string, content: Json): Record<string, string> {
  const ids = idList(content.msg_ids, "msg_ids");
  const newIds = content.new_ids === undefined ? null : idList(content.new_ids, "new_ids");
  if (newIds !== null && (newIds.length !== ids.length || newIds.some((id) => hub.db.has(id)))) {
    throw new TypeError("new_ids must be fresh msg ids, one per resubmitted task");
  }
  const records = ids.map((id) => hub.db.get(id));
  const mapping: Record<string, string> = {};
  for (const [i, r] of records.entries()) {
    const parts = messageParts(r.requestRaw);
    const header = makeHeader(r.header.msg_type, session, newIds?.[i]);
    const { engine: _engine, targets: _targets, after: _after, follow: _follow, ...rest } = parts.metadata;
    const metadata = { ...rest, route: "task", resubmitted_from: r.msgId };
    const chunks = encodeMessage(auth, { header, parent: parts.parent as unknown as Header, metadata, content: parts.content, buffers: parts.buffers });
    hub.db.update(r.msgId, { resubmitted: isoMicro() });
    hub.submitMessage(conn, session, new Incoming(decodeRaw(chunks)));
    mapping[r.msgId] = header.msg_id;
  }
  return mapping;
}

export { KeyError };
