/**
 * A one-line RMS (root-mean-square) with map/reduce: the only difference between the local and
 * the parallel version is using the view's map instead of the builtin one.
 *
 * In ipyparallel:
 *   sqrt(reduce(add, map(sq, X)) / len(X))        -> 58.028845747399714
 *   sqrt(reduce(add, v.map(sq, X)) / len(X))      -> 58.028845747399714
 */
import type { Client } from "tsparallel";
import { isMain, runStandalone } from "./_shared.ts";

export async function main(rc: Client, log: (line: string) => void): Promise<void> {
  const v = rc.loadBalancedView();
  const X = Array.from({ length: 50 }, (_, i) => (100 * i) / 49); // np.linspace(0, 100)
  const add = (a: number, b: number) => a + b;
  const sq = (x: number) => x * x;

  log(`local:    ${Math.sqrt(X.map(sq).reduce(add) / X.length)}`);
  log(`parallel: ${Math.sqrt((await v.map(sq, X)).reduce(add) / X.length)}`);

  // or reduce as results arrive
  let sum = 0;
  for await (const s of v.map(sq, X, { chunksize: 5 })) sum = add(sum, s);
  log(`streamed: ${Math.sqrt(sum / X.length)}`);
}

if (isMain(import.meta.url)) await runStandalone(main);
