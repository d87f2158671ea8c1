/**
 * Error classes. Each condition has its own class, a stable `code` and an `ename`; `instanceof`
 * works across duplicated installs and realms (a `Symbol.for` brand lists the class chain).
 */

const BRAND = Symbol.for("tsparallel.errorClasses");

export interface EngineInfo {
  engineId: number | null;
  engineUuid: string | null;
  method: "apply" | "execute" | null;
}

/** Base of every tsparallel error. */
export class TsParallelError extends Error {
  static readonly errorName: string = "TsParallelError";
  static readonly errorCode: string = "TSP_ERR";
  /** Stable code, e.g. `TSP_ERR_TIMEOUT`. */
  readonly code: string;
  /** The error's name, as `ename` on remote errors. */
  readonly ename: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    const ctor = new.target as typeof TsParallelError;
    this.name = ctor.errorName;
    this.code = ctor.errorCode;
    this.ename = ctor.errorName;
    const chain: string[] = [];
    for (let c: typeof TsParallelError | null = ctor; c !== null && "errorName" in c; c = Object.getPrototypeOf(c) as typeof TsParallelError) {
      if (Object.hasOwn(c, "errorName")) chain.push(c.errorName);
    }
    Object.defineProperty(this, BRAND, { value: chain, enumerable: false });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== "object" || value === null) return false;
    const chain = (value as Record<symbol, unknown>)[BRAND];
    return Array.isArray(chain) && chain.includes(this.errorName);
  }
}

/** `get(timeout)` or a wait ran out of time; also `serialTime`/`wallTime` read before the result is ready. */
export class TimeoutError extends TsParallelError {
  static override readonly errorName: string = "TimeoutError";
  static override readonly errorCode: string = "TSP_ERR_TIMEOUT";
}

/** A direct call found no engine registered. */
export class NoEnginesRegistered extends TsParallelError {
  static override readonly errorName: string = "NoEnginesRegistered";
  static override readonly errorCode: string = "TSP_ERR_NO_ENGINES";

  constructor(message = "This operation requires engines. Try `await rc.waitForEngines(n)` to wait for engines to register.") {
    super(message);
  }
}

/** A target names an engine that is not registered. */
export class UnknownEngineError extends TsParallelError {
  static override readonly errorName: string = "UnknownEngineError";
  static override readonly errorCode: string = "TSP_ERR_UNKNOWN_ENGINE";
}

/** The connection to the controller was lost or the client is closed. */
export class ControllerError extends TsParallelError {
  static override readonly errorName: string = "ControllerError";
  static override readonly errorCode: string = "TSP_ERR_CONTROLLER";
}

/** An error raised by a task on an engine (or by the controller on its behalf). */
export class RemoteError extends TsParallelError {
  static override readonly errorName: string = "RemoteError";
  static override readonly errorCode: string = "TSP_ERR_REMOTE";
  /** The remote error's name (`TypeError`, `EngineError`, …). */
  override readonly ename: string;
  /** The remote error's message. */
  readonly evalue: string;
  /** The remote stack, as a string. */
  readonly traceback: string;
  readonly engineInfo: EngineInfo;

  constructor(ename: string, evalue: string, traceback = "", engineInfo: Partial<EngineInfo> = {}, options?: ErrorOptions) {
    super(`${engineLabel(engineInfo)} ${ename}: ${evalue}`, options);
    this.ename = ename;
    this.evalue = evalue;
    this.traceback = traceback;
    this.engineInfo = { engineId: engineInfo.engineId ?? null, engineUuid: engineInfo.engineUuid ?? null, method: engineInfo.method ?? null };
  }

  /** The remote traceback, headed by where it ran. */
  renderTraceback(): string {
    return `${engineLabel(this.engineInfo)}\n${this.traceback || `${this.ename}: ${this.evalue}`}`;
  }
}

function engineLabel(info: Partial<EngineInfo>): string {
  return info.engineId === null || info.engineId === undefined ? "[Engine Exception]" : `[${info.engineId}:${info.method ?? "apply"}]`;
}

/** The engine died or went away while the task was on it. */
export class EngineError extends RemoteError {
  static override readonly errorName: string = "EngineError";
  static override readonly errorCode: string = "TSP_ERR_ENGINE";
}

/** The task was aborted before it ran. */
export class TaskAborted extends RemoteError {
  static override readonly errorName: string = "TaskAborted";
  static override readonly errorCode: string = "TSP_ERR_TASK_ABORTED";
}

