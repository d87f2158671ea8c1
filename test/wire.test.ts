/** The wire: framing, signing, replay protection and payload serialization (no processes). */
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import v8 from "node:v8";
import { describe, it } from "node:test";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Authenticator, DigestHistory, FrameDecoder, encodeFrames, encodeMessage, makeHeader, pack, unpack, Incoming,
  adoptReading, connectReading, Connection, DropStats, newMsgId, FrameMemo, decodeRaw,
} from "tsparallel/internal";

const auth = new Authenticator("secret-key");

function roundTrip(value: unknown): unknown {
  return unpack(pack(value));
}

describe("wire - framing", () => {
  it("decodes messages split across arbitrary chunk boundaries", () => {
    const chunks = encodeMessage(auth, { header: makeHeader("x", "s"), content: { a: 1 }, buffers: [Buffer.from("hello")] });
    const whole = Buffer.concat(chunks);
    for (const step of [1, 3, 7, 64]) {
      const d = new FrameDecoder();
      const out = [];
      for (let i = 0; i < whole.length; i += step) out.push(...d.push(whole.subarray(i, i + step)));
      assert.equal(out.length, 1);
      assert.deepEqual(out[0]!.buffers().map(String), ["hello"]);
    }
  });

  it("an assembling decoder streams large messages into their frames, whatever the chunking", () => {
    const big = Buffer.alloc(2_000_000).map((_, i) => i % 251);
    const mid = Buffer.alloc(100_000, 9);
    const small = Buffer.from("tiny");
    const one = encodeMessage(auth, { header: makeHeader("big", "s"), content: { n: 1 }, buffers: [small, big, mid] });
    const two = encodeMessage(auth, { header: makeHeader("next", "s") });
    const whole = Buffer.concat([...one, ...two]);
    for (const step of [65_536, 1000, 3_000_000]) {
      const d = new FrameDecoder({ assemble: true });
      const out = [];
      for (let i = 0; i < whole.length; i += step) out.push(...d.push(whole.subarray(i, i + step)));
      assert.equal(out.length, 2);
      const [m] = out;
      const bufs = m!.buffers();
      assert.deepEqual(bufs.map((b) => b.length), [4, 2_000_000, 100_000]);
      assert.ok(bufs[1]!.equals(big) && bufs[2]!.equals(mid) && bufs[0]!.equals(small));
      if (step < m!.size) assert.equal(bufs[1]!.byteOffset, 0, "a streamed big frame has a buffer of its own");
      assert.equal(auth.verify(m!.head[0]!, m!.head.slice(1), m!.bufferLengths, m!.buffers, true).ok, true);
      assert.equal(new Incoming(out[1]!).msgType, "next");
      assert.equal(Buffer.concat(m!.raw).length, m!.size, "the stream bytes can be rebuilt");
    }
  });

  it("a landing puts a streamed message's large frame where the receiver asks (exact length only), after its head frames", () => {
    const big = Buffer.alloc(2_000_000).map((_, i) => i % 251);
    const mid = Buffer.alloc(100_000, 9);
    const parent = makeHeader("pull_request", "s");
    const one = encodeMessage(auth, { header: makeHeader("big", "s"), parent, content: { n: 1 }, buffers: [big, mid] });
    const whole = Buffer.concat(one);
    for (const step of [65_536, 1000]) {
      const arena = new ArrayBuffer(3_000_000);
      const place = Buffer.from(arena, 8, 2_000_000);
      const asked: Array<[string, number]> = [];
      const d = new FrameDecoder({
        assemble: true,
        landing: (head, len) => {
          asked.push([(JSON.parse(head[2]!.toString()) as { msg_id: string }).msg_id, len]);
          return len === 2_000_000 ? place : Buffer.alloc(len + 1); // a wrong length is not used
        },
      });
      const out = [];
      for (let i = 0; i < whole.length; i += step) out.push(...d.push(whole.subarray(i, i + step)));
      assert.equal(out.length, 1);
      const bufs = out[0]!.buffers();
      assert.deepEqual(asked, [[parent.msg_id, 2_000_000], [parent.msg_id, 100_000]], "asked once per own frame, with the parent header readable");
      assert.equal(bufs[0]!.buffer, arena, "the big frame landed in the given place");
      assert.equal(bufs[0]!.byteOffset, 8);
      assert.ok(bufs[0]!.equals(big) && bufs[1]!.equals(mid));
      assert.notEqual(bufs[1]!.length, 100_001, "a landing of the wrong length is ignored");
      assert.equal(auth.verify(out[0]!.head[0]!, out[0]!.head.slice(1), out[0]!.bufferLengths, out[0]!.buffers, true).ok, true);
    }
  });

  it("a socket may read straight into a large frame's own buffer; the view ends where the frame does", () => {
    const big = Buffer.alloc(2_000_000).map((_, i) => i % 251);
    const edge = Buffer.alloc(64 * 1024 + 1).map((_, i) => i % 13);
    const one = encodeMessage(auth, { header: makeHeader("big", "s"), content: { n: 1 }, buffers: [Buffer.from("tiny"), big, edge] });
    const two = encodeMessage(auth, { header: makeHeader("next", "s") });
    const whole = Buffer.concat([...one, ...two, ...one]);
    for (const [step, grab] of [[65_536, 100_000], [5000, 7], [1_500_000, 3_000_000]] as const) {
      const d = new FrameDecoder({ assemble: true });
      const out = [];
      let at = 0;
      while (at < whole.length) {
        const target = d.directTarget();
        if (target !== null) {
          // what a read into the target does: at most the target's length, never past the frame
          const n = Math.min(target.length, grab, whole.length - at);
          whole.copy(target, 0, at, at + n);
          out.push(...d.pushDirect(n));
          at += n;
        } else {
          out.push(...d.push(whole.subarray(at, at + step), true));
          at += step;
        }
      }
      assert.deepEqual(out.map((m) => new Incoming(m).msgType), ["big", "next", "big"]);
      for (const m of [out[0]!, out[2]!]) {
        const bufs = m.buffers();
        assert.ok(bufs[1]!.equals(big) && bufs[2]!.equals(edge) && String(bufs[0]) === "tiny");
        assert.equal(auth.verify(m.head[0]!, m.head.slice(1), m.bufferLengths, m.buffers, true).ok, true);
      }
      // in place while at least 64 KB of a frame are still to come
      assert.ok(d.directBytes > 2 * (big.length - 64 * 1024 - step), `read in place: ${d.directBytes} bytes at step ${step}`);
    }
    assert.throws(() => new FrameDecoder({ assemble: true }).pushDirect(10), /not being assembled/);
  });

  it("an assembling decoder MACs the binary frames as they land; the check uses that tag, and a byte changed on the way fails it", () => {
    const big = Buffer.alloc(2_000_000).map((_, i) => i % 251);
    const edge = Buffer.alloc(64 * 1024 + 1).map((_, i) => i % 13);
    const one = Buffer.concat(encodeMessage(auth, { header: makeHeader("big", "s"), content: { n: 1 }, buffers: [Buffer.from("tiny"), big, edge] }));
    const auth0 = new FrameDecoder().push(one)[0]!.head[0]!;
    const sent = auth0.subarray(auth0.length - 16); // the tag the signer put in the auth frame
    const tampered = Buffer.from(one);
    tampered[one.length - edge.length - 1000]! ^= 1; // a byte of the big frame
    const receive = (whole: Buffer, step: number, grab: number) => {
      const d = new FrameDecoder({ assemble: true, mac: (frame) => auth.bufferMac(frame) });
      const out = [];
      let at = 0;
      while (at < whole.length) {
        const target = d.directTarget();
        const n = Math.min(target?.length ?? step, target === null ? step : grab, whole.length - at);
        if (target !== null) {
          whole.copy(target, 0, at, at + n);
          out.push(...d.pushDirect(n));
        } else out.push(...d.push(whole.subarray(at, at + n), true));
        at += n;
      }
      assert.equal(out.length, 1);
      return out[0]!;
    };
    const check = (m: ReturnType<typeof receive>, tag: Buffer | null) => auth.verify(m.head[0]!, m.head.slice(1), m.bufferLengths, m.buffers, true, tag);
    for (const [step, grab] of [[65_536, 100_000], [5000, 7], [1_500_000, 3_000_000]] as const) {
      const m = receive(one, step, grab);
      assert.ok(m.bufferTag !== null && m.bufferTag.equals(sent), `the tag computed on arrival is the signer's (step ${step})`);
      assert.equal(check(m, m.bufferTag).ok, true);
      const bad = receive(tampered, step, grab);
      assert.deepEqual(check(bad, bad.bufferTag), { ok: false, reason: "buffer MAC mismatch" });
    }
    // the check compares the tag it is given instead of reading the frames again
    const m = receive(one, 65_536, 100_000);
    assert.equal(check(m, Buffer.alloc(16)).ok, false);
    assert.equal(check(m, null).ok, true, "without one it computes the tag from the frames");
    // no MAC asked for, or a message whose buffers are inside the HMAC (mode 0): no tag
    assert.equal(new FrameDecoder({ assemble: true }).push(one)[0]!.bufferTag, null);
    const inline = Buffer.concat(encodeMessage(auth, { header: makeHeader("json", "s"), content: { s: "x".repeat(1_100_000) }, buffers: [Buffer.from("b")] }));
    const small = new FrameDecoder({ assemble: true, mac: (frame) => auth.bufferMac(frame) }).push(inline)[0]!;
    assert.equal(small.bufferTag, null);
    assert.equal(check(small, null).ok, true);
  });

  it("yields several messages from one chunk", () => {
    const a = Buffer.concat(encodeMessage(auth, { header: makeHeader("a", "s") }));
    const b = Buffer.concat(encodeMessage(auth, { header: makeHeader("b", "s") }));
    const msgs = new FrameDecoder().push(Buffer.concat([a, b]));
    assert.deepEqual(msgs.map((m) => new Incoming(m).msgType), ["a", "b"]);
  });

  it("copies what it keeps of a transient chunk (a reused read buffer)", () => {
    const msgs = [
      encodeMessage(auth, { header: makeHeader("one", "s"), content: { a: "x".repeat(300) }, buffers: [Buffer.alloc(500, 3)] }),
      encodeMessage(auth, { header: makeHeader("big", "s"), buffers: [Buffer.alloc(1_500_000).map((_, i) => i % 13)] }),
      encodeMessage(auth, { header: makeHeader("two", "s"), content: { b: 2 } }),
    ];
    const whole = Buffer.concat(msgs.flat());
    for (const step of [100, 4096, 262_144]) {
      const d = new FrameDecoder({ assemble: true });
      const readBuffer = Buffer.alloc(step);
      const out = [];
      for (let i = 0; i < whole.length; i += step) {
        const n = whole.copy(readBuffer, 0, i, i + step);
        out.push(...d.push(readBuffer.subarray(0, n), true));
        readBuffer.fill(0xee); // the next read overwrites it
      }
      assert.deepEqual(out.map((m) => new Incoming(m).msgType), ["one", "big", "two"]);
      assert.deepEqual(new Incoming(out[0]!).content, { a: "x".repeat(300) });
      assert.ok(out[0]!.buffers()[0]!.equals(Buffer.alloc(500, 3)));
      assert.ok(out[1]!.buffers()[0]!.equals(Buffer.alloc(1_500_000).map((_, i) => i % 13)));
      for (const m of out) assert.equal(auth.verify(m.head[0]!, m.head.slice(1), m.bufferLengths, m.buffers, true).ok, true);
    }
  });

  it("rejects a broken length, a bad frame count and frames that do not add up", () => {
    assert.throws(() => new FrameDecoder().push(Buffer.from([1, 0, 0, 0, 9, 9, 9, 9])), /bad message length/);
    const bad = Buffer.concat(encodeFrames([Buffer.from("x")])); // 1 frame < 5
    assert.throws(() => new FrameDecoder().push(bad), /bad message length|bad frame count/);
    const good = Buffer.concat(encodeFrames([Buffer.alloc(34), Buffer.from("{}"), Buffer.from("{}"), Buffer.from("{}"), Buffer.from("{}")]));
    good.writeUInt32LE(7, 8); // first frame claims 7 bytes
    assert.throws(() => new FrameDecoder().push(good), /do not add up|overruns/);
  });
});

