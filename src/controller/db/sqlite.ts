/**
 * The task database in a SQLite file (`db: "sqlite"`): every record is kept on disk for the
 * life of the file, so results stay queryable after the in-memory cache has culled them and after
 * the controller has stopped; a controller started again with the same cluster id finds them.
 *
 * Records live in a {@link MemoryDb} cache (the hub mutates its records in place) and are written
 * behind, in one transaction per flush: every 200 ms, before a query, and at close. A record that changes many times between flushes is written once.
 * One table per cluster id (`tasks:<clusterId>`), so clusters of a profile can share the file.
 * better-sqlite3 is an optional dependency, loaded only when this store is asked for.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import type { Header, Json } from "../../protocol/messages.js";
import { compileQuery, isDateKey, type Query } from "./query.js";
import { MemoryDb, type FieldReader, type MemoryDbOptions, type TaskDb } from "./memory.js";
import { headText, KeyError, patchRecord, recordKey, replyOf, type RecordKey, type TaskRecord, type TaskStatus } from "./record.js";

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

/** Milliseconds between write-behind flushes. */
const FLUSH_MS = 200;
/**
 * Changed records that bring the next flush forward, to the end of this event-loop turn: a flush
 * costs ~40 µs a record, so this bounds how long one holds up the controller (~10 ms).
 */
const FLUSH_RECORDS = 256;

/** Record fields and their columns, in table order (after `seq`). */
const COLUMNS = [
  ["msgId", "msg_id"], ["header", "header"], ["metadata", "metadata"], ["clientSession", "client_session"],
  ["queue", "queue"], ["engineId", "engine_id"], ["engineUuid", "engine_uuid"], ["submitted", "submitted"],
  ["started", "started"], ["completed", "completed"], ["received", "received"], ["resubmitted", "resubmitted"],
  ["status", "status"], ["resultHeader", "result_header"], ["resultMetadata", "result_metadata"],
  ["stdout", "stdout"], ["stderr", "stderr"], ["label", "label"], ["requestRaw", "request"], ["replyRaw", "reply"],
  ["buffersCulled", "buffers_culled"],
] as const;

const COLUMN_OF = new Map<string, string>(COLUMNS);

/** Columns a query may pre-filter on by equality (their values compare in SQL as they do in JS). */
const EQUALITY_KEYS = new Set<RecordKey>(["msgId", "clientSession", "queue", "engineId", "engineUuid", "status", "label"]);

const SCHEMA = `seq INTEGER PRIMARY KEY, msg_id TEXT NOT NULL UNIQUE, header TEXT NOT NULL, metadata TEXT NOT NULL,
  client_session TEXT NOT NULL, queue TEXT NOT NULL, engine_id INTEGER, engine_uuid TEXT, submitted TEXT NOT NULL,
  started TEXT, completed TEXT, received TEXT, resubmitted TEXT, status TEXT, result_header TEXT, result_metadata TEXT,
  stdout TEXT NOT NULL, stderr TEXT NOT NULL, label TEXT, request BLOB NOT NULL, reply BLOB, buffers_culled INTEGER NOT NULL`;

interface Row {
  seq: number;
  msg_id: string;
  header: string;
  metadata: string;
  client_session: string;
  queue: "direct" | "task";
  engine_id: number | null;
  engine_uuid: string | null;
  submitted: string;
  started: string | null;
  completed: string | null;
  received: string | null;
  resubmitted: string | null;
  status: TaskStatus | null;
  result_header: string | null;
  result_metadata: string | null;
  stdout: string;
  stderr: string;
  label: string | null;
  request: Buffer;
  reply: Buffer | null;
  buffers_culled: number;
}

export interface SqliteDbOptions extends Omit<MemoryDbOptions, "cullWhole"> {
  /** The SQLite file (created with its folder if missing). */
  file: string;
  /** Records go in the table of this cluster id. */
  clusterId: string;
  /** Told about a failed write (disk full, file removed); the records stay in memory meanwhile. */
  onError?: (err: Error) => void;
  /** Only read (`tsparallel db`): the file and the table must exist, nothing is written. */
  readonly?: boolean;
}

/** Load better-sqlite3, or say how to install it. */
function loadDriver(): typeof BetterSqlite3 {
  try {
    return createRequire(import.meta.url)("better-sqlite3") as typeof BetterSqlite3;
  } catch (err) {
    throw new Error(
      'db "sqlite" needs the package better-sqlite3 (an optional dependency of tsparallel, built from source when it ' +
        `installs): run \`npm install better-sqlite3@12\`. Loading it failed: ${(err as Error).message.split("\n")[0]}`,
      { cause: err },
    );
  }
}

