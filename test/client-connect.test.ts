/**
 * The client's engine table at connect. A controller that answers connection_request and, in the
 * same event-loop turn, announces an engine that has just registered sends both in one write: the
 * client reads them in one chunk. The announced engine must survive the reply's table (it used to
 * be overwritten, so `waitForEngines` could wait for an engine that was there; seen once in a run).
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { Client } from "tsparallel";
import {
  adoptReading, Authenticator, Connection, DigestHistory, DropStats, makeHeader, type ConnectionInfo,
} from "tsparallel/internal";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_DIR } from "./helpers.ts";

const KEY = "a".repeat(64);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe("client - engine table at connect", () => {
  let server: Server;
  let file: string;
  const conns: Connection[] = [];

  before(async () => {
    const auth = new Authenticator(KEY);
    server = createServer({ pauseOnConnect: true }, (accepted) => {
      const { socket, reader } = adoptReading(accepted);
      const conn = new Connection(socket, { auth, history: new DigestHistory(), verifyBuffers: false, log: silent, stats: new DropStats(), reader });
      conns.push(conn);
      conn.on("message", (msg) => {
        if (msg.msgType !== "connection_request") return;
        // reply with the table as it was, then (same turn, so the same write) the engine that just registered
        conn.send({ header: makeHeader("connection_reply", "hand-made"), parent: msg.header, content: { status: "ok", engines: { 0: "uuid-0" }, hosts: {} } });
        conn.send({
          header: makeHeader("registration_notification", "hand-made"),
          content: { id: 1, uuid: "uuid-1", pid: 1, hostname: "here", direct: null },
        });
      });
      void conn.accept("hand-made", 10_000).catch(() => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    const info: ConnectionInfo = {
      clusterId: "hand-made", profile: "default", transport: "tcp", ip: "127.0.0.1", location: "127.0.0.1", port,
      unixPath: null, key: KEY, signatureScheme: "hmac-sha256+poly1305", controllerPid: process.pid, hbPeriod: 1000,
    };
    file = join(TEST_DIR, "hand-made-client.json");
    writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  });

  after(() => {
    for (const c of conns) c.close(true);
    server.close();
  });

  it("an engine announced right behind the connection reply is kept (regression: it was overwritten)", async () => {
    for (let i = 0; i < 5; i++) {
      const rc = await Client.connect({ connectionFile: file, timeout: 10 });
      try {
        assert.deepEqual(rc.ids, [0, 1], `connect ${i}`);
      } finally {
        await rc.close();
      }
    }
  });
});
