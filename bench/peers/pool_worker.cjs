// workerpool worker (workerType "process"): the no-op and the C1 CPU task.
const workerpool = require("workerpool");

const noop = (x) => x;
let cpuFn = null;

async function cpu(n) {
  cpuFn ??= (await import("./cpu_task.mjs")).cpu;
  return cpuFn(n);
}

workerpool.worker({ noop, cpu });
