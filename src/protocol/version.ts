import { readFileSync } from "node:fs";

/** Wire protocol version: peers with a different major refuse each other at the handshake. */
export const PROTOCOL_VERSION = "1.0";

/** The Jupyter message-spec version our headers claim. */
export const MSG_SPEC_VERSION = "5.3";

function readPackageVersion(): string {
  const url = new URL("../../package.json", import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
}

export const TSPARALLEL_VERSION: string = readPackageVersion();

export const NODE_VERSION: string = process.versions.node;

export function major(version: string): string {
  return version.split(".")[0] ?? version;
}
