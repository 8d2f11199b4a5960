// The SDK's codecs against frames produced by the Rust encoders (test/fixtures/protocol-v1.json, written and
// checked by protocol/tests/sdk_fixtures.rs), and against malformed input.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  CLIENT_SCHEMA,
  DecodeError,
  EncodeError,
  Reader,
  SERVER_SCHEMA,
  SUBPROTOCOL_BIN,
  SUBPROTOCOL_JSON,
  Writer,
  decodeServer,
  decodeServerBinary,
  decodeServerJson,
  encodeClientBinary,
  encodeClientJson,
  type ClientFrame,
} from "../src/index.js";

interface Fixture {
  name: string;
  json: Record<string, unknown>;
  bin: string;
  json_from_bin?: Record<string, unknown>;
}
interface Fixtures {
  subprotocols: { json: string; binary: string };
  client: Fixture[];
  server: Fixture[];
}

const fixtures = JSON.parse(
  readFileSync(new URL("../../test/fixtures/protocol-v1.json", import.meta.url), "utf8"),
) as Fixtures;

const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Deep equality where a number decoded from a binary f32 equals the JSON number the Rust encoder wrote for the same
 * f32 (JSON writes the shortest decimal, e.g. 0.1, the binary decoder yields the f32 itself, 0.10000000149011612).
 */
function assertSameValue(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === "number" && typeof actual === "number") {
    if (actual !== expected && Math.fround(expected) !== actual) {
      assert.fail(`${path}: ${actual} !== ${expected}`);
    }
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((e, i) => assertSameValue(actual[i], e, `${path}[${i}]`));
    return;
  }
  if (typeof expected === "object" && expected !== null) {
    assert.ok(typeof actual === "object" && actual !== null, `${path}: expected an object`);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${path}: keys`);
    for (const [k, v] of Object.entries(expected)) {
      assertSameValue((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
    }
    return;
  }
  assert.equal(actual, expected, path);
}

test("the fixtures name the subprotocols the SDK speaks", () => {
  assert.equal(fixtures.subprotocols.json, SUBPROTOCOL_JSON);
  assert.equal(fixtures.subprotocols.binary, SUBPROTOCOL_BIN);
});

test("every message of the schema has a fixture, and every fixture a message of the schema", () => {
  const serverTypes = new Set(fixtures.server.map((f) => f.json.type));
  assert.deepEqual([...serverTypes].sort(), SERVER_SCHEMA.map((m) => m.type).sort());
  const clientTypes = new Set(fixtures.client.map((f) => f.json.type));
  assert.deepEqual([...clientTypes].sort(), CLIENT_SCHEMA.map((m) => m.type).sort());
});

for (const f of fixtures.server) {
  test(`server ${f.name}: JSON decodes to the Rust encoder's value`, () => {
    const msg = decodeServerJson(JSON.stringify(f.json));
    assert.deepEqual(msg, f.json);
    assert.deepEqual(decodeServer(JSON.stringify(f.json)), f.json);
  });
  test(`server ${f.name}: binary decodes to what the Rust decoder reads`, () => {
    const bytes = fromHex(f.bin);
    const msg = decodeServerBinary(bytes);
    assertSameValue(msg, f.json_from_bin, f.name);
    // Outside the quantized delta positions, binary carries exactly what JSON does.
    if (f.json.type !== "delta") assertSameValue(msg, f.json, f.name);
    // ArrayBuffer input (what a browser WebSocket delivers) decodes the same.
    assertSameValue(decodeServer(bytes.slice().buffer), f.json_from_bin, f.name);
  });
  test(`server ${f.name}: every truncation and a trailing byte are DecodeErrors`, () => {
    const bytes = fromHex(f.bin);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeServerBinary(bytes.subarray(0, n)), DecodeError, `${f.name} cut at ${n}`);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.throws(() => decodeServerBinary(longer), /trailing/);
  });
}

for (const f of fixtures.client) {
  test(`client ${f.name}: encodes to the Rust encoder's bytes and JSON`, () => {
    const frame = f.json as unknown as ClientFrame;
    assert.equal(toHex(encodeClientBinary(frame)), f.bin);
    assert.deepEqual(JSON.parse(encodeClientJson(frame)), f.json);
  });
}

test("the documented binary examples are exact", () => {
  assert.equal(toHex(encodeClientBinary({ type: "thrust", id: 7, vx: 1, vy: 0 })), "010703000000803f00000000");
  assert.equal(toHex(encodeClientBinary({ type: "ping" })), "0000");
  assert.deepEqual(decodeServerBinary(fromHex("0005")), { type: "pong" });
});

test("a trade without a key encodes as the Rust client does (None / null)", () => {
  const frame: ClientFrame = {
    type: "trade",
    id: 1,
    station: "5b0c2f8e-3f0e-4a1c-9a53-000000000301",
    commodity: "ore",
    side: "sell",
    qty: 2,
  };
  const bin = encodeClientBinary(frame);
  assert.equal(bin[bin.length - 1], 0, "option none");
  assert.equal(JSON.parse(encodeClientJson(frame)).key, null);
});

