//! WebSocket framing and the per-connection outbox: the non-blocking, shared-bytes fan-out path.
//!
//! Server frames are built once ([`frame`]) and the same [`Bytes`] are written to every subscriber with one
//! non-blocking `write` each ([`Conn::offer_delta`], [`Conn::send`]). Nothing on that path awaits, allocates per
//! subscriber, or hops through a channel. When a socket would block, the unwritten rest goes to a small bounded
//! pending queue that a flusher task drains once the socket is writable again (the task exists only while a
//! backlog does, so an idle connection costs no task).
//!
//! Backpressure policy: while a connection has more than `soft_limit` bytes pending, deltas offered to it are
//! dropped (counted in `orrery_deltas_dropped_total`) and the connection is marked stale; once its queue has
//! drained, the sector sends it a fresh keyframe instead of the next delta. Reliable frames (welcome, keyframes,
//! replies, chat) are always queued, but a connection whose queue passes `hard_limit` is reset (a close frame would wait
//! behind everything queued, so code 4000 cannot reach such a client; see [`Conn::abort`]).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// How much a connection's reader asks the socket for at once.
pub const READ_CHUNK: usize = 1024;

/// How long a closing connection waits for the peer before its read side is shut too.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Milliseconds on the runtime's clock (tokio's, so that tests on paused time drive it) since the first call.
pub fn clock_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    tokio::time::Instant::now().saturating_duration_since(epoch).as_millis() as u64
}

/// WebSocket opcodes the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation = 0,
    Text = 1,
    Binary = 2,
    Close = 8,
    Ping = 9,
    Pong = 10,
}

/// Builds one unmasked, final server frame around `payload`.
pub fn frame(opcode: Opcode, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = BytesMut::with_capacity(len + 10);
    out.put_u8(0x80 | opcode as u8);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= u16::MAX as usize {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
    out.put_slice(payload);
    out.freeze()
}

/// A close frame with a status code and a short reason (cut to fit a control frame, on a character boundary).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(Opcode::Close, &payload)
}

/// The largest payload of a control frame (RFC 6455, 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Whether a client may send this close code (RFC 6455, 7.4: 1000-1003, 1007-1013 and 3000-4999; never 1005,
/// 1006, 1015, 1004 or the unassigned ranges). The ranges are tungstenite's.
pub fn close_code_allowed(code: u16) -> bool {
    tungstenite::protocol::frame::coding::CloseCode::from(code).is_allowed()
}

/// What a client sent, after reassembly of fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    Text(String),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    /// A valid close frame: its code, if it had one (a close frame with an empty body has none).
    Close(Option<u16>),
}

/// A client broke the WebSocket rules; the connection is closed with [`WsError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("message larger than {0} bytes")]
    TooBig(usize),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("text is not UTF-8")]
    InvalidUtf8,
}

impl WsError {
    pub fn close_code(&self) -> u16 {
        use orrery_protocol::codes;
        match self {
            WsError::TooBig(_) => codes::CLOSE_TOO_BIG,
            WsError::Protocol(_) => codes::CLOSE_PROTOCOL_ERROR,
            WsError::InvalidUtf8 => codes::CLOSE_INVALID_PAYLOAD,
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            WsError::TooBig(_) => "too_big",
            WsError::Protocol(_) => "protocol",
            WsError::InvalidUtf8 => "invalid_utf8",
        }
    }
}

/// Incremental parser of masked client frames (RFC 6455, section 5), with a limit on message size.
///
/// The frame header is parsed by tungstenite ([`FrameHeader::parse`]); this type adds what a server must check on
/// top (masking, reserved bits, the 64-bit length's top bit, control frame rules, close codes, UTF-8) and the
/// reassembly of fragmented messages. Every frame it consumes is counted ([`FrameReader::frames_read`]) so that the
/// rate limit applies to frames of any kind, including control frames and empty continuations.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    partial: Option<(bool, BytesMut)>,
    max_message: usize,
    frames: u64,
}

