/**
 * Direct links: clients on this host connect to the engine itself (a Unix socket next to the
 * controller's), so a direct task crosses one hop each way instead of two. The same handshake,
 * signing and drop rules apply as on the controller's port. The engine tells the controller about
 * every task that came this way, so the controller's record stays complete.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Authenticator, DigestHistory } from "../protocol/auth.js";
import { Connection, type DropStats } from "../protocol/connection.js";
import type { Logger } from "../protocol/log.js";
import type { Incoming } from "../protocol/messages.js";

export interface LinkServerOptions {
  path: string;
  auth: Authenticator;
  history: DigestHistory;
  stats: DropStats;
  log: Logger;
  onMessage: (msg: Incoming, link: Connection) => void;
  onClose: (link: Connection) => void;
}

export class LinkServer {
  readonly path: string;
  readonly #opts: LinkServerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #session = randomUUID();

  private constructor(opts: LinkServerOptions) {
    this.#opts = opts;
    this.path = opts.path;
    this.#server = createServer((s) => this.#accept(s));
  }

  static async listen(opts: LinkServerOptions): Promise<LinkServer> {
    mkdirSync(dirname(opts.path), { recursive: true, mode: 0o700 });
    rmSync(opts.path, { force: true });
    const server = new LinkServer(opts);
    await new Promise<void>((resolve, reject) => {
      server.#server.once("error", reject);
      server.#server.listen(opts.path, () => resolve());
    });
    server.#server.unref();
    return server;
  }

  close(): void {
    this.#server.close();
    for (const s of this.#sockets) s.destroy();
    rmSync(this.path, { force: true });
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    const { auth, history, stats, log } = this.#opts;
    const conn = new Connection(socket, { auth, history, verifyBuffers: true, log, stats });
    conn.on("message", (m) => this.#opts.onMessage(m, conn));
    conn.on("close", () => this.#opts.onClose(conn));
    conn.accept(this.#session, 10_000).then(
      (hello) => {
        if (hello.role === "client") return;
        stats.count("direct link from a non-client");
        conn.close(true);
      },
      (err: Error) => log.warn("direct link handshake failed", { reason: err.message }),
    );
  }
}
