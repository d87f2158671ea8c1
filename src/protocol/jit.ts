/**
 * V8 compiles a function with its optimizing compiler once the function has run a budget of
 * bytecode. The controller and the engines run the same short paths for every message, thousands
 * of times a second, from the moment they start: with a budget of 16 KB (V8's default in Node 20 is
 * 132 KB) those paths reach optimized code after a few hundred messages instead of a few thousand.
 * Measured: the median of a fresh cluster's first 2 000 `applySync(noop)` calls (after 200) went from
 * ~215 to ~183 µs, 8 of 8 alternating pairs (docs/performance.md, "Warm-up"). A budget the process
 * was started with (`--interrupt-budget` in its arguments or NODE_OPTIONS) is kept.
 */
import process from "node:process";
import { setFlagsFromString } from "node:v8";

export const INTERRUPT_BUDGET = 16 * 1024;

/** Lower V8's optimization budget for this process (a controller or an engine), once, before its hot code first runs. */
export function tuneJit(env: NodeJS.ProcessEnv = process.env): void {
  const given = [...process.execArgv, ...(env.NODE_OPTIONS ?? "").split(/\s+/)].some((a) => a.startsWith("--interrupt-budget"));
  if (!given) setFlagsFromString(`--interrupt-budget=${INTERRUPT_BUDGET}`);
}
