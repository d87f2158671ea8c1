/** Internals, for tests and tools (no stability promise). */
export * from "./index.js";
export { Authenticator, DigestHistory } from "./protocol/auth.js";
export { FrameDecoder, encodeFrames, decodeRaw } from "./protocol/wire.js";
export { encodeMessage, makeHeader, Incoming, type Header, type OutMessage } from "./protocol/messages.js";
export { pack, unpack } from "./protocol/serialize.js";
export { functionSource } from "./protocol/functions.js";
export { readConnectionFile, clientFile, engineFile, clusterFile, profileDir, pidAlive, type ConnectionInfo } from "./protocol/connfile.js";
export { Connection, DropStats, adoptReading, connectReading } from "./protocol/connection.js";
export { dial } from "./protocol/dial.js";
export { isoMicro, parseIsoMicro, nowMs } from "./protocol/time.js";
export { rewriteCell } from "./engine/cell.js";
export { Controller } from "./controller/server.js";
export { runController } from "./controller/main.js";
export { TaskScheduler } from "./controller/scheduler/task.js";
export { partitionSizes, chunkSizes, concatParts } from "./client/sequences.js";
export { formatProgress } from "./client/progress.js";
export { stopRecordedCluster } from "./cluster/cluster.js";
