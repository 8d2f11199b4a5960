//! RFC 6455 conformance of `GET /v1/ws`, byte by byte.
//!
//! Unlike the other end-to-end tests, these talk to the server over a raw `TcpStream`: the upgrade request is
//! written by hand, client frames are built by hand (masked, or deliberately not; with reserved bits, reserved
//! opcodes, lying lengths), and server frames are parsed by hand, so that every case the RFC names can be sent
//! and every byte of the answer checked. Each test starts its own server; a table-driven test opens one
//! connection per case, runs its cases concurrently, and reports every failing case with what the server did
//! instead of what the RFC asks. Every read has a deadline, so no test can hang.

mod common;

use std::time::Duration;

use common::{config, temp_dir, TestServer};
use futures_util::future::{join_all, BoxFuture};
use futures_util::FutureExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// How long a test waits for any one expected answer.
const WAIT: Duration = Duration::from_secs(5);
/// How long the server may take to end the TCP connection after its close frame.
const END_WAIT: Duration = Duration::from_secs(5);
/// The largest client message the server accepts (after reassembly).
const MAX_MESSAGE: usize = 64 * 1024;

const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV3: u8 = 0x10;
const MASK_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

// ---------------------------------------------------------------------------------------------------------------
// Client frames, built by hand.

/// A client frame: `first` is the whole first header byte (FIN, RSV bits, opcode); the payload length uses the
/// shortest encoding; `masked` says whether the mask bit is set and the payload masked (clients must mask).
fn raw(first: u8, masked: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    let m = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => v.push(m | n as u8),
        n if n <= 0xffff => {
            v.push(m | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(m | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        v.extend_from_slice(&MASK_KEY);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK_KEY[i % 4]));
    } else {
        v.extend_from_slice(payload);
    }
    v
}

/// A masked frame with FIN as given and no reserved bits.
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    raw(if fin { FIN } else { 0 } | opcode, true, payload)
}

/// A masked, final frame.
fn single(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(opcode, true, payload)
}

/// The body of a close frame.
fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason].concat()
}