/** A dependency of the task is not met. */
export class UnmetDependency extends RemoteError {
  static override readonly errorName: string = "UnmetDependency";
  static override readonly errorCode: string = "TSP_ERR_UNMET_DEPENDENCY";
}

/** The task's dependencies can never be met (failed, or ran on engines it cannot follow). */
export class ImpossibleDependency extends UnmetDependency {
  static override readonly errorName: string = "ImpossibleDependency";
  static override readonly errorCode: string = "TSP_ERR_IMPOSSIBLE_DEPENDENCY";
}

/** The task waited longer than its `timeout` for its dependencies or an engine. */
export class DependencyTimeout extends ImpossibleDependency {
  static override readonly errorName: string = "DependencyTimeout";
  static override readonly errorCode: string = "TSP_ERR_DEPENDENCY_TIMEOUT";
}

/** A dependency names a task the controller never saw (or the task itself). */
export class InvalidDependency extends ImpossibleDependency {
  static override readonly errorName: string = "InvalidDependency";
  static override readonly errorCode: string = "TSP_ERR_INVALID_DEPENDENCY";
}

/**
 * The controller stopped before the task finished, so no result will come: a controller started
 * again on the same SQLite task database fails the tasks its predecessor left pending.
 */
export class TaskLost extends RemoteError {
  static override readonly errorName: string = "TaskLost";
  static override readonly errorCode: string = "TSP_ERR_TASK_LOST";
}

const SYSTEM_ERRORS: Record<string, typeof RemoteError> = {
  EngineError, TaskAborted, TaskLost, UnmetDependency, ImpossibleDependency, DependencyTimeout, InvalidDependency,
};

/** Build the error for a failed task's reply content. */
export function remoteErrorFrom(content: Record<string, unknown>, fallback: Partial<EngineInfo> = {}): RemoteError {
  const ename = String(content.ename ?? "Error");
  const info = (content.engine_info ?? {}) as Record<string, unknown>;
  const engineInfo: Partial<EngineInfo> = {
    engineId: typeof info.engine_id === "number" ? info.engine_id : (fallback.engineId ?? null),
    engineUuid: typeof info.engine_uuid === "string" ? info.engine_uuid : (fallback.engineUuid ?? null),
    method: (info.method as EngineInfo["method"]) ?? fallback.method ?? null,
  };
  const traceback = Array.isArray(content.traceback) ? content.traceback.join("\n") : String(content.traceback ?? "");
  const Ctor = content.status === "aborted" ? TaskAborted : (SYSTEM_ERRORS[ename] ?? RemoteError);
  return new Ctor(ename, String(content.evalue ?? ""), traceback, engineInfo);
}

/** Several tasks failed (a multi-task result rejects with this even if only one did). */
export class CompositeError extends RemoteError {
  static override readonly errorName: string = "CompositeError";
  static override readonly errorCode: string = "TSP_ERR_COMPOSITE";
  /** How many errors the message lists. */
  static tbLimit = 4;
  readonly elist: Error[];

  constructor(elist: Error[], fname = "unknown") {
    super("CompositeError", `one or more exceptions raised in: ${fname}`);
    this.elist = flatten(elist);
    this.message = compositeMessage(this.elist, fname);
  }

  /** Throw `elist[i]` (synchronously). */
  raiseException(i = 0): never {
    const err = this.elist[i];
    if (err === undefined) throw new RangeError(`no exception ${i}: there are ${this.elist.length}`);
    throw err;
  }

  override renderTraceback(): string {
    const shown = this.elist.slice(0, CompositeError.tbLimit).map((e) => (e instanceof RemoteError ? e.renderTraceback() : String(e.stack)));
    const more = this.elist.length - shown.length;
    return [...shown, ...(more > 0 ? [`... ${more} more exceptions ...`] : [])].join("\n\n");
  }
}

function flatten(list: Error[]): Error[] {
  return list.flatMap((e) => (e instanceof CompositeError ? e.elist : [e]));
}

function compositeMessage(elist: Error[], fname: string): string {
  const lines = [`one or more exceptions raised in: ${fname}`];
  for (const e of elist.slice(0, CompositeError.tbLimit)) {
    if (e instanceof RemoteError) lines.push(`${engineLabel(e.engineInfo)}: ${e.ename}: ${e.evalue}`);
    else lines.push(`[local]: ${e.name}: ${e.message}`);
  }
  const more = elist.length - CompositeError.tbLimit;
  if (more > 0) lines.push(`... ${more} more exceptions ...`);
  return lines.join("\n");
}
