/**
 * Large messages through the controller are passed on while they arrive (cut-through): a task for
 * one engine and a reply start on their second hop as soon as their head is in. A sender that goes
 * away half-way must leave nothing behind: the receiver drops the padded message, nothing runs,
 * nobody waits for ever.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Client, EngineError } from "tsparallel";
import { Authenticator, encodeMessage, FrameDecoder, headAuthenticates, makeHeader, pack, readConnectionFile, type ConnectionInfo, type Header } from "tsparallel/internal";
import { RawPeer, startCluster, until, type Running } from "./helpers.ts";

const MB = 1024 * 1024;

/** A signed message as its stream bytes. */
function wire(auth: Authenticator, msg: Parameters<typeof encodeMessage>[1]): Buffer {
  return Buffer.concat(encodeMessage(auth, msg));
}

describe("passing on - the decoder", () => {
  const auth = new Authenticator("k");
  const big = new Uint8Array(3 * MB + 5).map((_, i) => (i * 13) % 256);
  const large = wire(auth, { header: makeHeader("apply_request", "s"), metadata: { route: "direct", engine: 0 }, content: { n: 1 }, buffers: [big] });
  const small = wire(auth, { header: makeHeader("apply_request", "s"), content: { n: 2 } });

  it("returns a large message at its head, then again when its last byte is in; the bytes are the sender's", () => {
    const decoder = new FrameDecoder({ passOn: headAuthenticates });
    const stream = Buffer.concat([large, small]);
    const seen: Array<{ done: boolean; n: unknown }> = [];
    let first: ReturnType<FrameDecoder["push"]>[number] | undefined;
    let heard = 0;
    for (let at = 0; at < stream.length; at += 64 * 1024) {
      // views of one reused read buffer: what the decoder keeps must be its own copy
      const read = Buffer.from(stream.subarray(at, at + 64 * 1024));
      for (const m of decoder.push(read, true)) {
        if (first === undefined && m.tail !== null) {
          first = m;
          m.tail.listen(() => (heard += 1));
        }
        seen.push({ done: m.tail?.done ?? true, n: JSON.parse(m.head[4]!.toString()).n });
      }
      read.fill(0);
    }
    assert.deepEqual(seen, [{ done: false, n: 1 }, { done: true, n: 1 }, { done: true, n: 2 }]);
    assert.ok(first !== undefined && first.tail !== null);
    assert.ok(heard > 40, "listeners hear of each chunk as it arrives");
    assert.equal(first.tail.received, large.length);
    assert.ok(Buffer.concat(first.raw).equals(large), "the message's raw chunks are the bytes sent");
    assert.ok(first.buffers()[0]!.equals(big));
  });

  it("reads a passed-on message into blocks of its own when the socket asks where to read", () => {
    const decoder = new FrameDecoder({ passOn: headAuthenticates });
    const out = decoder.push(Buffer.from(large.subarray(0, 100_000)), true);
    assert.equal(out.length, 1);
    let at = 100_000;
    let direct = 0;
    let done = false;
    while (!done) {
      const target = decoder.directTarget();
      if (target === null) {
        done = decoder.push(Buffer.from(large.subarray(at)), true).length > 0;
        break;
      }
      const n = Math.min(target.length, 200_000, large.length - at);
      large.copy(target, 0, at, at + n);
      at += n;
      direct += n;
      done = decoder.pushDirect(n).length > 0;
    }
    assert.ok(done);
    assert.ok(direct > 2 * MB, `most bytes read in place (${direct})`);
    assert.equal(decoder.directBytes, direct);
    assert.ok(Buffer.concat(out[0]!.raw).equals(large));
  });

  it("holds a message whose head does not authenticate it alone (buffers inside the HMAC) until it is whole", () => {
    const decoder = new FrameDecoder({ passOn: headAuthenticates });
    const json = wire(auth, { header: makeHeader("apply_request", "s"), content: { text: "x".repeat(2 * MB) } });
    const first = decoder.push(json.subarray(0, MB));
    assert.deepEqual(first, []);
    const rest = decoder.push(json.subarray(MB));
    assert.equal(rest.length, 1);
    assert.equal(rest[0]!.tail, null);
  });

  it("aborts a message whose sender went away; nothing is returned for it", () => {
    const decoder = new FrameDecoder({ passOn: headAuthenticates });
    const [m] = decoder.push(large.subarray(0, MB));
    assert.ok(m !== undefined && m.tail !== null);
    let ended = false;
    m.tail.listen(() => (ended = m.tail!.ended));
    decoder.abortTail();
    assert.ok(m.tail.aborted && ended);
    assert.throws(() => m.buffers(), /still arriving/);
  });
});

