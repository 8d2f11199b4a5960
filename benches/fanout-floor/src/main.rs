//! `fanout-floor`: the raw fan-out baseline Orrery's per-frame path is measured against.
//!
//! One plain thread writes the same pre-built, unmasked 1 KiB binary WebSocket frame to N non-blocking sockets at
//! 20 Hz (absolute schedule), with one `write` per socket per tick. Nothing else: no runtime, no actors, no
//! encoding, no per-socket allocation. An acceptor thread completes the WebSocket handshakes and hands the sockets
//! over. After the handshake nothing is ever read from a client, unless `--read-inputs` is given: then, at the
//! start of every tick, one `epoll_wait` (mio, zero timeout) names the sockets with input and each is read until a
//! short read, the bytes discarded. That variant ("floor + inputs") measures what the kernel charges for the same
//! traffic as the server's, inputs included (the load tester sends them with `--floor --floor-inputs`).
//!
//! Buffering: none. Every frame is identical, so a socket only remembers an offset into the shared frame:
//! - `write` returns `WouldBlock`: the frame is dropped for that socket (counted as `dropped`);
//! - a partial write: the rest of *that* frame is written at the next tick instead of a new frame (counted as
//!   `partial`; the new frame of that tick is dropped for that socket, so the stream stays valid WebSocket and each
//!   socket still gets exactly one `write` per tick);
//! - any other error: the socket is closed and removed (counted as `removed`).
//!
//! Usage: `fanout-floor --bind 127.0.0.1:PORT [--frame-bytes 1024] [--hz 20] [--duration SECS] [--read-inputs]`.
//! A counter line goes to stderr every 10 s (and at the end of `--duration`). A plain HTTP `GET` that is not a
//! WebSocket upgrade (e.g. `/readyz`) is answered `200 ok`, so scripts can wait for readiness the same way as for
//! the server.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The GUID of RFC 6455 section 1.3, appended to the client's key.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Longest handshake request accepted, in bytes.
const MAX_REQUEST: usize = 16 * 1024;
/// How long a client may take to send its handshake request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Interval of the counter line on stderr.
const REPORT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Args {
    bind: SocketAddr,
    frame_bytes: usize,
    hz: f64,
    duration: Option<Duration>,
    read_inputs: bool,
}

const USAGE: &str =
    "usage: fanout-floor --bind HOST:PORT [--frame-bytes 1024] [--hz 20] [--duration SECS] [--read-inputs]\n\
     Writes one pre-framed binary WebSocket frame to every connected client at --hz (see the crate docs).";

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut bind = None;
    let mut frame_bytes = 1024usize;
    let mut hz = 20.0f64;
    let mut duration = None;
    let mut read_inputs = false;
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--bind" => bind = Some(value("--bind")?.parse().map_err(|e| format!("--bind: {e}"))?),
            "--frame-bytes" => {
                frame_bytes = value("--frame-bytes")?
                    .parse()
                    .map_err(|e| format!("--frame-bytes: {e}"))?
            }
            "--hz" => hz = value("--hz")?.parse().map_err(|e| format!("--hz: {e}"))?,
            "--duration" => {
                let secs: f64 = value("--duration")?.parse().map_err(|e| format!("--duration: {e}"))?;
                if !(secs.is_finite() && secs > 0.0) {
                    return Err("--duration must be a positive number of seconds".into());
                }
                duration = Some(Duration::from_secs_f64(secs));
            }
            "--read-inputs" => read_inputs = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !(hz.is_finite() && hz > 0.0 && hz <= 10_000.0) {
        return Err("--hz must be in (0, 10000]".into());
    }
    if frame_bytes > 16 * 1024 * 1024 {
        return Err("--frame-bytes must be at most 16 MiB".into());
    }
    Ok(Args {
        bind: bind.ok_or("--bind is required")?,
        frame_bytes,
        hz,
        duration,
        read_inputs,
    })
}

/// SHA-1 (FIPS 180-4) of `data`. Only for the handshake's `Sec-WebSocket-Accept`; not for anything secret.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
fn accept_key(key: &str) -> String {
    base64(&sha1(format!("{}{WS_GUID}", key.trim()).as_bytes()))
}