describe("wire - signing", () => {
  const sign = (buffers: Buffer[]) => {
    const json = ["{}", "{}", "{}", "{}"].map((s) => Buffer.from(s));
    return { json, sig: auth.sign(json, buffers) };
  };

  it("verifies what it signed, small and large buffers alike", () => {
    for (const size of [10, 200_000]) {
      const buf = Buffer.alloc(size, 7);
      const { json, sig } = sign([buf]);
      assert.equal(auth.verify(sig, json, [size], () => [buf], true).ok, true);
    }
  });

  it("refuses a wrong key, a changed JSON frame and a changed buffer", () => {
    const buf = Buffer.alloc(200_000, 1);
    const { json, sig } = sign([buf]);
    assert.equal(new Authenticator("other").verify(sig, json, [buf.length], () => [buf], true).ok, false);
    const changed = [Buffer.from('{"a":1}'), ...json.slice(1)];
    assert.equal(auth.verify(sig, changed, [buf.length], () => [buf], true).ok, false);
    const tampered = Buffer.from(buf);
    tampered[100_000] = 2;
    assert.equal(auth.verify(sig, json, [buf.length], () => [tampered], true).ok, false);
    // a forwarder that does not check large buffers still checks the JSON frames
    assert.equal(auth.verify(sig, json, [buf.length], () => [tampered], false).ok, true);
  });

  it("signs HMAC-SHA256 over version and mode, the frame layout, the JSON frames and small buffers", () => {
    // the MAC is defined by its bytes, whichever code path computes it: check against createHmac
    for (const key of ["k", "secret-key", "x".repeat(100)]) {
      const a = new Authenticator(key);
      const json = ['{"a":1}', "{}", '{"m":"ü€"}', '{"c":[1,2]}'].map((t) => Buffer.from(t));
      const bufs = [Buffer.alloc(100, 3), Buffer.alloc(7, 9)];
      const sig = a.sign(json, bufs);
      const layout = Buffer.alloc(4 * 7);
      layout.writeUInt32LE(6, 0);
      [...json, ...bufs].forEach((f, i) => layout.writeUInt32LE(f.length, 4 + 4 * i));
      const h = createHmac("sha256", key).update(sig.subarray(0, 2)).update(layout);
      for (const f of [...json, ...bufs]) h.update(f);
      assert.ok(h.digest().equals(sig.subarray(2, 34)), `key of ${key.length} bytes`);
    }
  });

  it("frames a message the same way on the one-pass path and the streamed path", () => {
    const header = makeHeader("x", "s");
    const small = { header, content: { t: "é".repeat(100) }, buffers: [Buffer.alloc(50, 1)] };
    const onePass = encodeMessage(auth, small);
    assert.equal(onePass.length, 1, "a small message leaves as one buffer: frame table, auth frame and frames");
    const jsonFrames = [header, {}, {}, small.content].map((v) => Buffer.from(JSON.stringify(v)));
    const streamed = encodeFrames([auth.sign(jsonFrames, small.buffers), ...jsonFrames, ...small.buffers]);
    assert.ok(Buffer.concat(onePass).equals(Buffer.concat(streamed)));
    // JSON too large for one pass, and buffers large enough for Poly1305: both still verify
    for (const msg of [{ header, content: { big: "z".repeat(70_000) } }, { header, buffers: [Buffer.alloc(100_000, 4)] }]) {
      const [raw] = new FrameDecoder({ assemble: true }).push(Buffer.concat(encodeMessage(auth, msg)));
      assert.equal(auth.verify(raw!.head[0]!, raw!.head.slice(1), raw!.bufferLengths, raw!.buffers, true).ok, true);
    }
  });

  it("refuses a missing signature", () => {
    const json = ["{}", "{}", "{}", "{}"].map((s) => Buffer.from(s));
    assert.equal(auth.verify(Buffer.alloc(0), json, [], () => [], true).ok, false);
  });

  it("remembers digests to refuse replays", () => {
    const mac = (text: string) => createHmac("sha256", "k").update(text).digest();
    const h = new DigestHistory(4);
    assert.equal(h.add(mac("a")), true);
    assert.equal(h.add(mac("a")), false);
    for (const d of ["b", "c", "d", "e"]) assert.equal(h.add(mac(d)), true);
    assert.equal(h.add(mac("c")), false, "still remembered after a generation swap");
    for (const d of ["f", "g", "h", "i", "j", "k", "l", "m"]) h.add(mac(d));
    assert.equal(h.add(mac("c")), true, "forgotten two generations later (memory stays bounded)");
    assert.throws(() => h.add(Buffer.alloc(4)), RangeError);
  });

  it("keeps a replay history of many signatures with no false replays", () => {
    const h = new DigestHistory(65_536);
    const bytes = randomBytes(32 * 200_000); // MACs are uniformly random bytes
    const macs = Array.from({ length: 200_000 }, (_, i) => bytes.subarray(32 * i, 32 * i + 32));
    assert.ok(macs.every((m) => h.add(m)), "200 000 distinct signatures, each new");
    assert.ok(macs.slice(-65_536).every((m) => !h.add(m)), "the last 65 536 are all remembered");
    const zeros = Buffer.alloc(32); // the all-zero key is stored, not taken for an empty slot
    assert.equal(h.add(zeros), true);
    assert.equal(h.add(zeros), false);
  });
});