test("postcard primitives: varints, zigzag, floats, options, strings", () => {
  const w = new Writer();
  w.u32(0).u32(127).u32(128).u32(300).u32(0xffff_ffff).u64(Number.MAX_SAFE_INTEGER);
  w.i32(0).i32(-1).i32(1).i32(-64).i32(64).i32(-0x8000_0000).i64(-3);
  w.f32(1.5).f64(-0.25).bool(true).option(undefined, () => {}).option(5, (v) => w.u32(v)).string("é");
  const bytes = w.finish();
  assert.equal(
    toHex(bytes),
    "00" + "7f" + "8001" + "ac02" + "ffffffff0f" + "ffffffffffffff0f" +
      "00" + "01" + "02" + "7f" + "8001" + "ffffffff0f" + "05" +
      "0000c03f" + "000000000000d0bf" + "01" + "00" + "0105" + "02c3a9",
  );
  const r = new Reader(bytes);
  assert.deepEqual(
    [r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u64()],
    [0, 127, 128, 300, 0xffff_ffff, Number.MAX_SAFE_INTEGER],
  );
  assert.deepEqual([r.i32(), r.i32(), r.i32(), r.i32(), r.i32(), r.i32(), r.i64()], [0, -1, 1, -64, 64, -0x8000_0000, -3]);
  assert.deepEqual([r.f32(), r.f64(), r.bool()], [1.5, -0.25, true]);
  assert.equal(r.option(() => r.u32()), undefined);
  assert.equal(r.option(() => r.u32()), 5);
  assert.equal(r.string(), "é");
  r.end();
});

test("malformed binary is a DecodeError, never another exception", () => {
  const bad: [string, string, RegExp][] = [
    ["empty", "", /end of frame/],
    ["option tag 2", "02", /option tag/],
    ["unknown variant", "000b", /unknown server message variant 11/],
    ["unknown game event", "000701", /unknown game event variant 1/],
    ["u32 too large", "0006" + "ffffffff1f", /out of range|longer/],
    ["u64 beyond 2^53", "01ffffffffffffffff7f05", /out of range/],
    ["uuid of 15 bytes", "00030f" + "00".repeat(15) + "10" + "00".repeat(16), /uuid must be 16 bytes/],
    ["bool 2", "000a10" + "00".repeat(16) + "02", /bool must be 0 or 1/],
    ["string not UTF-8", "000901ff00", /UTF-8/],
    ["sequence longer than the frame", "0001" + "10" + "00".repeat(16) + "00" + "00" + "00" + "00000000" + "ff01", /sequence of 255/],
    ["moves bitmap and values disagree", "0002" + "10" + "00".repeat(16) + "01" + "01" + "00" + "00" + "0000803f" + "0101" + "00" + "0000" + "00", /disagree/],
  ];
  for (const [name, hex, re] of bad) {
    assert.throws(() => decodeServerBinary(fromHex(hex)), (e: unknown) => e instanceof DecodeError && re.test(e.message), name);
  }
});

test("malformed JSON is a DecodeError naming the problem", () => {
  const bad: [string, RegExp][] = [
    ["nope", /not valid JSON/],
    ["[1]", /must be a JSON object/],
    ['{"id":1}', /type/],
    ['{"type":"dance"}', /unknown message type `dance`/],
    ['{"type":"pong","id":-1}', /pong.id/],
    ['{"type":"warped","from":"5b0c2f8e-3f0e-4a1c-9a53-000000000010"}', /missing field `to`/],
    ['{"type":"pong","extra":1}', /unknown field `extra`/],
    ['{"type":"sector_paused","sector":"x","paused":true}', /expected a UUID/],
    ['{"type":"notice","scope":"global","text":5}', /notice.text: expected a string/],
    ['{"type":"chat","channel":"team","from":"5b0c2f8e-3f0e-4a1c-9a53-000000000010","name":"a","text":"b"}', /channel/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => decodeServerJson(text), (e: unknown) => e instanceof DecodeError && re.test(e.message), text);
  }
});

test("client values out of range are EncodeErrors", () => {
  const station = "5b0c2f8e-3f0e-4a1c-9a53-000000000301";
  const bad: ClientFrame[] = [
    { type: "thrust", vx: Number.NaN, vy: 0 },
    { type: "thrust", vx: Number.POSITIVE_INFINITY, vy: 0 },
    { type: "warp", to: "not-a-uuid" },
    { type: "trade", station, commodity: "ore", side: "buy", qty: -1 },
    { type: "trade", station, commodity: "ore", side: "buy", qty: 1.5 },
    { type: "trade", station, commodity: "gold" as "ore", side: "buy", qty: 1 },
    { type: "chat", channel: "team" as "global", text: "x" },
    { type: "dance" } as unknown as ClientFrame,
    { type: "ping", id: -1 },
  ];
  for (const frame of bad) {
    assert.throws(() => encodeClientBinary(frame), EncodeError, JSON.stringify(frame));
    assert.throws(() => encodeClientJson(frame), EncodeError, JSON.stringify(frame));
  }
});
