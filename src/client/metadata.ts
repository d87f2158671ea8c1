/**
 * Per-task metadata (ipyparallel's `Client.metadata` records): timestamps, where it ran, status,
 * output. Dates are `Date`s; the precise (microsecond) times behind them feed `serialTime` and
 * `wallTime`.
 */
import type { RemoteError } from "./errors.js";

export type TaskStatus = "ok" | "error" | "aborted";

/** Microsecond-resolution epoch times (milliseconds as floats) behind the Date fields. */
export interface PreciseTimes {
  submitted: number | null;
  started: number | null;
  completed: number | null;
  received: number | null;
}

export const kPrecise: unique symbol = Symbol("tsparallel.preciseTimes");

/** Shared by every task without dependencies (most of them: one array less per task). */
const NONE: string[] = Object.freeze([]) as unknown as string[];

export class TaskMetadata {
  msgId: string;
  /** When the client sent the request. */
  submitted: Date | null = null;
  /** When the engine started the task (engine clock). */
  started: Date | null = null;
  /** When the engine finished it (engine clock). */
  completed: Date | null = null;
  /** When the client read the reply. */
  received: Date | null = null;
  engineId: number | null = null;
  engineUuid: string | null = null;
  status: TaskStatus | null = null;
  error: RemoteError | null = null;
  stdout = "";
  stderr = "";
  /** Rich outputs the task displayed. */
  outputs: unknown[] = [];
  /** The code of an `execute` request. */
  executeInput: string | null = null;
  /** The value of an `execute` cell, as `{ "text/plain": … }`. */
  executeResult: Record<string, unknown> | null = null;
  after: string[] = NONE;
  follow: string[] = NONE;
  label: string | null = null;
  readonly #times: PreciseTimes = { submitted: null, started: null, completed: null, received: null };

  constructor(msgId: string) {
    this.msgId = msgId;
  }

  /** The precise times (internal; not enumerable, kept off the REPL's view). */
  get [kPrecise](): PreciseTimes {
    return this.#times;
  }

  /** Set a timestamp from precise epoch milliseconds. */
  setTime(field: keyof PreciseTimes, ms: number | null): void {
    this.#times[field] = ms;
    this[field] = ms === null || Number.isNaN(ms) ? null : new Date(Math.floor(ms));
  }
}
