// Encoders and decoders of protocol v1 in both subprotocols, driven by one schema of every message.
//
// JSON (`orrery.json.v1`): one flat object per message, `{"type", "id"?, ...fields}`; keyframe and delta bodies
// are spread into it. Binary (`orrery.bin.v1`): postcard of `{id: Option<u64>, msg}`, where `msg` is the variant
// index of the engine message (game commands and events nest one more enum: variant 3 of client messages, 7 of
// server messages), then its fields in order. The schema below lists the fields in the Rust declaration order, which
// is the binary order; the fixture test (test/codec.test.ts) holds it to the Rust encoders.

import { DecodeError, EncodeError } from "./errors.js";
import { Reader, Writer } from "./postcard.js";
import {
  CHAT_CHANNELS,
  COMMODITIES,
  SIDES,
  type ClientFrame,
  type Encoding,
  type ServerMessage,
} from "./types.js";

/** A field's wire type. */
export type FieldType =
  | "u32"
  | "u64"
  | "f32"
  | "f64"
  | "bool"
  | "string"
  | "uuid"
  | "moves"
  | "steers"
  | { enum: readonly string[]; name: string }
  | { option: FieldType }
  | { seq: FieldType }
  | { struct: Fields; name: string }
  | { map: [FieldType, FieldType] };

/** Named fields in wire order. */
export type Fields = readonly (readonly [string, FieldType])[];

const commodity: FieldType = { enum: COMMODITIES, name: "commodity" };
const side: FieldType = { enum: SIDES, name: "side" };
const channel: FieldType = { enum: CHAT_CHANNELS, name: "channel" };
const cargo: FieldType = { map: [commodity, "u32"] };

const profile: FieldType = {
  name: "profile",
  struct: [
    ["id", "uuid"],
    ["name", "string"],
    ["ship", "uuid"],
    ["credits", "u64"],
    ["cargo", cargo],
    ["cargo_capacity", "u32"],
    ["turns", "u32"],
    ["turns_max", "u32"],
  ],
};
const ship: FieldType = {
  name: "ship",
  struct: [
    ["h", "u32"],
    ["id", "uuid"],
    ["owner", "uuid"],
    ["name", "string"],
    ["x", "f32"],
    ["y", "f32"],
    ["vx", "f32"],
    ["vy", "f32"],
  ],
};
const listing: FieldType = {
  name: "listing",
  struct: [
    ["commodity", commodity],
    ["quantity", "u32"],
    ["capacity", "u32"],
    ["buy_price", "u32"],
    ["sell_price", "u32"],
  ],
};
const station: FieldType = {
  name: "station",
  struct: [
    ["id", "uuid"],
    ["name", "string"],
    ["credits", "u64"],
    ["commodities", { seq: listing }],
  ],
};
const warp: FieldType = {
  name: "warp",
  struct: [
    ["to", "uuid"],
    ["name", "string"],
    ["turns", "u32"],
    ["region", "uuid"],
  ],
};

/** One message: its JSON `type`, its binary variant path (engine index, then game index), its fields. */
interface MessageSchema {
  type: string;
  path: readonly number[];
  fields: Fields;
}

/** Client messages (protocol/src/messages.rs `ClientMessage`, engine/src/spacetrade/model.rs `Command`). */
export const CLIENT_SCHEMA: readonly MessageSchema[] = [
  { type: "ping", path: [0], fields: [] },
  { type: "resync", path: [1], fields: [] },
  {
    type: "chat",
    path: [2],
    fields: [
      ["channel", channel],
      ["text", "string"],
    ],
  },
  {
    type: "thrust",
    path: [3, 0],
    fields: [
      ["vx", "f32"],
      ["vy", "f32"],
    ],
  },
  { type: "warp", path: [3, 1], fields: [["to", "uuid"]] },
  {
    type: "trade",
    path: [3, 2],
    fields: [
      ["station", "uuid"],
      ["commodity", commodity],
      ["side", side],
      ["qty", "u32"],
      ["key", { option: "string" }],
    ],
  },
];

