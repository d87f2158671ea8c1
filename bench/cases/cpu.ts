/** C1 for tsparallel: 200 CPU tasks of ~2.5 ms, load-balanced, against a serial run in a fresh process. */
import type { Client } from "tsparallel";
import { calibrate, cpu } from "../peers/cpu_task.mjs";
import type { CaseResult } from "../lib/peerio.ts";
import { serialReference } from "../lib/serial.ts";
import { now } from "../lib/stats.ts";

export async function c1(rc: Client, tasks: number, targetMs: number): Promise<CaseResult> {
  const n = calibrate(targetMs);
  const lv = rc.loadBalancedView();
  await lv.map(cpu, [1000, 1000], { chunksize: 1 }); // ship and compile once before timing
  const before = await serialReference(n, tasks);
  const t0 = now();
  const ar = lv.map(cpu, new Array<number>(tasks).fill(n), { chunksize: 1 });
  await ar;
  const wall = now() - t0;
  const after = await serialReference(n, tasks);
  const serial = (before + after) / 2;
  return {
    serial_over_wall: ar.serialTime / ar.wallTime, local_serial_over_wall: serial / wall,
    wall_s: wall, local_serial_s: serial, n, tasks,
  };
}
