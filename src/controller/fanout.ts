/**
 * Control requests that go to several engines (abort, clear, signal, shutdown): one request from
 * the client, one sub-request per engine, one combined reply. Engines that die or do not answer
 * in time count as failed parts, so the client always gets its reply.
 */
import type { Connection } from "../protocol/connection.js";
import type { Logger } from "../protocol/log.js";
import { makeHeader, type Header, type Incoming, type Json } from "../protocol/messages.js";
import type { EngineRegistry } from "./engines.js";
import { newMsgId } from "../protocol/ids.js";

interface FanoutHost {
  readonly engines: EngineRegistry;
  readonly session: string;
  send(conn: Connection, msgType: string, content: Json, parent?: Header | null): void;
}

type Combine = (parts: Record<string, Json>) => Json;

interface Fanout {
  client: Connection;
  request: Header;
  replyType: string;
  pending: Map<string, number>;
  parts: Record<string, Json>;
  combine: Combine;
  after: () => void;
  timer: NodeJS.Timeout;
}

const FANOUT_TIMEOUT_MS = 30_000;

export class Fanouts {
  readonly #host: FanoutHost;
  readonly #log: Logger;
  readonly #bySub = new Map<string, Fanout>();

  constructor(host: FanoutHost, log: Logger) {
    this.#host = host;
    this.#log = log;
  }

  start(client: Connection, request: Incoming, msgType: string, engines: number[], content: Json,
    channel: "engine" | "heart" = "engine", combine: Combine = () => ({}), after: () => void = () => {}): void {
    const f: Fanout = {
      client, request: request.header, replyType: request.msgType.replace(/_request$/, "_reply"),
      pending: new Map(), parts: {}, combine, after,
      timer: setTimeout(() => this.#expire(f), FANOUT_TIMEOUT_MS),
    };
    f.timer.unref();
    for (const id of engines) {
      const e = this.#host.engines.get(id);
      const conn = channel === "heart" ? e?.heart : e?.conn;
      if (conn === undefined || conn === null) {
        f.parts[String(id)] = { status: "error", ename: "EngineError", evalue: `engine ${id} is not reachable` };
        continue;
      }
      const subId = newMsgId();
      f.pending.set(subId, id);
      this.#bySub.set(subId, f);
      conn.send({ header: makeHeader(msgType, this.#host.session, subId), parent: request.header, content });
    }
    this.#maybeDone(f);
  }

  /** An engine's reply to a sub-request; false if it is not one. */
  reply(engineId: number, msg: Incoming): boolean {
    const subId = msg.parentId;
    const f = subId === undefined ? undefined : this.#bySub.get(subId);
    if (f === undefined || subId === undefined || f.pending.get(subId) !== engineId) return false;
    this.#settle(f, subId, msg.content);
    return true;
  }

  engineGone(engineId: number): void {
    for (const [subId, f] of [...this.#bySub]) {
      if (f.pending.get(subId) === engineId) {
        this.#settle(f, subId, { status: "error", ename: "EngineError", evalue: `engine ${engineId} went away` });
      }
    }
  }

  cancelAll(): void {
    for (const f of new Set(this.#bySub.values())) clearTimeout(f.timer);
    this.#bySub.clear();
  }

  #settle(f: Fanout, subId: string, part: Json): void {
    const id = f.pending.get(subId)!;
    f.pending.delete(subId);
    this.#bySub.delete(subId);
    f.parts[String(id)] = part;
    this.#maybeDone(f);
  }

  #expire(f: Fanout): void {
    for (const [subId, id] of [...f.pending]) {
      this.#log.warn("control request timed out", { engine: id, request: f.replyType });
      this.#settle(f, subId, { status: "error", ename: "TimeoutError", evalue: `engine ${id} did not answer within ${FANOUT_TIMEOUT_MS / 1000} s` });
    }
  }

  #maybeDone(f: Fanout): void {
    if (f.pending.size > 0) return;
    clearTimeout(f.timer);
    const failed = Object.values(f.parts).some((p) => p.status === "error");
    this.#host.send(f.client, f.replyType, { status: failed ? "error" : "ok", engines: f.parts, ...f.combine(f.parts) }, f.request);
    f.after();
  }
}
