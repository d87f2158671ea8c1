/**
 * Cluster: start and stop a controller and its engines (ipyparallel's `Cluster` / `ipcluster`).
 *
 * @example
 * await using cluster = await Cluster.start({ n: 4 });
 * const rc = await cluster.connectClient();
 * await rc.waitForEngines(4);
 */
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { Client, type ClientOptions } from "../client/client.js";
import { checks, validate } from "../client/options.js";
import {
  clientFile, clusterDir, clusterFile, engineFile, ensureDir, newClusterId, pidAlive, profileDir, readConnectionFile, writePrivateJson,
  type ConnectionInfo,
} from "../protocol/connfile.js";
import { isOurProcess, lastWords, launchController, launchEngine, signal, stopProcess, type Launched } from "./launcher.js";
import { launchSshEngine, sshHosts } from "./ssh.js";

export interface ClusterOptions {
  /** Number of engines (default: the number of CPUs). */
  n?: number;
  profile?: string;
  clusterId?: string;
  /** Controller bind address (default 127.0.0.1). */
  ip?: string;
  /**
   * How engines are started: "local" (default: child processes of this host) or "ssh" (one
   * `ssh <host> tsparallel engine` per engine, on the hosts of `engineHosts`).
   */
  engineLauncher?: "local" | "ssh";
  /**
   * For "ssh": where the engines run, one entry per engine (`["user@a", "user@a", "b"]`) or host →
   * count (`{ "user@a": 2, b: 1 }`). `n` defaults to their number. The controller must listen where
   * the hosts can reach it (`ip`), and the hosts need tsparallel: see `sshCommand`.
   */
  engineHosts?: string[] | Record<string, number>;
  /** For "ssh": extra ssh arguments, e.g. `["-i", "~/.ssh/cluster", "-p", "2222"]`. ssh runs with BatchMode=yes. */
  sshArgs?: string[];
  /**
   * For "ssh": the command that runs tsparallel on the hosts (`engine --file - --transport tcp` is
   * appended). Default: this Node and this package's CLI by their paths here, which suits a shared
   * or identical install; otherwise e.g. `"npx tsparallel"`.
   */
  sshCommand?: string;
  /**
   * Where the controller keeps task records: "memory" (default), or "sqlite", which also writes
   * every record to a SQLite file (`dbFile`) that outlives the cluster; a cluster started again with
   * the same `clusterId` finds the earlier records there. Needs the optional package better-sqlite3.
   */
  db?: "memory" | "sqlite";
  /** The SQLite file for `db: "sqlite"` (default `<profile dir>/tasks.db`, one table per cluster id). */
  dbFile?: string;
  /** How this host's clients and engines reach the controller: "unix" (default) or "tcp". */
  transport?: "unix" | "tcp";
  /** Load-balancing scheme (default "leastload"). */
  scheme?: "leastload" | "lru" | "twobin" | "weighted" | "plainrandom";
  /** Tasks in flight per engine for load balancing (default 1; 0 = unlimited). */
  hwm?: number;
  /**
   * The controller keeps the records of this many finished tasks (default 10 000; pending tasks are
   * always kept). Past it, the records that finished longest ago are culled, 10 % at a time.
   */
  dbRecordLimit?: number;
  /** Bytes of task messages the controller keeps (default 256 MiB); past it, large results lose their buffers first. */
  dbSizeLimit?: number;
  /**
   * Bytes the controller queues for one peer that is slow to read (an engine busy in user code, a
   * slow client) before it pauses the senders of more for it (default 256 MiB). Below it, a large
   * push to a busy engine does not hold up the sender's other messages.
   */
  forwardLimit?: number;
  /** Heartbeat period in seconds (default 1) and misses before an engine is declared dead (default 8). */
  heartbeatPeriod?: number;
  heartbeatMisses?: number;
  /** Seconds `startAndConnect` waits for the engines (default 60). */
  engineTimeout?: number;
  /** Keep running after this process exits (`tsparallel cluster start --daemonize`). */
  daemonize?: boolean;
  /**
   * Start a replacement when an engine dies without being asked to (crash, out of memory, kill):
   * the cluster keeps its size; the new engine has a new id. At most 5 replacements a minute.
   * Needs this process to keep running, so not with `daemonize`. Default false.
   */
  respawn?: boolean;
  /**
   * TLS 1.3 on the controller's TCP port, for engines and clients on untrusted networks: the
   * controller makes a self-signed certificate at start and its fingerprint goes in the connection
   * files, which peers pin. Peers on this host using the Unix socket are not affected. Default false.
   */
  tls?: boolean;
  /**
   * The controller's CPU scheduling policy: "batch" (default) runs it under SCHED_BATCH on Linux, so
   * its wake-ups never preempt an engine at work (engines go from task to task without waiting for
   * it; see docs/performance.md); "normal" leaves it as this process is. Elsewhere both are the same.
   */
  controllerSched?: "batch" | "normal";
  /** Extra environment for the controller and engines. */
  env?: Record<string, string>;
}

