// A game session over one WebSocket: connect with either subprotocol, typed events for every server message,
// request/reply by `id` with timeouts, a sector mirror kept by keyframes and deltas (resync on a gap), and automatic
// reconnection with exponential backoff that resumes the same character.

import type { OrreryApi } from "./api.js";
import { decodeServer, encodeClient } from "./codec.js";
import {
  ApiError,
  ConnectError,
  ConnectionClosedError,
  DecodeError,
  OrreryError,
  ServerError,
  StateError,
  TimeoutError,
} from "./errors.js";
import { Emitter } from "./events.js";
import { SectorMirror, type AcceptResult } from "./mirror.js";
import {
  CloseCode,
  SUBPROTOCOL_BIN,
  SUBPROTOCOL_JSON,
  type ChatChannel,
  type ClientMessage,
  type Commodity,
  type DeltaMessage,
  type Encoding,
  type ErrorMessage,
  type KeyframeMessage,
  type NoticeMessage,
  type PongMessage,
  type Profile,
  type SectorPausedMessage,
  type ServerChatMessage,
  type ServerMessage,
  type Side,
  type TimeDilationMessage,
  type TradeResultMessage,
  type Uuid,
  type WarpedMessage,
  type WelcomeMessage,
} from "./types.js";

/** The part of the WHATWG WebSocket API the session uses (browsers' global, node 22's global, or `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;

export interface ReconnectOptions {
  /** First delay, ms (default 250). */
  initialDelayMs?: number;
  /** Largest delay, ms (default 10 000). */
  maxDelayMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Attempts before giving up (default: unlimited). */
  maxAttempts?: number;
}

export interface SessionOptions {
  /** The HTTP API holding the credentials (a guest token or an account login). */
  api: OrreryApi;
  /** The character to play (needed for an account with several characters). */
  character?: Uuid;
  /** `binary` (postcard, the default) or `json`. */
  encoding?: Encoding;
  /** WebSocket implementation (default: the global `WebSocket`; in node 20 pass the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  /** How long a request waits for its reply, ms (default 5000). */
  requestTimeoutMs?: number;
  /** How long connecting waits for `welcome`, ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Reconnect after an unexpected close (default on); `false` to disable. */
  reconnect?: ReconnectOptions | false;
  /** Send `resync` on its own when deltas were missed (default true). */
  autoResync?: boolean;
}

/** Why the connection closed, from its close code. */
export type CloseKind =
  | "normal"
  | "going_away"
  | "kicked"
  | "replaced"
  | "region_stopped"
  | "timeout"
  | "rate_limited"
  | "too_big"
  | "server_error"
  | "abnormal"
  | "other";

export function closeKind(code: number): CloseKind {
  switch (code) {
    case CloseCode.NORMAL:
      return "normal";
    case CloseCode.GOING_AWAY:
      return "going_away";
    case CloseCode.KICKED:
      return "kicked";
    case CloseCode.REPLACED:
      return "replaced";
    case CloseCode.REGION_STOPPED:
      return "region_stopped";
    case CloseCode.TIMEOUT:
      return "timeout";
    case CloseCode.RATE_LIMITED:
      return "rate_limited";
    case CloseCode.TOO_BIG:
      return "too_big";
    case CloseCode.INTERNAL:
      return "server_error";
    case CloseCode.ABNORMAL:
    case CloseCode.SLOW_CONSUMER:
      return "abnormal";
    default:
      return "other";
  }
}

/** Close codes after which the session does not reconnect by itself: another session took the character over, an
 * operator kicked it or stopped its region (a `notice` says why). Reconnect explicitly with `connect()`. */
const FINAL_CLOSES: ReadonlySet<number> = new Set([CloseCode.REPLACED, CloseCode.KICKED, CloseCode.REGION_STOPPED]);

export interface CloseInfo {
  code: number;
  reason: string;
  kind: CloseKind;
  /** The last `notice` before the close (a kick's or region stop's reason), if any. */
  notice?: NoticeMessage;
  /** Whether the session will try to reconnect. */
  willReconnect: boolean;
}