export class SqliteDb implements TaskDb {
  readonly file: string;
  readonly table: string;
  /** Ids of tasks the file holds as pending from an earlier controller: no engine will answer them. */
  readonly orphans: string[];
  readonly #db: Database;
  readonly #cache: MemoryDb;
  /** Records changed since the last flush; a value in `#newSeq` means the row does not exist yet. */
  readonly #dirty = new Map<string, TaskRecord>();
  readonly #newSeq = new Map<string, number>();
  /** The write-behind timer (none when read-only). */
  readonly #timer: NodeJS.Timeout | null;
  readonly #onError: (err: Error) => void;
  readonly #sql: { has: Statement; get: Statement; insert: Statement; update: Statement; del: Statement; count: Statement; history: Statement };
  #seq: number;
  #closed = false;
  #soon: NodeJS.Immediate | null = null;
  /** When a failed write was last reported (a full disk fails every flush: one report a minute). */
  #errorReported = 0;

  constructor(opts: SqliteDbOptions) {
    const Driver = loadDriver();
    this.file = opts.file;
    this.table = `tasks:${opts.clusterId}`;
    this.#onError = opts.onError ?? (() => {});
    const t = quoteName(this.table);
    if (opts.readonly === true) {
      this.#db = new Driver(opts.file, { timeout: 5000, readonly: true, fileMustExist: true });
      const tables = taskTables(this.#db);
      if (!tables.includes(opts.clusterId)) {
        this.#db.close();
        throw new Error(`${opts.file} holds no records of cluster ${JSON.stringify(opts.clusterId)} (it has: ${tables.join(", ") || "none"})`);
      }
    } else {
      mkdirSync(dirname(opts.file), { recursive: true, mode: 0o700 });
      closeSync(openSync(opts.file, "a", 0o600)); // task records hold users' data: private, as SQLite's journal files then are
      this.#db = new Driver(opts.file, { timeout: 5000 });
      this.#db.pragma("journal_mode = WAL");
      // no fsync: a crashed controller loses nothing written (WAL), an OS crash may lose the last
      // flushes; with fsync at each checkpoint, a write cost 3× more (measured: 24 → 9 µs a record)
      this.#db.pragma("synchronous = OFF");
      this.#db.exec(`CREATE TABLE IF NOT EXISTS ${t} (${SCHEMA})`);
    }
    this.#checkSchema();
    const cols = COLUMNS.map(([, c]) => c);
    this.#sql = {
      has: this.#db.prepare(`SELECT 1 FROM ${t} WHERE msg_id = ?`).pluck(),
      get: this.#db.prepare(`SELECT * FROM ${t} WHERE msg_id = ?`),
      insert: this.#db.prepare(`INSERT INTO ${t} (seq, ${cols.join(", ")}) VALUES (@seq, ${cols.map((c) => `@${c}`).join(", ")})`),
      update: this.#db.prepare(`UPDATE ${t} SET ${cols.slice(1).map((c) => `${c} = @${c}`).join(", ")} WHERE msg_id = @msg_id`),
      del: this.#db.prepare(`DELETE FROM ${t} WHERE msg_id = ?`),
      count: this.#db.prepare(`SELECT count(*) FROM ${t}`).pluck(),
      history: this.#db.prepare(`SELECT msg_id FROM ${t} ORDER BY seq`).pluck(),
    };
    this.#seq = (this.#db.prepare(`SELECT max(seq) FROM ${t}`).pluck().get() as number | null) ?? 0;
    this.orphans = this.#db.prepare(`SELECT msg_id FROM ${t} WHERE status IS NULL ORDER BY seq`).pluck().all() as string[];
    // a record the cache lets go before it is written stays in #dirty, where get() still finds it
    this.#cache = new MemoryDb({ ...opts, cullWhole: true });
    this.#timer = opts.readonly === true ? null : setInterval(() => this.flush(), FLUSH_MS).unref();
  }

