/** The rows of the table and the targets (from the issue) checked against them. */

export interface Metric {
  c: string;
  label: string;
  unit: string;
  key: string;
  better: "lower" | "higher";
  /** The machine-floor figure shown beside this one, if any. */
  floor?: { c: string; key: string };
}

const lat = (c: string, label: string, key: string, floor?: Metric["floor"]): Metric =>
  ({ c, label, unit: "µs", key, better: "lower", floor });

export const METRICS: Metric[] = [
  lat("Zunix", "floor: node:net ping-pong 16 B, 2 processes, Unix socket (median)", "median_us"),
  lat("Zunix", "floor: same, Unix socket (p90)", "p90_us"),
  lat("Ztcp", "floor: same, TCP 127.0.0.1 (median)", "median_us"),
  lat("Ztcp", "floor: same, TCP 127.0.0.1 (p90)", "p90_us"),
  { c: "Zbulk", label: "bare transfer: 100 MB one way over a Unix socket, 2 Node processes, read into fresh memory", unit: "MB/s", key: "fresh_MBps", better: "higher" },
  { c: "Zbulk", label: "bare transfer: same, read into reused memory", unit: "MB/s", key: "reused_MBps", better: "higher" },
  { c: "Zbulk", label: "bare transfer with Poly1305 at both ends (each 1 MB MAC'd as it is written and as it lands), into fresh memory", unit: "MB/s", key: "fresh_mac_MBps", better: "higher" },
  { c: "Zbulk", label: "same, into reused memory", unit: "MB/s", key: "reused_mac_MBps", better: "higher" },
  { c: "Zbulk", label: "same, into reused memory, the sender MACing all before it writes (the tag ahead, as in tsparallel's protocol)", unit: "MB/s", key: "reused_mac_ahead_MBps", better: "higher" },
  lat("L1", "L1 applySync(noop) on one engine, median", "median_us", { c: "Zunix", key: "median_us" }),
  lat("L1", "L1 p90", "p90_us", { c: "Zunix", key: "p90_us" }),
  lat("L1", "L1 p99", "p99_us", { c: "Zunix", key: "p99_us" }),
  lat("L1tcp", "L1 over TCP (`transport: \"tcp\"`), median", "median_us", { c: "Ztcp", key: "median_us" }),
  lat("L2", "L2 applySync(noop) on 2-engine DirectView, median", "median_us"),
  lat("L2", "L2 p90", "p90_us"),
  lat("L3", "L3 load-balanced applySync(noop), median", "median_us"),
  lat("L3", "L3 p90", "p90_us"),
  { c: "T1", label: "T1 load-balanced map(noop), chunksize 1", unit: "tasks/s", key: "tasks_per_s", better: "higher" },
  { c: "T2", label: "T2 N × apply(noop), then wait for all", unit: "tasks/s", key: "tasks_per_s", better: "higher" },
  { c: "D1", label: "D1 push 100 MB float64 to one engine", unit: "MB/s", key: "push_MBps", better: "higher", floor: { c: "Zbulk", key: "reused_MBps" } },
  { c: "D1", label: "D1 pull 100 MB float64 from one engine", unit: "MB/s", key: "pull_MBps", better: "higher", floor: { c: "Zbulk", key: "fresh_MBps" } },
  { c: "D2", label: "D2 scatter + gather 10 M float64 over 2 engines", unit: "s", key: "seconds", better: "lower" },
  { c: "D2", label: "D2 scatter part", unit: "s", key: "scatter_s", better: "lower" },
  { c: "D2", label: "D2 gather part", unit: "s", key: "gather_s", better: "lower" },
  { c: "C1", label: "C1 200 × ~2.5 ms CPU tasks: serialTime / wallTime", unit: "×", key: "serial_over_wall", better: "higher" },
  { c: "C1", label: "C1 same: local serial (fresh process) / wall", unit: "×", key: "local_serial_over_wall", better: "higher" },
  { c: "C1", label: "C1 wall time", unit: "s", key: "wall_s", better: "lower" },
  { c: "S1", label: "S1 start controller + 2 engines until the client sees both", unit: "s", key: "seconds", better: "lower" },
  { c: "M1", label: "M1 idle cluster memory, sum of RSS", unit: "MB", key: "rss_MB", better: "lower" },
];

