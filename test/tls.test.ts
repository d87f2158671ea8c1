/**
 * `tls: true` (`--tls`): the controller's TCP port speaks TLS 1.3 with a self-signed certificate
 * whose fingerprint is in the connection files. Engines and clients over TCP pin it; what crosses
 * the network is unreadable (a relay in the middle sees no payload, where it does without TLS); a
 * wrong certificate or a peer without TLS is refused and the controller keeps serving.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { createSecureContext } from "node:tls";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, Cluster } from "tsparallel";
import { connectPinned, derInteger, selfSignedCertificate } from "tsparallel/internal";
import { startCluster, TEST_DIR, type Running } from "./helpers.ts";

const MARKER = "tsparallel-plaintext-marker-7f3a";

/** A TCP relay to `port` that keeps every byte it passes, both ways. */
async function relay(port: number): Promise<{ port: number; seen: () => Buffer; close: () => void }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((down) => {
    const up = connect(port, "127.0.0.1");
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("data", (d: Buffer) => chunks.push(d));
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : 0,
    seen: () => Buffer.concat(chunks),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A copy of a cluster's client connection file, changed by `edit`, for a client that must use TCP. */
function editedFile(cluster: Cluster, name: string, edit: (info: Record<string, unknown>) => void): string {
  const info = JSON.parse(readFileSync(cluster.connectionFile, "utf8")) as Record<string, unknown>;
  info.unixPath = null;
  info.transport = "tcp";
  edit(info);
  const file = join(TEST_DIR, `${name}.json`);
  writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  return file;
}

/** Push the marker through a relay, pull it back, and return what the relay saw. */
async function throughRelay(cluster: Cluster, name: string): Promise<Buffer> {
  const port = (JSON.parse(readFileSync(cluster.connectionFile, "utf8")) as { port: number }).port;
  const r = await relay(port);
  try {
    const rc = await Client.connect({ connectionFile: editedFile(cluster, name, (i) => (i.port = r.port)), transport: "tcp", timeout: 20 });
    try {
      await rc.waitForEngines(1, { timeout: 30 });
      const dv = rc.directView(0);
      await dv.push({ secret: MARKER });
      assert.equal(await dv.pull("secret"), MARKER);
      assert.equal(await rc.loadBalancedView().applySync((s: string) => s.length, MARKER), MARKER.length);
    } finally {
      await rc.close();
    }
    return r.seen();
  } finally {
    r.close();
  }
}

describe("tls - a cluster with tls: true", () => {
  let r: Running;

  before(async () => {
    r = await startCluster({ n: 2, tls: true, transport: "tcp", clusterId: "tls-on" });
  });
  after(() => r.cluster.stop());

  it("engines and clients over TCP pin the certificate and work as usual (tasks, 8 MB both ways)", async () => {
    const info = JSON.parse(readFileSync(r.cluster.connectionFile, "utf8")) as { tlsFingerprint?: string };
    assert.match(info.tlsFingerprint ?? "", /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, "the fingerprint is in the connection file");
    const rc = await Client.connect({ connectionFile: r.cluster.connectionFile, transport: "tcp", timeout: 20 });
    try {
      assert.deepEqual(rc.ids, [0, 1], "both engines registered over TLS (the TCP port speaks nothing else)");
      for (const id of rc.ids) assert.match(rc.hosts.get(id)!.direct ?? "", /^unix:/, "direct links stay off TCP, which would be in the clear");
      const data = Float64Array.from({ length: 1_000_000 }, (_, i) => i * 0.5);
      const dv = rc.directView(1);
      await dv.push({ data });
      const back = (await dv.pull("data")) as Float64Array;
      assert.deepEqual(back, data);
      assert.deepEqual(await rc.loadBalancedView().map((x: number) => x * 3, [1, 2, 3, 4], { chunksize: 1 }), [3, 6, 9, 12]);
    } finally {
      await rc.close();
    }
  });

  it("8 MB both ways through the controller over TLS (a client without direct links), passed on while it arrives", async () => {
    const rc = await Client.connect({ connectionFile: r.cluster.connectionFile, transport: "tcp", timeout: 20, direct: false });
    try {
      const data = Float64Array.from({ length: 1_000_000 }, (_, i) => i * 0.25);
      const dv = rc.directView(0);
      const before = (await rc.controllerStats()).passedOn.messages;
      const pushed = dv.push({ viaController: data });
      await pushed.get(30);
      assert.equal(pushed.sent, true);
      assert.deepEqual(await dv.pull("viaController").get(30), data);
      assert.ok((await rc.controllerStats()).passedOn.messages >= before + 2, "both went through the controller, passed on while they arrived");
    } finally {
      await rc.close();
    }
  });

  it("a relay in the middle sees no payload (without TLS it does: the same check on a plain cluster)", async () => {
    const encrypted = await throughRelay(r.cluster, "relay-tls");
    assert.ok(encrypted.length > 1000, "the relay carried the traffic");
    assert.equal(encrypted.includes(MARKER), false, "the marker never crosses in the clear");
    assert.equal(encrypted.includes("apply_request"), false, "nor do the message headers");
    const plain = await startCluster({ n: 1, transport: "tcp", clusterId: "tls-off" });
    try {
      assert.equal((await throughRelay(plain.cluster, "relay-plain")).includes(MARKER), true, "the check sees plaintext when there is some");
    } finally {
      await plain.cluster.stop();
    }
  });

  it("the port speaks TLS 1.3 (AES-128-GCM first) and presents the pinned certificate", async () => {
    const info = JSON.parse(readFileSync(r.cluster.connectionFile, "utf8")) as { port: number; tlsFingerprint: string };
    const socket = connectPinned("127.0.0.1", info.port, info.tlsFingerprint);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("secureConnect", resolve);
        socket.once("error", reject);
      });
      assert.equal(socket.getProtocol(), "TLSv1.3");
      assert.equal(socket.getCipher().name, "TLS_AES_128_GCM_SHA256");
      assert.equal(socket.getPeerCertificate().fingerprint256, info.tlsFingerprint);
    } finally {
      socket.destroy();
    }
  });

  it("a certificate other than the pinned one is refused before anything is sent", async () => {
    // another first byte (a certificate whose fingerprint starts with 00 got the same one back: 1 run in 256 failed)
    const other = (fp: string) => (fp.startsWith("00") ? "11" : "00") + fp.slice(2);
    const file = editedFile(r.cluster, "wrong-fingerprint", (i) => (i.tlsFingerprint = other(i.tlsFingerprint as string)));
    const err = await Client.connect({ connectionFile: file, transport: "tcp", timeout: 10 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error);
    assert.match(err.message, /TLS certificate is not the one in the connection file/);
  });

  it("a peer without TLS gets nowhere, within its timeout, and the controller keeps serving", async () => {
    const file = editedFile(r.cluster, "no-tls", (i) => delete i.tlsFingerprint);
    const started = Date.now();
    const err = await Client.connect({ connectionFile: file, transport: "tcp", timeout: 3 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error, "refused");
    assert.ok(Date.now() - started < 15_000, "within its timeout");
    const rc = await Client.connect({ connectionFile: r.cluster.connectionFile, transport: "tcp", timeout: 20 });
    try {
      assert.equal(await rc.directView(0).applySync(() => 7), 7);
    } finally {
      await rc.close();
    }
  });

  it("a wrong option names itself", () => {
    assert.throws(() => new Cluster({ tls: "yes" as unknown as boolean }), /"tls"/);
  });
});

describe("tls - the controller's self-signed certificate", () => {
  it("integers are DER's minimal form: no redundant leading zero, one zero before a set top bit", () => {
    const hex = (b: number[]) => derInteger(Buffer.from(b)).toString("hex");
    assert.equal(hex([2]), "020102");
    assert.equal(hex([0]), "020100");
    assert.equal(hex([0, 0, 5]), "020105");
    assert.equal(hex([0x80]), "02020080");
    assert.equal(hex([0, 0, 0x80, 1]), "0203008001");
    assert.equal(hex([0, 0x7f, 0xff]), "02027fff");
  });

  // The serial number is 16 random bytes: one certificate in 256 once began with a redundant zero
  // byte, which OpenSSL refuses ("illegal padding") and the controller failed to start.
  it("every certificate of 600 parses, verifies itself and loads into a TLS context", () => {
    for (let i = 0; i < 600; i++) {
      const { key, cert, fingerprint } = selfSignedCertificate();
      const x = new X509Certificate(cert);
      assert.ok(x.verify(x.publicKey), `certificate ${i} does not verify itself`);
      assert.equal(x.fingerprint256, fingerprint);
      assert.match(x.serialNumber, /^[0-9A-F]+$/);
      createSecureContext({ key, cert });
    }
  });
});
