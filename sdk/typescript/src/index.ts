// @orrery/sdk: a TypeScript client for Orrery's wire protocol v1 (browsers and node >= 20).

export * from "./types.js";
export * from "./errors.js";
export { Reader, Writer, parseUuid } from "./postcard.js";
export {
  CLIENT_SCHEMA,
  SERVER_SCHEMA,
  decodeServer,
  decodeServerBinary,
  decodeServerJson,
  encodeClient,
  encodeClientBinary,
  encodeClientJson,
  type FieldType,
  type Fields,
} from "./codec.js";
export { SectorMirror, type AcceptResult } from "./mirror.js";
export {
  OrreryApi,
  type ApiOptions,
  type Character,
  type CharacterList,
  type Credentials,
  type FetchLike,
  type GuestLogin,
  type Me,
  type Registered,
  type TokenPair,
  type World,
} from "./api.js";
export {
  OrrerySession,
  closeKind,
  type CloseInfo,
  type CloseKind,
  type ReconnectOptions,
  type SessionEvents,
  type SessionOptions,
  type SessionState,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
export { Emitter, type Listener } from "./events.js";