/// The protocol's JSON `ping` message (answered by a JSON `pong` with the same id).
fn ping_json(id: u64) -> Vec<u8> {
    format!(r#"{{"type":"ping","id":{id}}}"#).into_bytes()
}

/// Standard base64 with padding (RFC 4648), to build handshake keys of chosen lengths.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Server frames, parsed by hand.

/// A frame the server sent.
#[derive(Debug)]
struct Frame {
    opcode: u8,
    payload: Vec<u8>,
}

impl Frame {
    fn is_data(&self) -> bool {
        matches!(self.opcode, CONT | TEXT | BINARY)
    }

    /// A frame a helper waiting for something else skips: data, and the server's own liveness pings.
    fn is_noise(&self) -> bool {
        self.is_data() || self.opcode == PING
    }

    fn json(&self) -> Option<Value> {
        if self.opcode == TEXT {
            serde_json::from_slice(&self.payload).ok()
        } else {
            None
        }
    }

    /// The JSON `type` of a text frame.
    fn kind(&self) -> Option<String> {
        self.json().and_then(|v| v["type"].as_str().map(str::to_owned))
    }

    fn describe(&self) -> String {
        match self.opcode {
            TEXT => match self.kind().as_deref() {
                Some(k @ ("welcome" | "keyframe" | "delta")) => format!("text `{k}`"),
                _ => format!("text {}", short(&String::from_utf8_lossy(&self.payload))),
            },
            BINARY => format!("binary frame ({} bytes)", self.payload.len()),
            CONT => format!("continuation frame ({} bytes)", self.payload.len()),
            CLOSE => match self.payload.len() {
                0 => "close frame with an empty body".into(),
                1 => "close frame with a 1-byte body".into(),
                _ => format!(
                    "close {} {:?}",
                    u16::from_be_bytes([self.payload[0], self.payload[1]]),
                    String::from_utf8_lossy(&self.payload[2..])
                ),
            },
            PING => format!("ping ({} bytes)", self.payload.len()),
            PONG => format!("pong ({} bytes)", self.payload.len()),
            op => format!("frame with opcode {op}"),
        }
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(120).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// What one read of the connection gave.
enum Got {
    Frame(Frame),
    /// The server ended the TCP connection.
    Eof,
    /// The connection was reset (also an end of the connection).
    Reset(String),
    /// Nothing before the deadline.
    Timeout,
    /// The server sent something that is not a valid server frame.
    Bad(String),
}

impl Got {
    fn describe(&self) -> String {
        match self {
            Got::Frame(f) => f.describe(),
            Got::Eof => "the TCP connection ended without a close frame".into(),
            Got::Reset(e) => format!("the TCP connection was reset without a close frame ({e})"),
            Got::Timeout => "nothing within the wait (the connection stayed open)".into(),
            Got::Bad(e) => format!("an invalid server frame: {e}"),
        }
    }
}

/// A raw client connection: the socket and what has been read from it but not parsed yet.
struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Frames skipped while waiting for something else (welcome, keyframes and deltas left out), to say what the
    /// server did instead.
    seen: Vec<String>,
}

impl Ws {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(WAIT, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("writing {} bytes failed: {e}", bytes.len())),
            Err(_) => Err(format!("writing {} bytes did not finish within {WAIT:?}", bytes.len())),
        }
    }

    async fn fill(&mut self, deadline: Instant) -> Result<(), Got> {
        let mut chunk = vec![0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Err(Got::Timeout),
            Ok(Ok(0)) if self.buf.is_empty() => Err(Got::Eof),
            Ok(Ok(0)) => Err(Got::Bad(format!(
                "the connection ended in the middle of a frame ({} bytes pending)",
                self.buf.len()
            ))),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(Got::Reset(e.to_string())),
        }
    }

    async fn need(&mut self, n: usize, deadline: Instant) -> Result<(), Got> {
        while self.buf.len() < n {
            self.fill(deadline).await?;
        }
        Ok(())
    }

    /// The next server frame, checked against the RFC's rules for server frames (unmasked, no reserved bits, a
    /// known opcode, control frames final and at most 125 bytes).
    async fn read_frame(&mut self, deadline: Instant) -> Got {
        match self.try_read_frame(deadline).await {
            Ok(f) => Got::Frame(f),
            Err(g) => g,
        }
    }

    async fn try_read_frame(&mut self, deadline: Instant) -> Result<Frame, Got> {
        self.need(2, deadline).await?;
        let (b0, b1) = (self.buf[0], self.buf[1]);
        let fin = b0 & FIN != 0;
        let opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 {
            return Err(Got::Bad(format!("reserved bits set in the first byte {b0:#04x}")));
        }
        if b1 & 0x80 != 0 {
            return Err(Got::Bad(
                "a masked server frame (RFC 6455 5.1: servers must not mask)".into(),
            ));
        }
        if !matches!(opcode, CONT | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(Got::Bad(format!("reserved opcode {opcode}")));
        }
        let (len, header) = match b1 & 0x7f {
            126 => {
                self.need(4, deadline).await?;
                (u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4)
            }
            127 => {
                self.need(10, deadline).await?;
                let mut n = [0u8; 8];
                n.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (u64::from(n), 2),
        };
        if len > 16 * 1024 * 1024 {
            return Err(Got::Bad(format!("a frame claiming {len} bytes")));
        }
        if opcode >= CLOSE && (!fin || len > 125) {
            return Err(Got::Bad(format!(
                "a control frame (opcode {opcode}) with FIN={fin} and {len} bytes"
            )));
        }
        let total = header + len as usize;
        self.need(total, deadline).await?;
        let payload = self.buf[header..total].to_vec();
        self.buf.drain(..total);
        Ok(Frame { opcode, payload })
    }

    /// The next frame that is neither a data frame nor a server ping (those are skipped and noted in `seen`).
    async fn next_control(&mut self, deadline: Instant) -> Got {
        loop {
            match self.read_frame(deadline).await {
                Got::Frame(f) if f.is_noise() => self.note(&f),
                other => return other,
            }
        }
    }

    fn note(&mut self, f: &Frame) {
        if !matches!(f.kind().as_deref(), Some("welcome" | "keyframe" | "delta")) {
            self.seen.push(f.describe());
        }
    }

    fn seen_note(&self) -> String {
        if self.seen.is_empty() {
            String::new()
        } else {
            let from = self.seen.len().saturating_sub(5);
            format!(" (after skipping: {})", self.seen[from..].join("; "))
        }
    }

    /// Waits for the server's close frame (skipping data frames and server pings) with one of the `ok` codes (or an
    /// empty body if `empty_ok`), then for the end of the TCP connection.
    async fn expect_close(&mut self, ok: &[u16], empty_ok: bool) -> Result<(), String> {
        let mut want: Vec<String> = ok.iter().map(|c| format!("close {c}")).collect();
        if empty_ok {
            want.push("an empty close frame".into());
        }
        let want = want.join(" or ");
        match self.next_control(Instant::now() + WAIT).await {
            Got::Frame(f) if f.opcode == CLOSE => {
                let fine = match f.payload.len() {
                    0 => empty_ok,
                    1 => false,
                    _ => ok.contains(&u16::from_be_bytes([f.payload[0], f.payload[1]])),
                };
                if !fine {
                    return Err(format!("expected {want}, got {}{}", f.describe(), self.seen_note()));
                }
                if f.payload.len() > 2 && std::str::from_utf8(&f.payload[2..]).is_err() {
                    return Err(format!("the server's close reason is not UTF-8: {:?}", &f.payload[2..]));
                }
                self.expect_end().await
            }
            other => Err(format!("expected {want}, got {}{}", other.describe(), self.seen_note())),
        }
    }

    /// After the server's close frame: the TCP connection ends, with no frame after it.
    async fn expect_end(&mut self) -> Result<(), String> {
        match self.read_frame(Instant::now() + END_WAIT).await {
            Got::Eof | Got::Reset(_) => Ok(()),
            Got::Frame(f) => Err(format!("after its close frame the server sent {}", f.describe())),
            Got::Timeout => Err(format!(
                "the TCP connection was still open {END_WAIT:?} after the server's close frame"
            )),
            Got::Bad(e) => Err(format!("after its close frame: {e}")),
        }
    }

    /// Waits for a pong control frame carrying `payload` (data frames and server pings are skipped).
    async fn expect_pong(&mut self, payload: &[u8]) -> Result<(), String> {
        match self.next_control(Instant::now() + WAIT).await {
            Got::Frame(f) if f.opcode == PONG && f.payload == payload => Ok(()),
            Got::Frame(f) if f.opcode == PONG => Err(format!(
                "expected a pong echoing {} bytes {:?}, got a pong with {} bytes {:?}",
                payload.len(),
                short(&format!("{payload:?}")),
                f.payload.len(),
                short(&format!("{:?}", f.payload))
            )),
            other => Err(format!(
                "expected a pong with {} bytes, got {}{}",
                payload.len(),
                other.describe(),
                self.seen_note()
            )),
        }
    }

    /// Waits for a JSON text frame matching `pick` (other data frames and pongs are skipped).
    async fn expect_json(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Result<Value, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_frame(deadline).await {
                Got::Frame(f) => match f.json() {
                    Some(v) if pick(&v) => return Ok(v),
                    _ if f.is_noise() || f.opcode == PONG => self.note(&f),
                    _ => return Err(format!("expected {what}, got {}{}", f.describe(), self.seen_note())),
                },
                other => return Err(format!("expected {what}, got {}{}", other.describe(), self.seen_note())),
            }
        }
    }

    /// Waits for the JSON `pong` answering the JSON `ping` with this id.
    async fn expect_pong_json(&mut self, id: u64) -> Result<(), String> {
        self.expect_json(&format!(r#"a JSON `pong` with "id":{id}"#), |v| {
            v["type"] == "pong" && v["id"] == id
        })
        .await
        .map(|_| ())
    }

    /// The connection still works: a JSON ping is answered.
    async fn alive(&mut self, id: u64) -> Result<(), String> {
        self.send(&single(TEXT, &ping_json(id))).await?;
        self.expect_pong_json(id)
            .await
            .map_err(|e| format!("the connection should still work, but: {e}"))
    }

    /// Reads `welcome` (in frames of type `opcode`) and the first keyframe after a `101`.
    async fn joined(&mut self, opcode: u8) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        for (i, want) in ["welcome", "keyframe"].into_iter().enumerate() {
            match self.read_frame(deadline).await {
                Got::Frame(f) if f.opcode == opcode => {
                    if opcode == TEXT && f.kind().as_deref() != Some(want) {
                        return Err(format!("expected `{want}` after the upgrade, got {}", f.describe()));
                    }
                }
                other => {
                    return Err(format!(
                        "expected the {} frame (`{want}`, opcode {opcode}) after the upgrade, got {}",
                        ["first", "second"][i],
                        other.describe()
                    ))
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The HTTP upgrade, by hand.

/// An upgrade request: path and headers, in order.
#[derive(Clone)]
struct Req {
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    /// A valid upgrade request for `token`, with a fresh random key.
    fn upgrade(token: &str) -> Req {
        Req {
            path: format!("/v1/ws?token={token}"),
            headers: vec![
                ("Upgrade".into(), "websocket".into()),
                ("Connection".into(), "Upgrade".into()),
                ("Sec-WebSocket-Key".into(), generate_key()),
                ("Sec-WebSocket-Version".into(), "13".into()),
            ],
        }
    }

    /// Sets a header (replacing any of the same name).
    fn set(self, name: &str, value: &str) -> Req {
        let mut r = self.without(name);
        r.headers.push((name.into(), value.into()));
        r
    }

    fn without(mut self, name: &str) -> Req {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn bytes(&self, host: std::net::SocketAddr) -> Vec<u8> {
        let mut s = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n", self.path);
        for (n, v) in &self.headers {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

/// The server's answer to an upgrade request.
struct Resp {
    status: u16,
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error_code(&self) -> Option<String> {
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        v["error"]["code"].as_str().map(str::to_owned)
    }

    fn describe(&self) -> String {
        let headers: Vec<String> = self.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        format!(
            "`{}` [{}] body {:?}",
            self.status_line,
            headers.join(", "),
            short(&String::from_utf8_lossy(&self.body))
        )
    }
}

async fn read_line(ws: &mut Ws, deadline: Instant) -> Result<String, String> {
    loop {
        if let Some(at) = ws.buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&ws.buf[..at]).into_owned();
            ws.buf.drain(..at + 2);
            return Ok(line);
        }
        ws.fill(deadline)
            .await
            .map_err(|g| format!("reading the HTTP response: {}", g.describe()))?;
    }
}

/// Connects, writes `req`, and reads the response head (and, for anything but `101`, its body).
async fn handshake(server: &TestServer, req: &Req) -> Result<(Ws, Resp), String> {
    let stream = tokio::time::timeout(WAIT, TcpStream::connect(server.addr()))
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| format!("connecting failed: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut ws = Ws {
        stream,
        buf: Vec::new(),
        seen: Vec::new(),
    };
    ws.send(&req.bytes(server.addr())).await?;
    let deadline = Instant::now() + WAIT;
    let status_line = read_line(&mut ws, deadline).await?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut ws, deadline).await?;
        if line.is_empty() {
            break;
        }
        let (n, v) = line
            .split_once(':')
            .ok_or_else(|| format!("not an HTTP header line: {line:?}"))?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let mut resp = Resp {
        status,
        status_line,
        headers,
        body: Vec::new(),
    };
    if status != 101 {
        if let Some(len) = resp.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            ws.need(len, deadline)
                .await
                .map_err(|g| format!("reading the body: {}", g.describe()))?;
            resp.body = ws.buf.drain(..len).collect();
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let size = read_line(&mut ws, deadline).await?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| format!("bad chunk size {size:?}"))?;
                if size == 0 {
                    while !read_line(&mut ws, deadline).await?.is_empty() {}
                    break;
                }
                ws.need(size + 2, deadline)
                    .await
                    .map_err(|g| format!("reading a chunk: {}", g.describe()))?;
                resp.body.extend(ws.buf.drain(..size));
                ws.buf.drain(..2);
            }
        }
    }
    Ok((ws, resp))
}

/// A fresh guest's upgrade request, edited by `edit` (each case has its own character, so that a wrongly
/// accepted upgrade cannot turn the next case into a `409 character_online`).
async fn guest_request(server: &TestServer, edit: impl FnOnce(Req) -> Req) -> Req {
    let (token, _) = server.guest("conformance").await;
    edit(Req::upgrade(&token))
}

/// A joined JSON session: upgraded, `welcome` and the first keyframe read.
async fn open(server: &TestServer) -> Result<Ws, String> {
    let req = guest_request(server, |r| r).await;
    let (mut ws, resp) = handshake(server, &req).await?;
    if resp.status != 101 {
        return Err(format!("the upgrade was refused: {}", resp.describe()));
    }
    ws.joined(TEXT).await?;
    Ok(ws)
}

// ---------------------------------------------------------------------------------------------------------------
// Running cases.

type Case<'a> = (String, BoxFuture<'a, Result<(), String>>);

/// Runs the cases concurrently; the error lists every failing case.
async fn run_cases(cases: Vec<Case<'_>>) -> Result<(), String> {
    let n = cases.len();
    let results = join_all(cases.into_iter().map(|(name, case)| async move { (name, case.await) })).await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|e| format!("  {name}: {e}")))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {n} cases failed:\n{}", failed.len(), failed.join("\n")))
    }
}