describe("wire - repeated frames", () => {
  it("a FrameMemo parses a repeated parent header, metadata and content once, frozen; other bytes, and a reused buffer's new bytes, are parsed anew", () => {
    const memo = new FrameMemo();
    const message = (id: number, content: object) =>
      decodeRaw([Buffer.concat(encodeMessage(auth, { header: makeHeader("apply_request", "s"), metadata: { route: "task" }, content: { ...content }, buffers: [Buffer.from([id])] }))]);
    const a = new Incoming(message(1, { fn: { kind: "source", src: "(x) => x" }, mode: "map" }), undefined, memo);
    const b = new Incoming(message(2, { fn: { kind: "source", src: "(x) => x" }, mode: "map" }), undefined, memo);
    assert.notEqual(a.header.msg_id, b.header.msg_id, "headers are always parsed");
    assert.equal(a.content, b.content, "the same content bytes give the same object");
    assert.equal(a.metadata, b.metadata);
    assert.equal(a.parent, b.parent);
    assert.deepEqual(b.content, { fn: { kind: "source", src: "(x) => x" }, mode: "map" });
    assert.ok(Object.isFrozen(a.content) && Object.isFrozen((a.content.fn as object)), "frozen, nested objects too");
    assert.throws(() => {
      (a.content.fn as Record<string, unknown>).src = "changed"; // modules are strict: a frozen object throws
    }, TypeError);
    const c = new Incoming(message(3, { fn: { kind: "source", src: "(x) => x + 1" }, mode: "map" }), undefined, memo);
    assert.notEqual(c.content, a.content);
    assert.equal((c.content.fn as Record<string, unknown>).src, "(x) => x + 1");
    assert.deepEqual(a.content, { fn: { kind: "source", src: "(x) => x" }, mode: "map" }, "what was handed out before is unchanged");
    // the memo keeps its own copy of the bytes: a frame in a buffer that is then overwritten is not mistaken for the next one
    const shared = Buffer.from('{"v":1}');
    assert.deepEqual(memo.parse(2, shared, "content"), { v: 1 });
    shared.write('{"v":2}');
    assert.deepEqual(memo.parse(2, shared, "content"), { v: 2 });
    // without a memo nothing is shared or frozen
    const d = new Incoming(message(4, { mode: "map" }));
    const e = new Incoming(message(5, { mode: "map" }));
    assert.notEqual(d.content, e.content);
    assert.ok(!Object.isFrozen(d.content));
  });
});

