/** Helpers shared by the examples: a sleep that engines can run, and running an example on its own. */
import { Cluster, type Client } from "tsparallel";

export type Example = (rc: Client, log: (line: string) => void) => Promise<void>;

/** Run one example against a fresh local cluster of 2 engines (when the file is run directly). */
export async function runStandalone(example: Example): Promise<void> {
  await using cluster = await Cluster.start({ n: 2 });
  const rc = await cluster.connectClient();
  await rc.waitForEngines(2);
  await example(rc, (line) => console.log(line));
}

/** Is this module the program's entry point? */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url.endsWith(process.argv[1].replace(/\\/g, "/").split("/").pop()!);
}

/** Scale for the sleeps of the map examples (the docs' timings are 10× longer; TSP_EXAMPLE_SCALE=1 reproduces them). */
export const SCALE = Number(process.env.TSP_EXAMPLE_SCALE ?? "0.1");
