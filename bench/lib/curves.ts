/** The full-mode scaling curves of tsparallel, as markdown tables. */
import { fmt } from "./report.ts";
import type { Results } from "./results.ts";

const CHUNKSIZES = [1, 4, 16, 64];
const PAYLOADS = [16, 1e3, 64e3, 1e6, 10e6, 100e6];
const ENGINES = [1, 2, 4, 8];

function bytes(n: number): string {
  if (n >= 1e6) return `${n / 1e6} MB`;
  if (n >= 1e3) return `${n / 1e3} KB`;
  return `${n} B`;
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}

function v(res: Results, c: string, key: string): string {
  const x = res.value("tsparallel", c, key);
  if (Number.isFinite(x)) return fmt(x);
  return res.failure("tsparallel", c) ? "failed" : "—";
}

export function curvesMarkdown(res: Results): string {
  const parts: string[] = [];
  parts.push(`### T1 against chunksize (load-balanced map of ${v(res, "Kchunk", "n")} no-ops, 2 engines)\n`);
  parts.push(table(["chunksize", "tasks/s"], CHUNKSIZES.map((c) => [String(c), v(res, "Kchunk", `chunk${c}_tasks_per_s`)])));
  parts.push("\n### L1 against payload size (a Uint8Array argument returned back, engine 0)\n");
  parts.push(table(["payload", "median µs", "p90 µs", "MB/s (both ways)"], PAYLOADS.map((s) =>
    [bytes(s), v(res, "Kpayload", `${s}_median_us`), v(res, "Kpayload", `${s}_p90_us`), v(res, "Kpayload", `${s}_MBps`)])));
  parts.push("\n### D1 against engine count (push of 100 MB to every engine of the view, one 8-engine cluster)\n");
  parts.push(table(["engines", "aggregate MB/s"], ENGINES.map((k) => [String(k), v(res, "Kengines", `engines${k}_MBps`)])));
  const failed = ["Kchunk", "Kpayload", "Kengines"].map((c) => res.failure("tsparallel", c)).filter(Boolean);
  if (failed.length > 0) parts.push(`\nFailures: ${failed.join("; ")}`);
  return parts.join("\n");
}