/** Events of a session. Every server message has its own event (by `type`), and `message` sees them all. */
export interface SessionEvents {
  message: ServerMessage;
  welcome: WelcomeMessage;
  keyframe: KeyframeMessage;
  delta: DeltaMessage;
  warped: WarpedMessage;
  chat: ServerChatMessage;
  pong: PongMessage;
  /** An `error` frame that answers no pending request (requests reject with a ServerError instead). */
  error: ErrorMessage;
  trade_result: TradeResultMessage;
  time_dilation: TimeDilationMessage;
  notice: NoticeMessage;
  sector_paused: SectorPausedMessage;
  /** The mirror changed (a keyframe replaced it, or a delta was applied). */
  mirror: SectorMirror;
  /** Deltas were missed; a `resync` was sent when `autoResync` is on. */
  gap: Extract<AcceptResult, { kind: "gap" }>;
  /** A frame the SDK could not decode (it is skipped; the connection stays open). */
  decode_error: DecodeError;
  /** The socket closed. */
  close: CloseInfo;
  /** A reconnect attempt is scheduled. */
  reconnecting: { attempt: number; delayMs: number };
  /** A reconnect attempt failed. */
  reconnect_failed: { attempt: number; error: OrreryError };
  /** Reconnected: a new `welcome` for the same character (a keyframe follows). */
  resumed: WelcomeMessage;
  /** Reconnecting stopped (too many attempts, or credentials refused). */
  gave_up: OrreryError;
}

