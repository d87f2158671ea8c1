/** The client's state for one task (one message): its metadata and a promise of its value. */
import { TaskMetadata } from "./metadata.js";

const settled = (): void => {};

export class TaskState {
  readonly msgId: string;
  readonly metadata: TaskMetadata;
  /** Resolves with the value, rejects with the task's error; never reported as unhandled. */
  readonly promise: Promise<unknown>;
  done = false;
  value: unknown = undefined;
  error: Error | null = null;
  sent = false;
  #resolve!: (v: unknown) => void;
  #reject!: (e: Error) => void;

  constructor(msgId: string) {
    this.msgId = msgId;
    this.metadata = new TaskMetadata(msgId);
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.promise.catch(() => {});
  }

  get ok(): boolean {
    return this.done && this.error === null;
  }

  resolve(value: unknown): void {
    if (this.done) return;
    this.done = true;
    this.value = value;
    this.#resolve(value);
    this.#release();
  }

  reject(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.#reject(error);
    this.#release();
  }

  /** Results are kept until purged: keep only what they need, not the settled promise's resolvers. */
  #release(): void {
    this.#resolve = settled;
    this.#reject = settled;
  }
}
