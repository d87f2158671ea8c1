#!/usr/bin/env node
/** The `tsparallel` command: clusters, controllers and engines. */
import { Command, InvalidArgumentError, Option } from "commander";
import process from "node:process";
import { TSPARALLEL_VERSION } from "../protocol/version.js";

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number");
  return n;
}

function positive(value: string): number {
  const n = int(value);
  if (n === 0) throw new InvalidArgumentError("expected a whole number > 0");
  return n;
}

function num(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number");
  return n;
}

const program = new Command("tsparallel")
  .description("Interactive parallel computing for TypeScript and Node.js")
  .version(TSPARALLEL_VERSION)
  .showHelpAfterError();

const cluster = program.command("cluster").description("start, stop and list clusters (controller + engines)");

cluster
  .command("start")
  .description("start a controller and n engines on this host")
  .option("-n, --n <n>", "number of engines", int)
  .option("--profile <name>", "profile", "default")
  .option("--cluster-id <id>", "cluster id (default: generated)")
  .option("--ip <address>", "controller bind address", "127.0.0.1")
  .addOption(new Option("--transport <t>", "how local peers connect").choices(["unix", "tcp"]).default("unix"))
  .addOption(new Option("--scheme <s>", "load-balancing scheme").choices(["leastload", "lru", "twobin", "weighted", "plainrandom"]))
  .option("--hwm <n>", "load-balanced tasks in flight per engine (0 = unlimited)", int)
  .option("--db-record-limit <n>", "finished task records the controller keeps (default 10000)", positive)
  .option("--db-size-limit <bytes>", "bytes of task messages the controller keeps (default 268435456)", positive)
  .option("--forward-limit <bytes>", "bytes the controller queues for one busy or slow peer before it pauses the senders (default 268435456)", positive)
  .addOption(new Option("--db <kind>", "where task records are kept (sqlite: also in a file, kept after the cluster stops)").choices(["memory", "sqlite"]))
  .option("--db-file <path>", "the SQLite file (default <profile dir>/tasks.db)")
  .option("--daemonize", "start in the background and return")
  .option("--respawn", "replace engines that die without being asked to (not with --daemonize)")
  .option("--tls", "TLS 1.3 on the controller's TCP port (self-signed certificate, pinned by fingerprint)")
  .addOption(new Option("--controller-sched <policy>", "the controller's CPU scheduling policy (batch: SCHED_BATCH on Linux, never preempts an engine)").choices(["batch", "normal"]))
  .addOption(new Option("--engine-launcher <how>", "how engines are started").choices(["local", "ssh"]))
  .option("--engine-hosts <hosts>", "ssh: hosts for the engines, comma-separated; host=N for N engines there (a=2,b)")
  .option("--ssh-args <args>", "ssh: extra ssh arguments, space-separated (\"-i key -p 2222\")")
  .option("--ssh-command <cmd>", "ssh: how to run tsparallel on the hosts (default: this node and CLI, by path)")
  .option("--json", "print the cluster as JSON")
  .action(async (o) => (await import("./commands.js")).clusterStart(o));

cluster
  .command("stop")
  .description("stop a cluster (default: every cluster of the profile)")
  .option("--profile <name>", "profile", "default")
  .option("--cluster-id <id>", "cluster to stop")
  .action(async (o) => (await import("./commands.js")).clusterStop(o));

cluster
  .command("list")
  .description("list the profile's clusters")
  .option("--profile <name>", "profile", "default")
  .option("--json", "JSON output")
  .action(async (o) => (await import("./commands.js")).clusterList(o));

program
  .command("controller")
  .description("run a controller (foreground)")
  .option("--profile <name>", "profile", "default")
  .option("--cluster-id <id>", "cluster id (default: generated)")
  .option("--ip <address>", "bind address", "127.0.0.1")
  .option("--port <port>", "TCP port (default: any free port)", int)
  .option("--location <host>", "address peers should dial (default: the bind address, or this hostname for 0.0.0.0)")
  .option("--no-unix", "do not listen on a Unix socket")
  .option("--tls", "TLS 1.3 on the TCP port: a self-signed certificate made at start, its fingerprint in the connection files")
  .addOption(new Option("--transport <t>", "transport the connection files recommend").choices(["unix", "tcp"]))
  .addOption(new Option("--scheme <s>", "load-balancing scheme").choices(["leastload", "lru", "twobin", "weighted", "plainrandom"]).default("leastload"))
  .option("--hwm <n>", "load-balanced tasks in flight per engine (0 = unlimited)", int)
  .option("--db-record-limit <n>", "finished task records to keep (default 10000)", positive)
  .option("--db-size-limit <bytes>", "bytes of task messages to keep (default 268435456)", positive)
  .option("--forward-limit <bytes>", "bytes to queue for one busy or slow peer before pausing the senders (default 268435456)", positive)
  .addOption(new Option("--db <kind>", "where task records are kept (sqlite: also in a file)").choices(["memory", "sqlite"]))
  .option("--sqlitedb", "same as --db sqlite (ipcontroller's flag)")
  .option("--db-file <path>", "the SQLite file (default <profile dir>/tasks.db)")
  .option("--hb-period <ms>", "heartbeat period in ms", int)
  .option("--hb-misses <n>", "missed heartbeats before an engine is declared dead", int)
  .addOption(new Option("--sched <policy>", "CPU scheduling policy (batch: SCHED_BATCH on Linux, so the controller never preempts an engine)").choices(["batch", "normal"]).default("batch"))
  .option("--owner-pid <pid>", "stop when this process exits", int)
  .addOption(new Option("--log-level <level>").choices(["debug", "info", "warn", "error"]).default("info"))
  .action(async (o) => (await import("./commands.js")).controller(o));

program
  .command("engine")
  .description("run an engine (foreground)")
  .option("--file <path>", "engine connection file (or $TSPARALLEL_CONNECTION_INFO); \"-\": read it from stdin and stop when stdin closes")
  .addOption(new Option("--transport <t>", "how to reach the controller").choices(["unix", "tcp"]))
  .option("--id <n>", "ask for this engine id", int)
  .option("--reconnect-timeout <s>", "seconds to keep trying without a controller", num)
  .option("--owner-pid <pid>", "stop when this process exits", int)
  .addOption(new Option("--log-level <level>").choices(["debug", "info", "warn", "error"]).default("info"))
  .action(async (o) => (await import("./commands.js")).engine(o));

const db = program.command("db").description('read a SQLite task database (db "sqlite") with no cluster running');

db.command("list")
  .description("the clusters whose records the file holds, with counts")
  .option("--profile <name>", "profile", "default")
  .option("--db-file <path>", "the SQLite file (default <profile dir>/tasks.db)")
  .option("--json", "JSON output")
  .action(async (o) => (await import("./db.js")).dbList(o));

db.command("query")
  .description("one JSON line per record matching a Mongo-style query, in submission order")
  .argument("[query]", 'e.g. \'{"status":"error"}\' or \'{"completed":{"$gt":"2026-11-26T00:00:00Z"}}\'', "{}")
  .requiredOption("--cluster-id <id>", "whose records")
  .option("--profile <name>", "profile", "default")
  .option("--db-file <path>", "the SQLite file (default <profile dir>/tasks.db)")
  .option("--keys <list>", "fields to print, comma-separated (default: all but buffers)")
  .action(async (query: string, o) => (await import("./db.js")).dbQuery(query, o));

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`tsparallel: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