interface Pending {
  resolve: (m: ServerMessage) => void;
  reject: (e: OrreryError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Session state. */
export type SessionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** One character's game session. */
export class OrrerySession extends Emitter<SessionEvents> {
  readonly encoding: Encoding;
  readonly character: Uuid | undefined;
  state: SessionState = "idle";
  /** The session id and character of the current connection (from `welcome`). */
  sessionId: Uuid | undefined;
  /** The character's profile: from `welcome`, kept current by trade results and warps. */
  profile: Profile | undefined;
  /** The current sector's id and tick rate. */
  sector: Uuid | undefined;
  tickHz = 20;
  /** The current sector's mirror (undefined until the first keyframe). */
  mirror: SectorMirror | undefined;
  /** Whether the current sector is paused by an operator. */
  paused = false;
  /** The current sector's time dilation factor (1: real time). */
  dilation = 1;

  private readonly api: OrreryApi;
  private readonly WS: WebSocketConstructor;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnect: Required<ReconnectOptions> | false;
  private readonly autoResync: boolean;
  private socket: WebSocketLike | undefined;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private resyncInFlight = false;
  private lastNotice: NoticeMessage | undefined;
  private userClosed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: SessionOptions) {
    super();
    this.api = options.api;
    this.character = options.character;
    this.encoding = options.encoding ?? "binary";
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new StateError("no WebSocket implementation: pass `WebSocket` (e.g. the `ws` package) in node < 22");
    this.WS = WS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.reconnect =
      options.reconnect === false
        ? false
        : {
            initialDelayMs: options.reconnect?.initialDelayMs ?? 250,
            maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
            factor: options.reconnect?.factor ?? 2,
            maxAttempts: options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY,
          };
    this.autoResync = options.autoResync ?? true;
  }

  /** Opens the session; resolves with `welcome` (the keyframe follows as a `keyframe` event). */
  async connect(): Promise<WelcomeMessage> {
    this.userClosed = false;
    clearTimeout(this.reconnectTimer);
    this.state = "connecting";
    try {
      const welcome = await this.open();
      this.state = "open";
      return welcome;
    } catch (e) {
      this.state = "closed";
      throw e;
    }
  }

  /** Opens one socket and waits for `welcome`. */
  private async open(): Promise<WelcomeMessage> {
    const url = await this.api.socketUrl(this.character);
    const protocol = this.encoding === "binary" ? SUBPROTOCOL_BIN : SUBPROTOCOL_JSON;
    return new Promise<WelcomeMessage>((resolve, reject) => {
      let settled = false;
      let ws: WebSocketLike;
      try {
        ws = new this.WS(url, [protocol]);
      } catch (e) {
        reject(new ConnectError(`cannot open the WebSocket: ${(e as Error).message}`));
        return;
      }
      ws.binaryType = "arraybuffer";
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        ws.close(CloseCode.NORMAL);
        reject(new ConnectError(`no welcome within ${this.connectTimeoutMs} ms`));
      }, this.connectTimeoutMs);
      ws.onopen = () => {
        if (ws.protocol !== protocol) {
          settled = true;
          clearTimeout(timer);
          ws.close(CloseCode.NORMAL);
          reject(new ConnectError(`the server chose subprotocol ${JSON.stringify(ws.protocol)}, not ${protocol}`));
        }
      };
      ws.onerror = () => {
        // Followed by onclose, which settles.
      };
      ws.onclose = (ev) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(new ConnectError(`the connection closed before welcome (code ${ev.code})`, ev.code));
          return;
        }
        if (this.socket === ws) this.onClosed(ev.code, ev.reason);
      };
      ws.onmessage = (ev) => {
        const msg = this.decode(ev.data);
        if (!msg) return;
        if (!settled) {
          if (msg.type !== "welcome") {
            settled = true;
            clearTimeout(timer);
            ws.close(CloseCode.NORMAL);
            reject(new ConnectError(`expected welcome first, got ${msg.type}`));
            return;
          }
          settled = true;
          clearTimeout(timer);
          this.socket = ws;
          this.handle(msg);
          resolve(msg);
          return;
        }
        if (this.socket === ws) this.handle(msg);
      };
    });
  }

  private decode(data: unknown): ServerMessage | undefined {
    try {
      if (typeof data === "string") return decodeServer(data);
      if (data instanceof ArrayBuffer) return decodeServer(new Uint8Array(data));
      if (ArrayBuffer.isView(data)) return decodeServer(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      throw new DecodeError(`unexpected frame data of type ${typeof data}`);
    } catch (e) {
      const err = e instanceof DecodeError ? e : new DecodeError(String(e));
      this.emit("decode_error", err);
      return undefined;
    }
  }

  private handle(msg: ServerMessage): void {
    let mirrorChanged = false;
    switch (msg.type) {
      case "welcome":
        this.sessionId = msg.session;
        this.profile = { ...msg.character, cargo: { ...msg.character.cargo } };
        this.sector = msg.sector;
        this.tickHz = msg.tick_hz;
        this.mirror = undefined;
        this.paused = false;
        this.dilation = 1;
        break;
      case "keyframe":
        this.resyncInFlight = false;
        this.sector = msg.sector;
        if (this.mirror?.sector !== msg.sector) {
          // A new sector: paused and dilated state come after its keyframe when they apply.
          this.paused = false;
          this.dilation = 1;
        }
        this.mirror = new SectorMirror(msg);
        mirrorChanged = true;
        break;
      case "delta":
        if (this.mirror) {
          const r = this.mirror.accept(msg);
          mirrorChanged = r.kind === "applied";
          if (r.kind === "gap") {
            this.emit("gap", r);
            if (this.autoResync && !this.resyncInFlight) {
              this.resyncInFlight = true;
              this.resync().catch(() => {
                this.resyncInFlight = false;
              });
            }
          }
        }
        break;
      case "warped":
        if (this.profile && this.mirror) {
          const w = this.mirror.warps.find((x) => x.to === msg.to);
          if (w) this.profile.turns = Math.max(0, this.profile.turns - w.turns);
        }
        this.sector = msg.to;
        break;
      case "trade_result":
        if (this.profile) {
          this.profile.credits = msg.credits;
          this.profile.cargo = { ...msg.cargo };
        }
        break;
      case "sector_paused":
        if (msg.sector === this.sector) this.paused = msg.paused;
        break;
      case "time_dilation":
        if (msg.sector === this.sector) this.dilation = msg.factor;
        break;
      case "notice":
        this.lastNotice = msg;
        break;
    }
    const pending = msg.id === undefined ? undefined : this.pending.get(msg.id);
    if (pending && msg.id !== undefined) {
      this.pending.delete(msg.id);
      clearTimeout(pending.timer);
      if (msg.type === "error") pending.reject(new ServerError(msg.code, msg.message, msg.id));
      else pending.resolve(msg);
    }
    this.emit("message", msg);
    if (msg.type === "error") {
      if (!pending) this.emit("error", msg);
    } else {
      this.emitTyped(msg);
    }
    if (mirrorChanged && this.mirror) this.emit("mirror", this.mirror);
  }

  private emitTyped(msg: Exclude<ServerMessage, ErrorMessage>): void {
    // Each message type is also an event name with that message as its value.
    (this.emit as (e: string, v: unknown) => void)(msg.type, msg);
  }

  private onClosed(code: number, reason: string): void {
    this.socket = undefined;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ConnectionClosedError(`the connection closed (code ${code}) before the reply to ${id}`, code, reason));
    }
    this.pending.clear();
    this.resyncInFlight = false;
    const willReconnect = !this.userClosed && this.reconnect !== false && !FINAL_CLOSES.has(code);
    const notice = this.lastNotice;
    this.lastNotice = undefined;
    this.state = willReconnect ? "reconnecting" : "closed";
    this.emit("close", { code, reason, kind: closeKind(code), notice, willReconnect });
    if (willReconnect) this.scheduleReconnect(1);
  }

  private scheduleReconnect(attempt: number): void {
    const r = this.reconnect;
    if (r === false || this.userClosed) return;
    if (attempt > r.maxAttempts) {
      this.state = "closed";
      this.emit("gave_up", new ConnectError(`gave up reconnecting after ${r.maxAttempts} attempts`));
      return;
    }
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * r.factor ** (attempt - 1));
    // Equal jitter: between half the delay and the delay, so many clients do not come back in step.
    const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
    this.emit("reconnecting", { attempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      if (this.userClosed) return;
      this.open().then(
        (welcome) => {
          if (this.userClosed) {
            this.socket?.close(CloseCode.NORMAL);
            return;
          }
          this.state = "open";
          this.emit("resumed", welcome);
        },
        (e: unknown) => {
          const err = e instanceof OrreryError ? e : new ConnectError(String(e));
          this.emit("reconnect_failed", { attempt, error: err });
          // Credentials the server refuses will not get better by waiting.
          if (err instanceof ApiError && err.status === 401) {
            this.state = "closed";
            this.emit("gave_up", err);
            return;
          }
          if (err instanceof StateError) {
            this.state = "closed";
            this.emit("gave_up", err);
            return;
          }
          this.scheduleReconnect(attempt + 1);
        },
      );
    }, delayMs);
  }

  /** Closes the session for good (code 1000), without reconnecting; resolves once the socket is closed. */
  close(): Promise<void> {
    this.userClosed = true;
    clearTimeout(this.reconnectTimer);
    const ws = this.socket;
    if (!ws) {
      this.state = "closed";
      return Promise.resolve();
    }
    const closed = this.next("close").then(() => undefined);
    ws.close(CloseCode.NORMAL);
    return closed;
  }

  /** Drops the connection as a network failure would (for tests and "reconnect now" buttons): the session
   * reconnects and resumes when reconnecting is on. */
  dropConnection(): void {
    const ws = this.socket;
    if (!ws) return;
    // 4999: an application code the server echoes; the session treats it like any unexpected close.
    ws.close(4999, "dropped by the client");
  }

  /** Whether a socket is open and welcomed. */
  get connected(): boolean {
    return this.socket !== undefined && this.socket.readyState === OPEN;
  }

  /** Sends a message without waiting for a reply. Throws ConnectionClosedError when not connected. */
  send(msg: ClientMessage, id?: number): void {
    const ws = this.socket;
    if (!ws || ws.readyState !== OPEN) throw new ConnectionClosedError(`not connected (state ${this.state})`);
    const frame = id === undefined ? msg : { ...msg, id };
    ws.send(encodeClient(frame, this.encoding));
  }

  /**
   * Sends a message with a fresh `id` and resolves with the server message carrying that id; rejects with
   * ServerError (an `error` reply), TimeoutError, or ConnectionClosedError.
   */
  request(msg: ClientMessage, timeoutMs = this.requestTimeoutMs): Promise<ServerMessage> {
    const id = this.nextId++;
    return new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(id, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.send(msg, id);
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(e instanceof OrreryError ? e : new OrreryError(String(e)));
      }
    });
  }

  private async expect<T extends ServerMessage["type"]>(
    msg: ClientMessage,
    type: T,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    const reply = await this.request(msg);
    if (reply.type !== type) throw new OrreryError(`expected ${type} in reply to ${msg.type}, got ${reply.type}`);
    return reply as Extract<ServerMessage, { type: T }>;
  }

  /**
   * Resolves with the mirror as soon as `check` holds for it (at once if it already does), checked again at every
   * keyframe and applied delta; rejects with a TimeoutError after `timeoutMs`.
   */
  mirrorWhere(check: (m: SectorMirror) => boolean = () => true, timeoutMs = this.requestTimeoutMs): Promise<SectorMirror> {
    return new Promise((resolve, reject) => {
      if (this.mirror && check(this.mirror)) {
        resolve(this.mirror);
        return;
      }
      const timer = setTimeout(() => {
        off();
        reject(new TimeoutError(0, timeoutMs));
      }, timeoutMs);
      const off = this.on("mirror", (m) => {
        if (check(m)) {
          clearTimeout(timer);
          off();
          resolve(m);
        }
      });
    });
  }

  /** `ping` → `pong`; resolves with the round trip in ms. */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.expect({ type: "ping" }, "pong");
    return performance.now() - t0;
  }

  /** `resync` → a keyframe of the current sector (the mirror is rebuilt from it). */
  resync(): Promise<KeyframeMessage> {
    return this.expect({ type: "resync" }, "keyframe");
  }

  /** Sets the ship's velocity (no reply: it shows in the next delta's `steers`). */
  thrust(vx: number, vy: number): void {
    this.send({ type: "thrust", vx, vy });
  }

  /** Takes a warp of the current sector; resolves with `warped` (the new sector's keyframe follows). */
  warp(to: Uuid): Promise<WarpedMessage> {
    return this.expect({ type: "warp", to }, "warped");
  }

  /** Buys or sells at a station of the current sector. Pass a `key` to make a retry safe (idempotent). */
  trade(station: Uuid, commodity: Commodity, side: Side, qty: number, key?: string): Promise<TradeResultMessage> {
    return this.expect({ type: "trade", station, commodity, side, qty, key: key ?? null }, "trade_result");
  }

  /** Says something on a channel (the server sends it back as a `chat` event, to everyone on the channel). */
  chat(channel: ChatChannel, text: string): void {
    this.send({ type: "chat", channel, text });
  }
}
