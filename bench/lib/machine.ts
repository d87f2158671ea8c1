/** Versions of everything compared, and the machine it ran on. */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { PYTHON } from "./plan.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function pkgVersion(path: string): string {
  try {
    return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version;
  } catch {
    return "not installed";
  }
}

export interface PythonSide {
  python: string;
  ipyparallel: string | null;
  distributed: string | null;
  numpy: string | null;
}

const PROBE = `
import json, sys
out = {"python": sys.version.split()[0]}
for m in ("ipyparallel", "distributed", "numpy", "psutil"):
    try:
        out[m] = __import__(m).__version__
    except Exception:
        out[m] = None
print(json.dumps(out))
`;

/** Which Python peers can run (null version = module missing); null if there is no python at all. */
export function probePython(): Promise<PythonSide | null> {
  if (!existsSync(PYTHON)) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile(PYTHON, ["-c", PROBE], { timeout: 30_000 }, (err, stdout) => {
      if (err) return resolve(null);
      const p = JSON.parse(stdout) as PythonSide & { psutil: string | null };
      // psutil is needed by the peer scripts themselves; without it neither peer can run
      if (!p.psutil) resolve({ ...p, ipyparallel: null, distributed: null });
      else resolve(p);
    });
  });
}

export function versions(py: PythonSide | null): Record<string, string> {
  return {
    node: process.version,
    tsparallel: pkgVersion(`${ROOT}package.json`),
    python: py?.python ?? "not found",
    ipyparallel: py?.ipyparallel ?? "not installed",
    "dask.distributed": py?.distributed ?? "not installed",
    numpy: py?.numpy ?? "not installed",
    workerpool: pkgVersion(`${ROOT}node_modules/workerpool/package.json`),
    piscina: pkgVersion(`${ROOT}node_modules/piscina/package.json`),
  };
}

export function machine(): Record<string, string> {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? "unknown",
    cores: String(c.length),
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: release(),
  };
}

export function load(): string {
  return loadavg().map((x) => x.toFixed(2)).join(" / ");
}

export function tsparallelBuilt(): boolean {
  return existsSync(`${ROOT}dist/index.js`);
}
