/**
 * Bad input on the controller's port: every kind of malformed, unsigned, replayed or unknown
 * message is dropped and counted, never executed, and the controller keeps serving good clients.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import type { Client } from "tsparallel";
import { Authenticator, encodeFrames, encodeMessage, makeHeader, readConnectionFile, type ConnectionInfo } from "tsparallel/internal";
import { RawPeer, TEST_DIR, startCluster, until, withCluster, type Running } from "./helpers.ts";

describe("bad input - controller", () => {
  let r: Running;
  let info: ConnectionInfo;
  let auth: Authenticator;
  let baseline = 0;

  before(async () => {
    r = await startCluster({ n: 1, profile: "bad" });
    info = readConnectionFile(r.cluster.connectionFile);
    auth = new Authenticator(info.key);
  });
  after(async () => r.cluster.stop());

  /** The drop counter rose and a good client still gets work done. */
  async function droppedAndStillServing(rc: Client, reason: RegExp): Promise<void> {
    await until(async () => (await rc.controllerStats()).droppedTotal > baseline, 10_000, "the controller to count the drop");
    const stats = await rc.controllerStats();
    assert.ok(Object.keys(stats.dropped).some((k) => reason.test(k)), `expected a drop matching ${reason}, got ${JSON.stringify(stats.dropped)}`);
    baseline = stats.droppedTotal;
    assert.equal(await r.rc.directView(0).apply((x: number) => x * 2, 21), 42);
  }

  /** An open, handshaken raw connection. */
  async function opened(): Promise<RawPeer> {
    const peer = new RawPeer(info);
    await peer.handshake(info.key);
    await peer.next("welcome");
    return peer;
  }

  const applyMessage = (code: string) => ({
    header: makeHeader("apply_request", randomUUID()),
    metadata: { route: "direct", engine: 0 },
    content: { fn: { kind: "source", src: code, name: "evil" }, specials: false },
  });

  it("a connection that skips the handshake is dropped and closed", async () => {
    const peer = new RawPeer(info);
    await peer.next("challenge");
    peer.write(encodeMessage(auth, applyMessage("() => process.exit(3)")));
    await until(() => peer.closed, 10_000, "the connection to close");
    await droppedAndStillServing(r.rc, /handshake/);
  });

  it("a handshake proving a wrong key is dropped and closed", async () => {
    const peer = new RawPeer(info);
    await peer.handshake("not-the-key");
    await until(() => peer.closed, 10_000, "the connection to close");
    await droppedAndStillServing(r.rc, /signature/);
  });

  it("a peer of another protocol version is refused with what differs", async () => {
    const peer = new RawPeer(info);
    await peer.handshake(info.key, "9.0");
    const refusal = await peer.next("refuse");
    assert.match(String(refusal.content.reason), /protocol 9\.0.*cannot talk to protocol 1\.3/);
    await until(() => peer.closed, 10_000, "the connection to close");
  });

  it("a message with a bad signature is dropped; the connection stays usable", async () => {
    const peer = await opened();
    const chunks = encodeMessage(auth, applyMessage("() => process.exit(3)"));
    const whole = Buffer.concat(chunks);
    whole[8 + 4 * 6 + 10] = whole[8 + 4 * 6 + 10]! ^ 0xff; // a byte of the HMAC
    peer.write([whole]);
    await droppedAndStillServing(r.rc, /bad signature/);
    peer.write(encodeMessage(auth, { header: makeHeader("connection_request", randomUUID()), content: {} }));
    assert.ok(await peer.next("connection_reply"));
    peer.close();
  });

  it("a message with a missing signature is dropped", async () => {
    const peer = await opened();
    const json = [makeHeader("apply_request", "x"), {}, { route: "direct", engine: 0 }, {}].map((j) => Buffer.from(JSON.stringify(j)));
    peer.write(encodeFrames([Buffer.alloc(0), ...json]));
    await droppedAndStillServing(r.rc, /signature/);
    peer.close();
  });

  it("a replayed message is dropped", async () => {
    const peer = await opened();
    const chunks = encodeMessage(auth, { header: makeHeader("connection_request", randomUUID()), content: {} });
    peer.write(chunks);
    await peer.next("connection_reply");
    peer.write(chunks);
    await droppedAndStillServing(r.rc, /replay/);
    peer.close();
  });

  it("invalid JSON, correctly signed, is dropped", async () => {
    const peer = await opened();
    const json = [Buffer.from("{not json"), Buffer.from("{}"), Buffer.from("{}"), Buffer.from("{}")];
    peer.write(encodeFrames([auth.sign(json, []), ...json]));
    await droppedAndStillServing(r.rc, /invalid JSON/);
    peer.close();
  });

  it("an unknown message type is dropped", async () => {
    const peer = await opened();
    peer.write(encodeMessage(auth, { header: makeHeader("format_disk_request", randomUUID()), content: {} }));
    await droppedAndStillServing(r.rc, /unknown message type/);
    peer.close();
  });

  it("a broken length, a broken frame count and random bytes close that connection only", async () => {
    for (const garbage of [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]),
      Buffer.concat(encodeFrames([Buffer.from("a")])),
      randomBytes(4096),
    ]) {
      const peer = await opened();
      peer.write([garbage]);
      await until(() => peer.closed, 10_000, "the connection to close");
      await droppedAndStillServing(r.rc, /garbage/);
    }
  });

  it("nothing dropped was executed: the engine never ran the injected code", async () => {
    assert.deepEqual(r.rc.ids, [0]);
    assert.equal(await r.rc.directView(0).apply(() => typeof process.exitCode), "undefined");
  });

  it("a client whose key is wrong gets a clear error", async () => {
    const wrong = `${TEST_DIR}/wrong-key.json`;
    copyFileSync(r.cluster.connectionFile, wrong);
    writeFileSync(wrong, JSON.stringify({ ...info, key: "0".repeat(64) }));
    const { Client } = await import("tsparallel");
    const start = Date.now();
    await assert.rejects(Client.connect({ connectionFile: wrong, timeout: 5 }), /key.*(wrong|stale)/);
    assert.ok(Date.now() - start < 15_000);
  });
});

