// Typed errors of the SDK. Every failure the SDK reports is one of these (an `OrreryError`), never a bare string.

/** Base class of every error the SDK throws or rejects with. */
export class OrreryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A frame that could not be decoded (bad JSON, bad postcard, an unknown message type, a value out of range). */
export class DecodeError extends OrreryError {
  constructor(
    message: string,
    /** Byte offset in a binary frame where decoding stopped, when known. */
    readonly offset?: number,
  ) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`);
  }
}

/** A client message that cannot be encoded (a value out of its type's range). */
export class EncodeError extends OrreryError {}

/** An HTTP endpoint refused the request: `{"error": {"code", "message"}}` with its status. */
export class ApiError extends OrreryError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds from `Retry-After`, when the server sent it. */
    readonly retryAfter?: number,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** The server answered a request with an `error` frame. `code` is stable (docs/protocol.md). */
export class ServerError extends OrreryError {
  constructor(
    readonly code: string,
    readonly serverMessage: string,
    readonly id?: number,
  ) {
    super(`${code}: ${serverMessage}`);
  }
}

/** No reply to a request (or no awaited state) within its timeout. `id` is the request's, 0 for a state wait. */
export class TimeoutError extends OrreryError {
  constructor(
    readonly id: number,
    readonly timeoutMs: number,
  ) {
    super(id === 0 ? `not reached within ${timeoutMs} ms` : `no reply to request ${id} within ${timeoutMs} ms`);
  }
}

/** The connection closed (or was not open) before the reply came. */
export class ConnectionClosedError extends OrreryError {
  constructor(
    message: string,
    readonly code?: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** The WebSocket could not be opened or the session did not start (no welcome). */
export class ConnectError extends OrreryError {
  constructor(
    message: string,
    readonly closeCode?: number,
  ) {
    super(message);
  }
}

/** An operation that needs credentials (or a connection) was called without them. */
export class StateError extends OrreryError {}
