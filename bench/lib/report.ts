/** Render the results as markdown: the main table, the targets, the scaling curves, the failures. */
import { METRICS, TARGETS, type Metric, type Target } from "./metrics.ts";
import type { Results } from "./results.ts";

export const TABLE_PEERS = ["tsparallel", "ipyparallel", "dask", "workerpool", "piscina"] as const;

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a >= 100) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1);
  return v.toPrecision(3);
}

/** A measured ratio beside its bound, with enough digits that the figure agrees with the verdict (14.98, not 15.0). */
export function fmtAgainst(v: number, bound: number): string {
  let s = fmt(v);
  for (let digits = 4; Number(s) === bound && v !== bound && digits <= 8; digits++) s = v.toPrecision(digits);
  return s;
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const sep = head.map((_, i) => (i === 0 ? "---" : "---:"));
  return [line(head), line(sep), ...rows.map(line)].join("\n");
}

function cell(res: Results, peer: string, m: Metric): string {
  const v = res.value(peer, m.c, m.key);
  if (Number.isFinite(v)) return fmt(v);
  if (res.samples(peer, m.c).some((s) => s.r.na === 1)) return "n/a";
  return res.failure(peer, m.c) ? "failed*" : "—";
}

export interface Verdict {
  ratio: number;
  verdict: "PASS" | "FAIL" | "n/a";
}

export function evaluate(res: Results, t: Target): Verdict {
  if (res.samples(t.num.peer, t.num.c).some((s) => s.r.na === 1)) return { ratio: Number.NaN, verdict: "n/a" };
  const ratio = t.den ? res.ratio(t.num, t.den) : res.value(t.num.peer, t.num.c, t.num.key);
  if (!Number.isFinite(ratio)) return { ratio, verdict: "n/a" };
  const ok = t.op === ">=" ? ratio >= t.bound : ratio <= t.bound;
  return { ratio, verdict: ok ? "PASS" : "FAIL" };
}

function short(t: Target): string {
  return t.text.replace(/^\S+( push| pull| over TCP)? /, "");
}

function targetsCell(res: Results, m: Metric): string {
  return TARGETS.filter((t) => t.c === m.c && t.key === m.key)
    .map((t) => `${evaluate(res, t).verdict} ${short(t)}`)
    .join("; ");
}

function vsIpp(res: Results, m: Metric): string {
  const ts = { peer: "tsparallel", c: m.c, key: m.key };
  const ipp = { peer: "ipyparallel", c: m.c, key: m.key };
  const r = m.better === "lower" ? res.ratio(ipp, ts) : res.ratio(ts, ipp);
  return Number.isFinite(r) ? `${fmt(r)}×` : "—";
}

export function mainTable(res: Results): string {
  const rows = METRICS.filter((m) => m.c.startsWith("Z") ? res.samples("floor", m.c).length > 0 : TABLE_PEERS.some((p) => res.samples(p, m.c).length > 0 || res.failure(p, m.c)))
    .map((m) => {
      const isFloor = m.c.startsWith("Z");
      const peers = TABLE_PEERS.map((p) => (isFloor ? "" : cell(res, p, m)));
      const floor = isFloor ? cell(res, "floor", m) : m.floor ? fmt(res.value("floor", m.floor.c, m.floor.key)) : "";
      return [m.label, m.unit, ...peers, floor, isFloor ? "" : vsIpp(res, m), targetsCell(res, m)];
    });
  return table(["metric", "unit", ...TABLE_PEERS, "floor", "tsparallel vs ipp", "target"], rows);
}

/** The ratios bare transfers score against a target that names them, each labelled ("" if none). */
function bareRatio(res: Results, t: Target): string {
  if (!t.bare || !t.den) return "";
  const den = t.den;
  return t.bare.map(({ label, op }) => {
    const r = t.num.peer === "tsparallel" ? res.ratio(op, den) : res.ratio(t.num, op);
    return `${Number.isFinite(r) ? `${fmt(r)}×` : "—"} ${label}`;
  }).join("; ");
}

export function targetsTable(res: Results): string {
  const rows = TARGETS.map((t) => {
    const v = evaluate(res, t);
    return [t.text, t.ratioName, Number.isFinite(v.ratio) ? `${fmtAgainst(v.ratio, t.bound)}${t.den ? "×" : ""}` : "—", `${t.op} ${t.bound}`, `**${v.verdict}**`, bareRatio(res, t)];
  });
  return table(["target", "ratio", "measured", "required", "result", "bare transfers' ratios"], rows);
}

/**
 * T1 round by round: each peer's tasks/s, the same-round ratio to ipyparallel, and tsparallel's CPU
 * per task by process (client, controller, engines). The target's figure is the median of these
 * rounds; this shows how a cluster still warming up (round 1) and a noisy minute move it. "" when
 * tsparallel has no T1 samples.
 */
export function t1RoundsTable(res: Results): string {
  const ts = res.samples("tsparallel", "T1");
  if (ts.length === 0) return "";
  const roles = [...new Set(ts.flatMap((s) => Object.keys(s.r).filter((k) => /^cpu_.+_us$/.test(k))))];
  const peers = ["tsparallel", "ipyparallel", "workerpool"] as const;
  const rate = peers.map((p) => res.perRound(p, "T1", "tasks_per_s"));
  const rows = [...rate[0]!.keys()].sort((a, b) => a - b).map((round) => {
    const own = ts.find((s) => s.round === round)!.r;
    const ipp = rate[1]!.get(round);
    return [
      String(round),
      ...rate.map((m) => fmt(m.get(round) ?? Number.NaN)),
      ipp === undefined ? "—" : `${fmt(rate[0]!.get(round)! / ipp)}×`,
      ...roles.map((k) => fmt(own[k] ?? Number.NaN)),
    ];
  });
  const head = ["round", ...peers.map((p) => `${p} tasks/s`), "ts / ipp", ...roles.map((k) => `${k.slice(4, -3)} µs/task`)];
  return table(head, rows);
}

export function failuresList(res: Results): string {
  const lines = [...res.failures].map(([k, msgs]) => `- ${k}: ${[...msgs].join("; ")}`);
  return [...lines, ...res.notes.map((n) => `- ${n}`)].join("\n");
}
