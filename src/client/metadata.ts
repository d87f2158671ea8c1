/**
 * Per-task metadata (ipyparallel's `Client.metadata` records): timestamps, where it ran, status,
 * output. Dates are `Date`s; the precise (microsecond) times behind them feed `serialTime` and
 * `wallTime`.
 */
import { inspect, type InspectOptionsStylized } from "node:util";
import { toDate } from "../protocol/time.js";
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
/** Shared by every task without rich outputs. */
const NO_OUTPUTS: unknown[] = Object.freeze([]) as unknown as unknown[];

/**
 * One task's metadata. The four timestamps are kept as epoch milliseconds (microsecond precision)
 * and turned into `Date`s when read: a client keeps every task's metadata until `purgeResults`,
 * and four Date objects per task were a quarter of that memory and of the work of each full GC.
 */
export class TaskMetadata {
  msgId: string;
  engineId: number | null = null;
  engineUuid: string | null = null;
  status: TaskStatus | null = null;
  error: RemoteError | null = null;
  stdout = "";
  stderr = "";
  /** Rich outputs the task displayed. */
  outputs: unknown[] = NO_OUTPUTS;
  /** The code of an `execute` request. */
  executeInput: string | null = null;
  /** The value of an `execute` cell, as `{ "text/plain": … }`. */
  executeResult: Record<string, unknown> | null = null;
  after: string[] = NONE;
  follow: string[] = NONE;
  label: string | null = null;
  // NaN: not known (yet)
  #submitted = Number.NaN;
  #started = Number.NaN;
  #completed = Number.NaN;
  #received = Number.NaN;

  constructor(msgId: string) {
    this.msgId = msgId;
  }

  /** When the client sent the request. */
  get submitted(): Date | null {
    return toDate(this.#submitted);
  }

  /** When the engine started the task (engine clock). */
  get started(): Date | null {
    return toDate(this.#started);
  }

  /** When the engine finished it (engine clock). */
  get completed(): Date | null {
    return toDate(this.#completed);
  }

  /** When the client read the reply. */
  get received(): Date | null {
    return toDate(this.#received);
  }

  /** The precise times (internal). */
  get [kPrecise](): PreciseTimes {
    return { submitted: orNull(this.#submitted), started: orNull(this.#started), completed: orNull(this.#completed), received: orNull(this.#received) };
  }

  /** Set a timestamp from precise epoch milliseconds (null or NaN: unknown). */
  setTime(field: keyof PreciseTimes, ms: number | null): void {
    const v = ms ?? Number.NaN;
    switch (field) {
      case "submitted":
        this.#submitted = v;
        return;
      case "started":
        this.#started = v;
        return;
      case "completed":
        this.#completed = v;
        return;
      case "received":
        this.#received = v;
    }
  }

  /** Every field as a plain object (what JSON.stringify and the REPL show). */
  toJSON(): Record<string, unknown> {
    return {
      msgId: this.msgId, submitted: this.submitted, started: this.started, completed: this.completed, received: this.received,
      engineId: this.engineId, engineUuid: this.engineUuid, status: this.status, error: this.error, stdout: this.stdout,
      stderr: this.stderr, outputs: this.outputs, executeInput: this.executeInput, executeResult: this.executeResult,
      after: this.after, follow: this.follow, label: this.label,
    };
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    return `TaskMetadata ${show(this.toJSON(), options)}`;
  }
}

function orNull(ms: number): number | null {
  return Number.isNaN(ms) ? null : ms;
}
