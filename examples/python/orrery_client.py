#!/usr/bin/env python3
"""A complete Orrery client in Python 3.11, standard library only, written from docs/protocol.md.

It logs in as a guest (or reuses a saved token), opens the WebSocket with the `orrery.json.v1` subprotocol and then
exercises the protocol: thrust and watch the deltas, stop, trade at a station, chat, warp, send bad messages, ping,
and close cleanly. The WebSocket client (handshake and framing, RFC 6455) is implemented here, with no dependencies.

    python3 examples/python/orrery_client.py --server 127.0.0.1:7700 --token-file /tmp/orrery-token [--name Ada]
    python3 examples/python/orrery_client.py --server 127.0.0.1:7700 --token-file /tmp/orrery-token --check-only

The last line of a run is `SHIP <sector> <x> <y> CREDITS <credits>`. The exit code is non-zero, with a message on
stderr, when something docs/protocol.md promises does not happen.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import sys
import time
import urllib.parse
import uuid

SUBPROTOCOL = "orrery.json.v1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ProtocolFailure(Exception):
    """Something the protocol documentation promises did not happen."""


def fail(message: str) -> None:
    raise ProtocolFailure(message)


def check(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


DISCREPANCIES: list[str] = []


def soft_check(condition: bool, message: str) -> None:
    """A promise of the doc that is not kept, but the scenario can go on: reported at the end (exit code 3)."""
    if not condition:
        print(f"  ! DISCREPANCY: {message}")
        DISCREPANCIES.append(message)


# ---------------------------------------------------------------------------------------------------------------
# WebSocket client (RFC 6455): handshake, masked client frames, any-length server frames, control frames.
# ---------------------------------------------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeRefused(Exception):
    def __init__(self, status: int, body: bytes, headers: dict[str, str]):
        self.status = status
        self.body = body
        self.headers = headers
        try:
            self.error = json.loads(body.decode("utf-8"))["error"]
        except Exception:  # noqa: BLE001 - the body is reported as is
            self.error = None
        code = self.error.get("code") if isinstance(self.error, dict) else None
        super().__init__(f"WebSocket upgrade refused: HTTP {status} {code or body[:200]!r}")


class WebSocketClosed(Exception):
    def __init__(self, code: int | None, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(f"WebSocket closed by the server: code {code} reason {reason!r}")


class WebSocket:
    def __init__(self, host: str, port: int, path: str, subprotocols: list[str], headers: dict[str, str] | None = None,
                 timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False  # set once the server's close frame arrived
        self.close_sent = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.control_pongs: list[bytes] = []
        self.pings_answered = 0
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))

        head = self._read_until(b"\r\n\r\n", deadline=time.monotonic() + timeout)
        status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
        parts = status_line.split(" ", 2)
        check(len(parts) >= 2 and parts[0].startswith("HTTP/"), f"bad HTTP status line {status_line!r}")
        status = int(parts[1])
        resp_headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                resp_headers[name.strip().lower()] = value.strip()
        if status != 101:
            length = int(resp_headers.get("content-length", "0") or 0)
            body = self._read_exact(length, deadline=time.monotonic() + timeout) if length else bytes(self.buf)
            self.sock.close()
            raise HandshakeRefused(status, body, resp_headers)
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode("ascii")
        check(resp_headers.get("sec-websocket-accept") == expected,
              f"bad Sec-WebSocket-Accept {resp_headers.get('sec-websocket-accept')!r}, expected {expected!r}")
        check(resp_headers.get("upgrade", "").lower() == "websocket", "101 response without Upgrade: websocket")
        self.subprotocol = resp_headers.get("sec-websocket-protocol")
        self.response_headers = resp_headers

    # -- low-level reading ------------------------------------------------------------------------------------

    def _fill(self, deadline: float | None) -> None:
        if deadline is None:
            self.sock.settimeout(None)
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError from None
        if not chunk:
            raise ConnectionError("the server closed the TCP connection")
        self.buf += chunk

    def _read_until(self, marker: bytes, deadline: float | None) -> bytes:
        while True:
            idx = self.buf.find(marker)
            if idx >= 0:
                data = bytes(self.buf[:idx])
                del self.buf[:idx + len(marker)]
                return data
            self._fill(deadline)

    def _read_exact(self, n: int, deadline: float | None) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _frame_available(self) -> bool:
        """Whether a whole frame is already buffered (so reading it cannot time out half-way)."""
        b = self.buf
        if len(b) < 2:
            return False
        n = b[1] & 0x7F
        off = 2
        if n == 126:
            if len(b) < 4:
                return False
            n = struct.unpack("!H", b[2:4])[0]
            off = 4
        elif n == 127:
            if len(b) < 10:
                return False
            n = struct.unpack("!Q", b[2:10])[0]
            off = 10
        if b[1] & 0x80:
            off += 4
        return len(b) >= off + n

    def _read_frame(self, deadline: float | None) -> tuple[bool, int, bytes]:
        # Wait (with the deadline) until a complete frame is buffered, then parse it: a timeout never splits a frame.
        while not self._frame_available():
            self._fill(deadline)
        b0, b1 = self._read_exact(2, None)
        fin = bool(b0 & 0x80)
        if b0 & 0x70:
            fail(f"server frame with RSV bits set (0x{b0:02x}) although no extension was negotiated")
        opcode = b0 & 0x0F
        masked = bool(b1 & 0x80)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2, None))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8, None))[0]
        check(not masked, "the server sent a masked frame (RFC 6455 forbids it)")
        payload = self._read_exact(length, None)
        return fin, opcode, payload

    # -- messages ---------------------------------------------------------------------------------------------

    def recv(self, timeout: float | None) -> tuple[int, bytes]:
        """Next data message as (opcode, payload); answers pings, records pongs; raises TimeoutError or
        WebSocketClosed. Reassembles fragmented server messages."""
        deadline = None if timeout is None else time.monotonic() + timeout
        parts: list[bytes] = []
        first_opcode = None
        while True:
            fin, opcode, payload = self._read_frame(deadline)
            if opcode == OP_PING:
                self._send_frame(OP_PONG, payload)
                self.pings_answered += 1
                continue
            if opcode == OP_PONG:
                self.control_pongs.append(payload)
                continue
            if opcode == OP_CLOSE:
                self.closed = True
                if len(payload) >= 2:
                    self.close_code = struct.unpack("!H", payload[:2])[0]
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                if not self.close_sent:  # echo the close, as RFC 6455 asks
                    self._send_frame(OP_CLOSE, payload[:2])
                    self.close_sent = True
                raise WebSocketClosed(self.close_code, self.close_reason)
            if opcode == OP_CONT:
                check(first_opcode is not None, "continuation frame without a message to continue")
            elif opcode in (OP_TEXT, OP_BINARY):
                check(first_opcode is None, "new data frame inside a fragmented message")
                first_opcode = opcode
            else:
                fail(f"server frame with unknown opcode 0x{opcode:x}")
            parts.append(payload)
            if fin:
                return first_opcode, b"".join(parts)

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header.append(0x80 | 126)
            header += struct.pack("!H", n)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", n)
        mask = os.urandom(4)
        header += mask
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(OP_TEXT, text.encode("utf-8"))

    def send_ping(self, payload: bytes) -> None:
        self._send_frame(OP_PING, payload)

    def close(self, code: int = 1000, reason: str = "bye", timeout: float = 5.0) -> tuple[int | None, str]:
        """Send a close frame, drain until the server's close frame arrives, then wait for the TCP close."""
        if not self.close_sent:
            self._send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8"))
            self.close_sent = True
        deadline = time.monotonic() + timeout
        while not self.closed:
            try:
                self.recv(max(0.0, deadline - time.monotonic()))
            except WebSocketClosed:
                break
            except TimeoutError:
                fail(f"no close frame from the server within {timeout} s of ours")
        # The server closes the TCP connection after the closing handshake (RFC 6455 5.5.1 / 7.1.1).
        try:
            while True:
                self._fill(deadline)
                self.buf.clear()
        except ConnectionError:
            pass
        except TimeoutError:
            fail("the server did not close the TCP connection after the close handshake")
        finally:
            self.sock.close()
        return self.close_code, self.close_reason


