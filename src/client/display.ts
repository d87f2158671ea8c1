/**
 * `displayOutputs`: captured output printed in `[stdout:0]`-headed blocks, as ipyparallel prints it
 * (a single line after the header, a multi-line text below it; empty streams print nothing).
 */
import type { TaskMetadata } from "./metadata.js";

export type OutputGrouping = "type" | "engine" | "order";

/** "type": all stdout, then all stderr, then rich outputs; "engine": each engine's together; "order": "type" with rich outputs collated. */
export function displayOutputs(mds: TaskMetadata[], groupby: OutputGrouping): void {
  if (groupby === "engine") {
    for (const m of byEngine(mds)) {
      showStream(m, "stdout");
      showStream(m, "stderr");
      m.outputs.forEach((o) => showOutput(m, o));
    }
    return;
  }
  for (const m of mds) showStream(m, "stdout");
  for (const m of mds) showStream(m, "stderr");
  if (groupby === "type") for (const m of mds) m.outputs.forEach((o) => showOutput(m, o));
  else collated(mds).forEach(([m, o]) => showOutput(m, o));
}

function showStream(m: TaskMetadata, stream: "stdout" | "stderr"): void {
  const text = m[stream];
  if (text.length === 0) return;
  const out = stream === "stdout" ? process.stdout : process.stderr;
  const end = text.endsWith("\n") ? "" : "\n";
  const multiline = text.split("\n").length - 1 > (text.endsWith("\n") ? 1 : 0);
  let prefix = `[${stream}:${m.engineId ?? "?"}]`;
  prefix = multiline && !text.startsWith("\n") ? `${prefix}\n` : `${prefix} `;
  out.write(`${prefix}${text}${end}`);
}

/** A rich output (display data `{ data, metadata }`): its text/plain form, else the kinds of data it holds. */
function showOutput(m: TaskMetadata, output: unknown): void {
  const data = (output as { data?: Record<string, unknown> } | null)?.data ?? {};
  const plain = data["text/plain"];
  const text = typeof plain === "string" ? plain : `<${Object.keys(data).join(", ") || "empty"} output>`;
  process.stdout.write(`[output:${m.engineId ?? "?"}]${text.includes("\n") ? "\n" : " "}${text}${text.endsWith("\n") ? "" : "\n"}`);
}

/** Tasks grouped by the engine they ran on (engines in order of first appearance), tasks in order within. */
function byEngine(mds: TaskMetadata[]): TaskMetadata[] {
  const groups = new Map<number | null, TaskMetadata[]>();
  for (const m of mds) groups.set(m.engineId, [...(groups.get(m.engineId) ?? []), m]);
  return [...groups.values()].flat();
}

/** Every task's first rich output, then every task's second, and so on. */
function collated(mds: TaskMetadata[]): Array<[TaskMetadata, unknown]> {
  const out: Array<[TaskMetadata, unknown]> = [];
  const n = Math.max(0, ...mds.map((m) => m.outputs.length));
  for (let i = 0; i < n; i++) for (const m of mds) if (i < m.outputs.length) out.push([m, m.outputs[i]]);
  return out;
}

