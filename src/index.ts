/**
 * tsparallel: interactive parallel computing for TypeScript and Node.js — IPython Parallel, rebuilt.
 *
 * @example
 * import { Cluster, Reference } from "tsparallel";
 * const cluster = new Cluster({ n: 2 });
 * const rc = await cluster.startAndConnect();
 * const dv = rc.directView();
 * await dv.scatter("id", rc.ids, { flatten: true });
 * console.log(await dv.apply((id: number) => id * 10, new Reference("id")));   // [0, 10]
 * await cluster.stop();
 *
 * @module
 */

/** Start and stop a controller and engines: `new Cluster({ n: 4 }).startAndConnect()`. */
export { Cluster, listClusters, type ClusterOptions, type ClusterRecord } from "./cluster/cluster.js";
/** A connection to a running cluster: `await Client.connect()`. */
export { Client, type ClientOptions, type ClientEvents, type ControllerStats } from "./client/client.js";
/** Work and data addressed to named engines: `rc.directView()`, `rc.directView(0)`. */
export { DirectView, type DirectViewFlags, type DirectMapOptions, type ScatterOptions, type ExecuteOptions, type PullOptions, type GatherOptions } from "./client/directview.js";
/** Tasks placed by the controller's scheduler: `rc.loadBalancedView()`. */
export { LoadBalancedView, type LoadBalancedFlags, type ImapOptions, type DependencySpec } from "./client/lbview.js";
/** The handle on submitted work: awaitable, iterable, with timing and metadata. */
export { AsyncResult, AsyncMapResult, AsyncHubResult, type GetOptions, type OutputGrouping } from "./client/asyncresult.js";
/** What `execute` resolves to per engine: `{ engineId, executionCount, value }`. */
export { ExecuteReply } from "./client/execute.js";
/** Per-task metadata: timestamps, engine, status, output. */
export { TaskMetadata, type TaskStatus } from "./client/metadata.js";
/** `new Reference("name")`: an engine variable, resolved on the engine. */
export { Reference, ModuleFunction } from "./protocol/reference.js";
/** `fromModule("node:os", "cpus")`: a module's export, loaded on the engine. */
export { fromModule } from "./client/shipping.js";
/** Errors: each with a class, a stable `code` and an `ename`. */
export {
  TsParallelError, RemoteError, CompositeError, TimeoutError, EngineError, NoEnginesRegistered, UnknownEngineError,
  ControllerError, UnmetDependency, ImpossibleDependency, DependencyTimeout, InvalidDependency, TaskAborted, TaskLost,
  type EngineInfo,
} from "./client/errors.js";
export type { QueueStatus, QueueStatusEntry, Targets, Jobs, RemoteArgs } from "./client/view.js";
export type { WaitInteractiveOptions } from "./client/progress.js";
export type { Logger } from "./protocol/log.js";
export type { ReserveStats } from "./client/reserve.js";
export { TSPARALLEL_VERSION as version } from "./protocol/version.js";
