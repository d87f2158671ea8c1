/**
 * The controller's CPU scheduling policy. On Linux it runs under SCHED_BATCH by default: a batch
 * process that wakes up does not preempt the process running on its core. The controller wakes at
 * every message; without this, an engine that writes a result is preempted on its own core by the
 * controller it just woke, and starts its next task only after the controller (and often the client
 * the controller wakes in turn) has run. Under SCHED_BATCH the engine goes on to its next task and
 * the controller runs when a core frees up or the engine's time slice ends (a few ms at most; the
 * controller's own deadlines are seconds). A batch process's share of the CPU is the same as a
 * normal one's. Figures: docs/performance.md.
 *
 * Node has no call for it, so the policy is set with util-linux's `chrt`, which every Linux
 * distribution ships. Where it is missing or refused, the controller logs why and runs as before.
 */
import { spawn } from "node:child_process";
import type { Logger } from "../protocol/log.js";

export type SchedPolicy = "batch" | "normal";

export const SCHED_POLICIES: readonly SchedPolicy[] = ["batch", "normal"];

/** Put every thread of this process under SCHED_BATCH ("normal" leaves it alone). Never throws; waits at most 5 s. */
export async function applySchedPolicy(policy: SchedPolicy, log: Logger): Promise<void> {
  if (policy === "normal") return;
  if (process.platform !== "linux") {
    log.info("scheduling policy left as it is", { wanted: policy, reason: `not Linux (${process.platform})` });
    return;
  }
  const why = await new Promise<string>((resolve) => {
    const child = spawn("chrt", ["--all-tasks", "--batch", "--pid", "0", String(process.pid)], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("chrt did not finish within 5 s");
    }, 5000);
    child.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === "ENOENT" ? "chrt (util-linux) not found" : err.message);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? "" : `chrt exited with code ${code}: ${stderr.trim().slice(0, 300)}`);
    });
  });
  if (why === "") log.debug("scheduling policy set", { policy: "SCHED_BATCH" });
  else log.warn("scheduling policy left as it is", { wanted: policy, reason: why });
}