export interface Operand {
  peer: string;
  c: string;
  key: string;
}

export interface Target {
  /** The metric row (c + key) this target is printed beside. */
  c: string;
  key: string;
  text: string;
  /** ratio = num / den (per round), or the num value alone when den is null */
  num: Operand;
  den: Operand | null;
  op: ">=" | "<=";
  bound: number;
  ratioName: string;
  /**
   * Bare transfers measured by the floor peer, in place of tsparallel's figure: the ratios plain
   * Node sockets score against the same target in the same round (is the target within reach of
   * two Node processes on this machine at all, and with the buffers authenticated?), each with a
   * short label.
   */
  bare?: Array<{ label: string; op: Operand }>;
}

const ts = (c: string, key: string): Operand => ({ peer: "tsparallel", c, key });
const ipp = (c: string, key: string): Operand => ({ peer: "ipyparallel", c, key });
const floor = (c: string, key: string): Operand => ({ peer: "floor", c, key });

export const TARGETS: Target[] = [
  { c: "L1", key: "median_us", text: "L1 ≤ 1/15 of ipyparallel's", num: ipp("L1", "median_us"), den: ts("L1", "median_us"), op: ">=", bound: 15, ratioName: "ipp / ts" },
  { c: "L1", key: "median_us", text: "L1 ≤ 4× the Unix-socket floor", num: ts("L1", "median_us"), den: floor("Zunix", "median_us"), op: "<=", bound: 4, ratioName: "ts / floor" },
  { c: "L1tcp", key: "median_us", text: "L1 over TCP ≤ 4× the TCP floor", num: ts("L1tcp", "median_us"), den: floor("Ztcp", "median_us"), op: "<=", bound: 4, ratioName: "ts / floor" },
  { c: "T1", key: "tasks_per_s", text: "T1 ≥ 50× ipyparallel's", num: ts("T1", "tasks_per_s"), den: ipp("T1", "tasks_per_s"), op: ">=", bound: 50, ratioName: "ts / ipp" },
  { c: "T1", key: "tasks_per_s", text: "T1 ≥ 1× workerpool's process pool", num: ts("T1", "tasks_per_s"), den: { peer: "workerpool", c: "T1", key: "tasks_per_s" }, op: ">=", bound: 1, ratioName: "ts / workerpool" },
  { c: "D1", key: "push_MBps", text: "D1 push ≥ 5× ipyparallel's", num: ts("D1", "push_MBps"), den: ipp("D1", "push_MBps"), op: ">=", bound: 5, ratioName: "ts / ipp", bare: [
    { label: "plain", op: floor("Zbulk", "reused_MBps") },
    { label: "MAC'd as written", op: floor("Zbulk", "reused_mac_MBps") },
    { label: "tag ahead", op: floor("Zbulk", "reused_mac_ahead_MBps") },
  ] },
  { c: "D1", key: "pull_MBps", text: "D1 pull ≥ 5× ipyparallel's", num: ts("D1", "pull_MBps"), den: ipp("D1", "pull_MBps"), op: ">=", bound: 5, ratioName: "ts / ipp", bare: [
    { label: "plain", op: floor("Zbulk", "fresh_MBps") },
    { label: "MAC'd", op: floor("Zbulk", "fresh_mac_MBps") },
  ] },
  { c: "D2", key: "seconds", text: "D2 ≥ 5× faster than ipyparallel", num: ipp("D2", "seconds"), den: ts("D2", "seconds"), op: ">=", bound: 5, ratioName: "ipp / ts" },
  { c: "C1", key: "serial_over_wall", text: "C1 serialTime / wallTime ≥ 1.8", num: ts("C1", "serial_over_wall"), den: null, op: ">=", bound: 1.8, ratioName: "value" },
  { c: "S1", key: "seconds", text: "S1 ≤ 1/10 of ipyparallel's", num: ipp("S1", "seconds"), den: ts("S1", "seconds"), op: ">=", bound: 10, ratioName: "ipp / ts" },
  { c: "M1", key: "rss_MB", text: "M1 ≤ 1/4 of ipyparallel's", num: ipp("M1", "rss_MB"), den: ts("M1", "rss_MB"), op: ">=", bound: 4, ratioName: "ipp / ts" },
];
