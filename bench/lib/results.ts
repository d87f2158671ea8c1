/** Everything the rounds produced: samples per peer and case, tagged with their round, and failures. */
import type { CaseResult, PeerOutput } from "./peerio.ts";
import { median } from "./stats.ts";

export interface Sample {
  round: number;
  r: CaseResult;
}

export class Results {
  readonly #samples = new Map<string, Sample[]>();
  /** peer/case → distinct failure messages */
  readonly failures = new Map<string, Set<string>>();
  /** notes that are not tied to a case: missing peers, leftover processes */
  readonly notes: string[] = [];

  add(round: number, out: PeerOutput, peer = out.peer): void {
    for (const [c, r] of Object.entries(out.results)) this.#list(peer, c).push({ round, r });
    for (const [c, msg] of Object.entries(out.errors)) this.fail(peer, c, msg);
  }

  fail(peer: string, c: string, msg: string): void {
    const k = `${peer}/${c}`;
    if (!this.failures.has(k)) this.failures.set(k, new Set());
    this.failures.get(k)!.add(msg);
  }

  failure(peer: string, c: string): string | null {
    const set = this.failures.get(`${peer}/${c}`);
    return set ? [...set].join("; ") : null;
  }

  samples(peer: string, c: string): Sample[] {
    return this.#samples.get(`${peer}/${c}`) ?? [];
  }

  /** Median over all samples of one field; NaN when there is none. */
  value(peer: string, c: string, key: string): number {
    return median(this.#values(this.samples(peer, c), key));
  }

  /** Per round: the median of that round's samples of one field. */
  perRound(peer: string, c: string, key: string): Map<number, number> {
    const byRound = new Map<number, Sample[]>();
    for (const s of this.samples(peer, c)) byRound.set(s.round, [...(byRound.get(s.round) ?? []), s]);
    const out = new Map<number, number>();
    for (const [round, ss] of byRound) {
      const v = median(this.#values(ss, key));
      if (Number.isFinite(v)) out.set(round, v);
    }
    return out;
  }

  /** Median over rounds of num/den taken within the same round; falls back to the ratio of medians. */
  ratio(num: { peer: string; c: string; key: string }, den: { peer: string; c: string; key: string }): number {
    const a = this.perRound(num.peer, num.c, num.key);
    const b = this.perRound(den.peer, den.c, den.key);
    const within = [...a].filter(([r]) => b.has(r)).map(([r, v]) => v / b.get(r)!);
    if (within.length > 0) return median(within);
    return this.value(num.peer, num.c, num.key) / this.value(den.peer, den.c, den.key);
  }

  /** Every sample and failure, for `--samples FILE`. */
  dump(): { samples: Record<string, Sample[]>; failures: Record<string, string[]>; notes: string[] } {
    return {
      samples: Object.fromEntries(this.#samples),
      failures: Object.fromEntries([...this.failures].map(([k, v]) => [k, [...v]])),
      notes: this.notes,
    };
  }

  #values(ss: Sample[], key: string): number[] {
    return ss.map((s) => s.r[key]).filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  }

  #list(peer: string, c: string): Sample[] {
    const k = `${peer}/${c}`;
    if (!this.#samples.has(k)) this.#samples.set(k, []);
    return this.#samples.get(k)!;
  }
}
