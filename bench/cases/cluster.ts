/** S1 and M1 for tsparallel: start a cluster the public way, find its processes, stop it with a deadline. */
import { readFileSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Cluster, type Client, type ClusterOptions } from "tsparallel";
import { descendants, rssMB, withDescendants } from "../lib/procfs.ts";
import { reportPids } from "../lib/peerio.ts";
import { now } from "../lib/stats.ts";

export interface Started {
  cluster: Cluster;
  rc: Client;
  seconds: number;
  pids: number[];
}

/** `new Cluster(opts).startAndConnect()`, timed; reports the cluster's pids for the orchestrator. */
export async function startCluster(opts: ClusterOptions): Promise<Started> {
  const before = new Set(descendants(process.pid));
  const t0 = now();
  const cluster = new Cluster(opts);
  const rc = await cluster.startAndConnect();
  const seconds = now() - t0;
  const pids = clusterPids(cluster, before);
  reportPids(pids);
  return { cluster, rc, seconds, pids };
}

/** `cluster.stop()`, but never longer than `deadlineS`; then SIGKILL whatever of ours is left. */
export async function stopCluster(s: Started, deadlineS = 20): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, deadlineS * 1000); });
  await Promise.race([s.cluster.stop(), deadline]).finally(() => clearTimeout(timer));
  for (const pid of s.pids) {
    try { process.kill(pid, "SIGKILL"); } catch { /* already gone: the normal case */ }
  }
}

/** The client (this process) and the cluster's processes by role, when the library names them (else only the client). */
export function processRoles(s: Started): Record<string, number> {
  const fromApi = apiPids(s.cluster);
  const roles: Record<string, number> = { client: process.pid };
  if (fromApi?.controller) {
    roles.controller = fromApi.controller;
    fromApi.engines.forEach((pid, i) => { roles[`engine${i}`] = pid; });
  }
  return roles;
}

/** M1: sum of VmRSS of the controller, the engines and anything they started. */
export function clusterRss(s: Started): { rss_MB: number; processes: number } {
  const pids = withDescendants(s.pids).filter((p) => p !== process.pid);
  return { rss_MB: rssMB(pids), processes: pids.length };
}

/**
 * The cluster's process ids: `cluster.pids` if the library offers it (not in API.md), else the
 * cluster file under <TSPARALLEL_DIR or ~/.tsparallel>/profile_<name>/cluster/, else the children
 * this process gained while starting the cluster.
 */
function clusterPids(cluster: Cluster, before: Set<number>): number[] {
  const fromApi = apiPids(cluster);
  if (fromApi?.controller) return [fromApi.controller, ...fromApi.engines];
  const fromFile = pidsFromClusterFile(cluster);
  if (fromFile.length > 0) return fromFile;
  return descendants(process.pid).filter((p) => !before.has(p));
}

/** `cluster.pids`, which the library offers beyond API.md (undefined if it does not). */
function apiPids(cluster: Cluster): { controller: number | null; engines: number[] } | undefined {
  return (cluster as unknown as { pids?: { controller: number | null; engines: number[] } }).pids;
}

function pidsFromClusterFile(cluster: Cluster): number[] {
  const dir = join(process.env.TSPARALLEL_DIR ?? join(homedir(), ".tsparallel"), `profile_${cluster.profile}`, "cluster");
  try {
    for (const name of readdirSync(dir)) {
      if (!name.includes(cluster.clusterId)) continue;
      const rec = JSON.parse(readFileSync(join(dir, name), "utf8")) as {
        controller?: { pid?: number }; engines?: Array<{ pid?: number }>;
      };
      return [rec.controller?.pid, ...(rec.engines ?? []).map((e) => e.pid)].filter((p): p is number => typeof p === "number");
    }
  } catch { /* no cluster file: fall through */ }
  return [];
}