describe("bad input - engine direct links", () => {
  let r: Running;
  let info: ConnectionInfo;
  let auth: Authenticator;
  let path: string;

  before(async () => {
    r = await startCluster({ n: 1, profile: "badeng" });
    info = readConnectionFile(r.cluster.connectionFile);
    auth = new Authenticator(info.key);
    path = r.rc.hosts.get(0)!.direct!.replace(/^unix:/, "");
  });
  after(async () => r.cluster.stop());

  /** Lines the engine logged about dropped input. */
  function engineDrops(): string[] {
    const dir = `${TEST_DIR}/profile_badeng/log`;
    return readdirSync(dir).filter((f) => f.startsWith("engine-")).flatMap((f) => readFileSync(`${dir}/${f}`, "utf8").split("\n")).filter((l) => /dropped|closing connection|handshake failed/.test(l));
  }

  async function stillServing(): Promise<void> {
    assert.equal(await r.rc.directView(0).apply((x: number) => x + 1, 1), 2);
  }

  it("the engine listens for direct links from this host, and a good client uses one", async () => {
    assert.match(r.rc.hosts.get(0)!.direct!, /^unix:.*engine-.*\.sock$/);
    await stillServing();
  });

  it("skipping the handshake, a wrong key, bad signatures, replays, non-task messages and garbage are dropped", async () => {
    const before = engineDrops().length;
    // no handshake
    const a = new RawPeer(path);
    await a.next("challenge");
    a.write(encodeMessage(auth, { header: makeHeader("apply_request", "x"), metadata: { route: "direct", engine: 0 }, content: {} }));
    await until(() => a.closed, 10_000, "the connection to close");
    // wrong key
    const b = new RawPeer(path);
    await b.handshake("not-the-key");
    await until(() => b.closed, 10_000, "the connection to close");
    // after a good handshake: bad signature, replay, a non-task message, garbage
    const c = new RawPeer(path);
    await c.handshake(info.key);
    await c.next("welcome");
    const bad = Buffer.concat(encodeMessage(auth, { header: makeHeader("apply_request", "x"), content: {} }));
    bad[8 + 4 * 6 + 5] = bad[8 + 4 * 6 + 5]! ^ 0xff;
    c.write([bad]);
    const once = encodeMessage(auth, { header: makeHeader("shutdown_request", "x"), content: {} });
    c.write(once);
    c.write(once);
    c.write([randomBytes(2048)]);
    await until(() => c.closed, 10_000, "the garbage to close the connection");
    await until(() => engineDrops().length >= before + 5, 10_000, "the engine to log the drops");
    await stillServing();
    assert.deepEqual(r.rc.ids, [0], "the engine was not shut down by the unverified/non-task messages");
  });

  it("a large message with a byte changed in its buffers is dropped as such; the same message intact passes the check", async () => {
    const before = engineDrops().length;
    const c = new RawPeer(path);
    await c.handshake(info.key);
    await c.next("welcome");
    const big = Buffer.alloc(3_000_000).map((_, i) => i % 251);
    const message = (type: string) => Buffer.concat(encodeMessage(auth, { header: makeHeader(type, "x"), metadata: { route: "direct", engine: 0 }, content: {}, buffers: [big] }));
    const bad = message("apply_request");
    bad[bad.length - 1_000_000]! ^= 1;
    c.write([bad]);
    await until(() => engineDrops().slice(before).some((l) => /buffer MAC mismatch/.test(l)), 10_000, "the engine to drop the changed message");
    // intact, it passes the MAC and the HMAC, and is then refused for what it is (not a task)
    c.write([message("not_a_task_request")]);
    await until(() => engineDrops().length >= before + 2, 10_000, "the engine to look at the intact one");
    assert.doesNotMatch(engineDrops().slice(before + 1).join("\n"), /MAC|signature/);
    assert.equal(c.closed, false, "a message that fails its check does not close the connection");
    c.close();
    await stillServing();
  });
});

