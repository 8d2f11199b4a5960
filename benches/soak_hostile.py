#!/usr/bin/env python3
"""Hostile and flaky clients for the soak (benches/soak.sh): python3 standard library only, 127.0.0.1 only.

For `--duration` seconds, a few threads repeat, each at a modest rate (a few actions a second in all, so that this
driver never is what loads the server):

- reconnect: log a new guest in, connect, thrust and see it in a delta, ping, stop, close (1000), reconnect with the
  same token (same character, ship where it was left); every few cycles a third connection with the same token
  supersedes the second one (close 4001);
- flood: connect and send thousands of WebSocket pings at once (far above any --max-msgs-per-sec / --msg-burst): the
  server must close with 1008;
- slowloris: HTTP connections that send their request head a byte a second and never finish it: the server must
  close them within --http-header-timeout;
- silent: connect, then neither read nor write: the server must close the connection within --ws-timeout (close
  4002, or a reset when the sector's deltas filled the client's receive window); the connection's TCP state is
  watched without reading it;
- chat: a chat line with U+202E (a bidirectional override) must get an `invalid_chat` error, and the connection
  must stay usable.

Every expectation met and every surprise is counted; a JSON summary goes to stdout (and to --json) at the end.
Guests are put in one quiet sector (the last non-nexus sector of GET /v1/world, which the load tester's rooms, the
first sectors, do not use), so the silent clients see few deltas (only the reconnect clients' ships); the server
needs --allow-spawn-choice.

    python3 benches/soak_hostile.py --server 127.0.0.1:7880 --duration 3600 [--json out.json]

Exit code: 0 when there was no surprise, 3 when there was at least one, 2 when the server could not be reached.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "python"))
import orrery_client as oc  # noqa: E402

TCP_ESTABLISHED = 1
MAX_EXAMPLES = 40


class Tally:
    """Thread-safe counters of expectations met and surprises, with a few examples of each surprise."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expected: Counter[str] = Counter()
        self.surprises: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()
        self.cycles: Counter[str] = Counter()
        self.examples: list[dict] = []
        self.timings: dict[str, list[float]] = {}

    def ok(self, what: str) -> None:
        with self.lock:
            self.expected[what] += 1

    def note(self, what: str) -> None:
        with self.lock:
            self.notes[what] += 1

    def cycle(self, worker: str) -> None:
        with self.lock:
            self.cycles[worker] += 1

    def timing(self, what: str, secs: float) -> None:
        with self.lock:
            self.timings.setdefault(what, []).append(secs)

    def surprise(self, what: str, detail: str) -> None:
        with self.lock:
            self.surprises[what] += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append({"t": round(time.monotonic() - STARTED, 1), "what": what, "detail": detail[:300]})
        print(f"[soak_hostile] surprise {what}: {detail[:300]}", file=sys.stderr, flush=True)

    def summary(self, args: argparse.Namespace, elapsed: float, server_up: bool) -> dict:
        with self.lock:
            timings = {
                k: {"n": len(v), "min": round(min(v), 2), "mean": round(sum(v) / len(v), 2), "max": round(max(v), 2)}
                for k, v in sorted(self.timings.items()) if v
            }
            return {
                "schema": "orrery-soak-hostile/1",
                "server": args.server,
                "duration_secs": round(elapsed, 1),
                "server_up_at_end": server_up,
                "cycles": dict(sorted(self.cycles.items())),
                "expected": dict(sorted(self.expected.items())),
                "expected_total": sum(self.expected.values()),
                "surprises": dict(sorted(self.surprises.items())),
                "surprises_total": sum(self.surprises.values()),
                "notes": dict(sorted(self.notes.items())),
                "timings_secs": timings,
                "surprise_examples": list(self.examples),
            }


STARTED = time.monotonic()
TALLY = Tally()
STOP = threading.Event()


