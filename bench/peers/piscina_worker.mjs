// piscina worker (threads): the no-op and the C1 CPU task, as named exports (run(x, { name })).
export { cpu } from "./cpu_task.mjs";

export const noop = (x) => x;
export default noop;
