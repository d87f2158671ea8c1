/** Turning what user code threw into the wire form of a remote error. */
import type { Json } from "../protocol/messages.js";

/** Frames from the engine's own machinery are noise in a user's traceback. */
const INTERNAL_FRAME = /(\/dist\/engine\/|\/src\/engine\/|node:internal|tsparallel-call|node:vm)/;

export function taskError(err: unknown): Json {
  if (err instanceof Error || (typeof err === "object" && err !== null && "message" in err)) {
    const e = err as Error;
    const name = typeof e.name === "string" && e.name.length > 0 ? e.name : "Error";
    return { status: "error", ename: name, evalue: String(e.message), traceback: cleanStack(e.stack ?? `${name}: ${e.message}`) };
  }
  const text = describeThrown(err);
  return { status: "error", ename: typeof err === "string" ? "Error" : typeof err, evalue: text, traceback: `Uncaught ${text}` };
}

function describeThrown(value: unknown): string {
  try {
    return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function cleanStack(stack: string): string {
  return stack
    .split("\n")
    .filter((line) => !(line.trimStart().startsWith("at ") && INTERNAL_FRAME.test(line)))
    .join("\n");
}

export function interruptedError(): Error {
  const err = new Error("the task was interrupted by SIGINT");
  err.name = "KeyboardInterrupt";
  return err;
}
