/**
 * AsyncResult.getDict(): results keyed by engine id — here, every engine's pid, then pushed back
 * to every engine as `pidMap` (the docs' `rc[:]['pid_map'] = pids`, for inter-engine set-up).
 *
 * In ipyparallel:
 *   ar = rc[:].apply_async(os.getpid)
 *   pids = ar.get_dict()
 *   rc[:]['pid_map'] = pids
 */
import type { Client } from "tsparallel";
import { isMain, runStandalone } from "./_shared.ts";

export async function main(rc: Client, log: (line: string) => void): Promise<void> {
  const dv = rc.directView();
  const ar = dv.apply(() => process.pid);
  const pids = await ar.getDict();
  log(`pids by engine: ${JSON.stringify(pids)}`);
  await dv.set("pidMap", pids);
  const seen = await dv.apply(() => pidMap as Record<number, number>);
  log(`every engine now has pidMap: ${seen.every((m) => JSON.stringify(m) === JSON.stringify(pids))}`);
  log(`engine 0's own pid from its pidMap: ${await rc.directView(0).apply(() => pidMap[0] === process.pid)}`);
}

declare const pidMap: Record<number, number>; // an engine variable, set by dv.set above

if (isMain(import.meta.url)) await runStandalone(main);
