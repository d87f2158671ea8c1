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
  // each time as whole seconds since 2020 and the microseconds within (see packSeconds)
  #submittedS = NO_TIME;
  #submittedU = 0;
  #startedS = NO_TIME;
  #startedU = 0;
  #completedS = NO_TIME;
  #completedU = 0;
  #receivedS = NO_TIME;
  #receivedU = 0;

  constructor(msgId: string) {
    this.msgId = msgId;
  }

  /** When the client sent the request. */
  get submitted(): Date | null {
    return toDate(this.#precise("submitted"));
  }

  /** When the engine started the task (engine clock). */
  get started(): Date | null {
    return toDate(this.#precise("started"));
  }

  /** When the engine finished it (engine clock). */
  get completed(): Date | null {
    return toDate(this.#precise("completed"));
  }

  /** When the client read the reply. */
  get received(): Date | null {
    return toDate(this.#precise("received"));
  }

  /** The precise times (internal). */
  get [kPrecise](): PreciseTimes {
    return {
      submitted: this.#precise("submitted"), started: this.#precise("started"),
      completed: this.#precise("completed"), received: this.#precise("received"),
    };
  }

  /** Set a timestamp from precise epoch milliseconds (null or NaN: unknown). */
  setTime(field: keyof PreciseTimes, ms: number | null): void {
    const seconds = packSeconds(ms);
    const micros = seconds === NO_TIME || seconds === FAR_TIME ? 0 : packMicros(ms!, seconds);
    if (seconds === FAR_TIME) (farTimes.get(this) ?? farTimes.set(this, {}).get(this)!)[field] = ms!;
    switch (field) {
      case "submitted":
        this.#submittedS = seconds;
        this.#submittedU = micros;
        return;
      case "started":
        this.#startedS = seconds;
        this.#startedU = micros;
        return;
      case "completed":
        this.#completedS = seconds;
        this.#completedU = micros;
        return;
      case "received":
        this.#receivedS = seconds;
        this.#receivedU = micros;
    }
  }

  #precise(field: keyof PreciseTimes): number | null {
    switch (field) {
      case "submitted":
        return unpack(this, field, this.#submittedS, this.#submittedU);
      case "started":
        return unpack(this, field, this.#startedS, this.#startedU);
      case "completed":
        return unpack(this, field, this.#completedS, this.#completedU);
      case "received":
        return unpack(this, field, this.#receivedS, this.#receivedU);
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

/*
 * A client keeps every task's metadata until purgeResults. A number field that is not a small
 * integer is a separate heap object in V8 (a boxed double): four per task, a third of the objects
 * every full GC marks. So each time is kept as two small integers (stored in the object itself):
 * whole seconds since 2020-01-01 and the microseconds within. Times more than ~34 years away
 * (an engine whose clock is unset) keep their double in a side table.
 */
const EPOCH_MS = Date.UTC(2020, 0, 1);
const SMI_LIMIT = 2 ** 30 - 2;
const NO_TIME = -(2 ** 30);
const FAR_TIME = NO_TIME + 1;
const farTimes = new WeakMap<TaskMetadata, Partial<PreciseTimes>>();

function packSeconds(ms: number | null): number {
  if (ms === null || Number.isNaN(ms)) return NO_TIME;
  const seconds = Math.floor((ms - EPOCH_MS) / 1000);
  return Math.abs(seconds) <= SMI_LIMIT ? seconds : FAR_TIME;
}

function packMicros(ms: number, seconds: number): number {
  return Math.round((ms - EPOCH_MS - seconds * 1000) * 1000);
}

function unpack(md: TaskMetadata, field: keyof PreciseTimes, seconds: number, micros: number): number | null {
  if (seconds === NO_TIME) return null;
  if (seconds === FAR_TIME) return farTimes.get(md)?.[field] ?? null;
  return EPOCH_MS + seconds * 1000 + micros / 1000;
}
