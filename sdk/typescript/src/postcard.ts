// A reader and a writer of postcard (https://postcard.jamesmunns.com/wire-format), the format of the binary
// subprotocol `orrery.bin.v1`: LEB128 varints for unsigned integers, zigzag varints for signed ones, little-endian
// IEEE floats, length-prefixed strings and byte strings, a 0/1 byte for options and bools, a varint count before
// sequences and maps, and a varint variant index before an enum's fields.
//
// Integers are JavaScript numbers: a u64 larger than Number.MAX_SAFE_INTEGER is refused with a DecodeError rather
// than silently rounded.

import { DecodeError, EncodeError } from "./errors.js";

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** Reads postcard values from a byte array, front to back. Every malformed input raises a DecodeError. */
export class Reader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  fail(message: string): never {
    throw new DecodeError(message, this.pos);
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) this.fail(`unexpected end of frame reading ${what}`);
  }

  u8(): number {
    this.need(1, "a byte");
    return this.bytes[this.pos++]!;
  }

  /** An unsigned LEB128 varint of at most `maxBytes` bytes, as a number no larger than `max`. */
  private varint(maxBytes: number, max: number, what: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.u8();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (value > max) this.fail(`${what} ${value} is out of range`);
        return value;
      }
      scale *= 128;
    }
    return this.fail(`${what}: varint longer than ${maxBytes} bytes`);
  }

  u16(): number {
    return this.varint(3, 0xffff, "u16");
  }

  u32(): number {
    return this.varint(5, 0xffff_ffff, "u32");
  }

  /** A u64 that fits in a JavaScript number (at most 2^53 - 1). */
  u64(): number {
    return this.varint(10, Number.MAX_SAFE_INTEGER, "u64");
  }

  /** usize lengths and enum variant indices (postcard encodes both as u32 varints). */
  len(what = "length"): number {
    return this.varint(5, 0xffff_ffff, what);
  }

  i32(): number {
    const z = this.varint(5, 0xffff_ffff, "i32");
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  i64(): number {
    const z = this.varint(10, 2 * Number.MAX_SAFE_INTEGER, "i64");
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) this.fail(`bool must be 0 or 1, got ${b}`);
    return b === 1;
  }

  f32(): number {
    this.need(4, "an f32");
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8, "an f64");
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** A byte string: varint length, then the bytes (a view into the frame, not a copy). */
  bytesField(): Uint8Array {
    const n = this.len("byte string length");
    this.need(n, "a byte string");
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    const raw = this.bytesField();
    try {
      return utf8Decoder.decode(raw);
    } catch {
      return this.fail("string is not valid UTF-8");
    }
  }

  /** A UUID: serde serializes it as a 16-byte byte string in binary formats. */
  uuid(): string {
    const start = this.pos;
    const raw = this.bytesField();
    if (raw.length !== 16) throw new DecodeError(`uuid must be 16 bytes, got ${raw.length}`, start);
    let hex = "";
    for (const b of raw) hex += b.toString(16).padStart(2, "0");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  option<T>(read: () => T): T | undefined {
    const tag = this.u8();
    if (tag === 0) return undefined;
    if (tag === 1) return read();
    return this.fail(`option tag must be 0 or 1, got ${tag}`);
  }

  seq<T>(read: () => T): T[] {
    const n = this.len("sequence length");
    // Every element takes at least one byte: a length beyond the frame is malformed, not a huge allocation.
    if (n > this.remaining) this.fail(`sequence of ${n} elements in a frame of ${this.remaining} bytes left`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(read());
    return out;
  }

  /** An enum's variant index, checked against the variant names (returns the name). */
  variant<T extends string>(names: readonly T[], what: string): T {
    const start = this.pos;
    const i = this.len(`${what} variant`);
    const name = names[i];
    if (name === undefined) throw new DecodeError(`unknown ${what} variant ${i}`, start);
    return name;
  }

  /** Refuses bytes left over after a complete value. */
  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} trailing bytes after the message`);
  }
}

/** Writes postcard values into a growing buffer. Out-of-range values raise an EncodeError. */
export class Writer {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(b: number): this {
    this.reserve(1);
    this.buf[this.pos++] = b;
    return this;
  }

  private varint(value: number, max: number, what: string): this {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new EncodeError(`${what} must be an integer from 0 to ${max}, got ${value}`);
    }
    let v = value;
    while (v >= 0x80) {
      this.u8((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    return this.u8(v);
  }

  u16(v: number): this {
    return this.varint(v, 0xffff, "u16");
  }

  u32(v: number): this {
    return this.varint(v, 0xffff_ffff, "u32");
  }

  u64(v: number): this {
    return this.varint(v, Number.MAX_SAFE_INTEGER, "u64");
  }

  len(n: number): this {
    return this.varint(n, 0xffff_ffff, "length");
  }

  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) {
      throw new EncodeError(`i32 out of range: ${v}`);
    }
    return this.varint(v >= 0 ? v * 2 : -v * 2 - 1, 0xffff_ffff, "i32");
  }

  i64(v: number): this {
    if (!Number.isSafeInteger(v)) throw new EncodeError(`i64 must be a safe integer, got ${v}`);
    return this.varint(v >= 0 ? v * 2 : -v * 2 - 1, 2 * Number.MAX_SAFE_INTEGER, "i64");
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  f32(v: number): this {
    if (typeof v !== "number") throw new EncodeError(`f32 must be a number, got ${typeof v}`);
    this.reserve(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
    return this;
  }

  f64(v: number): this {
    if (typeof v !== "number") throw new EncodeError(`f64 must be a number, got ${typeof v}`);
    this.reserve(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
    return this;
  }

  bytesField(bytes: Uint8Array): this {
    this.len(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  string(s: string): this {
    if (typeof s !== "string") throw new EncodeError(`expected a string, got ${typeof s}`);
    return this.bytesField(utf8Encoder.encode(s));
  }

  uuid(id: string): this {
    return this.bytesField(parseUuid(id));
  }

  option<T>(value: T | undefined | null, write: (v: T) => void): this {
    if (value === undefined || value === null) return this.u8(0);
    this.u8(1);
    write(value);
    return this;
  }

  /** An enum's variant index by name. */
  variant<T extends string>(names: readonly T[], name: T, what: string): this {
    const i = names.indexOf(name);
    if (i < 0) throw new EncodeError(`unknown ${what} ${JSON.stringify(name)}; expected one of ${names.join(", ")}`);
    return this.len(i);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

const UUID_RE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/** The 16 bytes of a UUID in text form (hyphenated or simple). */
export function parseUuid(id: string): Uint8Array {
  if (typeof id !== "string" || !UUID_RE.test(id)) throw new EncodeError(`not a UUID: ${JSON.stringify(id)}`);
  const hex = id.replace(/-/g, "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
