//! A connection's inbound side: the bytes a client sent, parsed into WebSocket messages and decoded into client
//! frames, with the size and rate limits applied.
//!
//! Nothing here owns a task. The sector a session's ship is in reads the session's socket when its poller says
//! there is something to read, once per tick, and hands the decoded messages to the game before the tick
//! integrates; so an input costs one `recv`, not a task wake-up, a channel hop and an actor message.

use std::time::Instant;

use orrery_protocol::{codec, codes, ClientFrame, DecodeError};
use serde::de::DeserializeOwned;

use crate::net::{self, Conn, FrameReader, Opcode, WsEvent, READ_CHUNK};

/// At most this many bytes are read from one connection per tick; the rest waits for the next tick.
pub const READ_BUDGET: usize = 64 * 1024;

/// A token bucket for the client's message rate.
#[derive(Debug)]
struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// Takes `n` tokens; false if the bucket does not hold them.
    fn allow(&mut self, n: u64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        let n = n as f64;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// The limits of a connection's inbound side.
#[derive(Debug, Clone, Copy)]
pub struct InputLimits {
    /// Sustained frames per second (every WebSocket frame counts: data, continuation, ping, pong, close).
    pub max_msgs_per_sec: u32,
    /// Frames allowed in a burst above the sustained rate.
    pub burst: u32,
    /// The largest message (after reassembly of fragments), in bytes.
    pub max_message: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_msgs_per_sec: u32::MAX,
            burst: u32::MAX,
            max_message: orrery_protocol::MAX_CLIENT_MESSAGE,
        }
    }
}

/// What reading a connection produced.
#[derive(Debug)]
pub enum Input<C> {
    /// A client message, or why it could not be decoded (answered with an `error` frame).
    Message(Result<ClientFrame<C>, DecodeError>),
    /// Nothing more will be read: the peer closed or vanished, sent a close frame, broke the WebSocket rules or
    /// the rate limit (the connection has been closed with the matching code where one applies).
    Ended,
}

/// A connection's read buffer, partial frames and rate limit. It belongs to the session and is used by whichever
/// sector the session's ship is in, so a message cut in two by a warp is still read whole.
#[derive(Debug)]
pub struct InputState {
    reader: FrameReader,
    limit: RateLimit,
    /// The peer's side ended (EOF or a socket error); what is buffered is still read.
    eof: bool,
    /// `Input::Ended` was returned; nothing more is.
    ended: bool,
    /// The payload of the latest ping not answered yet: pings are answered once per read (per tick), the latest
    /// one only (RFC 6455, 5.5.3 allows it), so a ping flood cannot make the server write a pong per ping.
    pong_owed: Option<bytes::Bytes>,
}

impl Default for InputState {
    fn default() -> Self {
        Self::new(InputLimits::default())
    }
}

impl InputState {
    /// An input state with these limits.
    pub fn new(limits: InputLimits) -> Self {
        let burst = f64::from(limits.burst.max(1));
        Self {
            reader: FrameReader::new(limits.max_message),
            limit: RateLimit {
                rate: f64::from(limits.max_msgs_per_sec),
                burst,
                tokens: burst,
                at: Instant::now(),
            },
            eof: false,
            ended: false,
            pong_owed: None,
        }
    }

    /// Bytes that arrived before reading started (what the HTTP layer read past the upgrade request).
    pub fn push(&mut self, bytes: &[u8]) {
        self.reader.push(bytes);
    }

