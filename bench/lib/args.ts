/** The bench's command line (bench/run.ts). */
import { fileURLToPath } from "node:url";
import { ALL_CASES, PEERS, type Mode, type PeerName } from "./plan.ts";

/** A wrong command line: run.ts prints its message alone and exits with status 2. */
export class UsageError extends Error {}

function count(name: string, text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a whole number of at least 1, not ${JSON.stringify(text)}`);
  return n;
}

function seconds(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name} must be a positive number of seconds, not ${JSON.stringify(text)}`);
  return n;
}

export interface Args {
  mode: Mode;
  cases: string[];
  rounds: number;
  out: string;
  /** The peers to run (--peers; default all of PEERS). */
  peers: PeerName[];
  /** Where to write every raw sample as JSON (per peer and case, tagged with its round), or null. */
  samples: string | null;
  verbose: boolean;
  budgetS: number;
}

/** The command line of `bench/run.ts`; a wrong option, case, peer or number is an error that names it. */
export function parseArgs(argv: string[]): Args {
  const get = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const withValue = new Set(["--only", "--peers", "--rounds", "--out", "--samples", "--budget"]);
  for (let i = 0; i < argv.length; i++) {
    if (withValue.has(argv[i]!)) {
      if (argv[i + 1] === undefined || argv[i + 1]!.startsWith("--")) throw new UsageError(`${argv[i]} needs a value`);
      i++;
    } else if (argv[i] !== "--quick" && argv[i] !== "--verbose") {
      throw new UsageError(`Unknown option ${argv[i]} (known: --quick, --verbose, ${[...withValue].join(", ")})`);
    }
  }
  const mode: Mode = argv.includes("--quick") ? "quick" : "full";
  const only = get("--only")?.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
  const unknown = only?.filter((c) => !(ALL_CASES as readonly string[]).includes(c)) ?? [];
  if (unknown.length > 0) throw new UsageError(`Unknown case(s) in --only: ${unknown.join(", ")} (known: ${ALL_CASES.join(", ")})`);
  const peers = get("--peers")?.split(",").map((s) => s.trim()).filter(Boolean) ?? [...PEERS];
  const unknownPeers = peers.filter((p) => !(PEERS as string[]).includes(p));
  if (unknownPeers.length > 0) throw new UsageError(`Unknown peer(s) in --peers: ${unknownPeers.join(", ")} (known: ${PEERS.join(", ")})`);
  return {
    mode,
    peers: peers as PeerName[],
    cases: only ?? [...ALL_CASES],
    rounds: count("--rounds", get("--rounds"), mode === "quick" ? 2 : 5),
    out: get("--out") ?? fileURLToPath(new URL("../../docs/benchmarks.md", import.meta.url)),
    samples: get("--samples") ?? null,
    verbose: argv.includes("--verbose"),
    budgetS: get("--budget") === undefined ? (mode === "quick" ? 115 : Number.POSITIVE_INFINITY) : seconds("--budget", get("--budget")!),
  };
}
