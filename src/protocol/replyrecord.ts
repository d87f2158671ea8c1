/**
 * A successful reply as the controller's record keeps it: one unsigned message in one buffer (it is
 * read, never sent as it is). An engine builds it for a reply it answered over a link (protocol
 * 1.2); a controller of 1.3 builds it itself from the engine's reply stub, when it is first read.
 */
import { MSG_SPEC_VERSION } from "./version.js";
import { frameUnsigned } from "./wire.js";

/** A successful reply's metadata as JSON (the fields an engine gives every reply, in the same order). */
export function okMetadataText(started: string | null, uuid: string, id: number | null): string {
  return `{"status":"ok","started":${started === null ? "null" : `"${started}"`},"engine":"${uuid}","engine_id":${id === null ? "null" : id},"dependencies_met":true}`;
}

/** An `apply` reply's content as JSON: a success whose value does or does not hold specials (functions, references). */
export function applyOkContentText(specials: boolean): string {
  return specials ? '{"status":"ok","specials":true}' : '{"status":"ok","specials":false}';
}

export interface ReplyRecordParts {
  /** The request's header as JSON (the reply's parent header). */
  parent: string | Uint8Array;
  type: string;
  replyId: string;
  /** The engine's session. */
  session: string;
  /** When the task completed (the reply's date). */
  date: string;
  metadata: string;
  content: string;
  buffers: readonly Uint8Array[];
}

export function replyRecord(p: ReplyRecordParts): Buffer {
  const header = `{"msg_id":"${p.replyId}","msg_type":"${p.type}","session":"${p.session}","date":"${p.date}","version":"${MSG_SPEC_VERSION}"}`;
  return frameUnsigned([header, p.parent, p.metadata, p.content, ...p.buffers]);
}
