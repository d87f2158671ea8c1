/**
 * Interrupting synchronous user code. Tasks run under `breakOnSigint`, so a SIGINT stops even a
 * tight loop. Node's SIGINT watchdog thread is started and stopped around every such call (~50 µs,
 * more with a process SIGINT listener), unless some watchdog stays registered: this sentinel
 * thread keeps one, blocked in a wait that only SIGINT ends. That makes each task's guard cost
 * ~3 µs, and a SIGINT that arrives while no task computes lands here instead of killing the
 * process; the sentinel reports it and waits again.
 */
import { Worker } from "node:worker_threads";

const SENTINEL_SOURCE = `
const { Script } = require("node:vm");
const { parentPort } = require("node:worker_threads");
const wait = new Script("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)");
parentPort.postMessage("ready");
for (;;) {
  try { wait.runInThisContext({ breakOnSigint: true }); } catch { parentPort.postMessage("sigint"); }
}
`;

/** Start the sentinel; `onSigint` runs (on the main thread) for each SIGINT that did not stop a running call. */
export function startSentinel(onSigint: () => void): Promise<Worker> {
  const worker = new Worker(SENTINEL_SOURCE, { eval: true, stdout: false, stderr: false, resourceLimits: { maxOldGenerationSizeMb: 8 } });
  worker.unref();
  return new Promise((resolve, reject) => {
    worker.once("error", reject);
    worker.on("message", (m) => {
      if (m === "ready") resolve(worker);
      else if (m === "sigint") onSigint();
    });
  });
}