  get size(): number {
    return (this.#sql.count.get() as number) + this.#newSeq.size;
  }

  add(record: TaskRecord): void {
    if (this.has(record.msgId)) throw new KeyError(`Record ${record.msgId} already exists`);
    this.#newSeq.set(record.msgId, ++this.#seq);
    this.#cache.add(record);
    this.#changed(record);
  }

  has(msgId: string): boolean {
    return this.#cache.peek(msgId) !== undefined || this.#dirty.has(msgId) || this.#sql.has.get(msgId) !== undefined;
  }

  get(msgId: string): TaskRecord {
    const r = this.#cache.peek(msgId) ?? this.#dirty.get(msgId);
    if (r !== undefined) return r;
    const row = this.#sql.get.get(msgId) as Row | undefined;
    if (row === undefined) throw new KeyError(`No such message: ${msgId}`);
    return fromRow(row);
  }

  update(msgId: string, patch: Partial<TaskRecord>): void {
    const cached = this.#cache.peek(msgId);
    if (cached !== undefined) {
      this.#cache.update(msgId, patch);
      this.#changed(cached);
      return;
    }
    // a record the cache has let go (or one from an earlier controller): written at the next flush
    const record = this.get(msgId);
    patchRecord(record, patch);
    this.#changed(record);
  }

  find(query: Query, field: FieldReader): TaskRecord[] {
    const test = compileQuery(query, field); // first, so a bad query fails before any work
    this.flush();
    const { where, params } = prefilter(query);
    const rows = this.#db.prepare(`SELECT * FROM ${quoteName(this.table)}${where} ORDER BY seq`).iterate(...params) as IterableIterator<Row>;
    const out: TaskRecord[] = [];
    for (const row of rows) {
      const r = this.#cache.peek(row.msg_id) ?? fromRow(row);
      if (test(r)) out.push(r);
    }
    return out;
  }

  drop(msgIds: readonly string[]): void {
    this.#cache.drop(msgIds);
    this.#db.transaction(() => {
      for (const id of msgIds) {
        this.#dirty.delete(id);
        this.#newSeq.delete(id);
        this.#sql.del.run(id);
      }
    })();
  }

  history(): string[] {
    this.flush();
    return this.#sql.history.all() as string[];
  }

  #changed(r: TaskRecord): void {
    this.#dirty.set(r.msgId, r);
    if (this.#dirty.size >= FLUSH_RECORDS && this.#soon === null) this.#soon = setImmediate(() => this.flush());
  }

  /** Write every changed record, in one transaction. */
  flush(): void {
    if (this.#soon !== null) clearImmediate(this.#soon);
    this.#soon = null;
    if (this.#dirty.size === 0 || this.#closed) return;
    const records = [...this.#dirty.values()];
    this.#dirty.clear();
    this.#write(records);
  }

  close(): void {
    if (this.#closed) return;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.flush();
    this.#closed = true;
    this.#db.close();
  }

  #write(records: readonly TaskRecord[]): void {
    try {
      this.#db.transaction(() => {
        for (const r of records) {
          const seq = this.#newSeq.get(r.msgId);
          if (seq === undefined) this.#sql.update.run(toRow(r));
          else this.#sql.insert.run({ seq, ...toRow(r) });
        }
      })();
      for (const r of records) this.#newSeq.delete(r.msgId); // only once committed: a failed flush inserts them next time
    } catch (err) {
      // keep them for the next flush; the cache still answers for them
      for (const r of records) this.#dirty.set(r.msgId, r);
      if (Date.now() - this.#errorReported > 60_000) {
        this.#errorReported = Date.now();
        this.#onError(err as Error);
      }
    }
  }

  /** A table from another version of tsparallel is not reused silently. */
  #checkSchema(): void {
    const have = (this.#db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(this.table) as string[]).join(",");
    const want = ["seq", ...COLUMNS.map(([, c]) => c)].join(",");
    if (have !== want) {
      throw new Error(`The table ${JSON.stringify(this.table)} in ${this.file} has other columns than this tsparallel writes; use another db file or cluster id`);
    }
  }
}

/** The cluster ids with a task table in an open database. */
function taskTables(db: Database): string[] {
  const names = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tasks:%' ORDER BY name").pluck().all() as string[];
  return names.map((n) => n.slice("tasks:".length));
}

export interface TaskTableSummary {
  clusterId: string;
  records: number;
  pending: number;
  failed: number;
  firstSubmitted: string | null;
  lastCompleted: string | null;
}

/** What a task database file holds, cluster by cluster (`tsparallel db list`). */
export function summarizeTaskFile(file: string): TaskTableSummary[] {
  const db = new (loadDriver())(file, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    return taskTables(db).map((clusterId) => {
      const row = db.prepare(
        `SELECT count(*) AS records, sum(status IS NULL) AS pending, sum(status = 'error') AS failed,
           min(submitted) AS firstSubmitted, max(completed) AS lastCompleted FROM ${quoteName(`tasks:${clusterId}`)}`,
      ).get() as Omit<TaskTableSummary, "clusterId">;
      return { clusterId, records: row.records, pending: row.pending ?? 0, failed: row.failed ?? 0, firstSubmitted: row.firstSubmitted, lastCompleted: row.lastCompleted };
    });
  } finally {
    db.close();
  }
}

