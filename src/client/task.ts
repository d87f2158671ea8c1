/** The client's state for one task (one message): its metadata and a promise of its value. */
import { TaskMetadata } from "./metadata.js";

const settled = (): void => {};

export class TaskState {
  readonly msgId: string;
  readonly metadata: TaskMetadata;
  done = false;
  value: unknown = undefined;
  error: Error | null = null;
  sent = false;
  /** Until the task settles; then let go (a client keeps every task until purgeResults). */
  #promise: Promise<unknown> | null;
  #resolve!: (v: unknown) => void;
  #reject!: (e: Error) => void;

  constructor(msgId: string, metadata: TaskMetadata = new TaskMetadata(msgId)) {
    this.msgId = msgId;
    this.metadata = metadata;
    this.#promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#promise.catch(settled);
  }

  /** The state of a task that succeeded, made again from what the client keeps of it. */
  static succeeded(metadata: TaskMetadata, value: unknown): TaskState {
    const state = new TaskState(metadata.msgId, metadata);
    state.sent = true;
    state.resolve(value);
    return state;
  }

  /**
   * Resolves with the value, rejects with the task's error; never reported as unhandled. Once the
   * task has settled, each read gives a new promise settled the same way.
   */
  get promise(): Promise<unknown> {
    if (this.#promise !== null) return this.#promise;
    if (this.error === null) return Promise.resolve(this.value);
    const rejected = Promise.reject(this.error);
    rejected.catch(settled);
    return rejected;
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

  /** Results are kept until purged: keep only what they need, not the settled promise and its resolvers. */
  #release(): void {
    this.#promise = null;
    this.#resolve = settled;
    this.#reject = settled;
  }
}
