/**
 * `tsparallel db list|query`: read a SQLite task database (`db: "sqlite"`) with no cluster running,
 * e.g. to see what failed in last night's run. Read-only: it never writes to the file.
 */
import process from "node:process";
import { SqliteDb, summarizeTaskFile } from "../controller/db/sqlite.js";
import { recordKey, type RecordKey } from "../controller/db/record.js";
import { DEFAULT_KEYS, recordField } from "../controller/queries.js";
import { defaultDbFile } from "../controller/server.js";

interface DbCommandOptions {
  profile: string;
  dbFile?: string;
  clusterId?: string;
  keys?: string;
  json?: boolean;
}

export function dbList(o: DbCommandOptions): void {
  const summaries = summarizeTaskFile(o.dbFile ?? defaultDbFile(o.profile));
  if (o.json === true) {
    process.stdout.write(`${JSON.stringify(summaries)}\n`);
    return;
  }
  process.stdout.write("CLUSTER ID                RECORDS   PENDING   FAILED    FIRST SUBMITTED              LAST COMPLETED\n");
  for (const s of summaries) {
    const cols = [s.clusterId.padEnd(26), String(s.records).padEnd(10), String(s.pending).padEnd(10), String(s.failed).padEnd(10)];
    process.stdout.write(`${cols.join("")}${(s.firstSubmitted ?? "-").padEnd(29)}${s.lastCompleted ?? "-"}\n`);
  }
}

/** One JSON object per matching record, in submission order. Buffers are left out (binary). */
export function dbQuery(queryText: string, o: DbCommandOptions): void {
  let query: unknown;
  try {
    query = JSON.parse(queryText);
  } catch (err) {
    throw new TypeError(`the query is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof query !== "object" || query === null || Array.isArray(query)) throw new TypeError("the query must be a JSON object, e.g. '{\"status\":\"error\"}'");
  const keys: RecordKey[] = o.keys === undefined ? DEFAULT_KEYS : o.keys.split(",").map((k) => recordKey(k.trim()));
  if (keys.some((k) => k === "buffers" || k === "resultBuffers")) throw new TypeError("buffers are binary: query them with rc.dbQuery");
  const db = new SqliteDb({ file: o.dbFile ?? defaultDbFile(o.profile), clusterId: o.clusterId!, readonly: true });
  try {
    for (const r of db.find(query as Record<string, unknown>, recordField)) {
      process.stdout.write(`${JSON.stringify(Object.fromEntries(keys.map((k) => [k, recordField(r, k)])))}\n`);
    }
  } finally {
    db.close();
  }
}
