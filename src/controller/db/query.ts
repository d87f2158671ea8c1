/** Mongo-style queries over task records: `{completed: {$ne: null}, engineUuid: "…"}`. */
import { KeyError, recordKey, type RecordKey, type TaskRecord } from "./record.js";

export type Query = Record<string, unknown>;

type Test = (value: unknown) => boolean;

const DATE_KEYS = new Set(["submitted", "started", "completed", "received", "resubmitted"]);

function comparable(value: unknown): unknown {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return Date.parse(value);
  return value;
}

function compare(op: string, arg: unknown): Test {
  const a = comparable(arg);
  switch (op) {
    case "$eq": return (v) => equal(v, arg);
    case "$ne": return (v) => !equal(v, arg);
    case "$lt": return (v) => v !== null && (comparable(v) as number) < (a as number);
    case "$lte": return (v) => v !== null && (comparable(v) as number) <= (a as number);
    case "$gt": return (v) => v !== null && (comparable(v) as number) > (a as number);
    case "$gte": return (v) => v !== null && (comparable(v) as number) >= (a as number);
    case "$in": return (v) => asList(op, arg).some((x) => equal(v, x));
    case "$nin": return (v) => !asList(op, arg).some((x) => equal(v, x));
    case "$exists": return (v) => (v !== null && v !== undefined) === Boolean(arg);
    case "$glob": return (v) => typeof v === "string" && globRegex(String(arg)).test(v);
    default: throw new KeyError(`Unknown query operator ${JSON.stringify(op)}`);
  }
}

function asList(op: string, arg: unknown): unknown[] {
  if (!Array.isArray(arg)) throw new TypeError(`${op} needs a list`);
  return arg;
}

function equal(v: unknown, x: unknown): boolean {
  if (v === x) return true;
  if (v === null || v === undefined || x === null || x === undefined) return (v ?? null) === (x ?? null);
  return comparable(v) === comparable(x);
}

function globRegex(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped.replace(/\[!/g, "[^")}$`);
}

/** Compile a query into a predicate (throws KeyError for unknown keys or operators). */
export function compileQuery(query: Query, field: (r: TaskRecord, key: RecordKey) => unknown): (r: TaskRecord) => boolean {
  const tests: Array<[RecordKey, Test]> = [];
  for (const [name, cond] of Object.entries(query)) {
    const key = recordKey(name);
    if (cond !== null && typeof cond === "object" && !Array.isArray(cond) && !(cond instanceof Date)) {
      for (const [op, arg] of Object.entries(cond)) tests.push([key, compare(op, arg)]);
    } else {
      tests.push([key, (v) => equal(v, cond)]);
    }
  }
  return (r) => tests.every(([k, t]) => t(field(r, k)));
}

export function isDateKey(key: string): boolean {
  return DATE_KEYS.has(key);
}
