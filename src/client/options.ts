/**
 * Options are checked at the door: an unknown key or a wrong type is refused with the option's
 * name (`Invalid option in map(): "chunksise"`).
 */

export type Check = (value: unknown) => string | null;

export const checks = {
  boolean: (v: unknown) => (typeof v === "boolean" ? null : "must be a boolean"),
  string: (v: unknown) => (typeof v === "string" ? null : "must be a string"),
  positiveInt: (v: unknown) => (Number.isInteger(v) && (v as number) > 0 ? null : "must be an integer > 0"),
  nonNegativeInt: (v: unknown) => (Number.isInteger(v) && (v as number) >= 0 ? null : "must be an integer >= 0"),
  seconds: (v: unknown) => (v === null || (typeof v === "number" && v >= 0) ? null : "must be a number of seconds >= 0 (or null)"),
  positiveSeconds: (v: unknown) => (typeof v === "number" && v > 0 && Number.isFinite(v) ? null : "must be a number of seconds > 0"),
  oneOf: (...values: string[]) => (v: unknown) => (values.includes(v as string) ? null : `must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}`),
  any: () => null,
} satisfies Record<string, unknown>;

/** Validate `opts` against `schema`; returns the options typed. */
export function validate<T extends object>(where: string, opts: unknown, schema: Record<string, Check>): T {
  if (opts === undefined || opts === null) return {} as T;
  if (typeof opts !== "object" || Array.isArray(opts)) throw new TypeError(`Invalid options in ${where}: expected an object`);
  for (const [key, value] of Object.entries(opts)) {
    const check = schema[key];
    if (check === undefined) {
      const known = Object.keys(schema).map((k) => JSON.stringify(k)).join(", ");
      throw new TypeError(`Invalid option in ${where}: ${JSON.stringify(key)} (known options: ${known})`);
    }
    if (value === undefined) continue;
    const problem = check(value);
    if (problem !== null) throw new TypeError(`Invalid option in ${where}: ${JSON.stringify(key)} ${problem}`);
  }
  return opts as T;
}

/** Is this a plain options object (not a sequence)? */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
