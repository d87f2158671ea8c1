/**
 * The in-memory task database, with culling: past `recordLimit` finished records or `sizeLimit`
 * bytes of buffers, the records that finished longest ago go (a culled id answers "has been
 * culled": at least the last 250 000 culled ids are remembered, see culled.ts). Over the byte
 * limit, the buffers of large finished records go first, their metadata stays. Pending tasks are
 * never culled and do not count against `recordLimit`.
 *
 * Culling costs O(1) per record however many tasks are pending: it walks only finished records,
 * kept in the order they finished.
 */
import { CulledIds } from "./culled.js";
import { compileQuery, type Query } from "./query.js";
import { KeyError, patchRecord, recordBytes, stripBuffers, type RecordKey, type TaskRecord } from "./record.js";

/** Reads a (possibly computed) field of a record for queries. */
export type FieldReader = (r: TaskRecord, key: RecordKey) => unknown;

export interface TaskDb {
  add(record: TaskRecord): void;
  get(msgId: string): TaskRecord;
  has(msgId: string): boolean;
  update(msgId: string, patch: Partial<TaskRecord>): void;
  find(query: Query, field: FieldReader): TaskRecord[];
  drop(msgIds: readonly string[]): void;
  history(): string[];
  readonly size: number;
  /** Write what is still unwritten and let go of files (a store kept only in memory has none). */
  close?(): void;
}

/** Finished records with at least this many bytes of messages lose their buffers first. */
const HEAVY_BYTES = 64 * 1024;

export interface MemoryDbOptions {
  recordLimit?: number;
  sizeLimit?: number;
  cullFraction?: number;
  /**
   * Over the byte limit, cull whole records instead of dropping their buffers first: for a cache in
   * front of a store that keeps the buffers.
   */
  cullWhole?: boolean;
}

export class MemoryDb implements TaskDb {
  readonly #records = new Map<string, TaskRecord>(); // insertion order = submission order
  readonly #culled = new CulledIds();
  /** Finished records, in the order they finished: what culling may take. */
  readonly #finished = new Set<string>();
  /** Finished records whose buffers (64 KB or more) could still be dropped. */
  readonly #heavy = new Set<string>();
  readonly #recordLimit: number;
  readonly #sizeLimit: number;
  readonly #cullFraction: number;
  readonly #cullWhole: boolean;
  #bytes = 0;

  constructor(opts: MemoryDbOptions = {}) {
    this.#recordLimit = opts.recordLimit ?? 10_000;
    this.#sizeLimit = opts.sizeLimit ?? 256 * 1024 * 1024;
    this.#cullFraction = opts.cullFraction ?? 0.1;
    this.#cullWhole = opts.cullWhole === true;
  }

  get size(): number {
    return this.#records.size;
  }

  add(record: TaskRecord): void {
    if (this.#records.has(record.msgId)) throw new KeyError(`Record ${record.msgId} already exists`);
    this.#records.set(record.msgId, record);
    const bytes = recordBytes(record);
    this.#bytes += bytes;
    this.#track(record, bytes);
    this.#cull();
  }

  has(msgId: string): boolean {
    return this.#records.has(msgId);
  }

  /** The record if it is held here, else undefined (no error for unknown or culled ids). */
  peek(msgId: string): TaskRecord | undefined {
    return this.#records.get(msgId);
  }

  get(msgId: string): TaskRecord {
    const r = this.#records.get(msgId);
    if (r !== undefined) return r;
    if (this.#culled.has(msgId)) throw new KeyError(`Record ${msgId} has been culled for size`);
    throw new KeyError(`No such message: ${msgId}`);
  }

  update(msgId: string, patch: Partial<TaskRecord>): void {
    const r = this.get(msgId);
    // only the messages count toward a record's size: a patch of its other fields leaves the size as it was
    const resized = patch.requestRaw !== undefined || patch.replyRaw !== undefined || patch.replyStub !== undefined || patch.buffersCulled !== undefined;
    if (resized) this.#bytes -= recordBytes(r);
    patchRecord(r, patch);
    const finished = r.completed !== null || r.status !== null;
    const bytes = resized || finished ? recordBytes(r) : 0;
    if (resized) this.#bytes += bytes;
    this.#track(r, bytes);
    this.#cull();
  }

  find(query: Query, field: FieldReader): TaskRecord[] {
    const test = compileQuery(query, field);
    return [...this.#records.values()].filter(test);
  }

  drop(msgIds: readonly string[]): void {
    for (const id of msgIds) {
      const r = this.#records.get(id);
      if (r === undefined) continue;
      this.#bytes -= recordBytes(r);
      this.#records.delete(id);
      this.#finished.delete(id);
      this.#heavy.delete(id);
    }
  }

  history(): string[] {
    return [...this.#records.keys()];
  }

  /** Note a record (of `bytes`) that has finished (adding an id again keeps its place). */
  #track(r: TaskRecord, bytes: number): void {
    if (r.completed === null && r.status === null) return;
    this.#finished.add(r.msgId);
    if (r.status !== null && r.buffersCulled !== true && bytes >= HEAVY_BYTES) this.#heavy.add(r.msgId);
    else if (this.#heavy.size > 0) this.#heavy.delete(r.msgId);
  }

  #cull(): void {
    if (this.#finished.size <= this.#recordLimit && this.#bytes <= this.#sizeLimit) return;
    const targetCount = Math.floor(this.#recordLimit * (1 - this.#cullFraction));
    const targetBytes = Math.floor(this.#sizeLimit * (1 - this.#cullFraction));
    // over the size limit: first drop the buffers of the oldest large records, keeping their metadata
    for (const id of this.#cullWhole ? [] : this.#heavy) {
      if (this.#bytes <= targetBytes) break;
      const r = this.#records.get(id)!;
      this.#bytes -= recordBytes(r);
      stripBuffers(r);
      this.#bytes += recordBytes(r);
      this.#heavy.delete(id);
    }
    for (const id of this.#finished) {
      if (this.#finished.size <= targetCount && this.#bytes <= targetBytes) break;
      this.#bytes -= recordBytes(this.#records.get(id)!);
      this.#records.delete(id);
      this.#finished.delete(id);
      this.#heavy.delete(id);
      this.#culled.add(id);
    }
  }
}
