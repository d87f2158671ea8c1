/** What the `tsparallel` subcommands do. Each loads only its own part (an engine never loads client code). */
import process from "node:process";
import type { LogLevel } from "../protocol/log.js";

interface StartOptions {
  n?: number;
  profile: string;
  clusterId?: string;
  ip: string;
  transport: "unix" | "tcp";
  scheme?: "leastload" | "lru" | "twobin" | "weighted" | "plainrandom";
  hwm?: number;
  dbRecordLimit?: number;
  dbSizeLimit?: number;
  forwardLimit?: number;
  db?: "memory" | "sqlite";
  dbFile?: string;
  daemonize?: boolean;
  respawn?: boolean;
  tls?: boolean;
  engineLauncher?: "local" | "ssh";
  engineHosts?: string;
  sshArgs?: string;
  sshCommand?: string;
  controllerSched?: "batch" | "normal";
  json?: boolean;
}

export async function clusterStart(o: StartOptions): Promise<void> {
  const { Cluster } = await import("../cluster/cluster.js");
  const cluster = new Cluster({
    ...(o.n !== undefined ? { n: o.n } : {}), profile: o.profile, ip: o.ip, transport: o.transport, daemonize: o.daemonize === true,
    ...(o.clusterId !== undefined ? { clusterId: o.clusterId } : {}),
    ...(o.scheme !== undefined ? { scheme: o.scheme } : {}),
    ...(o.hwm !== undefined ? { hwm: o.hwm } : {}),
    ...(o.dbRecordLimit !== undefined ? { dbRecordLimit: o.dbRecordLimit } : {}),
    ...(o.dbSizeLimit !== undefined ? { dbSizeLimit: o.dbSizeLimit } : {}),
    ...(o.forwardLimit !== undefined ? { forwardLimit: o.forwardLimit } : {}),
    ...(o.db !== undefined ? { db: o.db } : {}),
    ...(o.dbFile !== undefined ? { dbFile: o.dbFile } : {}),
    ...(o.respawn === true ? { respawn: true } : {}),
    ...(o.tls === true ? { tls: true } : {}),
    ...(o.controllerSched !== undefined ? { controllerSched: o.controllerSched } : {}),
    ...(o.engineLauncher !== undefined ? { engineLauncher: o.engineLauncher } : {}),
    ...(o.engineHosts !== undefined ? { engineHosts: parseHosts(o.engineHosts) } : {}),
    ...(o.sshArgs !== undefined ? { sshArgs: o.sshArgs.split(/\s+/).filter((a) => a !== "") } : {}),
    ...(o.sshCommand !== undefined ? { sshCommand: o.sshCommand } : {}),
  });
  await cluster.start();
  const rc = await cluster.connectClient();
  await rc.waitForEngines(cluster.n, { timeout: 60 });
  await rc.close();
  const summary = { clusterId: cluster.clusterId, profile: cluster.profile, engines: cluster.n, connectionFile: cluster.connectionFile, pids: cluster.pids };
  process.stdout.write(o.json === true ? `${JSON.stringify(summary)}\n` : `cluster ${cluster.clusterId} running: ${cluster.n} engines (profile ${cluster.profile})\nconnection file: ${cluster.connectionFile}\n`);
  if (o.daemonize === true) return;
  process.stdout.write("press Ctrl-C to stop\n");
  // (signal listeners do not keep Node running; waitStopped does, while the controller runs)
  const how = await Promise.race([
    new Promise<string>((resolve) => {
      process.once("SIGINT", () => resolve(""));
      process.once("SIGTERM", () => resolve(""));
    }),
    cluster.waitStopped().then(() => " (its controller exited: tsparallel cluster stop, or a crash)"),
  ]);
  await cluster.stop();
  process.stdout.write(`cluster ${cluster.clusterId} stopped${how}\n`);
}

/** `a=2,b` → { a: 2, b: 1 } */
function parseHosts(text: string): Record<string, number> {
  const hosts: Record<string, number> = {};
  for (const part of text.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    const [host, count] = part.split("=") as [string, string | undefined];
    const n = count === undefined ? 1 : Number(count);
    if (!Number.isInteger(n) || n < 0) throw new TypeError(`--engine-hosts: "${part}" is not host or host=N`);
    hosts[host] = (hosts[host] ?? 0) + n;
  }
  return hosts;
}

export async function clusterStop(o: { profile: string; clusterId?: string }): Promise<void> {
  const { listClusters, stopRecordedCluster } = await import("../cluster/cluster.js");
  const records = listClusters(o.profile).filter((r) => o.clusterId === undefined || r.clusterId === o.clusterId);
  if (records.length === 0) {
    process.stderr.write(`no cluster ${o.clusterId ?? ""} in profile ${o.profile}\n`);
    process.exitCode = 12;
    return;
  }
  for (const r of records) {
    await stopRecordedCluster(r);
    process.stdout.write(`stopped cluster ${r.clusterId}\n`);
  }
}

export async function clusterList(o: { profile: string; json?: boolean }): Promise<void> {
  const { listClusters } = await import("../cluster/cluster.js");
  const records = listClusters(o.profile);
  if (o.json === true) {
    process.stdout.write(`${JSON.stringify(records)}\n`);
    return;
  }
  if (records.length === 0) {
    process.stdout.write(`no clusters in profile ${o.profile}\n`);
    return;
  }
  process.stdout.write("CLUSTER ID            PROFILE   STATE     ENGINES   CREATED\n");
  for (const r of records) {
    const state = r.running ? "running" : "stopped";
    process.stdout.write(`${r.clusterId.padEnd(22)}${r.profile.padEnd(10)}${state.padEnd(10)}${`${r.enginesAlive}/${r.n}`.padEnd(10)}${r.created}\n`);
  }
}

export async function controller(o: Record<string, unknown>): Promise<void> {
  const { runController } = await import("../controller/main.js");
  await runController({
    profile: o.profile as string, clusterId: o.clusterId as string | undefined, ip: o.ip as string, port: o.port as number | undefined,
    location: o.location as string | undefined, unix: o.unix as boolean, transport: o.transport as "unix" | "tcp" | undefined,
    scheme: o.scheme as string, hwm: o.hwm as number | undefined, hbPeriod: o.hbPeriod as number | undefined,
    hbMisses: o.hbMisses as number | undefined,
    dbRecordLimit: o.dbRecordLimit as number | undefined, dbSizeLimit: o.dbSizeLimit as number | undefined,
    forwardLimit: o.forwardLimit as number | undefined,
    db: o.sqlitedb === true ? "sqlite" : (o.db as string | undefined), dbFile: o.dbFile as string | undefined, tls: o.tls === true, ownerPid: o.ownerPid as number | undefined, logLevel: o.logLevel as LogLevel,
    sched: o.sched as string,
  });
}

export async function engine(o: Record<string, unknown>): Promise<void> {
  const { runEngine } = await import("../engine/main.js");
  await runEngine({
    file: o.file as string | undefined, transport: o.transport as "unix" | "tcp" | undefined, id: o.id as number | undefined,
    reconnectTimeout: o.reconnectTimeout as number | undefined, ownerPid: o.ownerPid as number | undefined, logLevel: o.logLevel as LogLevel,
  });
}