/** Server messages (protocol/src/messages.rs `ServerMessage`, engine/src/spacetrade/model.rs `Event`). */
export const SERVER_SCHEMA: readonly MessageSchema[] = [
  {
    type: "welcome",
    path: [0],
    fields: [
      ["session", "uuid"],
      ["character", profile],
      ["sector", "uuid"],
      ["tick_hz", "u32"],
    ],
  },
  {
    type: "keyframe",
    path: [1],
    fields: [
      ["sector", "uuid"],
      ["seq", "u64"],
      ["tick", "u64"],
      ["name", "string"],
      ["size", "f32"],
      ["ships", { seq: ship }],
      ["stations", { seq: station }],
      ["warps", { seq: warp }],
    ],
  },
  {
    type: "delta",
    path: [2],
    fields: [
      ["sector", "uuid"],
      ["seq", "u64"],
      ["tick", "u64"],
      ["upserts", { seq: ship }],
      ["removes", { seq: "u32" }],
      ["moves", "moves"],
      ["steers", "steers"],
      ["stations", { seq: station }],
    ],
  },
  {
    type: "warped",
    path: [3],
    fields: [
      ["from", "uuid"],
      ["to", "uuid"],
    ],
  },
  {
    type: "chat",
    path: [4],
    fields: [
      ["channel", channel],
      ["from", "uuid"],
      ["name", "string"],
      ["text", "string"],
    ],
  },
  { type: "pong", path: [5], fields: [] },
  {
    type: "error",
    path: [6],
    fields: [
      ["code", "string"],
      ["message", "string"],
    ],
  },
  {
    type: "trade_result",
    path: [7, 0],
    fields: [
      ["station", "uuid"],
      ["commodity", commodity],
      ["side", side],
      ["qty", "u32"],
      ["unit_price", "u32"],
      ["total", "u64"],
      ["credits", "u64"],
      ["cargo", cargo],
      ["station_quantity", "u32"],
      ["buy_price", "u32"],
      ["sell_price", "u32"],
    ],
  },
  {
    type: "time_dilation",
    path: [8],
    fields: [
      ["sector", "uuid"],
      ["factor", "f64"],
    ],
  },
  {
    type: "notice",
    path: [9],
    fields: [
      ["scope", "string"],
      ["text", "string"],
    ],
  },
  {
    type: "sector_paused",
    path: [10],
    fields: [
      ["sector", "uuid"],
      ["paused", "bool"],
    ],
  },
];

const byType = (schema: readonly MessageSchema[]) => new Map(schema.map((m) => [m.type, m]));
const CLIENT_BY_TYPE = byType(CLIENT_SCHEMA);
const SERVER_BY_TYPE = byType(SERVER_SCHEMA);

/** Largest handle a binary bitmap may name (the server's limit: a bitmap of 1 MiB). */
const MAX_HANDLE = 8 * 1024 * 1024;

// ---------- binary ----------

function bitmapHandles(r: Reader, bits: Uint8Array, what: string): number[] {
  if (bits.length * 8 > MAX_HANDLE) r.fail(`${what} bitmap too large`);
  const out: number[] = [];
  bits.forEach((b, i) => {
    for (let j = 0; j < 8; j++) if (b & (1 << j)) out.push(i * 8 + j);
  });
  return out;
}

/** `q * size / 65535` computed in f32 as the Rust decoder does (each f64 step rounded to f32 is exact here). */
function dequantize(q: number, size: number): number {
  return Math.fround(Math.fround(q * size) / 65535);
}

function readType(r: Reader, t: FieldType): unknown {
  switch (t) {
    case "u32":
      return r.u32();
    case "u64":
      return r.u64();
    case "f32":
      return r.f32();
    case "f64":
      return r.f64();
    case "bool":
      return r.bool();
    case "string":
      return r.string();
    case "uuid":
      return r.uuid();
    case "moves": {
      const size = r.f32();
      const bits = r.bytesField();
      const values = r.bytesField();
      const hs = bitmapHandles(r, bits, "moves");
      if (values.length !== hs.length * 4) r.fail("moves: bitmap and positions disagree");
      const dv = new DataView(values.buffer, values.byteOffset, values.byteLength);
      return hs.map((h, i) => ({
        h,
        x: dequantize(dv.getUint16(i * 4, true), size),
        y: dequantize(dv.getUint16(i * 4 + 2, true), size),
      }));
    }
    case "steers": {
      const bits = r.bytesField();
      const values = r.bytesField();
      const hs = bitmapHandles(r, bits, "steers");
      if (values.length !== hs.length * 8) r.fail("steers: bitmap and velocities disagree");
      const dv = new DataView(values.buffer, values.byteOffset, values.byteLength);
      return hs.map((h, i) => ({ h, vx: dv.getFloat32(i * 8, true), vy: dv.getFloat32(i * 8 + 4, true) }));
    }
  }
  if ("enum" in t) return r.variant(t.enum, t.name);
  if ("option" in t) return r.option(() => readType(r, t.option)) ?? null;
  if ("seq" in t) return r.seq(() => readType(r, t.seq));
  if ("struct" in t) return readFields(r, t.struct, {});
  const [k, v] = t.map;
  const out: Record<string, unknown> = {};
  const n = r.len("map length");
  if (n > r.remaining) r.fail(`map of ${n} entries in a frame of ${r.remaining} bytes left`);
  for (let i = 0; i < n; i++) {
    const key = readType(r, k);
    out[String(key)] = readType(r, v);
  }
  return out;
}

