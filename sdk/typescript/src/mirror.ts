// A client's mirror of its current sector, like the Rust `ClientView` (engine/src/spacetrade/view.rs): rebuilt from
// a keyframe, kept current by applying deltas in `seq` order, with ships kept by handle.

import type {
  DeltaMessage,
  KeyframeMessage,
  ShipView,
  StationView,
  Uuid,
  WarpView,
} from "./types.js";

/** What `SectorMirror.accept` did with a keyframe or delta. */
export type AcceptResult =
  /** The mirror now reflects this frame. */
  | { kind: "applied" }
  /** A delta of another sector, or one the mirror already includes (seq not above the last): ignored. */
  | { kind: "ignored" }
  /** Deltas were missed (`seq` is not `last + 1`): the mirror is stale until the next keyframe; send `resync`. */
  | { kind: "gap"; expected: number; got: number };

/** Ships by handle, station books and warps of one sector, as of delta `seq`. */
export class SectorMirror {
  /** Sector id, name and edge length (positions run from 0 to `size`). */
  sector: Uuid;
  name: string;
  size: number;
  /** The last delta included. */
  seq: number;
  /** The sector's tick counter as of `seq`. */
  tick: number;
  warps: WarpView[];
  stations: StationView[];
  /** True after a gap, until a keyframe arrives: the mirror may be out of date. */
  stale = false;
  private ships: (ShipView | undefined)[] = [];

  constructor(keyframe: KeyframeMessage) {
    this.sector = keyframe.sector;
    this.name = keyframe.name;
    this.size = keyframe.size;
    this.seq = keyframe.seq;
    this.tick = keyframe.tick;
    this.warps = keyframe.warps.map((w) => ({ ...w }));
    this.stations = keyframe.stations.map(cloneStation);
    for (const s of keyframe.ships) this.put(s);
  }

  private put(ship: ShipView): void {
    this.ships[ship.h] = { ...ship };
  }

  /**
   * Takes a delta in stream order: applies it when its `seq` follows the last one, ignores a delta of another
   * sector or an old one, and reports a gap otherwise (the caller should send `resync`; a keyframe then replaces
   * the mirror). While stale, deltas are not applied.
   */
  accept(delta: DeltaMessage): AcceptResult {
    if (delta.sector !== this.sector || delta.seq <= this.seq) return { kind: "ignored" };
    if (this.stale || delta.seq !== this.seq + 1) {
      this.stale = true;
      return { kind: "gap", expected: this.seq + 1, got: delta.seq };
    }
    this.apply(delta);
    return { kind: "applied" };
  }

  /** Applies one delta without checking `seq`: removes, upserts, moves, steers, station books. */
  apply(d: DeltaMessage): void {
    for (const h of d.removes) this.ships[h] = undefined;
    for (const s of d.upserts) this.put(s);
    for (const m of d.moves) {
      const s = this.ships[m.h];
      if (s) {
        s.x = m.x;
        s.y = m.y;
      }
    }
    for (const v of d.steers) {
      const s = this.ships[v.h];
      if (s) {
        s.vx = v.vx;
        s.vy = v.vy;
      }
    }
    for (const st of d.stations) {
      const i = this.stations.findIndex((s) => s.id === st.id);
      if (i >= 0) this.stations[i] = cloneStation(st);
      else this.stations.push(cloneStation(st));
    }
    this.seq = d.seq;
    this.tick = d.tick;
  }

  /** The ship with this handle. */
  ship(h: number): ShipView | undefined {
    return this.ships[h];
  }

  /** Every ship present, in handle order. */
  allShips(): ShipView[] {
    return this.ships.filter((s): s is ShipView => s !== undefined);
  }

  /** The ship flown by a character. */
  shipOf(owner: Uuid): ShipView | undefined {
    return this.ships.find((s) => s?.owner === owner);
  }

  /** The ship with this id. */
  shipById(id: Uuid): ShipView | undefined {
    return this.ships.find((s) => s?.id === id);
  }

  /** The station with this id. */
  station(id: Uuid): StationView | undefined {
    return this.stations.find((s) => s.id === id);
  }
}

function cloneStation(s: StationView): StationView {
  return { ...s, commodities: s.commodities.map((c) => ({ ...c })) };
}
