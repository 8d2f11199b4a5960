//! One simulated client: login, WebSocket upgrade, and the read loop that counts (or decodes) every server frame.
//!
//! Every client joins in a task of its own on the load generator's single thread. Reads go into one 64 KiB buffer
//! shared by all clients (each read is fully handled before anything else runs), one `read` per readiness.
//! Decoders keep their task and decode every message into a [`ClientView`]. Count-only clients, once joined, are
//! handed to the [`BulkReader`]: one task over one poller (mio, i.e. epoll) holding every count-only socket, so a
//! frame costs a `read` and a header parse, not a task wake-up; they parse frame headers only and bump plain
//! integer counters. Writes (inputs) are made by the scheduler in `driver` straight to the socket, never through a
//! channel.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use orrery_engine::galaxy::Commodity;
use orrery_engine::spacetrade::{ClientView, Command, Event, SpaceTrade};
use orrery_protocol::codec::{client_to_bin, client_to_json, server_from_bin, server_from_json};
use orrery_protocol::{ClientFrame, ServerFrame, ServerMessage};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::rtt::{Latency, PendingInputs};
use crate::scenario::EncodingName;
use crate::ws::{self, Frame, FrameError, FrameParser};

/// Size of the read buffer shared by all clients.
pub const READ_BUF: usize = 64 * 1024;
/// A connection whose unsent inputs exceed this is given up (`input_backlog_overflow`).
const MAX_BACKLOG: usize = 1024 * 1024;
/// A warp not answered after this long is forgotten (`warp_timeout`).
const WARP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the run is; decides what counts as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Joining,
    Warmup,
    Window,
    /// After the window: inputs sent now are not measured; earlier ones may still resolve.
    Grace,
    Done,
}

/// Run-wide counters, summed over all clients (plain integers in cells: one thread).
#[derive(Debug, Default)]
pub struct Totals {
    /// Patch frames: for count-only clients every data message after welcome + keyframe, for decoders deltas.
    pub patch_frames: Cell<u64>,
    /// Every data message received after the client joined.
    pub messages: Cell<u64>,
    /// Payload bytes of data frames.
    pub payload_bytes: Cell<u64>,
    /// Bytes read from the sockets (payload + WebSocket framing).
    pub wire_bytes: Cell<u64>,
    pub inputs: Cell<u64>,
    pub chats: Cell<u64>,
    pub warps: Cell<u64>,
    pub trades: Cell<u64>,
    /// Deltas decoded by decoders, and their payload bytes.
    pub delta_frames: Cell<u64>,
    pub delta_payload_bytes: Cell<u64>,
    /// Deltas whose `seq` was not the previous one + 1 (decoders).
    pub seq_gaps: Cell<u64>,
    /// Keyframes decoders received after their first one (warps, resyncs, recovery after drops).
    pub keyframes: Cell<u64>,
    pub pings: Cell<u64>,
}

/// A snapshot of [`Totals`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub patch_frames: u64,
    pub messages: u64,
    pub payload_bytes: u64,
    pub wire_bytes: u64,
    pub inputs: u64,
    pub chats: u64,
    pub warps: u64,
    pub trades: u64,
    pub delta_frames: u64,
    pub delta_payload_bytes: u64,
    pub seq_gaps: u64,
    pub keyframes: u64,
}

impl Totals {
    pub fn snapshot(&self) -> Counts {
        Counts {
            patch_frames: self.patch_frames.get(),
            messages: self.messages.get(),
            payload_bytes: self.payload_bytes.get(),
            wire_bytes: self.wire_bytes.get(),
            inputs: self.inputs.get(),
            chats: self.chats.get(),
            warps: self.warps.get(),
            trades: self.trades.get(),
            delta_frames: self.delta_frames.get(),
            delta_payload_bytes: self.delta_payload_bytes.get(),
            seq_gaps: self.seq_gaps.get(),
            keyframes: self.keyframes.get(),
        }
    }
}