describe("wire - message ids", () => {
  it("are version 4 UUIDs in randomUUID's format, distinct across many refills of their random bytes, and flat strings", () => {
    const seen = new Set<string>();
    const nibbles = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = newMsgId();
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
      for (const c of id.replaceAll("-", "")) nibbles.add(c);
    }
    assert.equal(seen.size, 20_000, "no id repeats");
    assert.equal(nibbles.size, 16, "every hex digit shows up");
    // each id is its own string, not a view of a shared buffer that the next id overwrites
    const a = newMsgId();
    const copy = `${a}`;
    newMsgId();
    assert.equal(a, copy);
    // headers get them
    assert.match(makeHeader("x", "s").msg_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("wire - serialization", () => {
  it("writes small values (primitives, Latin-1 strings, small dense arrays) as v8 does, without a v8 Serializer", () => {
    const samePacked: unknown[] = [
      0, 1, -1, 63, 64, -65, 2 ** 30, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 1.5, -0, NaN, Infinity, -Infinity,
      2 ** 53, 1e-300, "", "ab", "é ÿ", "x".repeat(200), undefined, null, true, false,
      [], [1, 2], ["a", [1, [2.5, [null]]]], [undefined, true, false, "z"], Array.from({ length: 60 }, (_, i) => i),
    ];
    for (const v of samePacked) {
      const frames = pack(v);
      assert.equal(frames.length, 1);
      assert.ok(Buffer.from(frames[0]!).equals(v8.serialize(v)), `same bytes as v8.serialize for ${String(v)}`);
      assert.deepStrictEqual(v8.deserialize(Buffer.from(frames[0]!)), v);
      assert.deepStrictEqual(unpack(frames), v);
      assert.deepStrictEqual(unpack([v8.serialize(v)]), v, "and reads what v8 wrote");
    }
  });

  it("leaves everything else to v8, with the same result", () => {
    const holey = [1, , 3]; // eslint-disable-line no-sparse-arrays
    const named = Object.assign([1, 2], { extra: "kept" });
    const others: unknown[] = [
      holey, named, new Array(3).fill(7), "€ and 中", "y".repeat(300), Array.from({ length: 100 }, (_, i) => i),
      { a: 1 }, [{ a: 1 }], [new Date(0)], 10n, [[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]],
    ];
    for (const v of others) {
      const back = unpack(pack(v));
      assert.deepStrictEqual(back, v8.deserialize(v8.serialize(v)), `round trip of ${JSON.stringify(v, (_, x: unknown) => (typeof x === "bigint" ? String(x) : x))}`);
    }
    assert.equal((unpack(pack(named)) as typeof named).extra, "kept", "an array's named property survives");
    assert.equal(1 in (unpack(pack(holey)) as unknown[]), false, "a hole stays a hole");
    // cut short or malformed: refused, never a wrong value
    for (const bad of [[0xff, 0x0f, 0x49], [0xff, 0x0f, 0x22, 0x05, 0x61], [0xff, 0x0f, 0x41, 0x01, 0x49, 0x02], [0xff, 0x0f, 0x4e, 0x00]]) {
      assert.throws(() => unpack([Buffer.from(bad)]));
    }
  });

  it("round-trips every structured-clone type", () => {
    const value = {
      obj: { a: [1, "two", null, true] }, map: new Map([[1, { x: 2 }]]), set: new Set(["a"]), date: new Date(0),
      big: 12345678901234567890n, f64: new Float64Array([1.5, 2.5]), u8: new Uint8Array([1, 2]), ab: new ArrayBuffer(4),
      err: new RangeError("boom"), buf: Buffer.from("buf"),
    };
    const out = roundTrip(value) as typeof value;
    assert.deepEqual(out.obj, value.obj);
    assert.deepEqual(out.map, value.map);
    assert.deepEqual(out.set, value.set);
    assert.equal(out.date.getTime(), 0);
    assert.equal(out.big, value.big);
    assert.deepEqual([...out.f64], [1.5, 2.5]);
    assert.ok(out.f64 instanceof Float64Array);
    assert.ok(out.u8 instanceof Uint8Array);
    assert.equal(out.ab.byteLength, 4);
    assert.ok(out.err instanceof RangeError);
    assert.equal(out.err.message, "boom");
    assert.ok(Buffer.isBuffer(out.buf));
  });

  it("sends large typed arrays as their own frames, without copying them into the payload", () => {
    const big = new Float64Array(1_000_000).map((_, i) => i);
    const frames = pack({ big });
    assert.equal(frames.length, 2);
    assert.ok(frames[0]!.byteLength < 1000, "payload holds only a reference");
    assert.equal(frames[1]!.buffer, big.buffer, "the frame is a view of the array's memory");
    const out = unpack(frames) as { big: Float64Array };
    assert.equal(out.big[999_999], 999_999);
  });
});

describe("wire - sockets reading into a shared buffer", () => {
  it("an accepted socket taken over with adoptReading reads, writes, closes, and leaves the server's count right", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsp-read-"));
    const path = join(dir, "s.sock");
    const received: Buffer[] = [];
    const server: Server = createServer({ pauseOnConnect: true }, (accepted) => {
      const { socket, reader } = adoptReading(accepted);
      assert.ok(reader !== undefined, "the handle moved");
      reader.deliver = (chunk) => {
        const copy = Buffer.from(chunk); // a view of the shared buffer, overwritten by the next read: copy to keep
        received.push(copy);
        socket.write(copy); // echo
      };
    });
    try {
      await new Promise<void>((resolve) => server.listen(path, resolve));
      const { socket, reader } = connectReading({ path });
      const echoed: Buffer[] = [];
      reader.deliver = (chunk) => echoed.push(Buffer.from(chunk));
      await once(socket, "connect");
      const payload = Buffer.alloc(3_000_000).map((_, i) => i % 253);
      socket.write(payload);
      const deadline = Date.now() + 20_000;
      while (Buffer.concat(echoed).length < payload.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(Buffer.concat(received).equals(payload), "the server read every byte in order");
      assert.ok(Buffer.concat(echoed).equals(payload), "and the client read the echo");
      const count = await new Promise<number>((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n))));
      assert.equal(count, 0, "the paused original was released");
      socket.destroy();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("wire - sockets reading into a large frame's own buffer", () => {
  it("a large message is read in place over a real socket, intact, with the messages around it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsp-read-"));
    const path = join(dir, "s.sock");
    const big = Buffer.alloc(30_000_000).map((_, i) => (i * 7) % 251);
    const before = encodeMessage(auth, { header: makeHeader("before", "s") });
    const one = encodeMessage(auth, { header: makeHeader("big", "s"), buffers: [big, Buffer.alloc(70_000, 3)] });
    const after = encodeMessage(auth, { header: makeHeader("after", "s") });
    const server: Server = createServer((c) => {
      c.write(Buffer.concat(before));
      for (const chunk of [...one, ...after]) c.write(chunk);
    });
    try {
      await new Promise<void>((resolve) => server.listen(path, resolve));
      const { socket, reader } = connectReading({ path });
      const d = new FrameDecoder({ assemble: true });
      const got: ReturnType<FrameDecoder["push"]> = [];
      reader.deliver = (chunk) => got.push(...d.push(chunk, true));
      reader.target = () => d.directTarget();
      reader.direct = (n) => got.push(...d.pushDirect(n));
      const deadline = Date.now() + 20_000;
      while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      socket.destroy();
      assert.deepEqual(got.map((m) => new Incoming(m).msgType), ["before", "big", "after"]);
      const bufs = got[1]!.buffers();
      assert.ok(bufs[0]!.equals(big), "the big frame arrived intact");
      assert.ok(bufs[1]!.equals(Buffer.alloc(70_000, 3)));
      assert.equal(auth.verify(got[1]!.head[0]!, got[1]!.head.slice(1), got[1]!.bufferLengths, got[1]!.buffers, true).ok, true);
      assert.ok(d.directBytes > big.length / 2, `most of the big frame was read in place (${d.directBytes} bytes)`);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** `server` listening at `path`, and a Connection to it. */
async function connectTo(server: Server, path: string): Promise<{ socket: Socket; conn: Connection }> {
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const socket = connect(path);
  await once(socket, "connect");
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  return { socket, conn: new Connection(socket, { auth, history: new DigestHistory(), verifyBuffers: true, log: silent, stats: new DropStats() }) };
}

describe("wire - writes per turn", () => {
  it("small writes wait for the end of the turn; a run's head goes out past 4 KB, the rest in 64 KB runs, in order", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsp-write-"));
    const path = join(dir, "s.sock");
    const received: Buffer[] = [];
    const server: Server = createServer((peer) => peer.on("data", (d: Buffer) => received.push(d)));
    let socket: Socket | null = null;
    let conn: Connection;
    try {
      ({ socket, conn } = await connectTo(server, path));
      const chunk = (i: number) => Buffer.alloc(1000, i % 251);
      const s = socket;
      const handed = () => s.bytesWritten + s.writableLength;
      for (let i = 0; i < 4; i++) conn.write([chunk(i)]);
      assert.equal(handed(), 0, "4 kB: nothing handed to the socket during the turn");
      conn.write([chunk(4)]);
      assert.equal(handed(), 5000, "past 4 KB the head of the run went out at once");
      for (let i = 5; i < 70; i++) conn.write([chunk(i)]);
      assert.equal(handed(), 5000, "after the head, writes gather up to 64 KB");
      conn.write([chunk(70)]);
      assert.equal(handed(), 71_000, "past 64 KB more the run went out at once");
      for (let i = 71; i < 75; i++) conn.write([chunk(i)]);
      assert.equal(handed(), 71_000);
      await new Promise((r) => setImmediate(r));
      assert.equal(handed(), 75_000, "the end of the turn handed the rest");
      for (let i = 75; i < 80; i++) conn.write([chunk(i)]);
      assert.equal(handed(), 80_000, "a new turn starts over: its head went out past 4 KB");
      const expected = Buffer.concat(Array.from({ length: 80 }, (_, i) => chunk(i)));
      const deadline = Date.now() + 20_000;
      while (Buffer.concat(received).length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(Buffer.concat(received).equals(expected), "every byte arrived, in order");
    } finally {
      socket?.destroy(); // also when an assertion failed: an open socket would keep the runner waiting
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("onFlushed calls back without an empty write once all is in the kernel, and only after queued bytes otherwise", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tsp-flushed-"));
    const path = join(dir, "s.sock");
    const peers: Socket[] = [];
    const server: Server = createServer((peer) => {
      peer.pause(); // reads nothing until resumed: a large write stays queued in the socket
      peers.push(peer);
    });
    let socket: Socket | null = null;
    let conn: Connection;
    try {
      ({ socket, conn } = await connectTo(server, path));
      const writes: number[] = [];
      const write = socket.write.bind(socket) as (chunk: Uint8Array, cb?: () => void) => boolean;
      socket.write = ((chunk: Uint8Array, cb?: () => void) => {
        writes.push(chunk.byteLength);
        return write(chunk, cb);
      }) as unknown as Socket["write"];
      const turn = () => new Promise((r) => setImmediate(r));

      conn.write([Buffer.alloc(8192, 1)]); // past 4 KB: handed to the socket at once, and taken by the kernel
      assert.equal(socket.writableLength, 0);
      let first = false;
      conn.onFlushed(() => (first = true));
      await turn();
      assert.equal(first, true, "called back");
      assert.deepEqual(writes, [8192], "no empty write was made to learn it");

      conn.write([Buffer.alloc(8 << 20, 2)]); // more than the kernel takes while the peer reads nothing
      assert.ok(socket.writableLength > 0, "part of the write waits in the socket");
      let second = false;
      conn.onFlushed(() => (second = true));
      await turn();
      assert.equal(second, false, "not before the queued bytes are in the kernel");
      for (const p of peers) p.resume();
      const deadline = Date.now() + 20_000;
      while (!second && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(second, true, "called back once the peer read the rest");
    } finally {
      socket?.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