/** What the cluster file records (for `tsparallel cluster stop` and `list`). */
export interface ClusterRecord {
  clusterId: string;
  profile: string;
  n: number;
  created: string;
  connectionFile: string;
  engineFile: string;
  controller: { pid: number; log: string };
  engines: Array<{ pid: number; log: string }>;
  daemon: boolean;
}

const SCHEMA = {
  n: checks.nonNegativeInt, profile: checks.string, clusterId: checks.string, ip: checks.string,
  engineLauncher: checks.oneOf("local", "ssh"), engineHosts: checks.any, sshArgs: checks.any, sshCommand: checks.string, db: checks.oneOf("memory", "sqlite"), dbFile: checks.string, transport: checks.oneOf("unix", "tcp"),
  scheme: checks.oneOf("leastload", "lru", "twobin", "weighted", "plainrandom"), hwm: checks.nonNegativeInt,
  dbRecordLimit: checks.positiveInt, dbSizeLimit: checks.positiveInt, forwardLimit: checks.positiveInt,
  heartbeatPeriod: checks.seconds, heartbeatMisses: checks.positiveInt, engineTimeout: checks.seconds,
  daemonize: checks.boolean, respawn: checks.boolean, tls: checks.boolean, controllerSched: checks.oneOf("batch", "normal"), env: checks.any,
};

/** At most this many replacement engines in a sliding minute (a crash loop stops there). */
const RESPAWN_LIMIT = 5;

const live = new Set<Cluster>();
let exitHookInstalled = false;

