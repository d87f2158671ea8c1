/** `tsparallel engine`: start one engine process. */
import process from "node:process";
import { pidAlive, readConnectionFile, type ConnectionInfo } from "../protocol/connfile.js";
import type { Transport } from "../protocol/dial.js";
import { jsonLogger, type LogLevel } from "../protocol/log.js";
import { Engine } from "./engine.js";

export interface EngineMainOptions {
  file?: string;
  transport?: Transport;
  id?: number;
  logLevel?: LogLevel;
  reconnectTimeout?: number;
  /** Exit when this process is gone (the local launcher that started us). */
  ownerPid?: number;
}

/** Connection info from --file or from $TSPARALLEL_CONNECTION_INFO (JSON), as a launcher passes it. */
export function engineConnectionInfo(file: string | undefined): ConnectionInfo {
  if (file !== undefined) return readConnectionFile(file);
  const env = process.env.TSPARALLEL_CONNECTION_INFO;
  if (env !== undefined) return JSON.parse(env) as ConnectionInfo;
  throw new Error("no connection info: pass --file <engine connection file>");
}

export async function runEngine(opts: EngineMainOptions): Promise<void> {
  const info = engineConnectionInfo(opts.file);
  const log = jsonLogger("engine", opts.logLevel ?? "info");
  const engine = new Engine({
    info, transport: opts.transport, requestedId: opts.id, log,
    reconnectTimeout: (opts.reconnectTimeout ?? 60) * 1000,
  });
  process.on("SIGTERM", () => void engine.stop(0));
  process.on("SIGHUP", () => void engine.stop(0));
  if (opts.ownerPid !== undefined) watchOwner(opts.ownerPid, () => void engine.stop(0));
  const id = await engine.start();
  log.info("engine ready", { id, pid: process.pid });
}

function watchOwner(pid: number, stop: () => void): void {
  const timer = setInterval(() => {
    if (pidAlive(pid)) return;
    clearInterval(timer);
    stop();
  }, 1000);
  timer.unref();
}
