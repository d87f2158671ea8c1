import { Cluster } from "tsparallel";
const cluster = new Cluster({ n: 1 });
const rc = await cluster.startAndConnect();
const single = rc.directView(0);
for (let i = 0; i < 200; i++) await single.applySync((x: number) => x, i);
const rows: number[][] = [];
for (let i = 0; i < 20; i++) {
  const ar = single.apply((x: number) => x, i);
  await ar;
  const m = ar.metadata[0]!;
  const p = (m as any)[Object.getOwnPropertySymbols(m)[0]!];
  rows.push([p.started - p.submitted, p.completed - p.started, p.received - p.completed].map((x) => Math.round(x * 1000)));
}
console.log(rows.map((r) => r.join(" ")).join("\n"));
console.log("stopping");
await cluster.stop();
console.log("stopped");