function readFields(r: Reader, fields: Fields, into: Record<string, unknown>): Record<string, unknown> {
  for (const [name, t] of fields) into[name] = readType(r, t);
  return into;
}

function writeType(w: Writer, t: FieldType, v: unknown, path: string): void {
  const want = (ok: boolean, what: string) => {
    if (!ok) throw new EncodeError(`${path}: expected ${what}, got ${JSON.stringify(v)}`);
  };
  switch (t) {
    case "u32":
      want(typeof v === "number", "a number");
      w.u32(v as number);
      return;
    case "u64":
      want(typeof v === "number", "a number");
      w.u64(v as number);
      return;
    case "f32":
      want(typeof v === "number" && Number.isFinite(v), "a finite number");
      w.f32(v as number);
      return;
    case "f64":
      want(typeof v === "number" && Number.isFinite(v), "a finite number");
      w.f64(v as number);
      return;
    case "bool":
      want(typeof v === "boolean", "a boolean");
      w.bool(v as boolean);
      return;
    case "string":
      want(typeof v === "string", "a string");
      w.string(v as string);
      return;
    case "uuid":
      want(typeof v === "string", "a UUID string");
      w.uuid(v as string);
      return;
    case "moves":
    case "steers":
      // Only server messages carry these; clients never encode them.
      throw new EncodeError(`${path}: ${t} are server-only`);
  }
  if ("enum" in t) {
    want(typeof v === "string", `a ${t.name}`);
    w.variant(t.enum, v as string, t.name);
  } else if ("option" in t) {
    w.option(v as unknown, (x) => writeType(w, t.option, x, path));
  } else if ("seq" in t) {
    want(Array.isArray(v), "an array");
    const items = v as unknown[];
    w.len(items.length);
    items.forEach((x, i) => writeType(w, t.seq, x, `${path}[${i}]`));
  } else if ("struct" in t) {
    want(typeof v === "object" && v !== null, "an object");
    writeFields(w, t.struct, v as Record<string, unknown>, path);
  } else {
    want(typeof v === "object" && v !== null, "an object");
    const entries = Object.entries(v as Record<string, unknown>);
    w.len(entries.length);
    for (const [k, x] of entries) {
      writeType(w, t.map[0], k, `${path}.${k}`);
      writeType(w, t.map[1], x, `${path}.${k}`);
    }
  }
}

function writeFields(w: Writer, fields: Fields, obj: Record<string, unknown>, path: string): void {
  for (const [name, t] of fields) writeType(w, t, obj[name], `${path}.${name}`);
}

/** Encodes a client frame as postcard bytes (the binary subprotocol). */
export function encodeClientBinary(frame: ClientFrame): Uint8Array {
  const schema = CLIENT_BY_TYPE.get(frame.type);
  if (!schema) throw new EncodeError(`unknown client message type ${JSON.stringify(frame.type)}`);
  const w = new Writer();
  w.option(frame.id, (id) => w.u64(id));
  for (const i of schema.path) w.len(i);
  writeFields(w, schema.fields, frame as unknown as Record<string, unknown>, frame.type);
  return w.finish();
}

/** Encodes a client frame as a JSON text frame. Fields are checked against the schema first. */
export function encodeClientJson(frame: ClientFrame): string {
  const schema = CLIENT_BY_TYPE.get(frame.type);
  if (!schema) throw new EncodeError(`unknown client message type ${JSON.stringify(frame.type)}`);
  // Encoding to binary checks every field's type and range; JSON then carries the same values.
  encodeClientBinary(frame);
  const out: Record<string, unknown> = { type: frame.type };
  if (frame.id !== undefined) out.id = frame.id;
  const obj = frame as unknown as Record<string, unknown>;
  for (const [name] of schema.fields) out[name] = obj[name] ?? null;
  return JSON.stringify(out);
}

/** Encodes a client frame in the given encoding. */
export function encodeClient(frame: ClientFrame, encoding: Encoding): string | Uint8Array {
  return encoding === "binary" ? encodeClientBinary(frame) : encodeClientJson(frame);
}