class Target:
    def __init__(self, host: str, port: int, sector: str | None):
        self.host, self.port, self.sector = host, port, sector

    def http(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def login(self, name: str) -> dict:
        body: dict = {"name": name}
        if self.sector:
            body["sector"] = self.sector
        status, data = self.http("POST", "/v1/auth/guest", body)
        if status != 200:
            raise oc.ProtocolFailure(f"POST /v1/auth/guest: HTTP {status} {data[:200]!r}")
        return json.loads(data)

    def open(self, token: str, retry_409: float = 5.0) -> oc.Session:
        """Opens a JSON session and reads its welcome and keyframe (retrying a 409 character_online briefly)."""
        path = "/v1/ws?token=" + urllib.parse.quote(token, safe="")
        deadline = time.monotonic() + retry_409
        while True:
            try:
                ws = oc.WebSocket(self.host, self.port, path, [oc.SUBPROTOCOL])
                break
            except oc.HandshakeRefused as e:
                code = e.error.get("code") if isinstance(e.error, dict) else None
                if e.status == 409 and code == "character_online" and time.monotonic() < deadline:
                    TALLY.note("retried_409_character_online")
                    time.sleep(0.1)
                    continue
                raise
        s = oc.Session(ws)
        w = s.recv_json(5)
        oc.check(w["type"] == "welcome", f"first message is {w['type']!r}, not welcome")
        k = s.recv_json(5)
        oc.check(k["type"] == "keyframe", f"second message is {k['type']!r}, not keyframe")
        oc.check(s.character["ship"] in s.ships, "my ship is not in my first keyframe")
        return s


def close_quietly(s: oc.Session | oc.WebSocket | socket.socket | None) -> None:
    try:
        if isinstance(s, oc.Session):
            s.ws.sock.close()
        elif isinstance(s, oc.WebSocket):
            s.sock.close()
        elif s is not None:
            s.close()
    except OSError:
        pass


def pause(secs: float) -> bool:
    """Sleeps unless the run is over; returns whether to go on."""
    return not STOP.wait(secs)


def guarded(worker: str, fn) -> None:
    """Runs one cycle of a worker; an unexpected exception is a surprise, not the end of the worker."""
    try:
        fn()
    except oc.ProtocolFailure as e:
        TALLY.surprise(f"{worker}_protocol_failure", str(e))
    except oc.HandshakeRefused as e:
        TALLY.surprise(f"{worker}_handshake_refused_{e.status}", str(e))
    except oc.WebSocketClosed as e:
        TALLY.surprise(f"{worker}_closed_{e.code}", str(e))
    except TimeoutError as e:
        TALLY.surprise(f"{worker}_timeout", repr(e))
    except (ConnectionError, OSError) as e:
        TALLY.surprise(f"{worker}_connection_{type(e).__name__}", repr(e))
    except Exception as e:  # noqa: BLE001 - counted and reported, the soak goes on
        TALLY.surprise(f"{worker}_exception_{type(e).__name__}", repr(e))
    finally:
        TALLY.cycle(worker)


def wait_close_code(ws: oc.WebSocket, timeout: float) -> tuple[int | None, int, str]:
    """Reads (discarding data) until the server's close frame: (code, pongs seen, how it ended)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, len(ws.control_pongs), "timeout"
        try:
            ws.recv(left)
        except oc.WebSocketClosed as e:
            return e.code, len(ws.control_pongs), "close_frame"
        except TimeoutError:
            return None, len(ws.control_pongs), "timeout"
        except ConnectionError as e:
            return None, len(ws.control_pongs), f"connection_{type(e).__name__}"
        except OSError as e:
            return None, len(ws.control_pongs), f"os_{type(e).__name__}"


def drain_frames(ws: oc.WebSocket, timeout: float) -> tuple[list[int], int | None, str]:
    """Reads a closed (or closing) connection to its end without writing, and parses the server's frames: (opcodes
    in order, the close frame's code or None, how the stream ended)."""
    buf = bytearray(ws.buf)
    deadline = time.monotonic() + timeout
    how = "timeout"
    while time.monotonic() < deadline:
        ws.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = ws.sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            how = "reset"
            break
        if not chunk:
            how = "eof"
            break
        buf += chunk
    opcodes: list[int] = []
    code = None
    i = 0
    while i + 2 <= len(buf):
        op, n, off = buf[i] & 0x0F, buf[i + 1] & 0x7F, i + 2
        if n == 126:
            n, off = struct.unpack("!H", buf[off:off + 2])[0], off + 2
        elif n == 127:
            n, off = struct.unpack("!Q", buf[off:off + 8])[0], off + 8
        if off + n > len(buf):
            how += "_partial_frame"
            break
        opcodes.append(op)
        if op == oc.OP_CLOSE and n >= 2:
            code = struct.unpack("!H", buf[off:off + 2])[0]
        i = off + n
    return opcodes, code, how


# -- reconnect ------------------------------------------------------------------------------------------------------


def reconnect_cycle(t: Target, n: int, rng: random.Random) -> None:
    data = t.login(f"soak-r{n}")
    TALLY.ok("login")
    token, character = data["token"], data["character_id"]
    s = t.open(token)
    oc.check(s.character["id"] == character, "welcome names another character than the login")
    TALLY.ok("session_opened")
    # Play a little: thrust, see it in a delta, ping, stop.
    vx, vy = float(rng.choice((-30, -20, 20, 30))), float(rng.choice((-30, -20, 20, 30)))
    s.send({"type": "thrust", "vx": vx, "vy": vy})
    s.wait_for(lambda m: m["type"] == "delta" and (s.my_ship()["vx"], s.my_ship()["vy"]) == (vx, vy), 3.0,
               "a delta with my thrust")
    TALLY.ok("thrust_visible")
    rid = s.request({"type": "ping"})
    p = s.reply(rid, ("pong",))
    oc.check(p["type"] == "pong", f"ping answered by {p}")
    TALLY.ok("pong")
    s.send({"type": "thrust", "vx": 0.0, "vy": 0.0})
    s.wait_for(lambda m: m["type"] == "delta" and (s.my_ship()["vx"], s.my_ship()["vy"]) == (0.0, 0.0), 3.0,
               "a delta with my ship stopped")
    s.pump(0.2)
    left_at = (s.sector, s.my_ship()["x"], s.my_ship()["y"])
    code, _reason = s.ws.close()
    if code == 1000:
        TALLY.ok("closed_1000")
    else:
        TALLY.surprise("reconnect_close_code", f"closing handshake answered with {code}")
    if not pause(rng.uniform(0.2, 1.0)):
        return
    # Reconnect with the same token: the same character, its ship parked where it was left.
    s2 = t.open(token)
    try:
        oc.check(s2.character["id"] == character, "reconnected to another character")
        TALLY.ok("reconnect_same_character")
        back = (s2.sector, s2.my_ship()["x"], s2.my_ship()["y"])
        if back[0] == left_at[0] and abs(back[1] - left_at[1]) < 0.01 and abs(back[2] - left_at[2]) < 0.01:
            TALLY.ok("reconnect_same_position")
        else:
            TALLY.surprise("reconnect_moved", f"left at {left_at}, back at {back}")
        if n % 5 == 0:
            # A third connection with the same token supersedes the open one.
            s3 = t.open(token)
            code, _pongs, how = wait_close_code(s2.ws, 5.0)
            if code == 4001:
                TALLY.ok("superseded_4001")
            else:
                TALLY.surprise("supersede_close_code", f"old session ended by {how}, code {code}")
            s2 = s3
        code, _reason = s2.ws.close()
        if code == 1000:
            TALLY.ok("closed_1000")
        else:
            TALLY.surprise("reconnect_close_code", f"closing handshake answered with {code}")
    finally:
        close_quietly(s2)


def reconnect_worker(t: Target, interval: float, seed: int) -> None:
    rng = random.Random(seed)
    n = 0
    while pause(interval):
        n += 1
        guarded("reconnect", lambda: reconnect_cycle(t, n, rng))


# -- ping flood -----------------------------------------------------------------------------------------------------


def ping_frames(count: int) -> bytes:
    """`count` masked, empty WebSocket pings (6 bytes each)."""
    out = bytearray()
    for _ in range(count):
        out += bytes([0x80 | oc.OP_PING, 0x80]) + os.urandom(4)
    return bytes(out)


def flood_cycle(t: Target, token: str, frames: bytes) -> None:
    s = t.open(token)
    try:
        try:
            s.ws.sock.settimeout(10)
            s.ws.sock.sendall(frames)
        except (BrokenPipeError, ConnectionResetError):
            TALLY.note("flood_send_cut_short")  # the server closed while we were still sending: read what came
        code, pongs, how = wait_close_code(s.ws, 10.0)
        if code == 1008:
            TALLY.ok("flood_closed_1008")
        else:
            TALLY.surprise("flood_not_closed_1008", f"ended by {how}, code {code}")
        TALLY.timing("flood_pongs_before_close", float(pongs))
    finally:
        close_quietly(s)


def flood_worker(t: Target, interval: float, pings: int) -> None:
    frames = ping_frames(pings)
    token = None
    while pause(interval):
        def cycle() -> None:
            nonlocal token
            if token is None:
                token = t.login("soak-flood")["token"]
            flood_cycle(t, token, frames)
        guarded("flood", cycle)


# -- slowloris ------------------------------------------------------------------------------------------------------


def slowloris_cycle(t: Target, header_timeout: float) -> None:
    sock = socket.create_connection((t.host, t.port), timeout=5)
    started = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 10_000  # never finished
    limit = header_timeout + 3.0
    give_up = header_timeout + 15.0
    try:
        for i in range(len(head)):
            if STOP.is_set():
                return
            try:
                sock.sendall(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break  # closed
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                if not data:
                    break  # closed
                # A response (e.g. 408) before the close: keep reading until the close.
                TALLY.note("slowloris_response_" + data.split(b"\r\n", 1)[0].decode("latin-1")[:40])
            if time.monotonic() - started > give_up:
                TALLY.surprise("slowloris_not_closed", f"still open after {give_up:.0f} s, {i + 1} bytes sent")
                return
        closed_after = time.monotonic() - started
        TALLY.timing("slowloris_closed_after", closed_after)
        if closed_after <= limit:
            TALLY.ok("slowloris_closed")
        else:
            TALLY.surprise("slowloris_closed_late", f"closed after {closed_after:.1f} s (header timeout {header_timeout} s)")
    finally:
        close_quietly(sock)


def slowloris_worker(t: Target, interval: float, header_timeout: float) -> None:
    while pause(interval):
        guarded("slowloris", lambda: slowloris_cycle(t, header_timeout))


# -- silent ---------------------------------------------------------------------------------------------------------


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def silent_cycle(t: Target, token: str, ws_timeout: float) -> None:
    s = t.open(token)
    try:
        silent_since = time.monotonic()  # the last bytes we sent were the upgrade request
        limit = ws_timeout + 3.0  # the liveness sweep runs once a second
        give_up = ws_timeout + 20.0
        while tcp_state(s.ws.sock) == TCP_ESTABLISHED:
            if time.monotonic() - silent_since > give_up:
                TALLY.surprise("silent_not_closed", f"still open after {give_up:.0f} s of silence")
                return
            if STOP.wait(0.25):
                return
        closed_after = time.monotonic() - silent_since
        TALLY.timing("silent_closed_after", closed_after)
        if closed_after < ws_timeout - 1.0:
            TALLY.surprise("silent_closed_early", f"closed after {closed_after:.1f} s (--ws-timeout {ws_timeout} s)")
        elif closed_after <= limit:
            TALLY.ok("silent_closed_in_time")
        else:
            TALLY.surprise("silent_closed_late", f"closed after {closed_after:.1f} s (--ws-timeout {ws_timeout} s)")
        # Now read (without answering anything: the socket is closed) what the server sent meanwhile: its pings,
        # then a close frame 4002, or, when the deltas of the sector had filled this client's receive window so that
        # the close frame could not be sent, a reset.
        opcodes, code, how = drain_frames(s.ws, 5.0)
        if code == 4002:
            TALLY.ok("silent_close_4002")
        elif how.startswith("reset"):
            TALLY.ok("silent_reset_window_full")
        else:
            TALLY.surprise("silent_close_code", f"ended by {how}, code {code}, frames {dict(Counter(opcodes))}")
        TALLY.timing("silent_pings_received", float(opcodes.count(oc.OP_PING)))
    finally:
        close_quietly(s)


def silent_worker(t: Target, interval: float, ws_timeout: float) -> None:
    token = None
    while pause(interval):
        def cycle() -> None:
            nonlocal token
            if token is None:
                token = t.login("soak-silent")["token"]
            silent_cycle(t, token, ws_timeout)
        guarded("silent", cycle)


# -- chat with a bidirectional override ------------------------------------------------------------------------------


def chat_cycle(t: Target, token: str) -> None:
    s = t.open(token)
    try:
        rid = s.request({"type": "chat", "channel": "sector", "text": "gg \u202eevil"})
        r = s.wait_for(lambda m: m.get("id") == rid or (m["type"] == "chat" and m.get("from") == s.character["id"]),
                       3.0, "an answer to the chat with U+202E")
        if r["type"] == "error" and r.get("code") == "invalid_chat":
            TALLY.ok("chat_bidi_refused")
        else:
            TALLY.surprise("chat_bidi_not_refused", json.dumps(r)[:200])
        rid = s.request({"type": "ping"})
        p = s.reply(rid, ("pong",))
        if p["type"] == "pong":
            TALLY.ok("chat_connection_still_open")
        else:
            TALLY.surprise("chat_ping_after_refusal", json.dumps(p)[:200])
        code, _reason = s.ws.close()
        if code != 1000:
            TALLY.surprise("chat_close_code", f"closing handshake answered with {code}")
    finally:
        close_quietly(s)


def chat_worker(t: Target, interval: float) -> None:
    token = None
    while pause(interval):
        def cycle() -> None:
            nonlocal token
            if token is None:
                token = t.login("soak-chat")["token"]
            chat_cycle(t, token)
        guarded("chat", cycle)


# -- main -----------------------------------------------------------------------------------------------------------


def quiet_sector(t: Target) -> str | None:
    """The last sector of the last non-nexus region (the load tester's rooms are the first ones)."""
    status, body = t.http("GET", "/v1/world")
    if status != 200:
        raise oc.ProtocolFailure(f"GET /v1/world: HTTP {status}")
    regions = [r for r in json.loads(body)["regions"] if not r.get("nexus")]
    sectors = [s["id"] for r in regions for s in r["sectors"]]
    return sectors[-1] if sectors else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default="127.0.0.1:7880", help="HOST:PORT (127.0.0.1 only)")
    ap.add_argument("--duration", type=float, default=3600.0, help="seconds to run (default 3600)")
    ap.add_argument("--json", help="also write the summary here")
    ap.add_argument("--ws-timeout", type=float, default=30.0, help="the server's --ws-timeout (default 30)")
    ap.add_argument("--http-header-timeout", type=float, default=10.0,
                    help="the server's --http-header-timeout (default 10)")
    ap.add_argument("--flood-pings", type=int, default=3000, help="pings per flood (default 3000)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    host, _, port_s = args.server.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        print("soak_hostile: only 127.0.0.1 is allowed", file=sys.stderr)
        return 2
    t = Target("127.0.0.1", int(port_s), None)
    try:
        t.sector = quiet_sector(t)
    except (OSError, ValueError, KeyError, oc.ProtocolFailure) as e:
        print(f"soak_hostile: cannot read the world from {args.server}: {e}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else int(time.time())
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    # (name, target, args): intervals are the pauses between two cycles of a worker.
    workers = [
        ("reconnect", reconnect_worker, (t, 1.0, seed)),
        ("flood", flood_worker, (t, 15.0, args.flood_pings)),
        ("slowloris-1", slowloris_worker, (t, 1.0, args.http_header_timeout)),
        ("slowloris-2", slowloris_worker, (t, 4.0, args.http_header_timeout)),
        ("silent", silent_worker, (t, 2.0, args.ws_timeout)),
        ("chat", chat_worker, (t, 5.0)),
    ]
    threads = [threading.Thread(target=fn, args=a, name=name, daemon=True) for name, fn, a in workers]
    for th in threads:
        th.start()
    end = STARTED + args.duration
    while not STOP.is_set() and time.monotonic() < end:
        STOP.wait(min(1.0, max(0.0, end - time.monotonic())))
    STOP.set()
    for th in threads:
        th.join(timeout=max(15.0, args.ws_timeout))
    try:
        server_up = t.http("GET", "/healthz", timeout=5)[0] == 200
    except OSError:
        server_up = False
    summary = TALLY.summary(args, time.monotonic() - STARTED, server_up)
    summary["still_running_workers"] = [th.name for th in threads if th.is_alive()]
    text = json.dumps(summary, indent=2)
    print(text, flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0 if summary["surprises_total"] == 0 and server_up else 3


if __name__ == "__main__":
    sys.exit(main())
