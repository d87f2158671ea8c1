/**
 * Load-balanced tasks submitted in one turn (a map, a burst of `apply` calls) go to the controller
 * together, in one signed `task_group` message: the tasks' own signed messages as its buffers, and
 * an index of what the controller needs of each (id, date, type, metadata) as its content. The
 * controller authenticates the group once and reads the index instead of framing, verifying and
 * parsing every task; the engines get each task's own message, as before. A turn with one task
 * sends it as it is.
 */
import { GROUP_ITEM_MAX, GROUP_MAX_BYTES, GROUP_MAX_ITEMS, type Authenticator } from "../protocol/auth.js";
import { encodeMessage, makeHeader, type Header } from "../protocol/messages.js";
import type { TaskState } from "./task.js";

interface Item {
  chunk: Uint8Array;
  state: TaskState;
  header: Header;
  metadata: string;
}

export interface GroupHost {
  auth: Authenticator;
  session: string;
  /** Whether the controller connection is open (else each task goes `alone`, to be held or failed). */
  open(): boolean;
  /** Write a group to the controller; its tasks count as sent once it is flushed. */
  write(chunks: readonly Uint8Array[], states: readonly TaskState[]): void;
  /** Send one task's message the usual way. */
  alone(chunk: Uint8Array, state: TaskState): void;
}

export class TaskGroups {
  readonly #host: GroupHost;
  #items: Item[] = [];
  #bytes = 0;
  #scheduled = false;

  constructor(host: GroupHost) {
    this.#host = host;
  }

  /**
   * Take a load-balanced task's message (its metadata as JSON: the index carries it); false if it
   * cannot go in a group (large, or framed in more than one chunk): send it alone, after `flush()`.
   */
  add(chunks: readonly Uint8Array[], state: TaskState, header: Header, metadata: string): boolean {
    if (chunks.length !== 1 || chunks[0]!.byteLength > GROUP_ITEM_MAX) return false;
    const chunk = chunks[0]!;
    this.#items.push({ chunk, state, header, metadata });
    this.#bytes += chunk.byteLength;
    if (this.#bytes >= GROUP_MAX_BYTES || this.#items.length >= GROUP_MAX_ITEMS) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(this.#endOfTurn);
    }
    return true;
  }

  readonly #endOfTurn = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  /** Send what is held now (before any other message to the controller, which must not overtake it). */
  flush(): void {
    const items = this.#items;
    if (items.length === 0) return;
    this.#items = [];
    this.#bytes = 0;
    if (items.length === 1 || !this.#host.open()) {
      for (const i of items) this.#host.alone(i.chunk, i.state);
      return;
    }
    this.#host.write(encodeMessage(this.#host.auth, {
      header: makeHeader("task_group", this.#host.session),
      texts: { metadata: "{}", content: indexText(items) },
      buffers: items.map((i) => i.chunk),
    }), items.map((i) => i.state));
  }
}

/**
 * `{"types":[…],"mds":[…],"tasks":[[id, date, type index, metadata index], …]}`, built from the
 * texts at hand: each distinct metadata text once (a map's tasks share one).
 */
function indexText(items: readonly Item[]): string {
  const types: string[] = [];
  const mds: string[] = [];
  const tasks: string[] = [];
  for (const { header, metadata } of items) {
    let t = types.indexOf(header.msg_type);
    if (t < 0) t = types.push(header.msg_type) - 1;
    let m = mds.lastIndexOf(metadata);
    if (m < 0) m = mds.push(metadata) - 1;
    tasks.push(`[${JSON.stringify(header.msg_id)},${JSON.stringify(header.date)},${t},${m}]`);
  }
  return `{"types":${JSON.stringify(types)},"mds":[${mds.join(",")}],"tasks":[${tasks.join(",")}]}`;
}
