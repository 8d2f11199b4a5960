//! Minimal client-side WebSocket (RFC 6455): the upgrade request and its check, masked client frames, and an
//! incremental parser of server frames that survives any split of the byte stream.
//!
//! The parser is built for cheap counting: it never allocates per frame, keeps at most a 14-byte header and, unless
//! asked to capture data payloads, only skips over them. Control frames (ping, close) are always captured.

use base64::Engine as _;
use sha1::{Digest, Sha1};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The largest data message a capturing parser accepts (server messages are far smaller).
const MAX_CAPTURE: u64 = 64 * 1024 * 1024;

/// A violation of the WebSocket framing by the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved bits set")]
    Reserved,
    #[error("masked server frame")]
    Masked,
    #[error("bad opcode {0:#x}")]
    Opcode(u8),
    #[error("control frame too long or fragmented")]
    BadControl,
    #[error("continuation without a message, or a new message inside a fragmented one")]
    Fragmentation,
    #[error("message too large ({0} bytes)")]
    TooLarge(u64),
}

/// One complete frame, reported when its last payload byte has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The frame's own opcode (`OP_CONTINUATION` for later fragments).
    pub opcode: u8,
    pub fin: bool,
    /// Payload length of this frame.
    pub len: u64,
    /// For control frames always; for data frames only when capturing, and then only on the final fragment, holding
    /// the whole message (all fragments).
    pub payload: Option<&'a [u8]>,
    /// For a captured message: the opcode of its first fragment (text or binary).
    pub message_opcode: u8,
}

/// Incremental parser of server-to-client frames.
#[derive(Debug)]
pub struct FrameParser {
    capture_data: bool,
    hdr: [u8; 14],
    hdr_len: usize,
    /// Parsed header of the frame whose payload is being read.
    cur: Option<Header>,
    remaining: u64,
    /// Data payload bytes collected across reads and fragments (captured messages only).
    buf: Vec<u8>,
    /// Control frame payload collected across reads.
    ctrl: Vec<u8>,
    /// Opcode of the fragmented data message in progress, if any.
    fragmented: Option<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Header {
    opcode: u8,
    fin: bool,
    len: u64,
    capture: bool,
}

impl FrameParser {
    /// A parser; `capture_data` makes it hand over data payloads (else only their lengths).
    pub fn new(capture_data: bool) -> FrameParser {
        FrameParser {
            capture_data,
            hdr: [0; 14],
            hdr_len: 0,
            cur: None,
            remaining: 0,
            buf: Vec::new(),
            ctrl: Vec::new(),
            fragmented: None,
        }
    }

    /// Feeds bytes read from the socket; `on_frame` is called for each frame completed by them, in order.
    pub fn feed<E: From<FrameError>>(
        &mut self,
        mut data: &[u8],
        mut on_frame: impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            if let Some(h) = self.cur {
                // Payload of the current frame.
                let take = self.remaining.min(data.len() as u64) as usize;
                let (chunk, rest) = data.split_at(take);
                data = rest;
                self.remaining -= take as u64;
                if self.remaining > 0 {
                    if h.capture {
                        if h.opcode < 0x8 {
                            self.buf.extend_from_slice(chunk);
                        } else {
                            self.ctrl.extend_from_slice(chunk);
                        }
                    }
                    return Ok(());
                }
                self.cur = None;
                self.finish(h, chunk, &mut on_frame)?;
                continue;
            }
            if data.is_empty() {
                return Ok(());
            }
            // Header: copy what is needed into `hdr` until it is complete.
            let need = header_len(&self.hdr[..self.hdr_len]);
            let want = need.unwrap_or(2).max(self.hdr_len + 1) - self.hdr_len;
            let take = want.min(data.len());
            self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
            self.hdr_len += take;
            data = &data[take..];
            if self.hdr_len >= 2 && self.hdr[1] & 0x80 != 0 {
                return Err(FrameError::Masked.into());
            }
            match header_len(&self.hdr[..self.hdr_len]) {
                Some(n) if n <= self.hdr_len => {
                    let h = self.parse_header()?;
                    self.hdr_len = 0;
                    self.remaining = h.len;
                    self.cur = Some(h);
                }
                _ => continue,
            }
        }
    }