/// Stops the server, then fails the test if `result` is an error.
async fn finish(mut server: TestServer, result: Result<(), String>) {
    server.stop().await;
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Opens a session, writes `bytes`, and expects a close frame with one of `ok` then the end of the connection.
async fn violation(server: &TestServer, bytes: Vec<u8>, ok: &'static [u16]) -> Result<(), String> {
    let mut ws = open(server).await?;
    // The server may close (and stop reading) before all the bytes are written; what matters is its answer.
    let sent = ws.send(&bytes).await;
    ws.expect_close(ok, false).await.map_err(|e| match sent {
        Err(s) => format!("{e} ({s})"),
        Ok(()) => e,
    })
}

fn violations<'a>(server: &'a TestServer, cases: Vec<(String, Vec<u8>)>, ok: &'static [u16]) -> Vec<Case<'a>> {
    cases
        .into_iter()
        .map(|(name, bytes)| (name, violation(server, bytes, ok).boxed()))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Handshake.

/// Expects `101` with the RFC's accept key, the `Upgrade`/`Connection` headers, `protocol` echoed (or no
/// `Sec-WebSocket-Protocol` at all), then `welcome` and a keyframe in frames of type `opcode`.
async fn accepted(server: &TestServer, req: Req, protocol: Option<&str>, opcode: u8) -> Result<(), String> {
    let key = req.header("Sec-WebSocket-Key").unwrap_or_default().to_owned();
    let (mut ws, resp) = handshake(server, &req).await?;
    if resp.status != 101 {
        return Err(format!("expected 101, got {}", resp.describe()));
    }
    let want = derive_accept_key(key.as_bytes());
    if resp.header("Sec-WebSocket-Accept") != Some(want.as_str()) {
        return Err(format!(
            "expected Sec-WebSocket-Accept: {want}, got {}",
            resp.describe()
        ));
    }
    if !resp
        .header("Upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    {
        return Err(format!("expected Upgrade: websocket, got {}", resp.describe()));
    }
    if !resp
        .header("Connection")
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
    {
        return Err(format!("expected Connection: Upgrade, got {}", resp.describe()));
    }
    if resp.header("Sec-WebSocket-Protocol") != protocol {
        return Err(format!(
            "expected Sec-WebSocket-Protocol {protocol:?}, got {}",
            resp.describe()
        ));
    }
    if let Some(ext) = resp.header("Sec-WebSocket-Extensions") {
        return Err(format!("no extension was offered, yet the server chose {ext:?}"));
    }
    ws.joined(opcode).await
}

/// Expects a refusal with one of `statuses` and a JSON body `{"error": {"code": ...}}`; never `101`.
async fn refused(server: &TestServer, req: Req, statuses: &[u16]) -> Result<Resp, String> {
    let (_ws, resp) = handshake(server, &req).await?;
    if !statuses.contains(&resp.status) {
        return Err(format!("expected HTTP {statuses:?}, got {}", resp.describe()));
    }
    if resp.status == 400 && resp.error_code().is_none() {
        return Err(format!("expected a JSON body with error.code, got {}", resp.describe()));
    }
    Ok(resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_valid_request_gets_101_with_the_rfc_accept_key() {
    // The helpers themselves, against RFC 6455 section 1.3's example.
    assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(
        derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let cases: Vec<Case> = vec![
        (
            "random key".into(),
            async move { accepted(s, guest_request(s, |r| r).await, None, TEXT).await }.boxed(),
        ),
        (
            "RFC 6455 sample key".into(),
            async move {
                let req = guest_request(s, |r| r.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")).await;
                accepted(s, req, None, TEXT).await
            }
            .boxed(),
        ),
        (
            "header names and tokens in other cases, Connection as a list".into(),
            async move {
                let req = guest_request(s, |r| {
                    let key = r.header("Sec-WebSocket-Key").unwrap().to_owned();
                    Req {
                        path: r.path,
                        headers: vec![
                            ("upgrade".into(), "WebSocket".into()),
                            ("connection".into(), "keep-alive, Upgrade".into()),
                            ("sec-websocket-key".into(), key),
                            ("SEC-WEBSOCKET-VERSION".into(), "13".into()),
                        ],
                    }
                })
                .await;
                accepted(s, req, None, TEXT).await
            }
            .boxed(),
        ),
    ];
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_key_that_is_not_16_bytes_of_base64_is_400() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let keys = [
        ("x", "x".to_owned()),
        ("base64 of 15 bytes", base64(&[7u8; 15])),
        ("base64 of 17 bytes", base64(&[7u8; 17])),
        ("24 characters outside base64", "!!!!!!!!!!!!!!!!!!!!!!==".to_owned()),
        ("empty", String::new()),
    ];
    let cases: Vec<Case> = keys
        .into_iter()
        .map(|(name, key)| {
            let case = async move {
                let req = guest_request(s, |r| r.set("Sec-WebSocket-Key", &key)).await;
                refused(s, req, &[400]).await.map(|_| ())
            };
            (format!("Sec-WebSocket-Key {name}"), case.boxed())
        })
        .collect();
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_without_key_upgrade_or_connection_is_400() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    type Edit = fn(Req) -> Req;
    let edits: [(&str, Edit); 5] = [
        ("no Sec-WebSocket-Key", |r| r.without("Sec-WebSocket-Key")),
        ("no Upgrade", |r| r.without("Upgrade")),
        ("no Connection", |r| r.without("Connection")),
        ("Upgrade: h2c", |r| r.set("Upgrade", "h2c")),
        ("Connection: keep-alive", |r| r.set("Connection", "keep-alive")),
    ];
    let cases: Vec<Case> = edits
        .into_iter()
        .map(|(name, edit)| {
            let case = async move { refused(s, guest_request(s, edit).await, &[400]).await.map(|_| ()) };
            (name.to_owned(), case.boxed())
        })
        .collect();
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_version_other_than_13_is_426_with_the_supported_version() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let mut cases: Vec<Case> = ["8", "7", "12", "14", "0"]
        .into_iter()
        .map(|v| {
            let case = async move {
                let resp = refused(s, guest_request(s, |r| r.set("Sec-WebSocket-Version", v)).await, &[426]).await?;
                match resp.header("Sec-WebSocket-Version") {
                    Some(h) if h.split(',').any(|t| t.trim() == "13") => Ok(()),
                    _ => Err(format!(
                        "a 426 must name the supported version (Sec-WebSocket-Version: 13), got {}",
                        resp.describe()
                    )),
                }
            };
            (format!("Sec-WebSocket-Version: {v}"), case.boxed())
        })
        .collect();
    // Without the header the request is not a valid upgrade: 400, or 426 naming the version.
    cases.push((
        "no Sec-WebSocket-Version".into(),
        async move {
            let resp = refused(
                s,
                guest_request(s, |r| r.without("Sec-WebSocket-Version")).await,
                &[400, 426],
            )
            .await?;
            if resp.status == 426 && resp.header("Sec-WebSocket-Version").is_none() {
                return Err(format!("a 426 without Sec-WebSocket-Version: {}", resp.describe()));
            }
            Ok(())
        }
        .boxed(),
    ));
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_subprotocol_negotiation() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let good = [
        ("orrery.bin.v1", "orrery.bin.v1", BINARY),
        ("orrery.json.v1", "orrery.json.v1", TEXT),
        ("chat.v9, orrery.bin.v1", "orrery.bin.v1", BINARY),
        ("orrery.bin.v1, orrery.json.v1", "orrery.bin.v1", BINARY),
    ];
    let mut cases: Vec<Case> = good
        .into_iter()
        .map(|(offer, chosen, opcode)| {
            let case = async move {
                let req = guest_request(s, |r| r.set("Sec-WebSocket-Protocol", offer)).await;
                accepted(s, req, Some(chosen), opcode).await
            };
            (format!("offering {offer:?}"), case.boxed())
        })
        .collect();
    for offer in ["chat.v9", "chat.v9, superchat", "orrery.bin.v2"] {
        let case = async move {
            let req = guest_request(s, |r| r.set("Sec-WebSocket-Protocol", offer)).await;
            refused(s, req, &[400]).await.map(|_| ())
        };
        cases.push((format!("offering only {offer:?}"), case.boxed()));
    }
    let result = run_cases(cases).await;
    finish(server, result).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Fragmentation and control frames.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_text_message_is_reassembled() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let cases: Vec<Case> = vec![
        (
            "3 fragments".into(),
            async move {
                let mut ws = open(s).await?;
                let msg = ping_json(7);
                let bytes = [
                    frame(TEXT, false, &msg[..5]),
                    frame(CONT, false, &msg[5..14]),
                    frame(CONT, true, &msg[14..]),
                ]
                .concat();
                ws.send(&bytes).await?;
                ws.expect_pong_json(7).await?;
                ws.alive(8).await
            }
            .boxed(),
        ),
        (
            "one byte per fragment, empty first and last fragments".into(),
            async move {
                let mut ws = open(s).await?;
                let msg = ping_json(9);
                let mut bytes = frame(TEXT, false, b"");
                for b in &msg {
                    bytes.extend(frame(CONT, false, std::slice::from_ref(b)));
                }
                bytes.extend(frame(CONT, true, b""));
                ws.send(&bytes).await?;
                ws.expect_pong_json(9).await
            }
            .boxed(),
        ),
        (
            "fragments written in separate TCP writes".into(),
            async move {
                let mut ws = open(s).await?;
                let msg = ping_json(11);
                ws.send(&frame(TEXT, false, &msg[..6])).await?;
                tokio::time::sleep(Duration::from_millis(120)).await;
                ws.send(&frame(CONT, false, &msg[6..10])).await?;
                tokio::time::sleep(Duration::from_millis(120)).await;
                ws.send(&frame(CONT, true, &msg[10..])).await?;
                ws.expect_pong_json(11).await
            }
            .boxed(),
        ),
    ];
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_character_split_across_fragments_is_accepted() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let result = async {
        let mut ws = open(&server).await?;
        let text = "5 € for ü";
        let msg = format!(r#"{{"type":"chat","id":4,"channel":"sector","text":"{text}"}}"#).into_bytes();
        // Cut inside the 3 bytes of '€' and inside the 2 bytes of 'ü'.
        let euro = msg.windows(3).position(|w| w == "€".as_bytes()).unwrap();
        let u = msg.windows(2).position(|w| w == "ü".as_bytes()).unwrap();
        let bytes = [
            frame(TEXT, false, &msg[..euro + 1]),
            frame(CONT, false, &msg[euro + 1..u + 1]),
            frame(CONT, true, &msg[u + 1..]),
        ]
        .concat();
        ws.send(&bytes).await?;
        ws.expect_json(&format!("the chat line {text:?}"), |v| {
            v["type"] == "chat" && v["text"] == text
        })
        .await
        .map(|_| ())
    }
    .await;
    finish(server, result).await;
}

/// Sends a JSON ping (id 7) in three fragments with `between` after the first and `between2` after the second,
/// and expects the JSON pong and pongs for the pings among them: every pong echoes one of the pings, in order, and
/// the last ping is answered (RFC 6455 5.5.3 lets a server answer only the most recent of several pings).
async fn controls_between_fragments(
    server: &TestServer,
    between: Vec<u8>,
    between2: Vec<u8>,
    pings: &[&[u8]],
) -> Result<(), String> {
    let mut ws = open(server).await?;
    let msg = ping_json(7);
    let bytes = [
        frame(TEXT, false, &msg[..4]),
        between,
        frame(CONT, false, &msg[4..12]),
        between2,
        frame(CONT, true, &msg[12..]),
    ]
    .concat();
    ws.send(&bytes).await?;
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    let mut answered = false;
    let last = pings.last().map(|p| p.to_vec());
    let deadline = Instant::now() + WAIT;
    while !answered || pongs.last() != last.as_ref() {
        match ws.read_frame(deadline).await {
            Got::Frame(f) if f.opcode == PONG => pongs.push(f.payload),
            Got::Frame(f) if f.json().is_some_and(|v| v["type"] == "pong" && v["id"] == 7) => answered = true,
            Got::Frame(f) if f.is_noise() => ws.note(&f),
            other => {
                return Err(format!(
                    "expected the JSON pong id 7{}; had pongs {:?} and JSON pong: {answered}, then got {}{}",
                    last.as_ref()
                        .map(|l| format!(" and a pong {:?}", String::from_utf8_lossy(l)))
                        .unwrap_or_default(),
                    pongs
                        .iter()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect::<Vec<_>>(),
                    other.describe(),
                    ws.seen_note()
                ))
            }
        }
    }
    // Every pong echoes a ping, in the order sent.
    let mut next = 0;
    for p in &pongs {
        match pings[next..].iter().position(|q| q == p) {
            Some(i) => next += i + 1,
            None => {
                return Err(format!(
                    "pong {:?} does not echo a ping (in order) of {pings:?}",
                    String::from_utf8_lossy(p)
                ))
            }
        }
    }
    ws.alive(8).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_frames_between_fragments_are_answered_and_the_message_completes() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let cases: Vec<Case> = vec![
        (
            "ping \"abc\" between fragments".into(),
            controls_between_fragments(s, single(PING, b"abc"), Vec::new(), &[b"abc"]).boxed(),
        ),
        (
            "a ping after each of the first two fragments".into(),
            controls_between_fragments(s, single(PING, b"one"), single(PING, b"two"), &[b"one", b"two"]).boxed(),
        ),
        (
            "unsolicited pong between fragments".into(),
            controls_between_fragments(s, single(PONG, b"unsolicited"), Vec::new(), &[]).boxed(),
        ),
        (
            "ping, pong and empty ping between fragments".into(),
            controls_between_fragments(
                s,
                [single(PING, b"abc"), single(PONG, b"x")].concat(),
                single(PING, b""),
                &[b"abc", b""],
            )
            .boxed(),
        ),
    ];
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_between_fragments_is_answered_with_1000() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let result = async {
        let mut ws = open(&server).await?;
        let msg = ping_json(7);
        let bytes = [frame(TEXT, false, &msg[..6]), single(CLOSE, &close_body(1000, b""))].concat();
        ws.send(&bytes).await?;
        ws.expect_close(&[1000], false).await
    }
    .await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_with_125_bytes_gets_the_same_125_bytes_back() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let result = async {
        let mut ws = open(&server).await?;
        let payload: Vec<u8> = (0..125u8).map(|i| i.wrapping_mul(37)).collect();
        ws.send(&single(PING, &payload)).await?;
        ws.expect_pong(&payload).await?;
        ws.alive(1).await
    }
    .await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_ping_gets_an_empty_pong() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let result = async {
        let mut ws = open(&server).await?;
        ws.send(&single(PING, b"")).await?;
        ws.expect_pong(b"").await?;
        ws.alive(1).await
    }
    .await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_control_frames_close_1002() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let long_close = close_body(1000, &[b'r'; 124]);
    let cases = vec![
        ("ping with 126 bytes".to_owned(), single(PING, &[b'p'; 126])),
        ("pong with 126 bytes".to_owned(), single(PONG, &[b'p'; 126])),
        ("close with 126 bytes".to_owned(), single(CLOSE, &long_close)),
        ("ping with FIN=0".to_owned(), frame(PING, false, b"abc")),
        (
            "ping with FIN=0 then its \"continuation\"".to_owned(),
            [frame(PING, false, b"ab"), frame(CONT, true, b"c")].concat(),
        ),
        ("pong with FIN=0".to_owned(), frame(PONG, false, b"")),
        (
            "close with FIN=0".to_owned(),
            frame(CLOSE, false, &close_body(1000, b"")),
        ),
    ];
    let result = run_cases(violations(&server, cases, &[1002])).await;
    finish(server, result).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Framing violations.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmasked_client_frames_close_1002() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let cases = vec![
        ("unmasked text".to_owned(), raw(FIN | TEXT, false, &ping_json(1))),
        ("unmasked binary".to_owned(), raw(FIN | BINARY, false, &[0, 0])),
        ("unmasked ping".to_owned(), raw(FIN | PING, false, b"hi")),
        (
            "unmasked continuation".to_owned(),
            [frame(TEXT, false, b"{"), raw(FIN | CONT, false, b"}")].concat(),
        ),
    ];
    let result = run_cases(violations(&server, cases, &[1002])).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_bits_without_extension_close_1002() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let ping = ping_json(1);
    let mut cases = Vec::new();
    for (name, bit) in [("RSV1", RSV1), ("RSV2", RSV2), ("RSV3", RSV3)] {
        cases.push((format!("text with {name}"), raw(FIN | bit | TEXT, true, &ping)));
    }
    cases.push(("binary with RSV1".to_owned(), raw(FIN | RSV1 | BINARY, true, &[0, 0])));
    cases.push(("ping with RSV2".to_owned(), raw(FIN | RSV2 | PING, true, b"x")));
    cases.push((
        "continuation with RSV3".to_owned(),
        [frame(TEXT, false, &ping[..3]), raw(FIN | RSV3 | CONT, true, &ping[3..])].concat(),
    ));
    let result = run_cases(violations(&server, cases, &[1002])).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_opcodes_close_1002() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let cases = (3..=7u8)
        .chain(11..=15)
        .map(|op| (format!("opcode {op}"), raw(FIN | op, true, b"x")))
        .collect();
    let result = run_cases(violations(&server, cases, &[1002])).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_and_interleaving_errors_close_1002() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let ping = ping_json(1);
    let cases = vec![
        (
            "final continuation with no message started".to_owned(),
            frame(CONT, true, &ping),
        ),
        (
            "non-final continuation with no message started".to_owned(),
            frame(CONT, false, &ping),
        ),
        (
            "continuation after a complete message".to_owned(),
            [single(TEXT, &ping), frame(CONT, true, b" ")].concat(),
        ),
        (
            "text while a text message is open".to_owned(),
            [frame(TEXT, false, &ping[..4]), single(TEXT, &ping)].concat(),
        ),
        (
            "binary while a text message is open".to_owned(),
            [frame(TEXT, false, &ping[..4]), single(BINARY, &[0, 0])].concat(),
        ),
        (
            "non-final text while a binary message is open".to_owned(),
            [frame(BINARY, false, &[0]), frame(TEXT, false, &ping[..4])].concat(),
        ),
    ];
    let result = run_cases(violations(&server, cases, &[1002])).await;
    finish(server, result).await;
}

/// A masked frame header declaring a 64-bit payload length (no payload follows).
fn header_64(first: u8, len: u64) -> Vec<u8> {
    let mut v = vec![first, 0x80 | 127];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&MASK_KEY);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_length_with_the_most_significant_bit_set_closes_1002() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let cases = vec![
        (
            "binary, length 2^63 + 5".to_owned(),
            header_64(FIN | BINARY, (1 << 63) | 5),
        ),
        ("text, length u64::MAX".to_owned(), header_64(FIN | TEXT, u64::MAX)),
    ];
    let result = run_cases(violations(&server, cases, &[1002])).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_larger_than_64_kib_close_1009() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let cases = vec![
        (
            "single text frame of 64 KiB + 1".to_owned(),
            single(TEXT, &vec![b' '; MAX_MESSAGE + 1]),
        ),
        (
            "single binary frame of 70 KiB".to_owned(),
            single(BINARY, &vec![0; 70 * 1024]),
        ),
        (
            "two text fragments of 40 KiB".to_owned(),
            [
                frame(TEXT, false, &[b' '; 40 * 1024]),
                frame(CONT, true, &[b' '; 40 * 1024]),
            ]
            .concat(),
        ),
        (
            "17 binary fragments of 4 KiB, the last one final".to_owned(),
            (0..17)
                .map(|i| frame(if i == 0 { BINARY } else { CONT }, i == 16, &[0; 4096]))
                .collect::<Vec<_>>()
                .concat(),
        ),
        (
            "header declaring 2^40 bytes (no payload sent)".to_owned(),
            header_64(FIN | BINARY, 1 << 40),
        ),
    ];
    let result = run_cases(violations(&server, cases, &[1009])).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_of_exactly_64_kib_is_not_too_big() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let result = async {
        let mut ws = open(&server).await?;
        // A ping with an unknown field, padded to exactly 64 KiB: an `invalid_message` error, not a close.
        let head = r#"{"type":"ping","id":3,"pad":""#;
        let pad = MAX_MESSAGE - head.len() - 2;
        let msg = format!("{head}{}\"}}", "x".repeat(pad));
        assert_eq!(msg.len(), MAX_MESSAGE);
        let half = MAX_MESSAGE / 2;
        let bytes = [
            frame(TEXT, false, &msg.as_bytes()[..half]),
            frame(CONT, true, &msg.as_bytes()[half..]),
        ]
        .concat();
        ws.send(&bytes).await?;
        ws.expect_json("an `error` frame with id 3", |v| v["type"] == "error" && v["id"] == 3)
            .await?;
        ws.send(&single(TEXT, msg.as_bytes())).await?;
        ws.expect_json("an `error` frame with id 3", |v| v["type"] == "error" && v["id"] == 3)
            .await?;
        ws.alive(4).await
    }
    .await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_closes_1007() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let chat = |bytes: &[u8]| [br#"{"type":"chat","channel":"sector","text":""#, bytes, br#""}"#].concat();
    let cases = vec![
        ("bytes ff fe".to_owned(), single(TEXT, &[0xff, 0xfe])),
        ("overlong '/' (c0 af)".to_owned(), single(TEXT, &chat(&[0xc0, 0xaf]))),
        (
            "UTF-16 surrogate (ed a0 80)".to_owned(),
            single(TEXT, &chat(&[0xed, 0xa0, 0x80])),
        ),
        (
            "code point above U+10FFFF (f4 90 80 80)".to_owned(),
            single(TEXT, &chat(&[0xf4, 0x90, 0x80, 0x80])),
        ),
        (
            "message ending inside a character".to_owned(),
            single(TEXT, &[b'"', 0xe2, 0x82]),
        ),
        (
            "fragments: a character cut and never completed".to_owned(),
            [
                frame(TEXT, false, br#"{"type":"chat","channel":"sector","text":""#),
                frame(CONT, false, &[0xe2, 0x82]),
                frame(CONT, true, b"\"}"),
            ]
            .concat(),
        ),
        (
            "fragments: the last one ends inside a character".to_owned(),
            [
                frame(TEXT, false, br#"{"type":"ping","x":""#),
                frame(CONT, true, &[0xe2]),
            ]
            .concat(),
        ),
        (
            "fragments: invalid byte in the final fragment".to_owned(),
            [frame(TEXT, false, &ping_json(1)[..5]), frame(CONT, true, &[b'x', 0xff])].concat(),
        ),
    ];
    let result = run_cases(violations(&server, cases, &[1007])).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_text_and_binary_frames_get_error_frames_not_a_close() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let cases: Vec<Case> = [("empty text frame", TEXT), ("empty binary frame", BINARY)]
        .into_iter()
        .map(|(name, opcode)| {
            let case = async move {
                let mut ws = open(s).await?;
                ws.send(&single(opcode, b"")).await?;
                ws.expect_json("an `error` frame", |v| v["type"] == "error").await?;
                ws.alive(5).await
            };
            (name.to_owned(), case.boxed())
        })
        .collect();
    let result = run_cases(cases).await;
    finish(server, result).await;
}

// ---------------------------------------------------------------------------------------------------------------
// The close handshake.

/// Opens a session, sends a close frame with `body`, and expects the server's close (`ok` codes, or empty if
/// `empty_ok`) and the end of the connection.
async fn close_with(server: &TestServer, body: Vec<u8>, ok: &[u16], empty_ok: bool) -> Result<(), String> {
    let mut ws = open(server).await?;
    ws.send(&single(CLOSE, &body)).await?;
    ws.expect_close(ok, empty_ok).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_1000_is_answered_with_1000_and_the_connection_ends() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let cases: Vec<Case> = vec![
        (
            "code 1000, no reason".into(),
            close_with(s, close_body(1000, b""), &[1000], false).boxed(),
        ),
        (
            "code 1000, reason \"bye ✓\"".into(),
            close_with(s, close_body(1000, "bye ✓".as_bytes()), &[1000], false).boxed(),
        ),
    ];
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_another_valid_code_is_echoed() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    const CODES: [u16; 12] = [1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
    let cases: Vec<Case> = CODES
        .iter()
        .map(|code| {
            let case = close_with(s, close_body(*code, b"x"), std::slice::from_ref(code), false);
            (format!("close {code}"), case.boxed())
        })
        .collect();
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_an_empty_body_is_answered() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let result = close_with(&server, Vec::new(), &[1000], true).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_an_invalid_code_or_a_1_byte_body_gets_1002() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let mut cases: Vec<Case> = [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
        .into_iter()
        .map(|code| {
            (
                format!("close {code}"),
                close_with(s, close_body(code, b""), &[1002], false).boxed(),
            )
        })
        .collect();
    cases.push((
        "close with a 1-byte body".into(),
        close_with(s, vec![0x03], &[1002], false).boxed(),
    ));
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reason_that_is_not_utf8_gets_1007() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let s = &server;
    let cases: Vec<Case> = vec![
        (
            "reason ff fe".into(),
            close_with(s, close_body(1000, &[0xff, 0xfe]), &[1007], false).boxed(),
        ),
        (
            "reason ending inside a character".into(),
            close_with(s, close_body(1000, &[b'o', b'k', 0xe2, 0x82]), &[1007], false).boxed(),
        ),
    ];
    let result = run_cases(cases).await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_frames_after_the_clients_close_are_ignored() {
    let server = TestServer::start_with(config(temp_dir())).await;
    let result = async {
        let mut ws = open(&server).await?;
        let bytes = [
            single(CLOSE, &close_body(1000, b"")),
            single(TEXT, &ping_json(9)),
            single(TEXT, b"not json"),
            single(BINARY, &[0xff, 0xff]),
            frame(TEXT, false, &ping_json(10)[..4]),
            frame(CONT, true, &ping_json(10)[4..]),
        ]
        .concat();
        ws.send(&bytes).await?;
        let deadline = Instant::now() + WAIT;
        loop {
            match ws.read_frame(deadline).await {
                Got::Frame(f) if matches!(f.kind().as_deref(), Some("pong" | "error")) => {
                    return Err(format!(
                        "a data frame sent after the close frame was answered: {}",
                        f.describe()
                    ))
                }
                Got::Frame(f) if f.opcode == CLOSE => {
                    if f.payload.len() < 2 || u16::from_be_bytes([f.payload[0], f.payload[1]]) != 1000 {
                        return Err(format!("expected close 1000, got {}", f.describe()));
                    }
                    break;
                }
                Got::Frame(f) if f.is_noise() => ws.note(&f),
                other => {
                    return Err(format!(
                        "expected close 1000, got {}{}",
                        other.describe(),
                        ws.seen_note()
                    ))
                }
            }
        }
        ws.expect_end().await
    }
    .await;
    finish(server, result).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Flooding.

/// A server whose connections may send 10 messages a second, bursts of 20.
async fn strict_server() -> TestServer {
    let mut cfg = config(temp_dir());
    cfg.engine.max_msgs_per_sec = 10;
    cfg.engine.msg_burst = 20;
    TestServer::start_with(cfg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_gets_few_pongs_then_close_1008() {
    let server = strict_server().await;
    let result = async {
        let mut ws = open(&server).await?;
        const N: u16 = 500;
        let bytes: Vec<u8> = (0..N).flat_map(|i| single(PING, &i.to_be_bytes())).collect();
        let start = Instant::now();
        // The server may close before reading everything; what matters is its answer.
        let _ = ws.send(&bytes).await;
        let deadline = start + WAIT;
        let mut pongs = 0usize;
        let code = loop {
            match ws.read_frame(deadline).await {
                Got::Frame(f) if f.opcode == PONG => {
                    let valid = f.payload.len() == 2 && u16::from_be_bytes([f.payload[0], f.payload[1]]) < N;
                    if !valid {
                        return Err(format!("a pong that echoes none of the pings: {:?}", f.payload));
                    }
                    pongs += 1;
                }
                Got::Frame(f) if f.opcode == CLOSE => break f.describe(),
                Got::Frame(f) if f.is_noise() => ws.note(&f),
                other => {
                    return Err(format!(
                        "{N} pings got {pongs} pongs, then {} instead of close 1008{}",
                        other.describe(),
                        ws.seen_note()
                    ))
                }
            }
        };
        let ticks = start.elapsed().as_millis() as usize / 50 + 1;
        if !code.starts_with("close 1008 ") {
            return Err(format!(
                "{N} pings got {pongs} pongs, then {code} instead of close 1008"
            ));
        }
        if pongs * 10 > N as usize || pongs > ticks + 1 {
            return Err(format!(
                "{N} pings got {pongs} pongs in {ticks} ticks before the close: expected at most one a tick"
            ));
        }
        ws.expect_end().await
    }
    .await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_continuation_flood_is_closed() {
    let server = strict_server().await;
    let result = async {
        let mut ws = open(&server).await?;
        let mut bytes = frame(TEXT, false, br#"{"type":"ping","id":1"#);
        for _ in 0..500 {
            bytes.extend(frame(CONT, false, b""));
        }
        let _ = ws.send(&bytes).await;
        ws.expect_close(&[1008, 1002], false)
            .await
            .map_err(|e| format!("after 500 empty continuation frames: {e}"))
    }
    .await;
    finish(server, result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsolicited_pong_flood_is_closed_1008() {
    let server = strict_server().await;
    let result = async {
        let mut ws = open(&server).await?;
        let bytes: Vec<u8> = (0..500).flat_map(|_| single(PONG, b"")).collect();
        let _ = ws.send(&bytes).await;
        ws.expect_close(&[1008], false)
            .await
            .map_err(|e| format!("after 500 unsolicited pongs: {e}"))
    }
    .await;
    finish(server, result).await;
}