    /// Whether reading has ended.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Reads what the socket holds, up to [`READ_BUDGET`] bytes. Returns true if the budget stopped it, i.e. the
    /// socket may hold more without a new readiness event saying so.
    pub fn fill(&mut self, conn: &Conn) -> bool {
        if self.eof || self.ended {
            return false;
        }
        // Read into the stack and keep only what arrived: an idle connection holds no read buffer, and a read
        // neither allocates nor clears a whole chunk for the few bytes an input takes.
        let mut chunk = [0u8; READ_CHUNK];
        let mut total = 0;
        loop {
            match conn.recv(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.reader.push(&chunk[..n]);
                    total += n;
                    // A short read drained the socket: new bytes will raise a new readiness event.
                    if n < READ_CHUNK {
                        return false;
                    }
                    if total >= READ_BUDGET {
                        return true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    /// The next client message in the buffer. Every frame is charged to the rate limit; past it the connection is
    /// closed with 1008. The latest ping is answered when the buffer is exhausted (one pong per read), pongs are
    /// ignored, a close frame is answered with the client's own code and ends the input, and so do protocol
    /// violations (closed with their code: 1002, 1007, 1009).
    pub fn next<C: DeserializeOwned>(&mut self, conn: &Conn) -> Option<Input<C>> {
        if self.ended {
            return None;
        }
        loop {
            let before = self.reader.frames_read();
            let event = self.reader.next_event();
            let frames = self.reader.frames_read() - before;
            if frames > 0 && !self.limit.allow(frames) {
                metrics::counter!("orrery_rate_limited_total").increment(1);
                conn.close(codes::CLOSE_RATE_LIMITED, "message rate limit exceeded");
                return self.end();
            }
            let event = match event {
                Ok(Some(event)) => event,
                Ok(None) => {
                    self.answer_ping(conn);
                    if self.eof {
                        return self.end();
                    }
                    self.reader.release_idle();
                    return None;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "closing connection on protocol violation");
                    metrics::counter!("orrery_ws_protocol_errors_total", "kind" => e.kind()).increment(1);
                    conn.close(e.close_code(), &e.to_string());
                    return self.end();
                }
            };
            let decoded = match event {
                WsEvent::Text(text) => codec::client_from_json::<C>(&text),
                WsEvent::Binary(bytes) => codec::client_from_bin::<C>(&bytes),
                WsEvent::Ping(payload) => {
                    self.pong_owed = Some(payload);
                    continue;
                }
                WsEvent::Pong => continue,
                WsEvent::Close(code) => {
                    // Echo the client's code (RFC 6455, 5.5.1); a close without a code is answered with 1000.
                    conn.close(code.unwrap_or(codes::CLOSE_NORMAL), "");
                    return self.end();
                }
            };
            return Some(Input::Message(decoded));
        }
    }

    fn answer_ping(&mut self, conn: &Conn) {
        if let Some(payload) = self.pong_owed.take() {
            conn.send(&net::frame(Opcode::Pong, &payload));
        }
    }

    fn end<C>(&mut self) -> Option<Input<C>> {
        self.ended = true;
        self.reader = FrameReader::new(0);
        Some(Input::Ended)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::Duration;

    use orrery_engine::spacetrade::Command;
    use orrery_protocol::ClientMessage;

    use super::*;
    use crate::net::OutboxLimits;

    /// A masked client frame (RFC 6455), as a browser would send it.
    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [7u8, 1, 9, 3];
        let mut v = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        v
    }

    fn pair(rt: &tokio::runtime::Runtime) -> (TcpStream, Arc<Conn>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (server, _) = listener.accept().unwrap();
        let _guard = rt.enter();
        (client, Conn::new(server, OutboxLimits::default()).unwrap())
    }

    fn limits(max_msgs_per_sec: u32, burst: u32) -> InputLimits {
        InputLimits {
            max_msgs_per_sec,
            burst,
            ..InputLimits::default()
        }
    }

    /// Reads until the socket has delivered what the client wrote (loopback: at once, but not atomically).
    fn settle(input: &mut InputState, conn: &Conn) -> Option<Input<Command>> {
        for _ in 0..200 {
            input.fill(conn);
            if let Some(next) = input.next::<Command>(conn) {
                return Some(next);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    #[test]
    fn messages_split_across_reads_ping_and_close() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (mut client, conn) = pair(&rt);
        let mut input = InputState::new(limits(100, 100));
        let frame = masked(1, br#"{"type":"ping","id":5}"#);
        client.write_all(&frame[..7]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        input.fill(&conn);
        assert!(input.next::<Command>(&conn).is_none(), "half a frame is not a message");
        client.write_all(&frame[7..]).unwrap();
        match settle(&mut input, &conn) {
            Some(Input::Message(Ok(f))) => assert!(f.id == Some(5) && matches!(f.msg, ClientMessage::Ping)),
            other => panic!("expected the ping message, got {other:?}"),
        }
        // A WebSocket ping control frame is answered with a pong by the input side itself.
        client.write_all(&masked(9, b"hi")).unwrap();
        client.write_all(&masked(8, &1000u16.to_be_bytes())).unwrap();
        assert!(matches!(settle(&mut input, &conn), Some(Input::Ended)));
        assert!(input.is_ended() && input.next::<Command>(&conn).is_none());
        let mut got = [0u8; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, [0x8a, 2, b'h', b'i'], "pong echoes the ping's payload");
        client.read_exact(&mut got[..2]).unwrap();
        assert_eq!(got[0], 0x88, "then the close frame answering the client's");
    }

    #[test]
    fn end_of_stream_and_rate_limit_end_the_input() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (client, conn) = pair(&rt);
        let mut input = InputState::new(limits(100, 100));
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(matches!(settle(&mut input, &conn), Some(Input::Ended)));

        let (mut client, conn) = pair(&rt);
        let mut input = InputState::new(limits(1, 1));
        let ping = masked(2, &[0, 0]);
        client.write_all(&[ping.clone(), ping].concat()).unwrap();
        assert!(matches!(settle(&mut input, &conn), Some(Input::Message(Ok(_)))));
        assert!(
            matches!(settle(&mut input, &conn), Some(Input::Ended)),
            "second message exceeds 1/s, burst 1"
        );
        let mut got = [0u8; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!((got[0], u16::from_be_bytes([got[2], got[3]])), (0x88, 1008));
    }
}