    /// A frame's payload is complete; `last` is its tail as found in the current read.
    fn finish<E: From<FrameError>>(
        &mut self,
        h: Header,
        last: &[u8],
        on_frame: &mut impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let is_data = h.opcode < 0x8;
        if !is_data {
            let payload: &[u8] = if self.ctrl.is_empty() {
                last
            } else {
                self.ctrl.extend_from_slice(last);
                &self.ctrl
            };
            let r = on_frame(Frame {
                opcode: h.opcode,
                fin: h.fin,
                len: h.len,
                payload: Some(payload),
                message_opcode: h.opcode,
            });
            self.ctrl.clear();
            return r;
        }
        let message_opcode = if h.opcode == OP_CONTINUATION {
            self.fragmented.unwrap_or(OP_BINARY)
        } else {
            h.opcode
        };
        self.fragmented = if h.fin { None } else { Some(message_opcode) };
        if !h.capture {
            return on_frame(Frame {
                opcode: h.opcode,
                fin: h.fin,
                len: h.len,
                payload: None,
                message_opcode,
            });
        }
        if !h.fin {
            // Keep collecting until the final fragment.
            self.buf.extend_from_slice(last);
            if self.buf.len() as u64 > MAX_CAPTURE {
                return Err(FrameError::TooLarge(self.buf.len() as u64).into());
            }
            return on_frame(Frame {
                opcode: h.opcode,
                fin: false,
                len: h.len,
                payload: None,
                message_opcode,
            });
        }
        let payload: &[u8] = if self.buf.is_empty() {
            // The whole frame (and message) is in this read: no copy.
            last
        } else {
            self.buf.extend_from_slice(last);
            &self.buf
        };
        let r = on_frame(Frame {
            opcode: h.opcode,
            fin: h.fin,
            len: h.len,
            payload: Some(payload),
            message_opcode,
        });
        self.buf.clear();
        r
    }

    fn parse_header(&mut self) -> Result<Header, FrameError> {
        let b0 = self.hdr[0];
        let b1 = self.hdr[1];
        if b0 & 0x70 != 0 {
            return Err(FrameError::Reserved);
        }
        if b1 & 0x80 != 0 {
            return Err(FrameError::Masked);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let len = match b1 & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.hdr[2], self.hdr[3]])),
            127 => u64::from_be_bytes(self.hdr[2..10].try_into().unwrap_or([0; 8])),
            n => u64::from(n),
        };
        let capture = match opcode {
            OP_CONTINUATION => {
                if self.fragmented.is_none() {
                    return Err(FrameError::Fragmentation);
                }
                self.capture_data
            }
            OP_TEXT | OP_BINARY => {
                if self.fragmented.is_some() {
                    return Err(FrameError::Fragmentation);
                }
                self.capture_data
            }
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin || len > 125 {
                    return Err(FrameError::BadControl);
                }
                true
            }
            op => return Err(FrameError::Opcode(op)),
        };
        if capture && len > MAX_CAPTURE {
            return Err(FrameError::TooLarge(len));
        }
        Ok(Header {
            opcode,
            fin,
            len,
            capture,
        })
    }
}

/// Length of a server frame header given its first bytes, once known (needs the second byte).
fn header_len(h: &[u8]) -> Option<usize> {
    let b1 = *h.get(1)?;
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    Some(
        2 + mask
            + match b1 & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            },
    )
}

/// Size of the header of a masked client frame carrying `len` payload bytes.
pub fn client_header_len(len: usize) -> usize {
    let ext = if len < 126 {
        0
    } else if len <= usize::from(u16::MAX) {
        2
    } else {
        8
    };
    2 + ext + 4
}

/// Appends one masked, final client frame to `out`.
pub fn encode_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.reserve(client_header_len(payload.len()) + payload.len());
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