/// One unmasked, final binary frame whose payload is `len` bytes.
fn build_frame(len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len + 10);
    f.push(0x82);
    if len < 126 {
        f.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        f.push(126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    // A recognisable, non-zero payload.
    f.extend((0..len).map(|i| b"orrery-floor "[i % 13]));
    f
}

/// The value of header `name` (case-insensitive) in a request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the request head, answers it, and returns the socket if it is now a WebSocket.
fn handshake(mut stream: TcpStream) -> std::io::Result<Option<TcpStream>> {
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_REQUEST {
            stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n")?;
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let Some(key) = header(&head, "sec-websocket-key") else {
        // Not an upgrade: readiness probes and the like.
        stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
        )?;
        return Ok(None);
    };
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    // Echo the first offered subprotocol: clients that offer one refuse a handshake that picks none.
    if let Some(proto) = header(&head, "sec-websocket-protocol").and_then(|p| p.split(',').next()) {
        response.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", proto.trim()));
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes())?;
    stream.set_read_timeout(None)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    Ok(Some(stream))
}

/// Sockets handed from the acceptor to the writer.
type Inbox = Arc<Mutex<Vec<TcpStream>>>;

fn accept_loop(listener: TcpListener, inbox: Inbox) {
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("fanout-floor: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        match handshake(stream) {
            Ok(Some(ws)) => inbox.lock().unwrap_or_else(|p| p.into_inner()).push(ws),
            Ok(None) => {}
            Err(e) => eprintln!("fanout-floor: handshake failed: {e}"),
        }
    }
}

/// A client socket and how much of the current frame it still owes (0 = at a frame boundary).
struct Client {
    stream: TcpStream,
    resume: usize,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ticks: u64,
    /// Ticks that started more than 1.5 periods after the previous one.
    late_ticks: u64,
    /// Whole frames written in one `write`.
    frames: u64,
    /// Frames whose `write` was partial (finished at the next tick).
    partial: u64,
    /// Frames not written because the socket would block (or was finishing a partial frame).
    dropped: u64,
    /// Sockets closed after a write error.
    removed: u64,
    bytes: u64,
}

/// This process's user + system CPU time, from `/proc/self/stat` (in USER_HZ = 100 ticks per second).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn report(c: &Counts, clients: usize, started: Instant, cpu0: Option<Duration>) {
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (cpu_time(), cpu0) {
        (Some(now), Some(then)) => now.saturating_sub(then).as_secs_f64(),
        _ => f64::NAN,
    };
    let per_frame = if c.frames > 0 {
        cpu * 1e6 / c.frames as f64
    } else {
        f64::NAN
    };
    eprintln!(
        "fanout-floor: t={wall:.1}s clients={clients} ticks={} late_ticks={} frames={} partial={} dropped={} removed={} \
         bytes={} cpu={:.1}% cpu_us_per_frame={per_frame:.2}",
        c.ticks,
        c.late_ticks,
        c.frames,
        c.partial,
        c.dropped,
        c.removed,
        c.bytes,
        100.0 * cpu / wall.max(1e-9),
    );
}

/// The sockets' input side (with `--read-inputs`): a poller over every client socket.
struct Inputs {
    poll: mio::Poll,
    events: mio::Events,
    ready: Vec<i32>,
    buf: Vec<u8>,
}