/** When this process exits, take the clusters it started (not daemonized) with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) c.killNow();
  });
}

export class Cluster {
  readonly profile: string;
  readonly clusterId: string;
  readonly n: number;
  readonly #opts: ClusterOptions;
  #controller: Launched | null = null;
  #engines: Launched[] = [];
  #info: ConnectionInfo | null = null;
  #client: Client | null = null;
  #clients: Client[] = [];
  #stopping: Promise<void> | null = null;
  #engineIndex = 0;
  /** When engines were last replaced (respawn), for the limit. */
  #respawned: number[] = [];
  /** The engines `start` launched (watched by `startAndConnect`, also once they have left #engines). */
  #firstEngines: Launched[] = [];
  /** For the ssh launcher: one host per engine, used in turn. */
  readonly #hosts: string[] | null;

  constructor(opts: ClusterOptions = {}) {
    this.#opts = validate<ClusterOptions>("Cluster()", opts, SCHEMA);
    if (opts.dbFile !== undefined && opts.db !== "sqlite") {
      throw new TypeError('Invalid options in Cluster(): "dbFile" is the file of db "sqlite"; set db: "sqlite" too');
    }
    this.#hosts = sshHosts(opts);
    if (opts.respawn === true && opts.daemonize === true) {
      throw new TypeError('Invalid options in Cluster(): "respawn" needs this process to keep running, so it cannot be combined with "daemonize"');
    }
    this.profile = opts.profile ?? "default";
    profileDir(this.profile); // validates the name
    this.clusterId = opts.clusterId ?? newClusterId();
    this.n = opts.n ?? this.#hosts?.length ?? availableParallelism();
    if (this.#hosts !== null && this.n !== this.#hosts.length) {
      throw new TypeError(`Invalid options in Cluster(): "n" is ${this.n} but "engineHosts" lists ${this.#hosts.length} engines`);
    }
  }

  /** `new Cluster(opts)` and `start()`. */
  static async start(opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(opts);
    await c.start();
    return c;
  }

  /** Path of the client connection file. */
  get connectionFile(): string {
    return clientFile(this.profile, this.clusterId);
  }

  get engineConnectionFile(): string {
    return engineFile(this.profile, this.clusterId);
  }

  /** pids of the processes this object started (controller first). */
  get pids(): { controller: number | null; engines: number[] } {
    return { controller: this.#controller?.pid ?? null, engines: this.#engines.map((e) => e.pid) };
  }

  get running(): boolean {
    return this.#controller !== null && this.#stopping === null;
  }

  /**
   * Wait until the cluster's controller process has exited, however that came about: `stop()`,
   * `tsparallel cluster stop` run elsewhere, a crash. True once it has (at once if the cluster was
   * never started); false if `timeout` seconds passed first (default: no limit).
   */
  async waitStopped(timeout?: number): Promise<boolean> {
    if (timeout !== undefined && !(typeof timeout === "number" && timeout >= 0)) throw new TypeError(`Invalid timeout in waitStopped(): ${String(timeout)}`);
    const exited = this.#controller?.exited;
    if (exited === undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    // the processes are unref'd: a wait for them must keep Node running (a pending timer does)
    const hold = setInterval(() => {}, 2 ** 30);
    try {
      const limit = timeout === undefined ? new Promise<boolean>(() => {}) : new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeout * 1000)));
      return await Promise.race([exited.then(() => true), limit]);
    } finally {
      clearInterval(hold);
      clearTimeout(timer);
    }
  }

  /** Start the controller, then the engines. Resolves once the controller answers. */
  async start(): Promise<void> {
    if (this.#controller !== null) throw new Error(`cluster ${this.clusterId} is already started`);
    const daemon = this.#opts.daemonize === true;
    if (!daemon) {
      live.add(this);
      installExitHook();
    }
    const { proc, info } = await launchController({
      profile: this.profile, clusterId: this.clusterId, args: this.#controllerArgs(), ownerPid: daemon ? null : process.pid,
      timeoutMs: 30_000, env: this.#opts.env ?? {},
    });
    this.#controller = proc;
    this.#info = info;
    this.#firstEngines = this.#launchEngines(this.n);
    this.#writeRecord();
  }

  #controllerArgs(): string[] {
    const o = this.#opts;
    const args = ["--ip", o.ip ?? "127.0.0.1", "--transport", o.transport ?? "unix"];
    if (o.scheme !== undefined) args.push("--scheme", o.scheme);
    if (o.hwm !== undefined) args.push("--hwm", String(o.hwm));
    if (o.dbRecordLimit !== undefined) args.push("--db-record-limit", String(o.dbRecordLimit));
    if (o.dbSizeLimit !== undefined) args.push("--db-size-limit", String(o.dbSizeLimit));
    if (o.forwardLimit !== undefined) args.push("--forward-limit", String(o.forwardLimit));
    if (o.db !== undefined) args.push("--db", o.db);
    if (o.dbFile !== undefined) args.push("--db-file", resolve(o.dbFile));
    if (o.tls === true) args.push("--tls");
    if (o.controllerSched !== undefined) args.push("--sched", o.controllerSched);
    if (o.heartbeatPeriod !== undefined) args.push("--hb-period", String(Math.round(o.heartbeatPeriod * 1000)));
    if (o.heartbeatMisses !== undefined) args.push("--hb-misses", String(o.heartbeatMisses));
    return args;
  }

  #launchEngines(k: number): Launched[] {
    const daemon = this.#opts.daemonize === true;
    const hosts = this.#hosts;
    const info = hosts === null ? null : readConnectionFile(this.engineConnectionFile);
    const started = Array.from({ length: k }, () =>
      hosts !== null ? launchSshEngine({
        profile: this.profile, clusterId: this.clusterId, index: this.#engineIndex, host: hosts[this.#engineIndex++ % hosts.length]!,
        info: info!, sshArgs: this.#opts.sshArgs ?? [], command: this.#opts.sshCommand, env: this.#opts.env ?? {},
      }) : launchEngine({
        profile: this.profile, clusterId: this.clusterId, engineFile: this.engineConnectionFile, index: this.#engineIndex++,
        args: this.#opts.transport === "tcp" ? ["--transport", "tcp"] : [], ownerPid: daemon ? null : process.pid, env: this.#opts.env ?? {},
      }),
    );
    this.#engines.push(...started);
    for (const e of started) void e.exited.then(() => this.#engineExited(e));
    return started;
  }

  /** An engine process ended: forget it; replace it if it was not asked to stop and respawn is on. */
  #engineExited(e: Launched): void {
    // stopped on purpose: stopEngines takes engines off the list before stopping them, stop sets #stopping
    if (!this.#engines.includes(e) || this.#stopping !== null) return;
    this.#engines = this.#engines.filter((x) => x !== e);
    if (this.#opts.respawn === true) this.#respawn(e);
    this.#writeRecord();
  }

  #respawn(dead: Launched): void {
    const now = Date.now();
    this.#respawned = this.#respawned.filter((t) => now - t < 60_000);
    if (this.#respawned.length >= RESPAWN_LIMIT) {
      process.emitWarning(`tsparallel: ${RESPAWN_LIMIT} engines replaced within a minute; not replacing engine pid ${dead.pid} (log: ${dead.log})`);
      return;
    }
    this.#respawned.push(now);
    this.#launchEngines(1);
  }

  #writeRecord(): void {
    const record: ClusterRecord = {
      clusterId: this.clusterId, profile: this.profile, n: this.#engines.length, created: new Date().toISOString(),
      connectionFile: this.connectionFile, engineFile: this.engineConnectionFile,
      controller: { pid: this.#controller!.pid, log: this.#controller!.log },
      engines: this.#engines.map((e) => ({ pid: e.pid, log: e.log })),
      daemon: this.#opts.daemonize === true,
    };
    ensureDir(clusterDir(this.profile));
    writePrivateJson(clusterFile(this.profile, this.clusterId), record);
  }

  /** A Client for this cluster. */
  async connectClient(opts: Omit<ClientOptions, "connectionFile" | "clusterId" | "profile"> = {}): Promise<Client> {
    if (this.#controller === null) throw new Error("the cluster is not started");
    const client = await Client.connect({ ...opts, connectionFile: this.connectionFile });
    this.#clients.push(client);
    return client;
  }

  /** `start`, `connectClient`, then wait for the engines. */
  async startAndConnect(opts: Omit<ClientOptions, "connectionFile" | "clusterId" | "profile"> = {}): Promise<Client> {
    await this.start();
    try {
      const rc = await this.connectClient(opts);
      await Promise.race([rc.waitForEngines(this.n, { timeout: this.#opts.engineTimeout ?? 60 }), this.#anEngineFailed()]);
      return rc;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Rejects when an engine process ends before the cluster is up (a bad host, a crash at start), saying why. */
  #anEngineFailed(): Promise<never> {
    if (this.#opts.respawn === true) return new Promise(() => {}); // it will be replaced
    return new Promise((_, reject) => {
      for (const e of this.#firstEngines) {
        void e.exited.then(() => {
          if (this.#stopping !== null) return;
          const how = this.#hosts !== null ? "the ssh session of an engine" : "an engine";
          reject(new Error(`${how} ended before the cluster was up${lastWords(e.log)} (log: ${e.log})`));
        });
      }
    });
  }

  /** Start `k` more engines. */
  async addEngines(k = 1): Promise<void> {
    if (this.#controller === null) throw new Error("the cluster is not started");
    this.#launchEngines(k);
    this.#writeRecord();
  }

  /** Stop engines by engine id (default: all of them). */
  async stopEngines(ids?: number[]): Promise<void> {
    if (ids === undefined) {
      const engines = this.#engines;
      this.#engines = [];
      await Promise.all(engines.map((e) => stopProcess(e)));
    } else if (this.#hosts !== null) {
      // an ssh engine's pid here is its ssh session's: ask the controller; each session then ends by itself
      const client = await this.#controlClient();
      await client.shutdown({ targets: ids });
    } else {
      const client = await this.#controlClient();
      const pids = new Set(ids.map((id) => client.hosts.get(id)?.pid).filter((p): p is number => p !== undefined));
      const chosen = this.#engines.filter((e) => pids.has(e.pid));
      this.#engines = this.#engines.filter((e) => !pids.has(e.pid));
      await Promise.all(chosen.map((e) => stopProcess(e)));
    }
    this.#writeRecord();
  }

  /** Stop every engine and start as many again. */
  async restartEngines(): Promise<void> {
    const k = this.#engines.length;
    await this.stopEngines();
    this.#launchEngines(k);
    this.#writeRecord();
  }

  /** Send a signal to every engine process (SIGINT interrupts the running task). */
  async signalEngines(sig: NodeJS.Signals | number = "SIGINT"): Promise<void> {
    if (this.#hosts !== null) return (await this.#controlClient()).signalEngines(sig); // through the engines' hearts
    for (const e of this.#engines) signal(e.pid, sig);
  }

  async #controlClient(): Promise<Client> {
    this.#client ??= await this.connectClient({ timeout: 10 });
    return this.#client;
  }

  /** Stop engines, then the controller; remove the cluster's files. Succeeds also when processes already died. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.close()));
    await Promise.all(this.#engines.map((e) => stopProcess(e)));
    if (this.#controller !== null) await stopProcess(this.#controller);
    this.#removeFiles();
    live.delete(this);
  }

  #removeFiles(): void {
    for (const f of [this.connectionFile, this.engineConnectionFile, clusterFile(this.profile, this.clusterId)]) rmSync(f, { force: true });
    if (this.#info?.unixPath) rmSync(this.#info.unixPath, { force: true });
  }

  /** Synchronous last resort at process exit: SIGKILL everything this object started. */
  killNow(): void {
    for (const e of this.#engines) signal(e.pid, "SIGKILL");
    if (this.#controller !== null) signal(this.#controller.pid, "SIGKILL");
    try {
      this.#removeFiles();
    } catch {
      // exiting anyway
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** The clusters recorded in a profile. */
export function listClusters(profile = "default"): Array<ClusterRecord & { running: boolean; enginesAlive: number }> {
  let names: string[] = [];
  try {
    names = readdirSync(clusterDir(profile)).filter((n) => n.startsWith("cluster-") && n.endsWith(".json"));
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    try {
      const r = JSON.parse(readFileSync(join(clusterDir(profile), name), "utf8")) as ClusterRecord;
      return [{ ...r, running: pidAlive(r.controller.pid), enginesAlive: r.engines.filter((e) => pidAlive(e.pid)).length }];
    } catch {
      return [];
    }
  });
}

/** Stop a recorded cluster by its files (the CLI's `cluster stop`): engines, then controller, by pid. */
export async function stopRecordedCluster(record: ClusterRecord): Promise<void> {
  const ours = (pid: number) => isOurProcess(pid, record.clusterId);
  await Promise.all(record.engines.filter((e) => ours(e.pid)).map((e) => stopProcess({ pid: e.pid })));
  if (ours(record.controller.pid)) await stopProcess({ pid: record.controller.pid });
  for (const f of [record.connectionFile, record.engineFile, clusterFile(record.profile, record.clusterId)]) rmSync(f, { force: true });
}
