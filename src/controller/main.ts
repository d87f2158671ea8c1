/** `tsparallel controller`: run the controller process. */
import process from "node:process";
import { localHostname, newClusterId, newKey, pidAlive } from "../protocol/connfile.js";
import { tuneJit } from "../protocol/jit.js";
import { jsonLogger, type LogLevel } from "../protocol/log.js";
import { isSchemeName, type SchemeName } from "./scheduler/schemes.js";
import { applySchedPolicy, SCHED_POLICIES, type SchedPolicy } from "./sched.js";
import { Controller, defaultLocation } from "./server.js";

export interface ControllerMainOptions {
  profile?: string;
  clusterId?: string;
  ip?: string;
  port?: number;
  location?: string;
  unix?: boolean;
  transport?: "unix" | "tcp";
  scheme?: string;
  hwm?: number;
  hbPeriod?: number;
  hbMisses?: number;
  key?: string;
  ownerPid?: number;
  logLevel?: LogLevel;
  dbRecordLimit?: number;
  dbSizeLimit?: number;
  /** Bytes that may wait to be written to one peer before the senders of more for it are paused (default 256 MiB). */
  forwardLimit?: number;
  /** "memory" (default) or "sqlite". */
  db?: string;
  /** The SQLite file (default `<profile dir>/tasks.db`). */
  dbFile?: string;
  /** TLS 1.3 on the TCP port with a self-signed certificate that peers pin (its fingerprint is in the connection files). */
  tls?: boolean;
  /** CPU scheduling policy: "batch" (default; SCHED_BATCH on Linux, so the controller never preempts an engine) or "normal". */
  sched?: string;
}

export async function runController(opts: ControllerMainOptions): Promise<Controller> {
  tuneJit();
  const scheme = opts.scheme ?? "leastload";
  if (!isSchemeName(scheme)) throw new TypeError(`Invalid scheme ${JSON.stringify(scheme)}: use leastload, lru, twobin, weighted or plainrandom`);
  const db = opts.db ?? "memory";
  if (db !== "memory" && db !== "sqlite") throw new TypeError(`Invalid db ${JSON.stringify(db)}: use memory or sqlite`);
  if (opts.dbFile !== undefined && db !== "sqlite") throw new TypeError("dbFile is for db sqlite");
  const sched = opts.sched ?? "batch";
  if (!SCHED_POLICIES.includes(sched as SchedPolicy)) throw new TypeError(`Invalid sched ${JSON.stringify(sched)}: use batch or normal`);
  const ip = opts.ip ?? "127.0.0.1";
  const log = jsonLogger("controller", opts.logLevel ?? "info");
  // set before the launcher hears "ready", so the engines and clients only ever meet the policy in force
  const policySet = applySchedPolicy(sched as SchedPolicy, log);
  const controller = await Controller.start({
    profile: opts.profile ?? "default",
    clusterId: opts.clusterId ?? newClusterId(),
    key: opts.key ?? process.env.TSPARALLEL_KEY ?? newKey(),
    ip,
    port: opts.port ?? 0,
    location: opts.location ?? (ip === "127.0.0.1" ? ip : defaultLocation(ip)),
    unix: opts.unix ?? true,
    transport: opts.transport ?? "unix",
    scheme: scheme as SchemeName,
    hwm: opts.hwm ?? 1,
    hbPeriod: opts.hbPeriod ?? 1000,
    hbMisses: opts.hbMisses ?? 8,
    handshakeTimeout: 10_000,
    tls: opts.tls === true,
    db: {
      kind: db,
      ...(opts.dbFile !== undefined ? { file: opts.dbFile } : {}),
      ...(opts.dbRecordLimit !== undefined ? { recordLimit: opts.dbRecordLimit } : {}),
      ...(opts.dbSizeLimit !== undefined ? { sizeLimit: opts.dbSizeLimit } : {}),
    },
    ...(opts.forwardLimit !== undefined ? { forwardLimit: opts.forwardLimit } : {}),
    writeFiles: true,
    log,
  });
  await policySet;
  const stop = () => void controller.stop().then(() => process.exit(0));
  // a closed stdout or stderr (the terminal gone) must not become an uncaught error that logging repeats
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("SIGHUP", stop);
  if (opts.ownerPid !== undefined) watchOwner(opts.ownerPid, stop);
  void controller.waitStopped().then(() => setTimeout(() => process.exit(0), 50).unref());
  // a launcher waiting on the IPC channel learns the connection info, then lets go of us
  if (process.send !== undefined) {
    process.send({ ready: true, info: controller.info, hostname: localHostname() });
    process.disconnect?.();
  }
  return controller;
}

/** Stop when the process that launched us is gone (it was killed before it could stop us). */
function watchOwner(pid: number, stop: () => void): void {
  const timer = setInterval(() => {
    if (!pidAlive(pid)) {
      clearInterval(timer);
      stop();
    }
  }, 1000);
  timer.unref();
}
