/**
 * Load-balancing schemes: each picks an index into the loads of the candidate engines, which are
 * listed least recently used first (so ties go to the engine that waited longest).
 */
export type SchemeName = "leastload" | "lru" | "twobin" | "weighted" | "plainrandom";
export type Scheme = (loads: readonly number[]) => number;

export const SCHEMES: Record<SchemeName, Scheme> = {
  leastload(loads) {
    let best = 0;
    for (let i = 1; i < loads.length; i++) if (loads[i]! < loads[best]!) best = i;
    return best;
  },
  lru() {
    return 0;
  },
  plainrandom(loads) {
    return Math.floor(Math.random() * loads.length);
  },
  twobin(loads) {
    const a = Math.floor(Math.random() * loads.length);
    const b = Math.floor(Math.random() * loads.length);
    return Math.min(a, b);
  },
  weighted(loads) {
    // two draws weighted by inverse load; keep the lighter one
    const weights = loads.map((l) => 1 / (1e-6 + l));
    const total = weights.reduce((s, w) => s + w, 0);
    const draw = () => {
      let r = Math.random() * total;
      for (let i = 0; i < weights.length; i++) {
        r -= weights[i]!;
        if (r <= 0) return i;
      }
      return weights.length - 1;
    };
    const a = draw();
    const b = draw();
    return weights[a]! >= weights[b]! ? a : b;
  },
};

export function isSchemeName(name: string): name is SchemeName {
  return Object.hasOwn(SCHEMES, name);
}
