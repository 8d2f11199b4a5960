// Messages of Orrery's wire protocol v1 with the reference game (space trade), as TypeScript types.
//
// These mirror the Rust types in protocol/src/messages.rs and engine/src/spacetrade/model.rs. Every message is
// represented in its flat JSON form (`{"type": ..., "id"?: ..., ...fields}`) whichever subprotocol carried it: the
// binary decoder produces exactly these objects. protocol/tests/sdk_fixtures.rs writes a value of every message,
// encoded by the Rust encoders, to test/fixtures/protocol-v1.json, and the SDK's tests decode and encode all of them,
// so a change on either side fails a test.

/** A UUID in its hyphenated lowercase text form. */
export type Uuid = string;

export const COMMODITIES = ["ore", "organics", "equipment", "fuel", "luxury_goods"] as const;
/** What stations trade (binary: variant index in this order). */
export type Commodity = (typeof COMMODITIES)[number];

export const SIDES = ["buy", "sell"] as const;
/** Buy from or sell to a station, from the player's side. */
export type Side = (typeof SIDES)[number];

export const CHAT_CHANNELS = ["sector", "global"] as const;
/** `sector`: everyone in the sender's sector; `global`: everyone on the server. */
export type ChatChannel = (typeof CHAT_CHANNELS)[number];

/** Units held per commodity (only commodities held are present). */
export type Cargo = Partial<Record<Commodity, number>>;

/** What `welcome` tells a client about its character. */
export interface Profile {
  id: Uuid;
  name: string;
  /** The ship's id. */
  ship: Uuid;
  credits: number;
  cargo: Cargo;
  cargo_capacity: number;
  /** Turns available now. */
  turns: number;
  turns_max: number;
}

/** A ship as every client sees it. `h` is its handle in the current sector. */
export interface ShipView {
  h: number;
  id: Uuid;
  owner: Uuid;
  name: string;
  x: number;
  y: number;
  vx: number;
  vy: number;
}

/** One commodity in a station's book. `sell_price`: what a player pays to buy; `buy_price`: what it pays. */
export interface Listing {
  commodity: Commodity;
  quantity: number;
  capacity: number;
  buy_price: number;
  sell_price: number;
}

export interface StationView {
  id: Uuid;
  name: string;
  /** The station's balance: what it can pay players who sell to it. */
  credits: number;
  commodities: Listing[];
}

/** A warp out of the sector: target sector, its name, turn cost and region. */
export interface WarpView {
  to: Uuid;
  name: string;
  turns: number;
  region: Uuid;
}

export interface Move {
  h: number;
  x: number;
  y: number;
}

export interface Steer {
  h: number;
  vx: number;
  vy: number;
}

/** The body of a keyframe (spread into the message). */
export interface KeyframeBody {
  name: string;
  size: number;
  ships: ShipView[];
  stations: StationView[];
  warps: WarpView[];
}

/** The body of a delta (spread into the message). Apply removes, upserts, moves, steers, stations in this order. */
export interface DeltaBody {
  upserts: ShipView[];
  removes: number[];
  moves: Move[];
  steers: Steer[];
  stations: StationView[];
}

/** A request id: an unsigned integer chosen by the client, echoed by the reply. */
export type RequestId = number;

// ---- client to server ----

export interface PingMessage {
  type: "ping";
}
export interface ResyncMessage {
  type: "resync";
}
export interface ClientChatMessage {
  type: "chat";
  channel: ChatChannel;
  text: string;
}
export interface ThrustMessage {
  type: "thrust";
  vx: number;
  vy: number;
}
export interface WarpMessage {
  type: "warp";
  to: Uuid;
}
export interface TradeMessage {
  type: "trade";
  station: Uuid;
  commodity: Commodity;
  side: Side;
  qty: number;
  /** Idempotency key, 1 to 64 bytes. */
  key?: string | null;
}

/** A game command (the reference game's `Command`). */
export type GameCommand = ThrustMessage | WarpMessage | TradeMessage;
/** A client message without its id. */
export type ClientMessage = PingMessage | ResyncMessage | ClientChatMessage | GameCommand;
/** A client message with its optional request id. */
export type ClientFrame = ClientMessage & { id?: RequestId };

// ---- server to client ----

interface Reply {
  /** The id of the request this answers, if any. */
  id?: RequestId;
}

export interface WelcomeMessage extends Reply {
  type: "welcome";
  session: Uuid;
  character: Profile;
  sector: Uuid;
  tick_hz: number;
}
export interface KeyframeMessage extends Reply, KeyframeBody {
  type: "keyframe";
  sector: Uuid;
  /** The last delta this keyframe includes: the next delta of the sector has `seq + 1`. */
  seq: number;
  tick: number;
}
export interface DeltaMessage extends Reply, DeltaBody {
  type: "delta";
  sector: Uuid;
  seq: number;
  tick: number;
}
export interface WarpedMessage extends Reply {
  type: "warped";
  from: Uuid;
  to: Uuid;
}
export interface ServerChatMessage extends Reply {
  type: "chat";
  channel: ChatChannel;
  /** The speaker's character id. */
  from: Uuid;
  name: string;
  text: string;
}
export interface PongMessage extends Reply {
  type: "pong";
}
export interface ErrorMessage extends Reply {
  type: "error";
  code: string;
  message: string;
}
export interface TradeResultMessage extends Reply {
  type: "trade_result";
  station: Uuid;
  commodity: Commodity;
  side: Side;
  qty: number;
  unit_price: number;
  total: number;
  credits: number;
  cargo: Cargo;
  station_quantity: number;
  buy_price: number;
  sell_price: number;
}
export interface TimeDilationMessage extends Reply {
  type: "time_dilation";
  sector: Uuid;
  factor: number;
}
export interface NoticeMessage extends Reply {
  type: "notice";
  /** `global`, `region`, `sector`, `kick` or `region_stopped` (unknown scopes may be added: show them like `global`). */
  scope: string;
  text: string;
}
export interface SectorPausedMessage extends Reply {
  type: "sector_paused";
  sector: Uuid;
  paused: boolean;
}

/** The reference game's events (`Event`). */
export type GameEvent = TradeResultMessage;
/** Every message the server sends. */
export type ServerMessage =
  | WelcomeMessage
  | KeyframeMessage
  | DeltaMessage
  | WarpedMessage
  | ServerChatMessage
  | PongMessage
  | ErrorMessage
  | GameEvent
  | TimeDilationMessage
  | NoticeMessage
  | SectorPausedMessage;
export type ServerMessageType = ServerMessage["type"];

/** WebSocket subprotocol of JSON text frames. */
export const SUBPROTOCOL_JSON = "orrery.json.v1";
/** WebSocket subprotocol of postcard binary frames. */
export const SUBPROTOCOL_BIN = "orrery.bin.v1";
/** The two encodings of protocol v1. */
export type Encoding = "json" | "binary";

/** Close codes the server uses (docs/protocol.md, "Errors and close codes"). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  RATE_LIMITED: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  SLOW_CONSUMER: 4000,
  REPLACED: 4001,
  TIMEOUT: 4002,
  KICKED: 4003,
  REGION_STOPPED: 4004,
} as const;

/** Largest chat text, in bytes. */
export const MAX_CHAT_TEXT = 512;
/** Largest client message, in bytes. */
export const MAX_CLIENT_MESSAGE = 64 * 1024;
