/**
 * Task dependencies (ipyparallel's Dependency): a set of msg ids with `all` (every one, or any one),
 * `success` (counts when it succeeded) and `failure` (counts when it failed).
 */
export interface Dependency {
  ids: string[];
  all: boolean;
  success: boolean;
  failure: boolean;
}

export type Outcome = "ok" | "failed";

/** Parse the wire form: a list of ids or `{ids | dependencies, all, success, failure}`. Throws on junk. */
export function parseDependency(value: unknown): Dependency | null {
  if (value === undefined || value === null) return null;
  if (Array.isArray(value)) return value.length === 0 ? null : { ids: value.map(String), all: true, success: true, failure: false };
  if (typeof value === "string") return { ids: [value], all: true, success: true, failure: false };
  if (typeof value === "object") {
    const v = value as Record<string, unknown>;
    const ids = (v.ids ?? v.dependencies) as unknown;
    if (!Array.isArray(ids)) throw new TypeError("a dependency needs a list of msg ids");
    const dep = { ids: ids.map(String), all: v.all !== false, success: v.success !== false, failure: v.failure === true };
    if (!dep.success && !dep.failure) throw new TypeError("a dependency must count success, failure or both");
    return dep.ids.length === 0 ? null : dep;
  }
  throw new TypeError("invalid dependency");
}

function counts(dep: Dependency, outcome: Outcome): boolean {
  return outcome === "ok" ? dep.success : dep.failure;
}

/** met: satisfied now; unreachable: can never be satisfied; wait: not yet. */
export function evaluate(dep: Dependency, outcomeOf: (id: string) => Outcome | null): "met" | "unreachable" | "wait" {
  let met = 0;
  let dead = 0;
  for (const id of dep.ids) {
    const o = outcomeOf(id);
    if (o === null) continue;
    if (counts(dep, o)) met++;
    else dead++;
  }
  const n = dep.ids.length;
  if (dep.all) return dead > 0 ? "unreachable" : met === n ? "met" : "wait";
  return met > 0 ? "met" : dead === n ? "unreachable" : "wait";
}
