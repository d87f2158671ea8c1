/** What `execute` gives back per engine. */
import { inspect } from "node:util";

export class ExecuteReply<T = unknown> {
  /** The engine that ran the cell. */
  readonly engineId: number | null;
  /** The engine's count of executed cells, this one included. */
  readonly executionCount: number;
  /** The value of the cell's last expression (undefined if it has none). */
  readonly value: T;
  /** Display data of the value: `{ "text/plain": … }`, or null. */
  readonly data: Record<string, unknown> | null;

  constructor(engineId: number | null, executionCount: number, value: T, data: Record<string, unknown> | null) {
    this.engineId = engineId;
    this.executionCount = executionCount;
    this.value = value;
    this.data = data ?? null;
  }

  /** The value as text, as a REPL would show it. */
  get text(): string {
    const plain = this.data?.["text/plain"];
    return typeof plain === "string" ? plain : "";
  }

  [inspect.custom](): string {
    const text = this.text.length > 32 ? `${this.text.slice(0, 29)}...` : this.text;
    return `<ExecuteReply[${this.executionCount}]: ${text}>`;
  }

  toString(): string {
    return `Out[${this.engineId ?? "?"}:${this.executionCount}]: ${this.text}`;
  }
}