impl FrameReader {
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            partial: None,
            max_message,
            frames: 0,
        }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Gives the buffer back when everything in it has been parsed, so that an idle connection (waiting for its
    /// next message) holds no read buffer at all.
    pub fn release_idle(&mut self) {
        if self.buf.is_empty() && self.partial.is_none() {
            self.buf = BytesMut::new();
        }
    }

    /// How many frames have been consumed so far (data, continuation and control frames alike).
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// Whether the buffer holds bytes of a frame that has not been parsed yet.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Result<Option<WsEvent>, WsError> {
        loop {
            let Some((fin, opcode, payload)) = self.next_frame()? else {
                return Ok(None);
            };
            match opcode {
                OpCode::Control(Control::Ping) => return Ok(Some(WsEvent::Ping(payload))),
                OpCode::Control(Control::Pong) => return Ok(Some(WsEvent::Pong)),
                OpCode::Control(Control::Close) => return parse_close(&payload).map(Some),
                OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                    return Err(WsError::Protocol("reserved opcode"))
                }
                OpCode::Data(Data::Text | Data::Binary) => {
                    if self.partial.is_some() {
                        return Err(WsError::Protocol("new message inside a fragmented one"));
                    }
                    let text = opcode == OpCode::Data(Data::Text);
                    if fin {
                        return finish(text, payload).map(Some);
                    }
                    self.partial = Some((text, BytesMut::from(&payload[..])));
                }
                OpCode::Data(Data::Continue) => {
                    let Some((text, mut acc)) = self.partial.take() else {
                        return Err(WsError::Protocol("continuation without a message"));
                    };
                    if acc.len() + payload.len() > self.max_message {
                        return Err(WsError::TooBig(self.max_message));
                    }
                    acc.extend_from_slice(&payload);
                    if fin {
                        return finish(text, acc.freeze()).map(Some);
                    }
                    self.partial = Some((text, acc));
                }
            }
        }
    }

    fn next_frame(&mut self) -> Result<Option<(bool, OpCode, Bytes)>, WsError> {
        if self.buf.len() < 2 {
            return Ok(None);
        }
        let mut cursor = std::io::Cursor::new(&self.buf[..]);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(None),
            Err(_) => return Err(WsError::Protocol("reserved opcode")),
        };
        let at = cursor.position() as usize;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::Protocol("reserved bits set without an extension"));
        }
        let Some(mask) = header.mask else {
            return Err(WsError::Protocol("client frames must be masked"));
        };
        if len >> 63 != 0 {
            return Err(WsError::Protocol("payload length has its most significant bit set"));
        }
        if let OpCode::Control(_) = header.opcode {
            if !header.is_final {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::Protocol("control frame payload over 125 bytes"));
            }
        }
        if len > self.max_message as u64 {
            return Err(WsError::TooBig(self.max_message));
        }
        let len = len as usize;
        if self.buf.len() < at + len {
            return Ok(None);
        }
        self.buf.advance(at);
        let mut payload = self.buf.split_to(len);
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i & 3];
        }
        self.frames += 1;
        Ok(Some((header.is_final, header.opcode, payload.freeze())))
    }
}

/// A complete data message.
fn finish(text: bool, payload: Bytes) -> Result<WsEvent, WsError> {
    if text {
        String::from_utf8(payload.to_vec())
            .map(WsEvent::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(WsEvent::Binary(payload))
    }
}

/// A close frame's body: empty, or a valid code followed by a UTF-8 reason (RFC 6455, 5.5.1 and 7.4).
fn parse_close(payload: &[u8]) -> Result<WsEvent, WsError> {
    match payload.len() {
        0 => Ok(WsEvent::Close(None)),
        1 => Err(WsError::Protocol("close frame body of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !close_code_allowed(code) {
                return Err(WsError::Protocol("invalid close code"));
            }
            std::str::from_utf8(&payload[2..]).map_err(|_| WsError::InvalidUtf8)?;
            Ok(WsEvent::Close(Some(code)))
        }
    }
}

/// Limits of a connection's pending queue.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimits {
    /// Above this many pending bytes, deltas are dropped and a keyframe is owed.
    pub soft_limit: usize,
    /// Above this many pending bytes, the connection is closed as a slow consumer.
    pub hard_limit: usize,
    /// The kernel send buffer of each connection (`SO_SNDBUF`), if set; the OS default otherwise.
    pub socket_send_buffer: Option<usize>,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            soft_limit: 64 * 1024,
            hard_limit: 4 * 1024 * 1024,
            socket_send_buffer: None,
        }
    }
}

