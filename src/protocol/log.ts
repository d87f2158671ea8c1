/**
 * Structured logging for the daemons (controller, engines): one JSON object per line on stderr,
 * which launchers redirect to the log file. The client library takes an optional logger and is
 * silent by default.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export function jsonLogger(name: string, level: LogLevel = "info", bindings: Record<string, unknown> = {}): Logger {
  const min = ORDER[level];
  const write = (lvl: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const line = { time: new Date().toISOString(), level: lvl, name, pid: process.pid, ...bindings, msg, ...fields };
    process.stderr.write(`${JSON.stringify(line)}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
