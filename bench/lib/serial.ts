/** The C1 serial reference for the Node peers: cpu(n) × count in a fresh `node` process. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../peers/serial_js.mjs", import.meta.url));

/** Seconds the loop took in a fresh process (start-up excluded). */
export function serialReference(n: number, count: number, timeoutMs = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [SCRIPT, String(n), String(count)], { timeout: timeoutMs }, (err, stdout) => {
      if (err) reject(err);
      else resolve(Number(stdout.trim()));
    });
  });
}