/// The `Sec-WebSocket-Key` for 16 random bytes.
pub fn handshake_key(random: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// The `Sec-WebSocket-Accept` a server must answer to `key`.
pub fn expected_accept(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The upgrade request.
pub fn upgrade_request(host: &str, path: &str, key: &str, subprotocol: Option<&str>) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = subprotocol {
        req.push_str("Sec-WebSocket-Protocol: ");
        req.push_str(p);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("HTTP status {0} instead of 101")]
    Status(u16),
    #[error("malformed upgrade response")]
    Malformed,
    #[error("wrong or missing Sec-WebSocket-Accept")]
    Accept,
    #[error("server chose subprotocol {0:?}")]
    Subprotocol(Option<String>),
}

impl HandshakeError {
    /// A short stable name for failure counts.
    pub fn kind(&self) -> String {
        match self {
            HandshakeError::Status(s) => format!("ws_status_{s}"),
            HandshakeError::Malformed => "ws_malformed_response".into(),
            HandshakeError::Accept => "ws_bad_accept".into(),
            HandshakeError::Subprotocol(_) => "ws_bad_subprotocol".into(),
        }
    }
}

/// Checks a complete upgrade response head (up to and including the blank line).
pub fn check_upgrade_response(head: &[u8], key: &str, subprotocol: Option<&str>) -> Result<(), HandshakeError> {
    let text = std::str::from_utf8(head).map_err(|_| HandshakeError::Malformed)?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(HandshakeError::Malformed)?;
    if status != 101 {
        return Err(HandshakeError::Status(status));
    }
    let mut accept = None;
    let mut proto = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("sec-websocket-accept") {
                accept = Some(value.trim().to_owned());
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                proto = Some(value.trim().to_owned());
            }
        }
    }
    if accept.as_deref() != Some(expected_accept(key).as_str()) {
        return Err(HandshakeError::Accept);
    }
    if let Some(want) = subprotocol {
        if proto.as_deref() != Some(want) {
            return Err(HandshakeError::Subprotocol(proto));
        }
    }
    Ok(())
}

