import { readFileSync } from "node:fs";

/**
 * Wire protocol version: peers with a different major refuse each other at the handshake. A minor
 * adds what an older peer of the same major can do without: 1.1, task groups (a client sends them
 * only to a controller of 1.1 or later); 1.2, groups both ways: reply groups (an engine sends them
 * only over the link of a client of 1.2 or later) and task handoffs (the controller hands an engine of
 * 1.2 or later the tasks of one turn in one message); 1.3, reply stubs (an engine tells a controller of
 * 1.3 or later what a grouped reply holds instead of sending it whole, and the controller builds the
 * reply's bytes only when they are read).
 */
export const PROTOCOL_VERSION = "1.3";

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

/** Whether a peer announcing `version` is of protocol 1.`minor` or later (a later major counts). */
function atLeast(version: unknown, minor: number): boolean {
  const [maj, min] = String(version).split(".").map(Number);
  return maj! > 1 || (maj === 1 && min! >= minor);
}

/** Whether a peer announcing `version` takes task groups (protocol 1.1 and later). */
export function takesTaskGroups(version: unknown): boolean {
  return atLeast(version, 1);
}

/** Whether a client announcing `version` takes reply groups over its link (protocol 1.2 and later). */
export function takesReplyGroups(version: unknown): boolean {
  return atLeast(version, 2);
}

/** Whether a controller announcing `version` reads an engine's link answers as compact entries (protocol 1.2 and later). */
export function takesCompactReports(version: unknown): boolean {
  return atLeast(version, 2);
}

/** Whether an engine announcing `version` takes the tasks of a turn in one message (protocol 1.2 and later). */
export function takesTaskHandoffs(version: unknown): boolean {
  return atLeast(version, 2);
}

/** Whether a controller announcing `version` takes reply stubs in an engine's report (protocol 1.3 and later). */
export function takesReplyStubs(version: unknown): boolean {
  return atLeast(version, 3);
}