describe("direct links - transport and identity", () => {
  it("a cluster started with transport 'tcp' takes direct tasks on a loopback TCP port: they run while the controller is stopped, and reach its record after", async () => {
    await withCluster({ n: 1, transport: "tcp" }, async ({ cluster, rc }) => {
      assert.match(rc.hosts.get(0)!.direct!, /^tcp:127\.0\.0\.1:\d+$/);
      const e0 = rc.directView(0);
      assert.equal(await e0.apply((x: number) => x + 1, 1), 2); // the link is open now
      const controller = cluster.pids.controller!;
      process.kill(controller, "SIGSTOP");
      const ar = e0.apply((x: number) => x * 3, 7);
      try {
        assert.equal(await ar.get(10), 21, "answered over the link, not through the stopped controller");
      } finally {
        process.kill(controller, "SIGCONT");
      }
      const id = ar.msgIds[0]!;
      await until(async () => (await rc.dbQuery({ msgId: id, completed: { $ne: null } }, ["msgId"])).length === 1, 10_000, "the record of the direct task");
    });
  });

  it("a direct-link address that answers as another engine is not used: the task goes through the controller to its engine", async () => {
    await withCluster({ n: 2 }, async ({ rc }) => {
      // before any direct task (links open on first use): engine 0's entry names engine 1's socket,
      // as a reused address or another network namespace on this host could
      const [host0, host1] = [rc.hosts.get(0)!, rc.hosts.get(1)!];
      assert.notEqual(host0.pid, host1.pid);
      host0.direct = host1.direct;
      assert.equal(await rc.directView(0).apply(() => process.pid), host0.pid, "engine 0 ran it");
      assert.equal(await rc.directView(1).apply(() => process.pid), host1.pid);
    });
  });
});
