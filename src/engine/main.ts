/** `tsparallel engine`: start one engine process. */
import process from "node:process";
import { pidAlive, readConnectionFile, type ConnectionInfo } from "../protocol/connfile.js";
import type { Transport } from "../protocol/dial.js";
import { jsonLogger, type LogLevel } from "../protocol/log.js";
import { Engine } from "./engine.js";
import { forgetLauncherTunables } from "./malloc.js";
import { tuneJit } from "../protocol/jit.js";

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
  if (file !== undefined && file !== "-") return readConnectionFile(file);
  const env = process.env.TSPARALLEL_CONNECTION_INFO;
  if (env !== undefined) return JSON.parse(env) as ConnectionInfo;
  throw new Error("no connection info: pass --file <engine connection file>");
}

/**
 * `--file -`: the connection info is the first line on stdin (the ssh launcher writes it, so no
 * file with the key is left on the remote host), and stdin closing means the launcher is gone.
 */
async function infoFromStdin(timeoutMs = 30_000): Promise<ConnectionInfo> {
  const line = await new Promise<string>((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error("no connection info on stdin within 30 s")), timeoutMs);
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const end = text.indexOf("\n");
      if (end < 0) return;
      clearTimeout(timer);
      process.stdin.off("data", onData);
      process.stdin.pause();
      resolve(text.slice(0, end));
    };
    process.stdin.on("data", onData);
    process.stdin.once("end", () => reject(new Error("stdin closed before the connection info")));
  });
  try {
    return JSON.parse(line) as ConnectionInfo;
  } catch (err) {
    throw new Error(`the connection info on stdin is not JSON: ${(err as Error).message}`, { cause: err });
  }
}

export async function runEngine(opts: EngineMainOptions): Promise<void> {
  tuneJit();
  forgetLauncherTunables();
  const fromStdin = opts.file === "-";
  const info = fromStdin ? await infoFromStdin() : engineConnectionInfo(opts.file);
  const log = jsonLogger("engine", opts.logLevel ?? "info");
  const engine = new Engine({
    info, transport: opts.transport, requestedId: opts.id, log,
    reconnectTimeout: (opts.reconnectTimeout ?? 60) * 1000,
  });
  process.on("SIGTERM", () => void engine.stop(0));
  process.on("SIGHUP", () => void engine.stop(0));
  // a closed stdout or stderr (a terminal or ssh session gone) must not become an uncaught error: logging
  // it would fail again, in a loop that starves the event loop. An engine whose launcher holds its stdin
  // takes a broken pipe as the launcher gone.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => (fromStdin ? void engine.stop(0) : undefined));
  if (opts.ownerPid !== undefined) watchOwner(opts.ownerPid, () => void engine.stop(0));
  if (fromStdin) {
    // the launcher (an ssh session) holds our stdin open for as long as it wants us
    process.stdin.once("end", () => void engine.stop(0));
    process.stdin.once("close", () => void engine.stop(0));
    process.stdin.resume();
    // and should the session end without our stdin noticing, its process is gone: stop then too
    watchOwner(process.ppid, () => void engine.stop(0));
  }
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
