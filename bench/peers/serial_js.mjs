// Serial reference for C1: `node serial_js.mjs <n> <count>` runs cpu(n) count times in this fresh
// process and prints the seconds the loop took (process start-up not included).
import { cpu } from "./cpu_task.mjs";

const n = Number(process.argv[2]);
const count = Number(process.argv[3]);
const t0 = performance.now();
let sink = 0;
for (let i = 0; i < count; i++) sink += cpu(n);
const seconds = (performance.now() - t0) / 1000;
if (sink === -1) console.error("unreachable");
console.log(seconds);