/// Position just past the blank line ending an HTTP head, if `buf` holds it all.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The status code of a close frame's payload (1005 when it carries none).
pub fn close_code(payload: &[u8]) -> u16 {
    if payload.len() >= 2 {
        u16::from_be_bytes([payload[0], payload[1]])
    } else {
        1005
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unmasked server frame.
    fn server_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(len as u8);
        } else if len <= 0xFFFF {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Seen {
        opcode: u8,
        fin: bool,
        len: u64,
        payload: Option<Vec<u8>>,
        message_opcode: u8,
    }

    fn run(parser: &mut FrameParser, chunks: &[&[u8]]) -> Result<Vec<Seen>, FrameError> {
        let mut seen = Vec::new();
        for c in chunks {
            parser.feed(c, |f: Frame<'_>| {
                seen.push(Seen {
                    opcode: f.opcode,
                    fin: f.fin,
                    len: f.len,
                    payload: f.payload.map(<[u8]>::to_vec),
                    message_opcode: f.message_opcode,
                });
                Ok::<_, FrameError>(())
            })?;
        }
        Ok(seen)
    }

    fn stream() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let small: Vec<u8> = (0..100u8).collect();
        let medium: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let large: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let mut s = Vec::new();
        s.extend(server_frame(OP_BINARY, true, &small));
        s.extend(server_frame(OP_PING, true, b"hi"));
        s.extend(server_frame(OP_BINARY, true, &medium));
        s.extend(server_frame(OP_TEXT, false, b"frag"));
        s.extend(server_frame(OP_PING, true, b"yo"));
        s.extend(server_frame(OP_CONTINUATION, true, b"ment"));
        s.extend(server_frame(OP_BINARY, true, &large));
        s.extend(server_frame(OP_BINARY, true, b""));
        s.extend(server_frame(OP_CLOSE, true, &[0x03, 0xE8]));
        (s, small, large)
    }

    #[test]
    fn capturing_parser_sees_the_same_frames_for_every_split() {
        let (s, small, large) = stream();
        let whole = run(&mut FrameParser::new(true), &[&s]).unwrap();
        assert_eq!(whole.len(), 9);
        assert_eq!(whole[0].payload.as_deref(), Some(&small[..]));
        assert_eq!(whole[1].opcode, OP_PING);
        assert_eq!(whole[1].payload.as_deref(), Some(&b"hi"[..]));
        assert_eq!(whole[3].payload, None, "non-final fragment");
        assert_eq!(whole[4].payload.as_deref(), Some(&b"yo"[..]), "ping between fragments");
        assert_eq!(whole[5].payload.as_deref(), Some(&b"fragment"[..]));
        assert_eq!(whole[5].message_opcode, OP_TEXT);
        assert_eq!(whole[6].len, 70_000);
        assert_eq!(whole[6].payload.as_deref(), Some(&large[..]));
        assert_eq!(whole[7].payload.as_deref(), Some(&b""[..]));
        assert_eq!(close_code(whole[8].payload.as_deref().unwrap()), 1000);
        // Two-way splits at every position, and byte-by-byte.
        for cut in 0..s.len() {
            let got = run(&mut FrameParser::new(true), &[&s[..cut], &s[cut..]]).unwrap();
            assert_eq!(got, whole, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(run(&mut FrameParser::new(true), &bytes).unwrap(), whole);
        let odd: Vec<&[u8]> = s.chunks(997).collect();
        assert_eq!(run(&mut FrameParser::new(true), &odd).unwrap(), whole);
    }

    #[test]
    fn counting_parser_reports_lengths_only_but_still_captures_control_frames() {
        let (s, _, _) = stream();
        let whole = run(&mut FrameParser::new(false), &[&s]).unwrap();
        let lens: Vec<u64> = whole.iter().map(|f| f.len).collect();
        assert_eq!(lens, vec![100, 2, 1000, 4, 2, 4, 70_000, 0, 2]);
        assert!(whole.iter().filter(|f| f.opcode < 8).all(|f| f.payload.is_none()));
        assert_eq!(whole[1].payload.as_deref(), Some(&b"hi"[..]));
        assert_eq!(whole[4].payload.as_deref(), Some(&b"yo"[..]));
        assert_eq!(whole[8].payload.as_deref(), Some(&[0x03, 0xE8][..]));
        for cut in 0..s.len() {
            let got = run(&mut FrameParser::new(false), &[&s[..cut], &s[cut..]]).unwrap();
            assert_eq!(got, whole, "split at {cut}");
        }
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut masked = server_frame(OP_BINARY, true, b"x");
        masked[1] |= 0x80;
        assert_eq!(run(&mut FrameParser::new(false), &[&masked]), Err(FrameError::Masked));
        let bad_op = server_frame(0x3, true, b"x");
        assert_eq!(
            run(&mut FrameParser::new(false), &[&bad_op]),
            Err(FrameError::Opcode(3))
        );
        let cont = server_frame(OP_CONTINUATION, true, b"x");
        assert_eq!(
            run(&mut FrameParser::new(false), &[&cont]),
            Err(FrameError::Fragmentation)
        );
        let long_ping = server_frame(OP_PING, true, &[0; 200]);
        assert_eq!(
            run(&mut FrameParser::new(true), &[&long_ping]),
            Err(FrameError::BadControl)
        );
    }

    #[test]
    fn client_frames_are_masked_with_the_right_length_encoding() {
        for len in [0usize, 5, 125, 126, 1000, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mask = [1, 2, 3, 4];
            let mut out = Vec::new();
            encode_client_frame(&mut out, OP_BINARY, &payload, mask);
            assert_eq!(out.len(), client_header_len(len) + len);
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1] & 0x80, 0x80, "masked");
            let hl = client_header_len(len);
            assert_eq!(&out[hl - 4..hl], &mask);
            let unmasked: Vec<u8> = out[hl..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
            assert_eq!(unmasked, payload);
        }
    }

    #[test]
    fn handshake_accept_matches_rfc_example() {
        // RFC 6455 section 1.3.
        assert_eq!(
            expected_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: orrery.bin.v1\r\n\r\n";
        assert_eq!(check_upgrade_response(ok, key, Some("orrery.bin.v1")), Ok(()));
        assert_eq!(
            check_upgrade_response(ok, key, Some("orrery.json.v1")),
            Err(HandshakeError::Subprotocol(Some("orrery.bin.v1".into())))
        );
        assert_eq!(check_upgrade_response(ok, "other", None), Err(HandshakeError::Accept));
        let refused = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            check_upgrade_response(refused, key, None),
            Err(HandshakeError::Status(401))
        );
        assert_eq!(head_end(b"HTTP/1.1 101 X\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"HTTP/1.1 101 X\r\n\r"), None);
    }
}