impl Counts {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            patch_frames: self.patch_frames - earlier.patch_frames,
            messages: self.messages - earlier.messages,
            payload_bytes: self.payload_bytes - earlier.payload_bytes,
            wire_bytes: self.wire_bytes - earlier.wire_bytes,
            inputs: self.inputs - earlier.inputs,
            chats: self.chats - earlier.chats,
            warps: self.warps - earlier.warps,
            trades: self.trades - earlier.trades,
            delta_frames: self.delta_frames - earlier.delta_frames,
            delta_payload_bytes: self.delta_payload_bytes - earlier.delta_payload_bytes,
            seq_gaps: self.seq_gaps - earlier.seq_gaps,
            keyframes: self.keyframes - earlier.keyframes,
        }
    }
}

pub fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get() + by);
}

fn bump_map(m: &RefCell<BTreeMap<String, u64>>, key: &str) {
    let mut m = m.borrow_mut();
    match m.get_mut(key) {
        Some(v) => *v += 1,
        None => {
            m.insert(key.to_owned(), 1);
        }
    }
}

/// State shared by every client task, the scheduler and the driver.
#[derive(Debug)]
pub struct Shared {
    pub server: SocketAddr,
    /// `host:port` as given, for `Host` headers.
    pub host: String,
    pub encoding: EncodingName,
    pub floor: bool,
    pub join_timeout: Duration,
    pub phase: Cell<Phase>,
    pub totals: Totals,
    pub read_buf: RefCell<Box<[u8]>>,
    /// Joined clients, in join order (the scheduler's table).
    pub conns: RefCell<Vec<Rc<Conn>>>,
    /// Join failures by kind.
    pub join_failures: RefCell<BTreeMap<String, u64>>,
    /// Connections lost after joining, by kind.
    pub disconnects: RefCell<BTreeMap<String, u64>>,
    /// Connections lost after joining and before the window ended.
    pub lost_before_window_end: Cell<u64>,
    /// `error` frames decoded, by code: during the window, and over the whole run.
    pub errors_window: RefCell<BTreeMap<String, u64>>,
    pub errors_total: RefCell<BTreeMap<String, u64>>,
    /// Client-side problems that are not server errors (undecodable frames, warp timeouts), by kind.
    pub anomalies: RefCell<BTreeMap<String, u64>>,
    /// Time from the start of a join (login) to its keyframe.
    pub join_latency: RefCell<Latency>,
    /// Tick rate announced by `welcome` (20 until one arrives).
    pub tick_hz: Cell<u32>,
    /// The count-only clients' poller (see [`BulkReader`]).
    pub bulk: BulkClients,
    /// Time dilation of each room's sector, as its decoders were told (`time_dilation`), by room.
    pub dilation: RefCell<Vec<RoomDilation>>,
}

/// What the decoders of one room were told about its sector's time dilation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomDilation {
    /// The factor last announced (1 until a `time_dilation` arrives).
    pub last: f64,
    /// The lowest factor in force during the window (set to `last` when the window starts).
    pub window_min: f64,
    /// `time_dilation` messages the room's decoders received over the run.
    pub messages: u64,
}

impl Default for RoomDilation {
    fn default() -> Self {
        Self {
            last: 1.0,
            window_min: 1.0,
            messages: 0,
        }
    }
}

/// The joined count-only clients, read by [`BulkReader`]: their handlers by poller token (the client's index).
pub struct BulkClients {
    registry: mio::Registry,
    handlers: RefCell<Vec<Option<Handler>>>,
}

impl std::fmt::Debug for BulkClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.handlers.try_borrow().map_or(0, |h| h.iter().flatten().count());
        f.debug_struct("BulkClients").field("clients", &n).finish()
    }
}

