/**
 * Console output of a task: while a task runs, what the process writes to stdout and stderr is
 * captured and sent to the task's client as `stream` messages (batched, and flushed before the
 * reply); between tasks it goes to the engine's log as usual.
 */
import process from "node:process";
import type { Header } from "../protocol/messages.js";

export type StreamName = "stdout" | "stderr";
type Sender = (parent: Header, name: StreamName, text: string) => void;

const FLUSH_MS = 50;

export class OutputCapture {
  readonly #send: Sender;
  #parent: Header | null = null;
  #pending: Record<StreamName, string> = { stdout: "", stderr: "" };
  #timer: NodeJS.Timeout | null = null;

  constructor(send: Sender) {
    this.#send = send;
  }

  /** Patch process.stdout/stderr.write once (console writes through them). */
  install(): void {
    for (const name of ["stdout", "stderr"] as const) {
      const stream = process[name];
      const original = stream.write.bind(stream) as (...a: unknown[]) => boolean;
      stream.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (this.#parent === null) return original(chunk, ...rest);
        this.#add(name, typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"));
        const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
        if (cb !== undefined) process.nextTick(cb);
        return true;
      }) as typeof stream.write;
    }
  }

  begin(parent: Header): void {
    this.#parent = parent;
  }

  /** Flush what is left and stop capturing. */
  end(): void {
    this.flush();
    this.#parent = null;
  }

  flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const parent = this.#parent;
    if (parent === null) return;
    for (const name of ["stdout", "stderr"] as const) {
      const text = this.#pending[name];
      if (text.length === 0) continue;
      this.#pending[name] = "";
      this.#send(parent, name, text);
    }
  }

  #add(name: StreamName, text: string): void {
    this.#pending[name] += text;
    this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }
}