describe("passing on - through a controller", () => {
  let r: Running;
  let info: ConnectionInfo;
  let auth: Authenticator;
  let via: Client;

  before(async () => {
    // slow heartbeats: a hand-driven engine below has no heart
    r = await startCluster({ n: 1, profile: "passon", heartbeatPeriod: 1, heartbeatMisses: 60 });
    info = readConnectionFile(r.cluster.connectionFile);
    auth = new Authenticator(info.key);
    via = await Client.connect({ connectionFile: r.cluster.connectionFile, timeout: 30, direct: false });
  });
  after(async () => {
    await via?.close();
    await r?.cluster.stop();
  });

  const passedOn = async () => (await r.rc.controllerStats()).passedOn.messages;

  it("a push and a pull of 24 MB are passed on while they arrive, and arrive intact", async () => {
    const before = await r.rc.controllerStats();
    const data = new Float64Array(3_000_000).map((_, i) => Math.sin(i));
    const dv = via.directView(0);
    await dv.push({ data });
    const back = (await dv.pull("data")) as Float64Array;
    assert.ok(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(data.buffer)), "pulled back bit for bit");
    const stats = await r.rc.controllerStats();
    assert.ok(stats.passedOn.messages >= before.passedOn.messages + 2, JSON.stringify(stats.passedOn));
    assert.ok(stats.passedOn.bytes >= before.passedOn.bytes + 2 * data.byteLength);
    assert.equal(stats.droppedTotal, before.droppedTotal);
  });

  it("two large pushes to one engine at once, with small tasks between: each waits its turn, all arrive intact", async () => {
    const other = await Client.connect({ connectionFile: r.cluster.connectionFile, timeout: 30, direct: false });
    try {
      const before = await r.rc.controllerStats();
      const a = new Float64Array(2_000_000).map((_, i) => i * 0.25);
      const b = new Float64Array(2_500_000).map((_, i) => -i);
      // sent together: the controller passes the first on while the second, and the small tasks, wait behind it
      const pushes = [via.directView(0).push({ a }), other.directView(0).push({ b })];
      const small = Array.from({ length: 20 }, (_, i) => via.directView(0).apply((x: number) => x * 3, i));
      await Promise.all(pushes);
      assert.deepEqual(await Promise.all(small.map((ar) => ar.get(30))), Array.from({ length: 20 }, (_, i) => i * 3));
      const sums = (await via.directView(0).applySync(() => {
        let s = 0;
        let t = 0;
        for (let i = 0; i < a.length; i++) s += a[i]! * ((i % 5) + 1);
        for (let i = 0; i < b.length; i++) t += b[i]! * ((i % 3) + 1);
        return [a.length, b.length, s, t];
      })) as number[];
      let s = 0;
      let t = 0;
      for (let i = 0; i < a.length; i++) s += a[i]! * ((i % 5) + 1);
      for (let i = 0; i < b.length; i++) t += b[i]! * ((i % 3) + 1);
      assert.deepEqual(sums, [a.length, b.length, s, t]);
      // and both ways at once: a large pull for one client while the other pushes
      const [back] = await Promise.all([other.directView(0).pull("a"), via.directView(0).push({ c: b })]);
      assert.ok(Buffer.from((back as Float64Array).buffer).equals(Buffer.from(a.buffer)));
      const stats = await r.rc.controllerStats();
      assert.ok(stats.passedOn.messages >= before.passedOn.messages + 4, JSON.stringify(stats.passedOn));
      assert.equal(stats.droppedTotal, before.droppedTotal);
    } finally {
      await other.close();
    }
  });

  it("a large load-balanced task goes to an idle engine while it arrives; one held behind a busy engine waits for its last byte", async () => {
    const lv = via.loadBalancedView();
    const data = new Float64Array(1_000_000).map((_, i) => i % 97);
    const expected = data.reduce((a, b) => a + b, 0);
    const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
    let count = await passedOn();
    assert.equal(await lv.applySync(sum, data), expected);
    assert.ok((await passedOn()) > count, "placed and passed on while it arrived");
    // the only engine is busy: the next one is placed when complete, the usual way, and still runs
    count = await passedOn();
    const busy = lv.apply((s: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, s), 300);
    const queued = lv.apply(sum, data);
    assert.equal(await queued.get(30), expected);
    await busy.get(30);
    assert.equal(await passedOn(), count, "a task that had to wait was not passed on");
  });

  it("a client that goes away half-way through a large load-balanced task: it ends as TaskLost and its engine's slot is freed", async () => {
    const half = new RawPeer(info);
    await half.handshake(info.key);
    await half.next("welcome");
    const task = tagTask("half-lb", "task");
    const count = await passedOn();
    half.write([wire(auth, task).subarray(0, 2 * MB)]);
    await until(async () => (await passedOn()) > count, 20_000, "the controller to place the task and pass it on");
    half.close();
    await assert.rejects(r.rc.getResult(task.header.msg_id).get(30), (err: Error) => err.name === "TaskLost");
    const status = await r.rc.queueStatus();
    assert.equal(status[0]!.tasks, 0, "the engine holds no task for it");
    assert.equal(await via.loadBalancedView().applySync((x: number) => x - 1, 43), 42);
    assert.notEqual(await engineTag(), "half-lb", "it never ran");
  });

  /** A task that records `tag` on the engine it runs on (engine 0, or load-balanced), with a large argument. */
  const tagTask = (tag: string, route: "direct" | "task" = "direct") => ({
    header: makeHeader("apply_request", randomUUID()),
    metadata: route === "direct" ? { route, engine: 0 } : { route },
    content: { fn: { kind: "source", src: "(a, tag) => { globalThis.__passOnTag = tag; return a.length; }", name: "tagged" }, specials: false },
    buffers: pack([new Uint8Array(6 * MB).fill(7), tag]),
  });
  const engineTag = () => via.directView(0).applySync(() => (globalThis as { __passOnTag?: string }).__passOnTag ?? null);

  it("a client that goes away half-way through a large task: the engine drops it, nothing runs, the engine keeps serving", async () => {
    // the same kind of message, whole, runs: the check below could fail
    const whole = new RawPeer(info);
    await whole.handshake(info.key);
    await whole.next("welcome");
    whole.write([wire(auth, tagTask("whole"))]);
    await until(async () => (await engineTag()) === "whole", 20_000, "the whole task to run");
    whole.close();

    const count = await passedOn();
    const half = new RawPeer(info);
    await half.handshake(info.key);
    await half.next("welcome");
    const bytes = wire(auth, tagTask("half"));
    half.write([bytes.subarray(0, 2 * MB)]);
    await until(async () => (await passedOn()) > count, 20_000, "the controller to pass the task on");
    half.close();
    // `via` goes through the controller: the engine reads this after the padded message
    assert.equal(await via.directView(0).applySync((x: number) => x + 1, 41), 42);
    assert.equal(await engineTag(), "whole", "the half-sent task never ran");
  });

  it("an engine that dies half-way through a large reply: its client gets an EngineError, not a hang", async () => {
    const uuid = randomUUID();
    const fake = new RawPeer(info);
    await fake.handshake(info.key, "1.0", { role: "engine", uuid });
    await fake.next("welcome");
    fake.write([wire(auth, { header: makeHeader("registration_request", uuid), content: { uuid, hostname: "fake", pid: 0, direct: null } })]);
    const registered = await fake.next("registration_reply");
    const id = Number(registered.content.id);
    await until(() => via.ids.includes(id), 10_000, "the client to see the engine");

    const ar = via.directView(id).apply(() => 1);
    const request = await fake.next("apply_request");
    const count = await passedOn();
    const reply = wire(auth, {
      header: makeHeader("apply_reply", uuid), parent: request.header as Header,
      metadata: { status: "ok", engine: uuid, engine_id: id, started: new Date().toISOString() },
      content: { status: "ok" }, buffers: pack(new Float64Array(2 * MB).fill(1.5)), // not zeros: zeros are what pads it
    });
    fake.write([reply.subarray(0, 3 * MB)]);
    await until(async () => (await passedOn()) > count, 20_000, "the controller to pass the reply on");
    fake.close();
    await assert.rejects(ar.get(30), (err: Error) => err instanceof EngineError);
    assert.equal(await via.directView(0).applySync((x: number) => x * 2, 21), 42, "the client keeps working");
  });
});