# ---------------------------------------------------------------------------------------------------------------
# HTTP: guest login
# ---------------------------------------------------------------------------------------------------------------


def guest_login(host: str, port: int, name: str | None) -> dict:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    if name is None:
        conn.request("POST", "/v1/auth/guest")
    else:
        conn.request("POST", "/v1/auth/guest", body=json.dumps({"name": name}),
                     headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if not 200 <= resp.status < 300:
        fail(f"POST /v1/auth/guest answered HTTP {resp.status}: {body[:300]!r}")
    data = json.loads(body)
    for field in ("token", "account_id", "character_id", "name"):
        check(field in data, f"guest login reply lacks {field!r}: {data}")
    if name is not None:
        check(data["name"] == name, f"guest login: asked for name {name!r}, got {data['name']!r}")
    return data


def load_or_create_token(args: argparse.Namespace, host: str, port: int) -> tuple[str, bool]:
    if args.token_file and os.path.exists(args.token_file):
        with open(args.token_file, encoding="utf-8") as f:
            raw = f.read().strip()
        try:
            token = json.loads(raw)["token"]
        except (ValueError, KeyError, TypeError):
            token = raw  # a bare token also works
        check(bool(token), f"{args.token_file} holds no token")
        print(f"token: reusing the saved token from {args.token_file}")
        return token, False
    if args.check_only:
        fail("--check-only needs an existing --token-file")
    data = guest_login(host, port, args.name)
    print(f"token: new guest {data['name']!r} (character {data['character_id']})")
    if args.token_file:
        tmp = args.token_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, args.token_file)
        print(f"token: saved to {args.token_file}")
    return data["token"], True


