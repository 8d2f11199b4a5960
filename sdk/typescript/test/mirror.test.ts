// The sector mirror: keyframe + deltas in seq order, handles, gaps.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  SectorMirror,
  decodeServerBinary,
  type DeltaMessage,
  type KeyframeMessage,
  type ShipView,
} from "../src/index.js";

const fixtures = JSON.parse(
  readFileSync(new URL("../../test/fixtures/protocol-v1.json", import.meta.url), "utf8"),
) as { server: { name: string; json: unknown; bin: string }[] };
const fixture = <T>(name: string): T => structuredClone(fixtures.server.find((f) => f.name === name)!.json) as T;
const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));

const SECTOR = "5b0c2f8e-3f0e-4a1c-9a53-000000000010";

function keyframe(seq: number, ships: ShipView[] = []): KeyframeMessage {
  return { type: "keyframe", sector: SECTOR, seq, tick: seq, name: "S", size: 1000, ships, stations: [], warps: [] };
}

function delta(seq: number, d: Partial<DeltaMessage> = {}): DeltaMessage {
  return {
    type: "delta",
    sector: SECTOR,
    seq,
    tick: seq,
    upserts: [],
    removes: [],
    moves: [],
    steers: [],
    stations: [],
    ...d,
  };
}

function shipAt(h: number, x: number, y: number): ShipView {
  const n = h.toString(16).padStart(12, "0");
  return { h, id: `00000000-0000-4000-8000-${n}`, owner: `00000000-0000-4000-9000-${n}`, name: `s${h}`, x, y, vx: 0, vy: 0 };
}

test("the fixture delta applies to the fixture keyframe in the documented order", () => {
  const k = fixture<KeyframeMessage>("keyframe");
  const m = new SectorMirror(k);
  assert.equal(m.allShips().length, 2);
  const d = fixture<DeltaMessage>("delta");
  assert.equal(d.seq, k.seq + 1);
  assert.deepEqual(m.accept(d), { kind: "applied" });
  assert.equal(m.seq, d.seq);
  // h 0 moved and steered; h 200 moved; h 2 arrived; h 9 and 17 are unknown (ignored), 5 and 300 were absent.
  assert.deepEqual(m.ship(0), { ...k.ships[0]!, x: 514.5, y: 232, vx: 40, vy: -20 });
  assert.equal(m.ship(200)!.x, Math.fround(0.1)); // Rust writes the f32 widened to f64 in JSON
  assert.equal(m.ship(2)!.name, "Bo");
  assert.equal(m.ship(9), undefined);
  assert.equal(m.allShips().length, 3);
  assert.equal(m.station(d.stations[0]!.id)!.commodities[0]!.quantity, 1197);
  assert.equal(m.shipOf(k.ships[1]!.owner)!.h, 200);
  assert.equal(m.shipById(k.ships[0]!.id)!.h, 0);
  // The same delta decoded from the Rust encoder's binary frame lands on the quantization grid.
  const bin = decodeServerBinary(fromHex(fixtures.server.find((f) => f.name === "delta")!.bin)) as DeltaMessage;
  const m2 = new SectorMirror(k);
  m2.accept(bin);
  assert.ok(Math.abs(m2.ship(0)!.x - 514.5) <= 1000 / 65535);
  assert.equal(m2.ship(0)!.vx, 40);
});

test("the mirror does not alias the frames it was built from", () => {
  const k = keyframe(1, [shipAt(0, 1, 1)]);
  const m = new SectorMirror(k);
  m.accept(delta(2, { moves: [{ h: 0, x: 5, y: 5 }] }));
  assert.equal(k.ships[0]!.x, 1);
});

test("old deltas and other sectors' deltas are ignored; a gap makes the mirror stale until a keyframe", () => {
  const m = new SectorMirror(keyframe(10, [shipAt(0, 1, 1)]));
  assert.deepEqual(m.accept(delta(10)), { kind: "ignored" });
  assert.deepEqual(m.accept({ ...delta(11), sector: "00000000-0000-4000-8000-000000000000" }), { kind: "ignored" });
  assert.deepEqual(m.accept(delta(11, { moves: [{ h: 0, x: 2, y: 2 }] })), { kind: "applied" });
  assert.deepEqual(m.accept(delta(13)), { kind: "gap", expected: 12, got: 13 });
  assert.ok(m.stale);
  // While stale nothing applies, even the delta that would have followed.
  assert.equal(m.accept(delta(12, { moves: [{ h: 0, x: 9, y: 9 }] })).kind, "gap");
  assert.equal(m.ship(0)!.x, 2);
});

test("removes, then upserts, then moves and steers: a handle reused within one delta is the new ship", () => {
  const m = new SectorMirror(keyframe(0, [shipAt(3, 10, 10)]));
  const arrival = { ...shipAt(3, 50, 50), name: "newcomer", id: "00000000-0000-4000-8000-0000000000ff" };
  m.accept(delta(1, { removes: [3], upserts: [arrival], moves: [{ h: 3, x: 51, y: 52 }], steers: [{ h: 3, vx: 1, vy: 2 }] }));
  assert.deepEqual(m.ship(3), { ...arrival, x: 51, y: 52, vx: 1, vy: 2 });
});

test("a mirror following random deltas matches a model that keeps ships by handle", () => {
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const truth = new Map<number, ShipView>();
  for (let h = 0; h < 20; h++) truth.set(h, shipAt(h, rand() * 1000, rand() * 1000));
  const m = new SectorMirror(keyframe(0, [...truth.values()].map((s) => ({ ...s }))));
  for (let seq = 1; seq <= 500; seq++) {
    const d = delta(seq);
    for (const h of [...truth.keys()]) {
      const r = rand();
      if (r < 0.03) {
        truth.delete(h);
        d.removes.push(h);
      } else if (r < 0.5) {
        const s = truth.get(h)!;
        s.x = rand() * 1000;
        s.y = rand() * 1000;
        d.moves.push({ h, x: s.x, y: s.y });
        if (r < 0.2) {
          s.vx = rand() * 200 - 100;
          s.vy = rand() * 200 - 100;
          d.steers.push({ h, vx: s.vx, vy: s.vy });
        }
      }
    }
    if (rand() < 0.1) {
      const free = [...Array(40).keys()].find((h) => !truth.has(h))!;
      const s = shipAt(free, rand() * 1000, rand() * 1000);
      truth.set(free, s);
      d.upserts.push({ ...s });
    }
    // Moves of unknown handles are ignored.
    d.moves.push({ h: 1000 + seq, x: 1, y: 1 });
    assert.equal(m.accept(d).kind, "applied");
    const want = [...truth.values()].sort((a, b) => a.h - b.h);
    assert.deepEqual(m.allShips(), want, `seq ${seq}`);
  }
});