impl Inputs {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            poll: mio::Poll::new()?,
            events: mio::Events::with_capacity(1024),
            ready: Vec::new(),
            buf: vec![0; 4096],
        })
    }

    fn watch(&self, stream: &TcpStream) {
        let fd = stream.as_raw_fd();
        let _ = self.poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(fd as usize),
            mio::Interest::READABLE,
        );
    }

    /// Reads (and discards) what every socket with input holds: one `recv` per socket until a short read.
    fn read_all(&mut self, clients: &[Client]) {
        self.ready.clear();
        loop {
            if self.poll.poll(&mut self.events, Some(Duration::ZERO)).is_err() {
                break;
            }
            let before = self.ready.len();
            self.ready.extend(self.events.iter().map(|e| e.token().0 as i32));
            if self.ready.len() - before < self.events.capacity() {
                break;
            }
        }
        if self.ready.is_empty() {
            return;
        }
        self.ready.sort_unstable();
        for cl in clients {
            if self.ready.binary_search(&cl.stream.as_raw_fd()).is_err() {
                continue;
            }
            loop {
                match (&cl.stream).read(&mut self.buf) {
                    Ok(n) if n == self.buf.len() => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        }
    }
}

/// One tick: one non-blocking `write` per socket.
fn write_all(clients: &mut Vec<Client>, frame: &[u8], c: &mut Counts) {
    clients.retain_mut(|cl| {
        let from = cl.resume;
        match (&cl.stream).write(&frame[from..]) {
            Ok(n) if from + n == frame.len() => {
                cl.resume = 0;
                c.bytes += n as u64;
                if from == 0 {
                    c.frames += 1;
                } else {
                    c.dropped += 1;
                }
                true
            }
            Ok(n) => {
                if from == 0 {
                    c.partial += 1;
                } else {
                    c.dropped += 1;
                }
                cl.resume = from + n;
                c.bytes += n as u64;
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                c.dropped += 1;
                true
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                c.dropped += 1;
                true
            }
            Err(_) => {
                c.removed += 1;
                false
            }
        }
    });
}

fn write_loop(args: &Args, inbox: Inbox) {
    let frame = build_frame(args.frame_bytes);
    let period = Duration::from_secs_f64(1.0 / args.hz);
    let mut clients: Vec<Client> = Vec::new();
    let mut counts = Counts::default();
    let started = Instant::now();
    let cpu0 = cpu_time();
    let mut next = started + period;
    let mut last_tick: Option<Instant> = None;
    let mut next_report = started + REPORT_EVERY;
    let end = args.duration.map(|d| started + d);
    let mut inputs = if args.read_inputs {
        match Inputs::new() {
            Ok(i) => Some(i),
            Err(e) => {
                eprintln!("fanout-floor: cannot create the poller for --read-inputs: {e}");
                return;
            }
        }
    } else {
        None
    };
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let tick_at = Instant::now();
        if let Some(last) = last_tick {
            if tick_at.duration_since(last) > period.mul_f64(1.5) {
                counts.late_ticks += 1;
            }
        }
        last_tick = Some(tick_at);
        // Absolute schedule; if a tick ran more than a whole period late, skip the missed ones.
        next += period;
        if tick_at > next {
            next = tick_at + period;
        }
        {
            let mut new = inbox.lock().unwrap_or_else(|p| p.into_inner());
            for stream in new.drain(..) {
                if let Some(i) = &inputs {
                    i.watch(&stream);
                }
                clients.push(Client { stream, resume: 0 });
            }
        }
        if let Some(i) = &mut inputs {
            i.read_all(&clients);
        }
        counts.ticks += 1;
        write_all(&mut clients, &frame, &mut counts);
        let after = Instant::now();
        if after >= next_report {
            report(&counts, clients.len(), started, cpu0);
            next_report += REPORT_EVERY;
        }
        if end.is_some_and(|e| after >= e) {
            report(&counts, clients.len(), started, cpu0);
            return;
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fanout-floor: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(args.bind) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fanout-floor: cannot bind {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| args.bind.to_string(), |a| a.to_string());
    eprintln!(
        "fanout-floor: listening on {local}, {} B payload ({} B framed) at {} Hz",
        args.frame_bytes,
        build_frame(args.frame_bytes).len(),
        args.hz
    );
    let inbox: Inbox = Arc::default();
    let acceptor_inbox = Arc::clone(&inbox);
    std::thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || accept_loop(listener, acceptor_inbox))
        .expect("spawn the acceptor thread");
    write_loop(&args, inbox);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha1_matches_the_fips_test_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            hex(&sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(hex(&sha1(&[b'a'; 1000])), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn frames_have_rfc6455_length_headers() {
        assert_eq!(&build_frame(5)[..2], &[0x82, 5]);
        let f = build_frame(1024);
        assert_eq!(&f[..4], &[0x82, 126, 4, 0]);
        assert_eq!(f.len(), 1028);
        let f = build_frame(70_000);
        assert_eq!(f[1], 127);
        assert_eq!(f.len(), 70_010);
    }

    #[test]
    fn args_parse() {
        let a = parse_args(
            ["--bind", "127.0.0.1:9", "--frame-bytes", "10", "--hz", "5"]
                .into_iter()
                .map(String::from),
        )
        .unwrap();
        assert_eq!((a.bind.port(), a.frame_bytes, a.hz, a.read_inputs), (9, 10, 5.0, false));
        let a = parse_args(["--bind", "127.0.0.1:9", "--read-inputs"].into_iter().map(String::from)).unwrap();
        assert!(a.read_inputs);
        assert!(parse_args(["--hz", "5"].into_iter().map(String::from)).is_err());
    }
}
