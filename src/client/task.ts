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
  /**
   * Made only when someone asks for it (`promise`), until the task settles: a map's results wait
   * through `whenSettled`, without a promise, two resolvers and their reactions per task.
   */
  #promise: Promise<unknown> | null = null;
  #resolve: (v: unknown) => void = settled;
  #reject: (e: Error) => void = settled;
  /** Called once when the task settles: one callback, or several. */
  #listeners: (() => void) | Array<() => void> | null = null;

  constructor(msgId: string, metadata: TaskMetadata = new TaskMetadata(msgId)) {
    this.msgId = msgId;
    this.metadata = metadata;
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
    if (!this.done) {
      this.#promise = new Promise((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      this.#promise.catch(settled);
      return this.#promise;
    }
    if (this.error === null) return Promise.resolve(this.value);
    const rejected = Promise.reject(this.error);
    rejected.catch(settled);
    return rejected;
  }

  get ok(): boolean {
    return this.done && this.error === null;
  }

  /** Call `cb` once the task has settled: now, if it has. */
  whenSettled(cb: () => void): void {
    if (this.done) return cb();
    const l = this.#listeners;
    this.#listeners = l === null ? cb : typeof l === "function" ? [l, cb] : (l.push(cb), l);
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
    const l = this.#listeners;
    this.#listeners = null;
    if (typeof l === "function") l();
    else if (l !== null) for (const cb of l) cb();
  }
}
