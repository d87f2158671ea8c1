/**
 * The in-memory task database, with culling: past `recordLimit` records or `sizeLimit` bytes of
 * buffers, the oldest finished records go first (a culled id answers "has been culled").
 */
import { compileQuery, type Query } from "./query.js";
import { KeyError, recordBytes, stripBuffers, type RecordKey, type TaskRecord } from "./record.js";

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
}

export interface MemoryDbOptions {
  recordLimit?: number;
  sizeLimit?: number;
  cullFraction?: number;
}

export class MemoryDb implements TaskDb {
  readonly #records = new Map<string, TaskRecord>(); // insertion order = submission order
  readonly #culled = new Set<string>();
  readonly #recordLimit: number;
  readonly #sizeLimit: number;
  readonly #cullFraction: number;
  #bytes = 0;

  constructor(opts: MemoryDbOptions = {}) {
    this.#recordLimit = opts.recordLimit ?? 10_000;
    this.#sizeLimit = opts.sizeLimit ?? 256 * 1024 * 1024;
    this.#cullFraction = opts.cullFraction ?? 0.1;
  }

  get size(): number {
    return this.#records.size;
  }

  add(record: TaskRecord): void {
    if (this.#records.has(record.msgId)) throw new KeyError(`Record ${record.msgId} already exists`);
    this.#records.set(record.msgId, record);
    this.#bytes += recordBytes(record);
    this.#cull();
  }

  has(msgId: string): boolean {
    return this.#records.has(msgId);
  }

  get(msgId: string): TaskRecord {
    const r = this.#records.get(msgId);
    if (r !== undefined) return r;
    if (this.#culled.has(msgId)) throw new KeyError(`Record ${msgId} has been culled for size`);
    throw new KeyError(`No such message: ${msgId}`);
  }

  update(msgId: string, patch: Partial<TaskRecord>): void {
    const r = this.get(msgId);
    this.#bytes -= recordBytes(r);
    Object.assign(r, patch);
    this.#bytes += recordBytes(r);
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
    }
  }

  history(): string[] {
    return [...this.#records.keys()];
  }

  #cull(): void {
    if (this.#records.size <= this.#recordLimit && this.#bytes <= this.#sizeLimit) return;
    const targetCount = Math.floor(this.#recordLimit * (1 - this.#cullFraction));
    const targetBytes = Math.floor(this.#sizeLimit * (1 - this.#cullFraction));
    // over the size limit: first drop the buffers of the oldest large records, keeping their metadata
    for (const r of this.#records.values()) {
      if (this.#bytes <= targetBytes) break;
      if (r.status === null || r.buffersCulled === true || recordBytes(r) < 64 * 1024) continue;
      this.#bytes -= recordBytes(r);
      stripBuffers(r);
      this.#bytes += recordBytes(r);
    }
    for (const [id, r] of this.#records) {
      if (this.#records.size <= targetCount && this.#bytes <= targetBytes) break;
      if (r.completed === null && r.status === null) continue; // never cull a pending task
      this.#bytes -= recordBytes(r);
      this.#records.delete(id);
      this.#culled.add(id);
    }
    if (this.#culled.size > 100_000) this.#culled.clear();
  }
}