/// The result of offering a delta to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Written or queued.
    Accepted,
    /// Dropped under backpressure; a keyframe is owed.
    Dropped,
    /// The connection is stale and has drained: send it a keyframe instead.
    WantsKeyframe,
    /// The connection is gone.
    Closed,
}

#[derive(Debug, Default)]
struct Outbox {
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    stale: bool,
    closing: bool,
    /// A flusher task is running (it exists only while something is pending or the connection is closing).
    flushing: bool,
}

/// One client connection, shared by its session and the sector that streams to it.
///
/// The socket is registered with the runtime for *write* readiness only (the flusher needs it when a backlog
/// builds up); incoming bytes are read by the sector the session's ship is in, once per tick, through its own
/// poller ([`crate::sector`]). So an input costs no task wake-up and no reactor event of its own.
#[derive(Debug)]
pub struct Conn {
    io: AsyncFd<std::net::TcpStream>,
    fd: RawFd,
    outbox: Mutex<Outbox>,
    dead: AtomicBool,
    /// When the client was last heard from (any bytes), in milliseconds of [`clock_ms`].
    heard_ms: AtomicU64,
    /// A liveness ping was sent since the client was last heard from.
    pinged: AtomicBool,
    limits: OutboxLimits,
    me: Weak<Conn>,
    runtime: tokio::runtime::Handle,
}

impl Conn {
    /// Wraps an accepted socket. Must be called inside a tokio runtime; the socket is switched to non-blocking.
    pub fn new(stream: std::net::TcpStream, limits: OutboxLimits) -> io::Result<Arc<Self>> {
        stream.set_nonblocking(true)?;
        if let Some(size) = limits.socket_send_buffer {
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(size);
        }
        let fd = stream.as_raw_fd();
        // `with_interest` is deprecated because an `AsyncFd` over a borrowed descriptor can outlive it; here the
        // `AsyncFd` owns the `TcpStream`, so the registration cannot outlive the socket (the safe, owning case).
        #[allow(deprecated)]
        let io = AsyncFd::with_interest(stream, Interest::WRITABLE)?;
        let runtime = tokio::runtime::Handle::current();
        Ok(Arc::new_cyclic(|me| Self {
            io,
            fd,
            outbox: Mutex::new(Outbox::default()),
            dead: AtomicBool::new(false),
            heard_ms: AtomicU64::new(clock_ms()),
            pinged: AtomicBool::new(false),
            limits,
            me: me.clone(),
            runtime,
        }))
    }