function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function toRow(r: TaskRecord): Record<string, unknown> {
  const rawReply = replyOf(r);
  const reply = rawReply === null || rawReply.length === 0 ? null : headText(rawReply);
  return {
    msg_id: r.msgId, header: JSON.stringify(r.header), metadata: JSON.stringify(r.metadata), client_session: r.clientSession,
    queue: r.queue, engine_id: r.engineId, engine_uuid: r.engineUuid, submitted: r.submitted, started: r.started,
    completed: r.completed, received: r.received, resubmitted: r.resubmitted, status: r.status,
    result_header: reply?.header ?? null, result_metadata: reply?.metadata ?? null, stdout: r.stdout, stderr: r.stderr,
    label: r.label, request: joined(r.requestRaw), reply: rawReply === null ? null : joined(rawReply),
    buffers_culled: r.buffersCulled ? 1 : 0,
  };
}

/** A stored message is its wire bytes; the pieces of one message concatenate into one valid buffer. */
function joined(raw: readonly Buffer[]): Buffer {
  return raw.length === 1 ? raw[0]! : Buffer.concat(raw as Buffer[]);
}

function fromRow(row: Row): TaskRecord {
  return {
    msgId: row.msg_id, header: JSON.parse(row.header) as Header, metadata: JSON.parse(row.metadata) as Json,
    clientSession: row.client_session, queue: row.queue, engineId: row.engine_id, engineUuid: row.engine_uuid,
    submitted: row.submitted, started: row.started, completed: row.completed, received: row.received,
    resubmitted: row.resubmitted, status: row.status, stdout: row.stdout, stderr: row.stderr, label: row.label,
    requestRaw: [row.request], replyRaw: row.reply === null ? null : [row.reply], replyStub: null, buffersCulled: row.buffers_culled === 1,
  };
}

/**
 * A SQL condition that every record matching `query` meets (it may let through more: the query
 * itself is applied to each row afterwards). Only equality on plain columns and null tests go to SQL.
 */
function prefilter(query: Query): { where: string; params: unknown[] } {
  const terms: string[] = [];
  const params: unknown[] = [];
  for (const [name, cond] of Object.entries(query)) {
    const key = recordKey(name);
    const column = COLUMN_OF.get(key);
    if (column === undefined) continue; // computed from the messages
    const ops = isOperatorObject(cond) ? Object.entries(cond) : [["$eq", cond] as const];
    for (const [op, arg] of ops) {
      const term = sqlTerm(key, column, op, arg, params);
      if (term !== null) terms.push(term);
    }
  }
  return { where: terms.length === 0 ? "" : ` WHERE ${terms.join(" AND ")}`, params };
}

function isOperatorObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}

function sqlTerm(key: RecordKey, column: string, op: string, arg: unknown, params: unknown[]): string | null {
  const isNull = arg === null || arg === undefined;
  if ((op === "$eq" && isNull) || (op === "$exists" && arg === false)) return `${column} IS NULL`;
  if ((op === "$ne" && isNull) || (op === "$exists" && arg === true)) return `${column} IS NOT NULL`;
  if (isDateKey(key) && (op === "$lt" || op === "$lte" || op === "$gt" || op === "$gte")) return dateTerm(column, op, arg, params);
  if (!EQUALITY_KEYS.has(key)) return null;
  if (op === "$eq" && (typeof arg === "string" || typeof arg === "number")) {
    params.push(arg);
    return `${column} = ?`;
  }
  if (op === "$in" && Array.isArray(arg) && arg.every((x) => typeof x === "string" || typeof x === "number")) {
    params.push(JSON.stringify(arg));
    return `${column} IN (SELECT value FROM json_each(?))`;
  }
  return null;
}

/** Timestamps as tsparallel writes them (…ss.ffffffZ), which sort as text in time order. */
const CANONICAL = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z";

/**
 * A time range as a text range. Queries compare whole milliseconds (Date.parse), so the bounds are
 * widened to the millisecond; a timestamp written in another form is let through for the query to judge.
 */
function dateTerm(column: string, op: string, arg: unknown, params: unknown[]): string | null {
  const ms = arg instanceof Date ? arg.getTime() : typeof arg === "string" ? Date.parse(arg) : Number.NaN;
  if (!Number.isFinite(ms)) return null;
  const iso = (t: number) => new Date(t).toISOString().replace("Z", "000Z");
  const lower = op === "$gt" || op === "$gte";
  params.push(iso(lower ? ms : ms + 1));
  return `(${column} ${lower ? ">=" : "<"} ? OR ${column} NOT GLOB '${CANONICAL}')`;
}
