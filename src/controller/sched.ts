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
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../protocol/log.js";

export type SchedPolicy = "batch" | "normal";

export const SCHED_POLICIES: readonly SchedPolicy[] = ["batch", "normal"];

/** `chrt` on the PATH (or in /usr/bin), or null. */
function findChrt(): string | null {
  const dirs = [...(process.env.PATH ?? "").split(":").filter((d) => d !== ""), "/usr/bin", "/bin"];
  for (const dir of dirs) {
    const path = join(dir, "chrt");
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return null;
}

/** Put every thread of this process under SCHED_BATCH ("normal" leaves it alone). Never throws; waits at most 5 s. */
export async function applySchedPolicy(policy: SchedPolicy, log: Logger): Promise<void> {
  if (policy === "normal") return;
  const chrt = process.platform === "linux" ? findChrt() : null;
  if (chrt === null) {
    log.info("scheduling policy left as it is", { wanted: policy, reason: process.platform === "linux" ? "chrt (util-linux) not found" : `not Linux (${process.platform})` });
    return;
  }
  const why = await new Promise<string>((resolve) => {
    const child = spawn(chrt, ["--all-tasks", "--batch", "--pid", "0", String(process.pid)], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("chrt did not finish within 5 s");
    }, 5000);
    child.once("error", (err) => {
      clearTimeout(timer);
      resolve(err.message);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? "" : `chrt exited with code ${code}: ${stderr.trim().slice(0, 300)}`);
    });
  });
  if (why === "") log.debug("scheduling policy set", { policy: "SCHED_BATCH" });
  else log.warn("scheduling policy left as it is", { wanted: policy, reason: why });
}