    /// The client's address (none once the socket is gone).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.io.get_ref().peer_addr().ok()
    }

    /// The socket's descriptor (what a sector's poller watches).
    pub fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// One non-blocking read into `buf`. `Ok(0)` means the peer closed its side. Bytes read count as a sign of
    /// life ([`Conn::silent_for`]).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.io.get_ref().read(buf)?;
        if n > 0 {
            self.heard();
        }
        Ok(n)
    }

    /// Notes that the client was heard from just now.
    pub fn heard(&self) {
        self.heard_ms.store(clock_ms(), Ordering::Relaxed);
        if self.pinged.load(Ordering::Relaxed) {
            self.pinged.store(false, Ordering::Relaxed);
        }
    }

    /// How long since anything was read from the client.
    pub fn silent_for(&self) -> std::time::Duration {
        std::time::Duration::from_millis(clock_ms().saturating_sub(self.heard_ms.load(Ordering::Relaxed)))
    }

    /// Whether bytes wait unread in the socket (nobody reads the connection right now, e.g. during a warp); if so
    /// they count as a sign of life. One `recv(MSG_PEEK)`: call it only for a connection that looks silent.
    pub fn heard_unread(&self) -> bool {
        let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        let unread = matches!(socket2::SockRef::from(self.io.get_ref()).peek(&mut probe), Ok(n) if n > 0);
        if unread {
            self.heard();
        }
        unread
    }

    /// Sends a liveness ping unless one is already outstanding; true if one was sent.
    pub fn ping_if_due(&self) -> bool {
        if self.pinged.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.send(&frame(Opcode::Ping, b"orrery"))
    }

    /// Whether the connection can no longer be written to.
    pub fn is_closed(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Queues or writes a frame that must not be dropped (welcome, keyframe, reply, chat, close).
    /// Returns false if the connection is gone or was just closed for exceeding its hard limit.
    pub fn send(&self, frame: &Bytes) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut out = self.outbox.lock();
        if out.closing {
            return false;
        }
        self.write_or_queue(&mut out, frame)
    }

    /// Offers a delta frame; see the module docs for the backpressure policy.
    pub fn offer_delta(&self, frame: &Bytes) -> Offer {
        if self.is_closed() {
            return Offer::Closed;
        }
        let mut out = self.outbox.lock();
        if out.closing {
            return Offer::Closed;
        }
        if out.stale {
            return if out.pending.is_empty() {
                Offer::WantsKeyframe
            } else {
                Offer::Dropped
            };
        }
        if out.pending_bytes > self.limits.soft_limit {
            out.stale = true;
            return Offer::Dropped;
        }
        if self.write_or_queue(&mut out, frame) {
            Offer::Accepted
        } else {
            Offer::Closed
        }
    }

    /// Whether the connection owes a keyframe and can take it now.
    pub fn wants_keyframe(&self) -> bool {
        let out = self.outbox.lock();
        out.stale && out.pending.is_empty() && !out.closing
    }

    /// Sends a keyframe and clears the stale mark.
    pub fn send_keyframe(&self, frame: &Bytes) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut out = self.outbox.lock();
        if out.closing {
            return false;
        }
        out.stale = false;
        self.write_or_queue(&mut out, frame)
    }

    /// Sends a close frame after everything already queued, then shuts the socket's write side (and, after a
    /// grace period for the peer's answer, its read side, so that the reader sees the end).
    pub fn close(&self, code: u16, reason: &str) {
        let mut out = self.outbox.lock();
        if out.closing || self.is_closed() {
            return;
        }
        let frame = close_frame(code, reason);
        self.write_or_queue(&mut out, &frame);
        out.closing = true;
        self.start_flusher(&mut out);
    }

    /// Marks the connection dead at once (the peer vanished or stopped reading). The socket is shut down and set to
    /// be reset when its descriptor is closed (`SO_LINGER` 0): a peer that stopped reading has a full receive window,
    /// so a FIN would wait behind unsent bytes for as long as the kernel keeps probing the window, and the
    /// connection would stay open on the peer's side and in the server's kernel.
    pub fn abort(&self) {
        self.dead.store(true, Ordering::Release);
        let _ = socket2::SockRef::from(self.io.get_ref()).set_linger(Some(std::time::Duration::ZERO));
        self.shutdown(std::net::Shutdown::Both);
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.outbox.lock().pending_bytes
    }

    fn shutdown(&self, how: std::net::Shutdown) {
        let _ = self.io.get_ref().shutdown(how);
    }

    fn write_or_queue(&self, out: &mut Outbox, frame: &Bytes) -> bool {
        if out.pending.is_empty() {
            // A plain non-blocking send, without the runtime's readiness bookkeeping: the flusher's `writable()`
            // copes with a stale readiness by trying once more.
            match socket2::SockRef::from(self.io.get_ref()).send(frame) {
                Ok(n) if n == frame.len() => return true,
                Ok(n) => self.enqueue(out, frame.slice(n..)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.enqueue(out, frame.clone()),
                Err(_) => {
                    self.dead.store(true, Ordering::Release);
                    return false;
                }
            }
        } else {
            self.enqueue(out, frame.clone());
        }
        if out.pending_bytes > self.limits.hard_limit {
            metrics::counter!("orrery_slow_consumers_closed_total").increment(1);
            self.abort();
            return false;
        }
        true
    }

    fn enqueue(&self, out: &mut Outbox, bytes: Bytes) {
        out.pending_bytes += bytes.len();
        out.pending.push_back(bytes);
        self.start_flusher(out);
    }

    fn start_flusher(&self, out: &mut Outbox) {
        if out.flushing {
            return;
        }
        if let Some(me) = self.me.upgrade() {
            out.flushing = true;
            self.runtime.spawn(me.flush());
        }
    }

    /// Drains the pending queue whenever the socket becomes writable; ends when the queue is empty (or, for a
    /// closing connection, after shutting the socket down), or when the connection dies.
    async fn flush(self: Arc<Self>) {
        loop {
            if self.is_closed() {
                self.outbox.lock().flushing = false;
                return;
            }
            let (empty, closing) = {
                let mut out = self.outbox.lock();
                let empty = out.pending.is_empty();
                if empty && !out.closing {
                    out.flushing = false;
                }
                (empty, out.closing)
            };
            if empty {
                if closing {
                    self.shutdown(std::net::Shutdown::Write);
                    self.dead.store(true, Ordering::Release);
                    // Give the peer a moment to answer the close frame, then end the read side too.
                    tokio::time::sleep(CLOSE_GRACE).await;
                    self.shutdown(std::net::Shutdown::Both);
                    self.outbox.lock().flushing = false;
                }
                return;
            }
            let mut ready = match self.io.writable().await {
                Ok(ready) => ready,
                Err(_) => {
                    self.dead.store(true, Ordering::Release);
                    self.outbox.lock().flushing = false;
                    return;
                }
            };
            let mut guard = self.outbox.lock();
            let out = &mut *guard;
            while let Some(front) = out.pending.front_mut() {
                match self.io.get_ref().write(front) {
                    Ok(n) if n == front.len() => {
                        out.pending_bytes -= n;
                        out.pending.pop_front();
                    }
                    Ok(n) => {
                        out.pending_bytes -= n;
                        front.advance(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        ready.clear_ready();
                        break;
                    }
                    Err(_) => {
                        self.dead.store(true, Ordering::Release);
                        out.flushing = false;
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut v = vec![(if fin { 0x80 } else { 0 }) | opcode];
        if payload.len() < 126 {
            v.push(0x80 | payload.len() as u8);
        } else {
            v.push(0x80 | 126);
            v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        v
    }

    #[test]
    fn server_frame_headers_match_rfc6455_lengths() {
        assert_eq!(&frame(Opcode::Text, b"hi")[..], &[0x81, 2, b'h', b'i']);
        let f = frame(Opcode::Binary, &[0u8; 300]);
        assert_eq!(&f[..4], &[0x82, 126, 1, 44]);
        assert_eq!(f.len(), 304);
        let f = frame(Opcode::Binary, &vec![0u8; 70_000]);
        assert_eq!(f[1], 127);
        assert_eq!(f.len(), 70_010);
    }

    #[test]
    fn reader_unmasks_split_and_fragmented_messages() {
        let mut r = FrameReader::new(1024);
        let bytes = masked(1, true, b"hello");
        r.push(&bytes[..3]);
        assert_eq!(r.next_event().unwrap(), None);
        r.push(&bytes[3..]);
        assert_eq!(r.next_event().unwrap(), Some(WsEvent::Text("hello".into())));
        r.push(&masked(2, false, b"ab"));
        r.push(&masked(9, true, b"p"));
        r.push(&masked(0, true, b"cd"));
        assert_eq!(r.next_event().unwrap(), Some(WsEvent::Ping(Bytes::from_static(b"p"))));
        assert_eq!(
            r.next_event().unwrap(),
            Some(WsEvent::Binary(Bytes::from_static(b"abcd")))
        );
        r.push(&masked(8, true, &1000u16.to_be_bytes()));
        assert_eq!(r.next_event().unwrap(), Some(WsEvent::Close(Some(1000))));
    }

    #[test]
    fn reader_refuses_oversized_unmasked_and_bad_utf8() {
        let mut r = FrameReader::new(100);
        r.push(&masked(2, true, &[0u8; 200]));
        assert_eq!(r.next_event(), Err(WsError::TooBig(100)));
        let mut r = FrameReader::new(100);
        r.push(&[0x81, 0x02, b'h', b'i']);
        assert!(matches!(r.next_event(), Err(WsError::Protocol(_))));
        let mut r = FrameReader::new(100);
        r.push(&masked(1, true, &[0xff, 0xfe]));
        assert_eq!(r.next_event(), Err(WsError::InvalidUtf8));
        let mut r = FrameReader::new(100);
        r.push(&masked(2, false, &[0u8; 60]));
        r.push(&masked(0, true, &[0u8; 60]));
        assert_eq!(r.next_event(), Err(WsError::TooBig(100)));
    }
}