# ---------------------------------------------------------------------------------------------------------------
# The Orrery session: local mirror of the sector, fed by keyframes and deltas.
# ---------------------------------------------------------------------------------------------------------------


class Session:
    def __init__(self, ws: WebSocket, verbose: bool = False):
        self.ws = ws
        self.verbose = verbose
        self.next_id = 1
        self.welcome: dict | None = None
        self.character: dict | None = None
        self.sector: str | None = None
        self.sector_name = ""
        self.size = 1000.0
        self.seq: int | None = None
        self.tick: int | None = None
        self.ships: dict[str, dict] = {}  # ship id -> ship
        self.by_handle: dict[int, str] = {}  # handle `h` -> ship id, for this sector's deltas
        self.stations: dict[str, dict] = {}
        self.warps: list[dict] = []
        self.deltas_seen = 0
        # Time dilation of the current sector: game seconds per wall-clock second (1.0 unless `time_dilation` says).
        self.dilation = 1.0
        # Whether an operator paused the current sector (`sector_paused`): it does not advance, commands are refused.
        self.paused = False
        self.keyframes_seen = 0
        self.unsolicited_keyframes = 0
        self.seq_gaps = 0
        self.foreign_deltas = 0  # deltas of a sector other than the one we are in (e.g. in flight during a warp)
        self.pending: list[dict] = []  # replies and events nobody waited for yet

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def send(self, msg: dict) -> None:
        text = json.dumps(msg, separators=(",", ":"))
        if self.verbose:
            print(f"  > {text}")
        self.ws.send_text(text)

    def request(self, msg: dict) -> int:
        msg = dict(msg)
        msg.setdefault("id", self.new_id())
        self.send(msg)
        return msg["id"]

    def recv_json(self, timeout: float) -> dict:
        opcode, payload = self.ws.recv(timeout)
        check(opcode == OP_TEXT, f"{SUBPROTOCOL}: expected text frames, got opcode 0x{opcode:x}")
        try:
            msg = json.loads(payload.decode("utf-8"))
        except ValueError as e:
            fail(f"server text frame is not JSON ({e}): {payload[:200]!r}")
        check(isinstance(msg, dict) and isinstance(msg.get("type"), str),
              f"server message is not an object with a string 'type': {payload[:200]!r}")
        if self.verbose and msg["type"] != "delta":
            print(f"  < {json.dumps(msg)[:300]}")
        self._apply(msg)
        return msg

    def _apply(self, msg: dict) -> None:
        t = msg["type"]
        if t == "welcome":
            for field in ("session", "character", "sector", "tick_hz"):
                check(field in msg, f"welcome lacks {field!r}: {msg}")
            for field in ("id", "name", "ship", "credits", "cargo", "cargo_capacity", "turns", "turns_max"):
                check(field in msg["character"], f"welcome.character lacks {field!r}")
            self.welcome = msg
            self.character = dict(msg["character"])
            self.sector = msg["sector"]
        elif t == "keyframe":
            for field in ("sector", "seq", "tick", "name", "size", "ships", "stations", "warps"):
                check(field in msg, f"keyframe lacks {field!r}")
            self.keyframes_seen += 1
            if msg["sector"] != self.sector:
                self.dilation = 1.0  # a new sector runs at real time unless a `time_dilation` follows
                self.paused = False  # and runs unless a `sector_paused` follows
            self.sector = msg["sector"]
            self.sector_name = msg["name"]
            self.size = float(msg["size"])
            self.seq = msg["seq"]
            self.tick = msg["tick"]
            self.ships = {s["id"]: s for s in msg["ships"]}
            self.by_handle = {s["h"]: s["id"] for s in msg["ships"]}
            self.stations = {s["id"]: s for s in msg["stations"]}
            self.warps = msg["warps"]
        elif t == "delta":
            for field in ("sector", "seq", "tick", "upserts", "removes", "moves", "steers", "stations"):
                check(field in msg, f"delta lacks {field!r}")
            if msg["sector"] != self.sector:
                self.foreign_deltas += 1
                return
            self.deltas_seen += 1
            if self.seq is not None and msg["seq"] != self.seq + 1:
                # The doc: a gap means deltas were missed; the server resends a keyframe on its own, or we resync.
                self.seq_gaps += 1
                print(f"  ! delta seq {msg['seq']} after {self.seq}: resyncing")
                self.request({"type": "resync"})
            self.seq = msg["seq"]
            if self.tick is not None:
                check(msg["tick"] > self.tick, f"delta tick {msg['tick']} not after {self.tick}")
            self.tick = msg["tick"]
            # The doc's order: removes, upserts, moves, steers, stations. Deltas name ships by handle.
            for h in msg["removes"]:
                ship_id = self.by_handle.pop(h, None)
                if ship_id is not None:
                    self.ships.pop(ship_id, None)
            for ship in msg["upserts"]:
                self.ships[ship["id"]] = ship
                self.by_handle[ship["h"]] = ship["id"]
            for m in msg["moves"]:
                ship = self.ships.get(self.by_handle.get(m["h"], ""))
                if ship is not None:
                    ship["x"], ship["y"] = m["x"], m["y"]
            for v in msg["steers"]:
                ship = self.ships.get(self.by_handle.get(v["h"], ""))
                if ship is not None:
                    ship["vx"], ship["vy"] = v["vx"], v["vy"]
            for station in msg["stations"]:
                self.stations[station["id"]] = station
        elif t == "trade_result":
            self.character["credits"] = msg["credits"]
            self.character["cargo"] = msg["cargo"]
        elif t == "time_dilation":
            for field in ("sector", "factor"):
                check(field in msg, f"time_dilation lacks {field!r}")
            check(0.0 < msg["factor"] <= 1.0, f"time_dilation factor out of range: {msg}")
            if msg["sector"] == self.sector:
                self.dilation = float(msg["factor"])
                print(f"  time dilation of this sector: {self.dilation:.2f} (ticks every "
                      f"{1000 / (self.welcome['tick_hz'] * self.dilation):.0f} ms)")
        elif t == "notice":
            for field in ("scope", "text"):
                check(field in msg, f"notice lacks {field!r}")
            print(f"  notice ({msg['scope']}): {msg['text']}")
        elif t == "sector_paused":
            for field in ("sector", "paused"):
                check(field in msg, f"sector_paused lacks {field!r}")
            if msg["sector"] == self.sector:
                self.paused = bool(msg["paused"])
                print(f"  this sector is {'paused' if self.paused else 'running again'}")
        elif t in ("warped", "chat", "pong", "error"):
            pass
        else:
            fail(f"server sent a message type the doc does not list: {t!r}")

    def wait_for(self, predicate, timeout: float, what: str, soft: bool = False) -> dict:
        """Process incoming messages until one matches predicate; the others update the mirror (and unmatched
        replies are kept in self.pending). On a timeout: fail, or with `soft` raise TimeoutError."""
        for i, msg in enumerate(self.pending):
            if predicate(msg):
                return self.pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                msg = self.recv_json(remaining)
            except TimeoutError:
                if soft:
                    raise
                fail(f"timed out after {timeout} s waiting for {what}")
            if predicate(msg):
                return msg
            if msg["type"] == "keyframe" and "id" not in msg:
                self.unsolicited_keyframes += 1
            if msg["type"] not in ("delta", "keyframe", "time_dilation", "notice", "sector_paused"):
                self.pending.append(msg)

    def reply(self, req_id: int, types: tuple[str, ...], timeout: float = 5.0, soft: bool = False) -> dict:
        msg = self.wait_for(lambda m: m.get("id") == req_id and m["type"] in types + ("error",), timeout,
                            f"a {'/'.join(types)} with id {req_id}", soft)
        return msg

    def pump(self, seconds: float) -> list[dict]:
        """Process everything arriving during `seconds`; returns the messages."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self.recv_json(remaining))
            except TimeoutError:
                return out

    def touches_me(self, delta: dict) -> bool:
        """Whether a delta (already applied) changed my ship."""
        me = self.character["ship"]
        mine = {h for h, ship_id in self.by_handle.items() if ship_id == me}
        return (any(u["id"] == me for u in delta["upserts"])
                or any(m["h"] in mine for m in delta["moves"])
                or any(v["h"] in mine for v in delta["steers"]))

    def my_ship(self) -> dict:
        ship_id = self.character["ship"]
        check(ship_id in self.ships, f"my ship {ship_id} is not in my sector's state {self.sector}")
        return self.ships[ship_id]

    def ship_line(self) -> str:
        ship = self.my_ship()
        return f"SHIP {self.sector} {ship['x']} {ship['y']} CREDITS {self.character['credits']}"


def connect(host: str, port: int, token: str, verbose: bool, retries_on_online: float = 5.0) -> Session:
    path = "/v1/ws?token=" + urllib.parse.quote(token, safe="")
    deadline = time.monotonic() + retries_on_online
    while True:
        try:
            ws = WebSocket(host, port, path, [SUBPROTOCOL])
            break
        except HandshakeRefused as e:
            code = e.error.get("code") if isinstance(e.error, dict) else None
            if e.status == 409 and code == "character_online" and time.monotonic() < deadline:
                print("  (409 character_online: the previous session is still closing; retrying)")
                time.sleep(0.25)
                continue
            raise
    check(ws.subprotocol == SUBPROTOCOL,
          f"server did not select {SUBPROTOCOL}: Sec-WebSocket-Protocol {ws.subprotocol!r}")
    s = Session(ws, verbose)
    welcome = s.recv_json(5)
    check(welcome["type"] == "welcome", f"first message is {welcome['type']!r}, not welcome")
    key = s.recv_json(5)
    check(key["type"] == "keyframe", f"second message is {key['type']!r}, not keyframe")
    check(key["sector"] == welcome["sector"], f"keyframe sector {key['sector']} != welcome sector {welcome['sector']}")
    check(welcome["character"]["ship"] in s.ships, "my ship is missing from the first keyframe")
    return s


# ---------------------------------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------------------------------


def print_character(s: Session) -> None:
    c = s.character
    w = s.welcome
    print(f"welcome: session {w['session']}, tick_hz {w['tick_hz']}")
    print(f"character: {c['name']!r} id {c['id']} ship {c['ship']}")
    print(f"  credits {c['credits']}, cargo {c['cargo']} (capacity {c['cargo_capacity']}), "
          f"turns {c['turns']}/{c['turns_max']}")
    ship = s.my_ship()
    print(f"sector: {s.sector_name!r} {s.sector} size {s.size} seq {s.seq} tick {s.tick}: "
          f"{len(s.ships)} ship(s), {len(s.stations)} station(s), {len(s.warps)} warp(s)")
    print(f"ship position: x={ship['x']} y={ship['y']} vx={ship['vx']} vy={ship['vy']}")


def step_thrust(s: Session, tick_hz: int) -> None:
    ship = s.my_ship()
    start = (ship["x"], ship["y"])
    # Head towards the middle of the sector so a second of flight cannot hit an edge.
    vx = 50.0 if start[0] < s.size / 2 else -50.0
    vy = 30.0 if start[1] < s.size / 2 else -30.0
    deltas_before = s.deltas_seen
    s.send({"type": "thrust", "vx": vx, "vy": vy})
    t0 = time.monotonic()
    first_visible = None
    samples = []
    deadline = t0 + 1.0
    while time.monotonic() < deadline:
        try:
            msg = s.recv_json(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            break
        if msg["type"] == "error":
            fail(f"thrust refused: {msg}")
        if msg["type"] == "delta" and s.touches_me(msg):
            me = s.ships[s.character["ship"]]
            if first_visible is None and (me["vx"], me["vy"]) == (vx, vy):
                first_visible = time.monotonic() - t0
            samples.append((time.monotonic() - t0, me["x"], me["y"], me["vx"], me["vy"], msg["seq"]))
    elapsed = time.monotonic() - t0
    n = s.deltas_seen - deltas_before
    rate = n / elapsed
    print(f"thrust ({vx}, {vy}): {n} deltas in {elapsed:.2f} s = {rate:.1f} deltas/s (tick_hz {tick_hz})")
    check(first_visible is not None, "the thrust never showed in a delta")
    print(f"  thrust visible after {first_visible * 1000:.0f} ms (doc: at most one tick, "
          f"{1000 / tick_hz:.0f} ms, plus network)")
    for t, x, y, svx, svy, seq in samples[:: max(1, len(samples) // 6)]:
        print(f"  t={t:.2f}s seq={seq} x={x:.2f} y={y:.2f} v=({svx}, {svy})")
    end = s.my_ship()
    dx, dy = end["x"] - start[0], end["y"] - start[1]
    print(f"  moved from ({start[0]:.2f}, {start[1]:.2f}) to ({end['x']:.2f}, {end['y']:.2f}): d=({dx:.2f}, {dy:.2f})")
    check(dx * vx > 0 and dy * vy > 0, f"the ship did not move in the thrust direction: d=({dx}, {dy})")
    # A dilated sector (`time_dilation`) simulates only `dilation` game seconds per second, in as many ticks.
    f = s.dilation
    check(abs(dx) > 0.5 * abs(vx) * 0.8 * f and abs(dy) > 0.5 * abs(vy) * 0.8 * f,
          f"the ship moved much less than ~{f:.2f} s at ({vx}, {vy}): d=({dx}, {dy})")
    check(n >= 0.7 * tick_hz * f, f"a moving ship changes the sector every tick, but only {n} deltas arrived in 1 s")
    soft_check(first_visible <= 1.0 / (tick_hz * f) + 0.1, f"thrust took {first_visible:.3f} s to show")


def step_stop(s: Session) -> None:
    s.send({"type": "thrust", "vx": 0.0, "vy": 0.0})
    s.wait_for(lambda m: m["type"] == "delta" and s.touches_me(m) and (s.my_ship()["vx"], s.my_ship()["vy"]) == (0, 0),
               2.0, "a delta showing my ship stopped")
    rest = dict(s.my_ship())
    s.pump(0.3)  # a stopped ship must not move any more
    now = s.my_ship()
    check((now["x"], now["y"]) == (rest["x"], rest["y"]), f"the ship kept moving after thrust 0,0: {rest} -> {now}")
    print(f"stopped: resting at x={now['x']} y={now['y']} (vx={now['vx']} vy={now['vy']})")


def step_trade(s: Session) -> None:
    if not s.stations:
        print("trade: no station in this sector, skipped")
        return
    c = s.character
    used = sum(c["cargo"].values())
    choice = None
    for station in s.stations.values():
        for listing in station["commodities"]:
            if listing["quantity"] >= 1 and listing["sell_price"] <= c["credits"] and used < c["cargo_capacity"]:
                choice = (station, listing)
                break
        if choice:
            break
    if not choice:
        print("trade: nothing affordable in stock here, skipped")
        return
    station, listing = choice
    credits_before = c["credits"]
    held_before = c["cargo"].get(listing["commodity"], 0)
    print(f"trade: buying 1 {listing['commodity']} at {station['name']!r} (listed sell_price {listing['sell_price']}, "
          f"stock {listing['quantity']})")
    order = {"type": "trade", "station": station["id"], "commodity": listing["commodity"], "side": "buy", "qty": 1,
             "key": str(uuid.uuid4())}
    r = trade_with_retries(s, order)
    check(r["type"] == "trade_result", f"trade refused: {r}")
    print(f"  trade_result: {json.dumps(r)}")
    print(f"  credits before {credits_before}, after {r['credits']}")
    check(r["station"] == station["id"] and r["commodity"] == listing["commodity"] and r["side"] == "buy"
          and r["qty"] == 1, f"trade_result does not echo the trade: {r}")
    check(r["unit_price"] == listing["sell_price"],
          f"bought 1 unit at {r['unit_price']}, but the listing's sell_price was {listing['sell_price']}")
    check(r["total"] == r["unit_price"] * r["qty"], f"total {r['total']} != unit_price * qty")
    check(r["credits"] == credits_before - r["total"], f"credits {credits_before} - {r['total']} != {r['credits']}")
    check(r["cargo"].get(listing["commodity"], 0) == held_before + 1, f"cargo did not grow by 1: {r['cargo']}")
    check(r["station_quantity"] == listing["quantity"] - 1,
          f"station stock {listing['quantity']} - 1 != {r['station_quantity']}")
    # The station's book changed: the doc says a delta's `stations` carries the new book (replace the book).
    deadline = time.monotonic() + 2.0
    while True:
        book = s.stations[station["id"]]
        new_listing = next(li for li in book["commodities"] if li["commodity"] == listing["commodity"])
        if new_listing["quantity"] == r["station_quantity"]:
            break
        check(time.monotonic() < deadline, "no delta brought the station's new book within 2 s of the trade")
        s.pump(0.05)
    print(f"  a delta (now at seq {s.seq}) carried the station's new book: {listing['commodity']} "
          f"quantity {new_listing['quantity']}, buy_price {new_listing['buy_price']}, "
          f"sell_price {new_listing['sell_price']}")
    soft_check((new_listing["buy_price"], new_listing["sell_price"]) == (r["buy_price"], r["sell_price"]),
               f"trade_result prices {r['buy_price']}/{r['sell_price']} differ from the delta's book "
               f"{new_listing['buy_price']}/{new_listing['sell_price']}")


    # A client that lost the answer (a timeout, a dropped connection) sends the same trade with the same key again:
    # the server answers with the original result and applies nothing twice.
    again = trade_with_retries(s, order)
    check({k: v for k, v in again.items() if k != "id"} == {k: v for k, v in r.items() if k != "id"},
          f"a repeat of the keyed trade was answered differently: {again} vs {r}")
    print(f"  the same trade again with its key {order['key']!r}: answered with the same result, nothing charged twice")


def trade_with_retries(s: Session, order: dict, attempts: int = 3, timeout: float = 5.0) -> dict:
    """Sends a keyed trade and waits for its answer; on a timeout sends it again with the same key (the server
    applies a key at most once, so a retry can never buy twice). `storage_unavailable` is retried after a pause."""
    for attempt in range(1, attempts + 1):
        rid = s.request(dict(order))
        try:
            r = s.reply(rid, ("trade_result",), timeout=timeout, soft=True)
        except TimeoutError:
            print(f"  (no answer to the trade within {timeout} s, attempt {attempt}; retrying with the same key)")
            continue
        if r["type"] == "error" and r.get("code") == "storage_unavailable" and attempt < attempts:
            print(f"  (storage_unavailable, attempt {attempt}; retrying with the same key in 1 s)")
            time.sleep(1.0)
            continue
        return r
    fail(f"no answer to the trade after {attempts} attempts")


def step_chat(s: Session) -> None:
    text = f"o7 from the python client {os.getpid()}"
    rid = s.request({"type": "chat", "channel": "sector", "text": text})
    msg = s.wait_for(lambda m: (m["type"] == "chat" and m.get("text") == text)
                     or (m["type"] == "error" and m.get("id") == rid), 3.0, "the chat echo")
    check(msg["type"] == "chat", f"chat refused: {msg}")
    print(f"chat echo: {json.dumps(msg)}")
    check(msg["channel"] == "sector" and msg["from"] == s.character["id"] and msg["name"] == s.character["name"],
          f"chat echo does not name me on the sector channel: {msg}")


def step_warp(s: Session) -> None:
    check(bool(s.warps), "the keyframe lists no warps")
    warp = s.warps[0]
    old = s.sector
    print(f"warp: to {warp['name']!r} {warp['to']} for {warp['turns']} turns (have {s.character['turns']} "
          f"at login)")
    rid = s.request({"type": "warp", "to": warp["to"]})
    t0 = time.monotonic()
    # `warped` with our id, then immediately the keyframe of the new sector (old-sector deltas may still be in flight
    # before `warped`).
    between = []
    r = s.wait_for(lambda m: m.get("id") == rid and m["type"] in ("warped", "error"), 10.0, "warped")
    check(r["type"] == "warped", f"warp refused: {r}")
    print(f"  warped: {json.dumps(r)} after {(time.monotonic() - t0) * 1000:.0f} ms")
    check(r["from"] == old and r["to"] == warp["to"], f"warped from/to mismatch: {r}")
    while True:
        k = s.recv_json(5.0)
        if k["type"] == "keyframe":
            break
        between.append(k)
    soft_check(not between, f"the doc says the keyframe follows `warped` immediately, but first came: "
                       f"{[m['type'] + '(' + m.get('sector', '') + ')' for m in between]}")
    check(k["sector"] == warp["to"], f"keyframe after warped is of {k['sector']}, not {warp['to']}")
    print(f"  new keyframe: sector {k['sector']} {k['name']!r} seq {k['seq']} tick {k['tick']} id {k.get('id')}: "
          f"{len(k['ships'])} ship(s), {len(k['stations'])} station(s), {len(k['warps'])} warp(s)")
    ship = s.my_ship()
    print(f"  my ship is in the new keyframe at x={ship['x']} y={ship['y']} v=({ship['vx']}, {ship['vy']})")
    # From now on deltas of the new sector only: fly a little here (so the final position is not the arrival point,
    # which makes the persistence check meaningful), then stop.
    foreign_before = s.foreign_deltas
    seq0, start = s.seq, (ship["x"], ship["y"])
    vx = 40.0 if start[0] < s.size / 2 else -40.0
    vy = -25.0 if start[1] > s.size / 2 else 25.0
    s.send({"type": "thrust", "vx": vx, "vy": vy})
    s.pump(0.5)
    step_stop(s)
    end = s.my_ship()
    check((end["x"] - start[0]) * vx > 0 and (end["y"] - start[1]) * vy > 0,
          f"in the new sector the ship did not move in the thrust direction: {start} -> {end}")
    print(f"  flew in the new sector: deltas seq {seq0 + 1}..{s.seq}, ({start[0]:.2f}, {start[1]:.2f}) -> "
          f"({end['x']:.2f}, {end['y']:.2f})")
    check(s.foreign_deltas == foreign_before, "deltas of the old sector kept arriving after warped")


def step_errors(s: Session) -> None:
    s.ws.send_text("this is {not json")
    e1 = s.wait_for(lambda m: m["type"] == "error", 3.0, "an error for the malformed message")
    print(f"malformed message -> error code {e1['code']!r} id {e1.get('id')} ({e1['message']})")
    check(e1["code"] == "malformed", f"expected code malformed, got {e1['code']}")

    rid = s.request({"type": "frobnicate"})
    e2 = s.wait_for(lambda m: m["type"] == "error", 3.0, "an error for the unknown type")
    print(f"unknown type -> error code {e2['code']!r} id {e2.get('id')} ({e2['message']})")
    check(e2["code"] == "unknown_type", f"expected code unknown_type, got {e2['code']}")
    soft_check(e2.get("id") == rid, f"the error for an unknown type should carry our id {rid}: {e2}")

    rid = s.request({"type": "ping", "colour": "red"})
    e3 = s.wait_for(lambda m: m["type"] in ("error", "pong") and m.get("id") == rid, 3.0, "a reply to ping+unknown field")
    print(f"unknown field -> {e3['type']} code {e3.get('code')!r} ({e3.get('message')})")
    check(e3["type"] == "error" and e3["code"] == "invalid_message", f"unknown fields are refused, got {e3}")

    rid = s.request({"type": "ping"})
    p = s.reply(rid, ("pong",))
    check(p["type"] == "pong", f"ping answered by {p}")
    print(f"ping id {rid} -> pong id {p['id']}: the connection is still open")

    s.ws.send_ping(b"orrery")
    t0 = time.monotonic()
    while b"orrery" not in s.ws.control_pongs:
        s.pump(0.05)
        check(time.monotonic() - t0 < 3, "no pong control frame for our WebSocket ping")
    print("WebSocket ping control frame -> pong control frame")


def run(args: argparse.Namespace) -> int:
    host, _, port_s = args.server.rpartition(":")
    host, port = host or "127.0.0.1", int(port_s)
    token, _new = load_or_create_token(args, host, port)

    s = connect(host, port, token, args.verbose)
    print_character(s)
    tick_hz = s.welcome["tick_hz"]
    if args.check_only:
        print(s.ship_line())
        code, reason = s.ws.close()
        print(f"closed: server close code {code} {reason!r}")
        return 0

    print("\n== 3. thrust")
    step_thrust(s, tick_hz)
    print("\n== 4. stop")
    step_stop(s)
    print("\n== 5. trade")
    step_trade(s)
    print("\n== 6. chat")
    step_chat(s)
    print("\n== 7. warp")
    step_warp(s)
    print("\n== 8. errors")
    step_errors(s)
    print("\n== 9. done")
    check(s.seq_gaps == 0, f"{s.seq_gaps} delta sequence gap(s)")
    if s.pending:
        print(f"(unclaimed messages: {[m['type'] for m in s.pending]})")
    print(f"deltas {s.deltas_seen}, keyframes {s.keyframes_seen} ({s.unsolicited_keyframes} unsolicited), "
          f"old-sector deltas ignored {s.foreign_deltas}, WebSocket pings answered {s.ws.pings_answered}")
    print(s.ship_line())
    code, reason = s.ws.close()
    print(f"closed: server close code {code} {reason!r}")
    check(code in (1000, None), f"expected close code 1000, got {code}")
    if DISCREPANCIES:
        print(f"FAILED: {len(DISCREPANCIES)} promise(s) of docs/protocol.md not kept:", file=sys.stderr)
        for d in DISCREPANCIES:
            print(f"  - {d}", file=sys.stderr)
        return 3
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:7700", help="HOST:PORT of the Orrery server")
    parser.add_argument("--token-file", help="reuse the token saved here, or save a new one here")
    parser.add_argument("--name", help="character name for a new guest (1 to 32 printable characters)")
    parser.add_argument("--check-only", action="store_true",
                        help="connect with the saved token, print the welcome, the ship and the SHIP line, and exit")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every non-delta message")
    args = parser.parse_args()
    try:
        return run(args)
    except ProtocolFailure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    except HandshakeRefused as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    except WebSocketClosed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 2
    except (ConnectionError, OSError) as e:
        print(f"FAILED: connection problem: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
