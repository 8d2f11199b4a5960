// The HTTP side of Orrery: guest login, accounts (register, password login, refresh with rotation, logout),
// characters, the world map. Works with any WHATWG `fetch` (browsers, node >= 18).

import { ApiError, OrreryError, StateError } from "./errors.js";
import type { Uuid } from "./types.js";

export interface GuestLogin {
  token: string;
  account_id: Uuid;
  character_id: Uuid;
  name: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  account_id: Uuid;
  token_type: "Bearer";
  /** Seconds the access token is valid for. */
  expires_in: number;
}

export interface Registered {
  account_id: Uuid;
  username: string;
}

export interface Character {
  id: Uuid;
  account_id: Uuid;
  name: string;
}

export interface CharacterList {
  characters: Character[];
  /** Most characters an account may have. */
  limit: number;
}

export interface Me {
  account: {
    id: Uuid;
    kind: "guest" | "registered";
    username: string | null;
    created_at: number;
    capabilities: string[];
  };
  characters: Character[];
}

export interface World {
  regions: { id: Uuid; name: string; nexus: boolean; sectors: { id: Uuid; name: string }[] }[];
}

/** What the SDK holds to open sessions and call the API as someone. */
export type Credentials =
  | { kind: "guest"; token: string; characterId: Uuid; accountId: Uuid; name: string }
  | {
      kind: "account";
      accessToken: string;
      refreshToken: string;
      accountId: Uuid;
      /** When the access token expires, in ms since the epoch (local clock). */
      expiresAt: number;
    };

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:7700`. */
  baseUrl: string;
  /** A fetch implementation (default: the global one). */
  fetch?: FetchLike;
  /** Credentials to start with (e.g. a guest token kept from an earlier run, to come back to the same character). */
  credentials?: Credentials;
}

/** Refresh the access token this long before it expires. */
const REFRESH_MARGIN_MS = 30_000;

/** Orrery's HTTP API. Keeps the current credentials and rotates refresh tokens. */
export class OrreryApi {
  readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;
  credentials: Credentials | undefined;
  /** One refresh at a time: concurrent callers share it (a refresh token is good for one use). */
  private refreshing: Promise<Credentials> | undefined;

  constructor(options: ApiOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    const f = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new StateError("no fetch implementation: pass `fetch` in the options");
    this.fetchImpl = (input, init) => f(input, init);
    this.credentials = options.credentials;
  }

  private async call<T>(method: string, path: string, body?: unknown, bearer?: string): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, "network", `${method} ${path}: ${(e as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let code = "http_error";
      let message = text || res.statusText;
      try {
        const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
        if (typeof parsed.error?.code === "string") code = parsed.error.code;
        if (typeof parsed.error?.message === "string") message = parsed.error.message;
      } catch {
        // Not JSON: keep the raw text.
      }
      const retry = Number(res.headers.get("retry-after"));
      throw new ApiError(res.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : undefined);
    }
    if (res.status === 204 || text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, "invalid_response", `${method} ${path}: the answer is not JSON`);
    }
  }

  /** `POST /v1/auth/guest`: a guest account with one character; its token becomes the credentials. */
  async guest(name?: string): Promise<GuestLogin> {
    const g = await this.call<GuestLogin>("POST", "/v1/auth/guest", name === undefined ? undefined : { name });
    this.credentials = {
      kind: "guest",
      token: g.token,
      characterId: g.character_id,
      accountId: g.account_id,
      name: g.name,
    };
    return g;
  }

  /** `POST /v1/accounts`: registers an account (does not log in). */
  register(username: string, password: string): Promise<Registered> {
    return this.call<Registered>("POST", "/v1/accounts", { username, password });
  }

  private keep(pair: TokenPair): TokenPair {
    this.credentials = {
      kind: "account",
      accessToken: pair.access_token,
      refreshToken: pair.refresh_token,
      accountId: pair.account_id,
      expiresAt: Date.now() + pair.expires_in * 1000,
    };
    return pair;
  }

  /** `POST /v1/auth/login`: a token pair, kept as the credentials. */
  async login(username: string, password: string): Promise<TokenPair> {
    return this.keep(await this.call<TokenPair>("POST", "/v1/auth/login", { username, password }));
  }

  /** `POST /v1/auth/refresh`: rotates the refresh token (the old one stops working) and renews the access token. */
  async refresh(): Promise<TokenPair> {
    const c = this.credentials;
    if (c?.kind !== "account") throw new StateError("refresh needs an account login");
    return this.keep(await this.call<TokenPair>("POST", "/v1/auth/refresh", { refresh_token: c.refreshToken }));
  }

  /** `POST /v1/auth/logout`: revokes the refresh token (and every one of its login); forgets the credentials. */
  async logout(): Promise<void> {
    const c = this.credentials;
    if (c?.kind === "account") await this.call<void>("POST", "/v1/auth/logout", { refresh_token: c.refreshToken });
    this.credentials = undefined;
  }

  /** `POST /v1/accounts/upgrade`: the logged-in guest becomes a registered account, keeping its character. */
  async upgrade(username: string, password: string): Promise<TokenPair & { username: string }> {
    const token = await this.token();
    const pair = await this.call<TokenPair & { username: string }>(
      "POST",
      "/v1/accounts/upgrade",
      { username, password },
      token,
    );
    this.keep(pair);
    return pair;
  }

  /**
   * The bearer token for the next request or WebSocket: the guest token, or the access token (refreshed first
   * when it expires within 30 s).
   */
  async token(): Promise<string> {
    const c = this.credentials;
    if (!c) throw new StateError("not logged in: call guest() or login() first");
    if (c.kind === "guest") return c.token;
    if (c.expiresAt - Date.now() < REFRESH_MARGIN_MS) return this.sharedRefresh();
    return c.accessToken;
  }

  private async sharedRefresh(): Promise<string> {
    this.refreshing ??= this.refresh()
      .then(() => this.credentials as Credentials)
      .finally(() => {
        this.refreshing = undefined;
      });
    const c = await this.refreshing;
    if (c.kind !== "account") throw new OrreryError("refresh produced no account credentials");
    return c.accessToken;
  }

  /** `GET /v1/characters`. */
  async characters(): Promise<CharacterList> {
    return this.call<CharacterList>("GET", "/v1/characters", undefined, await this.token());
  }

  /** `POST /v1/characters`: a new character of the logged-in account. */
  async createCharacter(name: string): Promise<Character> {
    return this.call<Character>("POST", "/v1/characters", { name }, await this.token());
  }

  /** `GET /v1/accounts/me`. */
  async me(): Promise<Me> {
    return this.call<Me>("GET", "/v1/accounts/me", undefined, await this.token());
  }

  /** `GET /v1/world`: regions and their sectors. */
  world(): Promise<World> {
    return this.call<World>("GET", "/v1/world");
  }

  /** The WebSocket URL of a session (`ws:` or `wss:` after the base URL's scheme). */
  async socketUrl(character?: Uuid): Promise<string> {
    const token = await this.token();
    const url = new URL(`${this.baseUrl}/v1/ws`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", token);
    if (character) url.searchParams.set("character", character);
    return url.toString();
  }
}
