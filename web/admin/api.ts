// The admin API client: password login, bearer tokens kept in sessionStorage, refresh before expiry and on a 401,
// and errors carrying the server's `{"error": {"code", "message"}}`.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Tokens {
  access: string;
  refresh: string;
  /** ms since the epoch when the access token expires. */
  expires: number;
}

const KEY = "orrery-admin-tokens";

function load(): Tokens | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const t = JSON.parse(raw) as Tokens;
    return typeof t.access === "string" && typeof t.refresh === "string" ? t : null;
  } catch {
    return null;
  }
}

let tokens: Tokens | null = load();
let refreshTimer: number | undefined;
let refreshing: Promise<boolean> | null = null;
/** Called when the session is over (refresh refused): the page shows the login form. */
export let onSignedOut: (why: string) => void = () => {};
export function setSignedOutHandler(f: (why: string) => void): void {
  onSignedOut = f;
}

function store(t: Tokens | null): void {
  tokens = t;
  if (refreshTimer !== undefined) clearTimeout(refreshTimer);
  refreshTimer = undefined;
  if (t) {
    sessionStorage.setItem(KEY, JSON.stringify(t));
    // A minute before it expires, or after three quarters of its life when it is short.
    const life = t.expires - Date.now();
    const inMs = Math.max(1_000, Math.min(life - 60_000, life * 0.75));
    refreshTimer = window.setTimeout(() => void refresh(), inMs);
  } else {
    sessionStorage.removeItem(KEY);
  }
}

export function signedIn(): boolean {
  return tokens !== null;
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = String(body.error.code ?? code);
      message = String(body.error.message ?? message);
    }
  } catch {
    /* not JSON: keep the status */
  }
  return new ApiError(res.status, code, message);
}

interface Pair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

function keep(pair: Pair): void {
  store({ access: pair.access_token, refresh: pair.refresh_token, expires: Date.now() + pair.expires_in * 1000 });
}

export async function login(username: string, password: string): Promise<void> {
  const res = await fetch("/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw await errorOf(res);
  keep((await res.json()) as Pair);
}

/** Rotates the refresh token; false (and signed out) when it is refused. */
export function refresh(): Promise<boolean> {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const t = tokens;
    if (!t) return false;
    try {
      const res = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: t.refresh }),
      });
      if (!res.ok) {
        store(null);
        onSignedOut("Your session ended; sign in again.");
        return false;
      }
      keep((await res.json()) as Pair);
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function logout(): Promise<void> {
  const t = tokens;
  store(null);
  if (t) {
    await fetch("/v1/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: t.refresh }),
    }).catch(() => undefined);
  }
}

/** A call of the API with the bearer token; retried once after a refresh when the token was refused. */
export async function call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const t = tokens;
    if (!t) throw new ApiError(401, "unauthorized", "not signed in");
    const headers: Record<string, string> = { Authorization: `Bearer ${t.access}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401 && attempt === 0 && (await refresh())) continue;
    if (!res.ok) {
      const err = await errorOf(res);
      if (res.status === 401) {
        store(null);
        onSignedOut("Your session ended; sign in again.");
      }
      throw err;
    }
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }
}

/** `/metrics` (no token needed): every sample as `name{labels}` -> value. */
export async function metrics(): Promise<Map<string, number>> {
  const res = await fetch("/metrics");
  if (!res.ok) throw await errorOf(res);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    if (cut <= 0) continue;
    const value = Number(line.slice(cut + 1));
    if (Number.isFinite(value)) out.set(line.slice(0, cut), value);
  }
  return out;
}
