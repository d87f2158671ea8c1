/**
 * Where a cluster's files live, and the connection file format.
 *
 *   $TSPARALLEL_DIR (default ~/.tsparallel)/profile_<name>/
 *     security/tsparallel-client-<clusterId>.json   (mode 0600)
 *     security/tsparallel-engine-<clusterId>.json   (mode 0600)
 *     cluster/cluster-<clusterId>.json              (pids, for `cluster stop` and `list`)
 *     log/                                          (controller and engine logs)
 *     run/                                          (Unix sockets)
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir, hostname, tmpdir } from "node:os";
import { join } from "node:path";

export interface ConnectionInfo {
  clusterId: string;
  profile: string;
  /** Transport a same-host peer should prefer. */
  transport: "unix" | "tcp";
  /** TCP address: what the controller bound (may be 0.0.0.0) and where to reach it. */
  ip: string;
  location: string;
  port: number;
  /** Unix socket path when the controller listens on one. */
  unixPath: string | null;
  key: string;
  signatureScheme: "hmac-sha256+poly1305";
  controllerPid: number;
  /** Heartbeat period in ms (engines). */
  hbPeriod: number;
  /**
   * With `--tls`: the SHA-256 fingerprint of the controller's self-signed certificate. Peers then
   * reach its TCP port over TLS 1.3 only, and only if it presents this certificate.
   */
  tlsFingerprint?: string | null;
}

export function baseDir(): string {
  return process.env.TSPARALLEL_DIR ?? join(homedir(), ".tsparallel");
}

export function profileDir(profile = "default"): string {
  if (!/^[\w.-]+$/.test(profile)) throw new TypeError(`Invalid profile name ${JSON.stringify(profile)}: use letters, digits, "_", "-", "."`);
  return join(baseDir(), `profile_${profile}`);
}

export function ensureDir(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return path;
}

export function securityDir(profile?: string): string {
  return join(profileDir(profile), "security");
}

export function clusterDir(profile?: string): string {
  return join(profileDir(profile), "cluster");
}

export function logDir(profile?: string): string {
  return join(profileDir(profile), "log");
}

export function clientFile(profile: string, clusterId: string): string {
  return join(securityDir(profile), `tsparallel-client-${clusterId}.json`);
}

export function engineFile(profile: string, clusterId: string): string {
  return join(securityDir(profile), `tsparallel-engine-${clusterId}.json`);
}

export function clusterFile(profile: string, clusterId: string): string {
  return join(clusterDir(profile), `cluster-${clusterId}.json`);
}

/** A Unix socket path for a controller; falls back to the temp dir when the profile path is too long for sun_path. */
export function unixSocketPath(profile: string, clusterId: string): string {
  const preferred = join(profileDir(profile), "run", `controller-${clusterId}.sock`);
  if (Buffer.byteLength(preferred) <= 100) return preferred;
  const digest = createHash("sha256").update(preferred).digest("hex").slice(0, 16);
  return join(tmpdir(), `tsparallel-${digest}.sock`);
}

export function newClusterId(): string {
  return `${Math.floor(Date.now() / 1000)}-${randomBytes(3).toString("hex")}`;
}

export function newKey(): string {
  return randomBytes(32).toString("hex");
}

export function localHostname(): string {
  return hostname();
}

/** Write JSON readable by the owner only (write to a temp file, then rename: readers never see half a file). */
export function writePrivateJson(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function readConnectionFile(path: string): ConnectionInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read connection file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const info = parsed as Partial<ConnectionInfo>;
  for (const field of ["clusterId", "key", "port", "ip"] as const) {
    if (info[field] === undefined) throw new Error(`connection file ${path} lacks "${field}"`);
  }
  return info as ConnectionInfo;
}

/** Client connection files of a profile, newest first. */
export function listClientFiles(profile?: string): string[] {
  const dir = securityDir(profile);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith("tsparallel-client-") && n.endsWith(".json"))
    .map((n) => join(dir, n))
    .map((p) => ({ p, t: safeMtime(p) }))
    .sort((a, b) => b.t - a.t)
    .map((e) => e.p);
}

function safeMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Is a local pid alive? (A zombie, exited but not yet reaped, is not.) */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** The command line of a local process, or "" (to check a pid is ours before signalling it). */
export function processCommandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}
