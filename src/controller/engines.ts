/** The engine table: ids from 0 in registration order, never given to another engine. */
import type { Connection } from "../protocol/connection.js";

export interface EngineEntry {
  id: number;
  uuid: string;
  /** The session of its messages (its replies' headers name it). */
  session: string;
  conn: Connection;
  heart: Connection | null;
  hostname: string;
  pid: number;
  /** Where same-host clients can reach the engine directly ("unix:/path"), or null. */
  address: string | null;
  registeredAt: number;
  lastBeat: number;
  /** Direct tasks sent to the engine and not yet answered. */
  direct: Set<string>;
  completed: number;
  /** It takes the tasks of a turn in one message (protocol 1.2, `Connection.writeGrouped`). */
  handoffs: boolean;
}

export class EngineRegistry {
  readonly #byId = new Map<number, EngineEntry>();
  readonly #byUuid = new Map<string, EngineEntry>();
  /** Every uuid ever registered and its id: an engine that reconnects gets its id back. */
  readonly #known = new Map<string, number>();
  #nextId = 0;

  get size(): number {
    return this.#byId.size;
  }

  ids(): number[] {
    return [...this.#byId.keys()].sort((a, b) => a - b);
  }

  all(): EngineEntry[] {
    return [...this.#byId.values()];
  }

  get(id: number): EngineEntry | undefined {
    return this.#byId.get(id);
  }

  byUuid(uuid: string): EngineEntry | undefined {
    return this.#byUuid.get(uuid);
  }

  idFor(uuid: string): number | undefined {
    return this.#known.get(uuid);
  }

  /** Pick the id for a registering engine: its old id, a requested free id, or the next one. */
  assignId(uuid: string, requested: number | undefined): number {
    const old = this.#known.get(uuid);
    if (old !== undefined && !this.#byId.has(old)) return old;
    const taken = (id: number) => this.#byId.has(id) || [...this.#known.values()].includes(id);
    if (requested !== undefined && Number.isInteger(requested) && requested >= 0 && !taken(requested)) {
      this.#nextId = Math.max(this.#nextId, requested + 1);
      return requested;
    }
    return this.#nextId++;
  }

  add(entry: EngineEntry): void {
    this.#byId.set(entry.id, entry);
    this.#byUuid.set(entry.uuid, entry);
    this.#known.set(entry.uuid, entry.id);
  }

  remove(id: number): EngineEntry | undefined {
    const e = this.#byId.get(id);
    if (e === undefined) return undefined;
    this.#byId.delete(id);
    this.#byUuid.delete(e.uuid);
    return e;
  }
}