impl BulkClients {
    /// Hands a joined client's socket to the poller.
    fn add(&self, handler: Handler) -> std::io::Result<()> {
        let slot = handler.state.conn.spec.index as usize;
        let fd = handler.state.conn.writer.as_raw_fd();
        {
            let mut handlers = self.handlers.borrow_mut();
            if handlers.len() <= slot {
                handlers.resize_with(slot + 1, || None);
            }
            handlers[slot] = Some(handler);
        }
        self.registry
            .register(&mut mio::unix::SourceFd(&fd), mio::Token(slot), mio::Interest::READABLE)
    }

    /// Drops every handler (they hold the run's shared state: a cycle otherwise).
    pub fn clear(&self) {
        self.handlers.borrow_mut().clear();
    }
}

/// One task reading every joined count-only client: it sleeps until the poller has events, then reads each ready
/// socket until a short read and counts its frames.
pub struct BulkReader {
    poll: AsyncFd<mio::Poll>,
    events: mio::Events,
}

impl BulkReader {
    /// The reader and the client table for [`Shared::bulk`]. Needs the runtime.
    pub fn new() -> std::io::Result<(BulkReader, BulkClients)> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        // `with_interest` is deprecated for descriptors the `AsyncFd` does not own; `mio::Poll` owns its epoll
        // descriptor, so the registration cannot outlive it.
        #[allow(deprecated)]
        let poll = AsyncFd::with_interest(poll, Interest::READABLE)?;
        Ok((
            BulkReader {
                poll,
                events: mio::Events::with_capacity(1024),
            },
            BulkClients {
                registry,
                handlers: RefCell::new(Vec::new()),
            },
        ))
    }

    /// Runs until the runtime stops.
    pub async fn run(mut self, shared: Rc<Shared>) {
        loop {
            let Ok(mut guard) = self.poll.readable_mut().await else {
                return;
            };
            if guard
                .get_inner_mut()
                .poll(&mut self.events, Some(Duration::ZERO))
                .is_err()
            {
                continue;
            }
            let mut n = 0;
            for event in self.events.iter() {
                n += 1;
                read_bulk(&shared, event.token().0);
            }
            if n < self.events.capacity() {
                guard.clear_ready();
            }
        }
    }
}