/** Decodes a server binary frame. Raises DecodeError on anything that is not exactly one message. */
export function decodeServerBinary(bytes: Uint8Array): ServerMessage {
  const r: Reader = new Reader(bytes);
  const id = r.option(() => r.u64());
  const engine = r.len("server message variant");
  let schema = SERVER_SCHEMA.find((m) => m.path[0] === engine && m.path.length === 1);
  if (!schema) {
    const game = SERVER_SCHEMA.filter((m) => m.path[0] === engine && m.path.length === 2);
    if (game.length === 0) r.fail(`unknown server message variant ${engine}`);
    const inner = r.len("game event variant");
    schema = game.find((m) => m.path[1] === inner);
    if (!schema) r.fail(`unknown game event variant ${inner}`);
  }
  const out: Record<string, unknown> = { type: schema.type };
  if (id !== undefined) out.id = id;
  readFields(r, schema.fields, out);
  r.end();
  return out as unknown as ServerMessage;
}

// ---------- JSON ----------

function checkJson(t: FieldType, v: unknown, path: string): unknown {
  const fail = (what: string): never => {
    throw new DecodeError(`${path}: expected ${what}, got ${JSON.stringify(v)}`);
  };
  const uint = (max: number) =>
    typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max ? v : fail(`an integer from 0 to ${max}`);
  const obj = (): Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail("an object");
  switch (t) {
    case "u32":
      return uint(0xffff_ffff);
    case "u64":
      return uint(Number.MAX_SAFE_INTEGER);
    case "f32":
    case "f64":
      return typeof v === "number" ? v : fail("a number");
    case "bool":
      return typeof v === "boolean" ? v : fail("a boolean");
    case "string":
      return typeof v === "string" ? v : fail("a string");
    case "uuid":
      return typeof v === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)
        ? v.toLowerCase()
        : fail("a UUID");
    case "moves":
      return checkJson({ seq: { name: "move", struct: [["h", "u32"], ["x", "f32"], ["y", "f32"]] } }, v, path);
    case "steers":
      return checkJson({ seq: { name: "steer", struct: [["h", "u32"], ["vx", "f32"], ["vy", "f32"]] } }, v, path);
  }
  if ("enum" in t) return typeof v === "string" && t.enum.includes(v) ? v : fail(`a ${t.name} (${t.enum.join(", ")})`);
  if ("option" in t) return v === undefined || v === null ? null : checkJson(t.option, v, path);
  if ("seq" in t) {
    if (!Array.isArray(v)) return fail("an array");
    return v.map((x, i) => checkJson(t.seq, x, `${path}[${i}]`));
  }
  if ("struct" in t) return checkStruct(t.struct, obj(), path, {});
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(obj())) {
    checkJson(t.map[0], k, `${path} key`);
    out[k] = checkJson(t.map[1], x, `${path}.${k}`);
  }
  return out;
}

function checkStruct(
  fields: Fields,
  obj: Record<string, unknown>,
  path: string,
  into: Record<string, unknown>,
): Record<string, unknown> {
  for (const [name, t] of fields) {
    if (!(name in obj) && !(typeof t === "object" && "option" in t)) {
      throw new DecodeError(`${path}: missing field \`${name}\``);
    }
    into[name] = checkJson(t, obj[name], `${path}.${name}`);
  }
  for (const key of Object.keys(obj)) {
    if (!fields.some(([name]) => name === key)) throw new DecodeError(`${path}: unknown field \`${key}\``);
  }
  return into;
}

/** Decodes a server JSON text frame, checking every field against the schema. */
export function decodeServerJson(text: string): ServerMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DecodeError(`not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DecodeError("a message must be a JSON object");
  }
  const { type, id, ...rest } = value as Record<string, unknown>;
  if (typeof type !== "string") throw new DecodeError("missing or non-string `type`");
  const schema = SERVER_BY_TYPE.get(type);
  if (!schema) throw new DecodeError(`unknown message type \`${type}\``);
  const out: Record<string, unknown> = { type };
  if (id !== undefined && id !== null) out.id = checkJson("u64", id, `${type}.id`);
  checkStruct(schema.fields, rest, type, out);
  return out as unknown as ServerMessage;
}

/** Decodes a server frame: a string is JSON, bytes are postcard (the server answers in the session's encoding). */
export function decodeServer(data: string | Uint8Array | ArrayBuffer): ServerMessage {
  if (typeof data === "string") return decodeServerJson(data);
  return decodeServerBinary(data instanceof Uint8Array ? data : new Uint8Array(data));
}