/// Reads one count-only client's socket until a short read; ends the client on EOF, error or a closing frame.
fn read_bulk(shared: &Shared, slot: usize) {
    let Some(mut handler) = shared.bulk.handlers.borrow_mut().get_mut(slot).and_then(Option::take) else {
        return;
    };
    let conn = Rc::clone(&handler.state.conn);
    let end = loop {
        if conn.dead.get() {
            break Some(ConnEnd::Killed("input_write_failed"));
        }
        let mut buf = shared.read_buf.borrow_mut();
        let read = (&conn.writer).read(&mut buf[..]);
        match read {
            Ok(0) => break Some(ConnEnd::Eof),
            Ok(n) => {
                let result = handler.on_bytes(&buf[..n]);
                drop(buf);
                if let Err(end) = result {
                    break Some(end);
                }
                if n < READ_BUF {
                    break None;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Some(ConnEnd::Io(io_kind(&e))),
        }
    };
    match end {
        None => {
            if let Some(h) = shared.bulk.handlers.borrow_mut().get_mut(slot) {
                *h = Some(handler);
            }
        }
        Some(end) => {
            let fd = conn.writer.as_raw_fd();
            let _ = shared.bulk.registry.deregister(&mut mio::unix::SourceFd(&fd));
            connection_lost(shared, &conn, end);
        }
    }
}

/// Accounts for a joined client's connection ending.
fn connection_lost(shared: &Shared, conn: &Conn, end: ConnEnd) {
    conn.dead.set(true);
    if shared.phase.get() < Phase::Done {
        tracing::debug!(client = conn.spec.index, end = ?end, "connection lost");
        bump_map(&shared.disconnects, &end.kind());
        if shared.phase.get() <= Phase::Window {
            bump(&shared.lost_before_window_end, 1);
        }
    }
}

impl Shared {
    pub fn measuring(&self) -> bool {
        self.phase.get() == Phase::Window
    }

    pub fn count_error(&self, code: &str) {
        if self.measuring() {
            bump_map(&self.errors_window, code);
        }
        bump_map(&self.errors_total, code);
    }

    pub fn anomaly(&self, kind: &str) {
        bump_map(&self.anomalies, kind);
    }

    pub fn join_failed(&self, kind: &str) {
        bump_map(&self.join_failures, kind);
    }
}

/// One client's planned identity.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub index: u32,
    pub room: u32,
    pub index_in_room: u32,
    pub sector: Option<Uuid>,
    pub decoder: bool,
}

/// A joined client as the scheduler sees it: its socket's write half and what the inputs need.
#[derive(Debug)]
pub struct Conn {
    pub spec: ClientSpec,
    /// The socket (non-blocking; not registered with the runtime: reads go through the join task's duplicate of
    /// it, then through the bulk reader or the decoder's task).
    writer: std::net::TcpStream,
    /// Frame bytes the socket did not take yet.
    backlog: RefCell<Vec<u8>>,
    pub dead: Cell<bool>,
    /// Patch frames this client received.
    pub frames: Cell<u64>,
    pub decoder: Option<RefCell<Decoder>>,
    next_id: Cell<u64>,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEnd {
    /// The server closed the WebSocket with this code.
    Closed(u16),
    Eof,
    Io(String),
    Protocol(FrameError),
    /// Killed by the load generator (input backlog overflow).
    Killed(&'static str),
}

impl From<FrameError> for ConnEnd {
    fn from(e: FrameError) -> Self {
        ConnEnd::Protocol(e)
    }
}

impl ConnEnd {
    pub fn kind(&self) -> String {
        match self {
            ConnEnd::Closed(code) => format!("closed_{code}"),
            ConnEnd::Eof => "eof".into(),
            ConnEnd::Io(k) => format!("io_{k}"),
            ConnEnd::Protocol(_) => "ws_protocol".into(),
            ConnEnd::Killed(k) => (*k).to_owned(),
        }
    }
}

fn io_kind(e: &std::io::Error) -> String {
    format!("{:?}", e.kind()).to_lowercase()
}

impl Conn {
    /// Writes one masked frame (after any backlog); what the socket does not take is kept for the next write.
    pub fn send(&self, opcode: u8, payload: &[u8], mask: [u8; 4], scratch: &mut Vec<u8>) -> Result<(), ConnEnd> {
        if self.dead.get() {
            return Err(ConnEnd::Killed("dead"));
        }
        let mut backlog = self.backlog.borrow_mut();
        if !backlog.is_empty() {
            let n = self.write_some(&backlog)?;
            backlog.drain(..n);
        }
        scratch.clear();
        ws::encode_client_frame(scratch, opcode, payload, mask);
        if backlog.is_empty() {
            let n = self.write_some(scratch)?;
            backlog.extend_from_slice(&scratch[n..]);
        } else {
            backlog.extend_from_slice(scratch);
        }
        if backlog.len() > MAX_BACKLOG {
            self.dead.set(true);
            return Err(ConnEnd::Killed("input_backlog_overflow"));
        }
        Ok(())
    }

    fn write_some(&self, buf: &[u8]) -> Result<usize, ConnEnd> {
        match (&self.writer).write(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => {
                self.dead.set(true);
                Err(ConnEnd::Io(io_kind(&e)))
            }
        }
    }

    /// A fresh request id.
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }
}

/// A decoder client's mirror of its sector and its requests in flight.
#[derive(Debug)]
pub struct Decoder {
    pub owner: Option<Uuid>,
    pub sector: Option<Uuid>,
    last_seq: u64,
    pub view: Option<ClientView>,
    /// Warp targets and stations (with what they trade) from the latest keyframe.
    pub warps: Vec<Uuid>,
    pub stations: Vec<(Uuid, Vec<Commodity>)>,
    pub pending: PendingInputs,
    pub rtt: Latency,
    /// Warp in flight: (request id, target, sent at, measured).
    pub warp: Option<(u64, Uuid, Instant, bool)>,
    pub warp_latency: Latency,
    /// Trade in flight: (request id, sent at, measured).
    pub trade: Option<(u64, Instant, bool)>,
    pub trade_latency: Latency,
    /// The next trade sells this (bought by the previous one).
    pub holding: Option<(Uuid, Commodity)>,
}

impl Decoder {
    fn new() -> Decoder {
        Decoder {
            owner: None,
            sector: None,
            last_seq: 0,
            view: None,
            warps: Vec::new(),
            stations: Vec::new(),
            pending: PendingInputs::default(),
            rtt: Latency::default(),
            warp: None,
            warp_latency: Latency::default(),
            trade: None,
            trade_latency: Latency::default(),
            holding: None,
        }
    }

    /// Whether a warp is in flight (forgetting one that timed out).
    pub fn warp_in_flight(&mut self, now: Instant, shared: &Shared) -> bool {
        if let Some((_, _, sent, _)) = self.warp {
            if now.duration_since(sent) > WARP_TIMEOUT {
                self.warp = None;
                shared.anomaly("warp_timeout");
            }
        }
        self.warp.is_some()
    }

    fn check_own_ship(&mut self, now: Instant, client: u32) {
        let (Some(view), Some(owner)) = (&self.view, self.owner) else {
            return;
        };
        if let Some(ship) = view.ship_of(owner) {
            let rtt = &mut self.rtt;
            self.pending.observe(ship.vx, ship.vy, now, |d| {
                if d > Duration::from_millis(100) {
                    tracing::debug!(client, rtt_ms = d.as_millis() as u64, "slow input round trip");
                }
                rtt.record(d)
            });
        }
    }
}

/// Encodes a client message in the session's encoding: (opcode, payload).
pub fn encode(encoding: EncodingName, frame: &ClientFrame<Command>) -> (u8, Vec<u8>) {
    match encoding {
        EncodingName::Binary => (ws::OP_BINARY, client_to_bin(frame)),
        EncodingName::Json => (ws::OP_TEXT, client_to_json(frame).into_bytes()),
    }
}

/// Reads and handles server frames for one client.
struct Handler {
    parser: FrameParser,
    state: HandlerState,
}

struct HandlerState {
    shared: Rc<Shared>,
    conn: Rc<Conn>,
    /// Data messages seen so far.
    seen: u64,
    /// Data messages that belong to the join (welcome + keyframe; none against the floor server).
    join_messages: u64,
}

impl Handler {
    fn on_bytes(&mut self, data: &[u8]) -> Result<(), ConnEnd> {
        bump(&self.state.shared.totals.wire_bytes, data.len() as u64);
        let state = &mut self.state;
        self.parser.feed(data, |f| state.on_frame(f))
    }

    fn joined(&self) -> bool {
        match &self.state.conn.decoder {
            Some(d) => {
                let d = d.borrow();
                d.owner.is_some() && d.view.is_some()
            }
            None => self.state.seen >= self.state.join_messages,
        }
    }
}

impl HandlerState {
    fn on_frame(&mut self, f: Frame<'_>) -> Result<(), ConnEnd> {
        let totals = &self.shared.totals;
        match f.opcode {
            ws::OP_PING => {
                bump(&totals.pings, 1);
                let mut scratch = Vec::new();
                return self.conn.send(
                    ws::OP_PONG,
                    f.payload.unwrap_or(&[]),
                    [0x5a, 0x17, 0xc3, 0x01],
                    &mut scratch,
                );
            }
            ws::OP_PONG => return Ok(()),
            ws::OP_CLOSE => {
                let code = ws::close_code(f.payload.unwrap_or(&[]));
                let mut scratch = Vec::new();
                let _ = self
                    .conn
                    .send(ws::OP_CLOSE, &code.to_be_bytes(), [1, 2, 3, 4], &mut scratch);
                return Err(ConnEnd::Closed(code));
            }
            _ => {}
        }
        bump(&totals.payload_bytes, f.len);
        if !f.fin {
            return Ok(());
        }
        self.seen += 1;
        let after_join = self.seen > self.join_messages;
        if after_join {
            bump(&totals.messages, 1);
        }
        match &self.conn.decoder {
            None => {
                if after_join {
                    bump(&totals.patch_frames, 1);
                    bump(&self.conn.frames, 1);
                }
            }
            Some(d) => {
                let payload = f.payload.unwrap_or(&[]);
                let decoded = if f.message_opcode == ws::OP_TEXT {
                    match std::str::from_utf8(payload) {
                        Ok(t) => server_from_json::<SpaceTrade>(t),
                        Err(_) => {
                            self.shared.anomaly("non_utf8_text");
                            return Ok(());
                        }
                    }
                } else {
                    server_from_bin::<SpaceTrade>(payload)
                };
                match decoded {
                    Ok(frame) => self.on_message(&mut d.borrow_mut(), frame, payload.len()),
                    Err(e) => {
                        tracing::debug!(error = %e, "undecodable server frame");
                        self.shared.anomaly("undecodable_frame");
                    }
                }
            }
        }
        Ok(())
    }

    fn on_message(&self, d: &mut Decoder, frame: ServerFrame<SpaceTrade>, len: usize) {
        let now = Instant::now();
        let totals = &self.shared.totals;
        match frame.msg {
            ServerMessage::Welcome {
                character,
                sector,
                tick_hz,
                ..
            } => {
                d.owner = Some(character.id);
                d.sector = Some(sector);
                self.shared.tick_hz.set(tick_hz);
            }
            ServerMessage::Keyframe { sector, seq, body, .. } => {
                if d.view.is_some() {
                    bump(&totals.keyframes, 1);
                }
                d.view = Some(ClientView::from_keyframe(&body));
                d.warps = body.warps.iter().map(|w| w.to).collect();
                d.stations = body
                    .stations
                    .iter()
                    .map(|s| (s.id, s.commodities.iter().map(|l| l.commodity).collect()))
                    .collect();
                d.sector = Some(sector);
                d.last_seq = seq;
                if let Some((_, to, sent, measured)) = d.warp {
                    if to == sector {
                        if measured {
                            d.warp_latency.record(now.saturating_duration_since(sent));
                        }
                        d.warp = None;
                        d.holding = None;
                    }
                }
                d.check_own_ship(now, self.conn.spec.index);
            }
            ServerMessage::Delta { sector, seq, body, .. } => {
                if d.sector != Some(sector) || d.view.is_none() {
                    // A late delta of the sector we left.
                    return;
                }
                if seq != d.last_seq.wrapping_add(1) {
                    bump(&totals.seq_gaps, 1);
                }
                d.last_seq = seq;
                bump(&totals.patch_frames, 1);
                bump(&self.conn.frames, 1);
                bump(&totals.delta_frames, 1);
                bump(&totals.delta_payload_bytes, len as u64);
                if let Some(view) = d.view.as_mut() {
                    view.apply(&body);
                }
                d.check_own_ship(now, self.conn.spec.index);
            }
            ServerMessage::Error { code, .. } => {
                tracing::debug!(client = self.conn.spec.index, code, "error");
                self.shared.count_error(&code);
                if let Some(id) = frame.id {
                    if d.warp.is_some_and(|w| w.0 == id) {
                        d.warp = None;
                    }
                    if let Some((tid, sent, measured)) = d.trade {
                        if tid == id {
                            if measured {
                                d.trade_latency.record(now.saturating_duration_since(sent));
                            }
                            d.trade = None;
                            d.holding = None;
                        }
                    }
                }
            }
            ServerMessage::Game(Event::TradeResult { .. }) => {
                if let (Some(id), Some((tid, sent, measured))) = (frame.id, d.trade) {
                    if tid == id {
                        if measured {
                            d.trade_latency.record(now.saturating_duration_since(sent));
                        }
                        d.trade = None;
                    }
                }
            }
            ServerMessage::TimeDilation { sector, factor } => {
                // Counted against the client's room while it is in the room's sector (not after a warp).
                if self.conn.spec.sector == Some(sector) && d.sector == Some(sector) {
                    let mut rooms = self.shared.dilation.borrow_mut();
                    if let Some(room) = rooms.get_mut(self.conn.spec.room as usize) {
                        room.last = factor;
                        room.messages += 1;
                        if self.shared.measuring() {
                            room.window_min = room.window_min.min(factor);
                        }
                    }
                }
            }
            // Operators' notices and pauses change nothing the load tester measures (a paused sector's refusals are
            // counted as errors by their code, `sector_paused`).
            ServerMessage::Warped { .. }
            | ServerMessage::Chat { .. }
            | ServerMessage::Pong
            | ServerMessage::Notice { .. }
            | ServerMessage::SectorPaused { .. } => {}
        }
    }
}

/// The join failure of a client whose server refused to let it choose its sector.
pub(crate) const SPAWN_CHOICE_DISABLED: &str = "login_spawn_choice_disabled";

/// Login: a guest in the client's room sector. Returns the token.
async fn login(shared: &Shared, spec: &ClientSpec) -> Result<String, String> {
    let body = serde_json::json!({
        "name": format!("r{}c{}", spec.room, spec.index_in_room),
        "sector": spec.sector,
    })
    .to_string();
    let resp = crate::http::request(
        shared.server,
        &shared.host,
        "POST",
        "/v1/auth/guest",
        Some(&body),
        shared.join_timeout,
    )
    .await
    .map_err(|e| {
        tracing::debug!(error = %e, "login failed");
        match &e {
            // The scenario places clients in sectors, which the server must allow.
            crate::http::HttpError::Status { status: 400, body } if body.contains("spawn_choice_disabled") => {
                SPAWN_CHOICE_DISABLED.to_owned()
            }
            _ => e.kind("login"),
        }
    })?;
    let v: serde_json::Value = serde_json::from_slice(&resp).map_err(|_| "login_malformed".to_owned())?;
    v.get("token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "login_malformed".to_owned())
}

/// Opens the WebSocket: returns the stream and any bytes read past the upgrade response.
async fn upgrade(shared: &Shared, path: &str, key_bytes: [u8; 16]) -> Result<(TcpStream, Vec<u8>), String> {
    let mut stream = TcpStream::connect(shared.server)
        .await
        .map_err(|e| format!("ws_connect_{}", io_kind(&e)))?;
    stream.set_nodelay(true).map_err(|e| format!("ws_io_{}", io_kind(&e)))?;
    let key = ws::handshake_key(key_bytes);
    let proto = (!shared.floor).then(|| shared.encoding.subprotocol());
    let req = ws::upgrade_request(&shared.host, path, &key, proto);
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("ws_io_{}", io_kind(&e)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("ws_io_{}", io_kind(&e)))?;
        if n == 0 {
            return Err("ws_eof_in_handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = ws::head_end(&buf) {
            break end;
        }
        if buf.len() > 64 * 1024 {
            return Err("ws_malformed_response".into());
        }
    };
    ws::check_upgrade_response(&buf[..end], &key, proto).map_err(|e| {
        tracing::debug!(error = %e, "upgrade refused");
        e.kind()
    })?;
    Ok((stream, buf.split_off(end)))
}

/// One read from the socket into the shared buffer, handled before returning.
async fn read_once(shared: &Shared, rd: &mut TcpStream, handler: &mut Handler) -> Result<(), ConnEnd> {
    poll_fn(|cx| {
        let mut buf = shared.read_buf.borrow_mut();
        let mut rb = ReadBuf::new(&mut buf[..]);
        match Pin::new(&mut *rd).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(ConnEnd::Io(io_kind(&e)))),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => Poll::Ready(Err(ConnEnd::Eof)),
            Poll::Ready(Ok(())) => Poll::Ready(handler.on_bytes(rb.filled())),
        }
    })
    .await
}

/// What the driver learns when a client's join ends.
#[derive(Debug)]
pub enum JoinOutcome {
    Joined(Rc<Conn>),
    Failed(String),
}

/// A client's whole life: join (reported through `report`), then read until the connection ends.
pub async fn run_client(shared: Rc<Shared>, spec: ClientSpec, key_bytes: [u8; 16], report: impl FnOnce(JoinOutcome)) {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + shared.join_timeout;
    let mut report = Some(report);
    let mut fail = |kind: String| {
        if let Some(r) = report.take() {
            r(JoinOutcome::Failed(kind));
        }
    };
    // Login and upgrade.
    let connect = async {
        if shared.floor {
            upgrade(&shared, "/", key_bytes).await
        } else {
            let token = login(&shared, &spec).await?;
            upgrade(&shared, &format!("/v1/ws?token={token}"), key_bytes).await
        }
    };
    let (stream, leftover) = match tokio::time::timeout_at(deadline, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(kind)) => return fail(kind),
        Err(_) => return fail("join_timeout".into()),
    };
    // The runtime reads a duplicate of the socket during the join (and for decoders); count-only clients are then
    // read by the bulk reader through `writer`, and the duplicate (with its registration) is dropped.
    let split = stream
        .into_std()
        .and_then(|s| s.try_clone().map(|dup| (s, dup)))
        .and_then(|(s, dup)| TcpStream::from_std(dup).map(|rd| (s, rd)));
    let (writer, mut rd) = match split {
        Ok(pair) => pair,
        Err(e) => return fail(format!("join_io_{}", io_kind(&e))),
    };
    let conn = Rc::new(Conn {
        decoder: spec.decoder.then(|| RefCell::new(Decoder::new())),
        spec,
        writer,
        backlog: RefCell::new(Vec::new()),
        dead: Cell::new(false),
        frames: Cell::new(0),
        next_id: Cell::new(0),
    });
    let mut handler = Handler {
        parser: FrameParser::new(conn.decoder.is_some()),
        state: HandlerState {
            shared: shared.clone(),
            conn: conn.clone(),
            seen: 0,
            join_messages: if shared.floor { 0 } else { 2 },
        },
    };
    // Welcome and keyframe.
    let mut result = handler.on_bytes(&leftover);
    while result.is_ok() && !handler.joined() {
        result = match tokio::time::timeout_at(deadline, read_once(&shared, &mut rd, &mut handler)).await {
            Ok(r) => r,
            Err(_) => return fail("join_timeout".into()),
        };
    }
    if let Err(end) = result {
        return fail(format!("join_{}", end.kind()));
    }
    shared.join_latency.borrow_mut().record(started.elapsed());
    if let Some(r) = report.take() {
        r(JoinOutcome::Joined(conn.clone()));
    }
    // Steady state: count-only clients go to the bulk reader, decoders keep reading here.
    if conn.decoder.is_none() {
        drop(rd);
        if let Err(e) = shared.bulk.add(handler) {
            connection_lost(&shared, &conn, ConnEnd::Io(io_kind(&e)));
        }
        return;
    }
    let end = loop {
        if conn.dead.get() {
            break ConnEnd::Killed("input_write_failed");
        }
        if let Err(end) = read_once(&shared, &mut rd, &mut handler).await {
            break end;
        }
    };
    connection_lost(&shared, &conn, end);
}
