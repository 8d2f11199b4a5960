//! The per-subscriber send path: one shared, pre-framed ~1 KiB delta written to N = 100 loopback TCP connections.
//!
//! Three ways of doing the same thing, in one group, over sockets set up identically (TCP_NODELAY, non-blocking,
//! the peer ends drained by a background thread that waits in epoll like a real client):
//! - `std_write`: a plain non-blocking `write` on a std `TcpStream` (the kernel's cost; what the floor does);
//! - `tokio_try_write`: `tokio::net::TcpStream::try_write` (adds tokio's readiness check);
//! - `conn_offer_delta`: `orrery_actors::net::Conn::offer_delta`, the sector's real path (the outbox mutex and the
//!   backpressure bookkeeping around a plain non-blocking `send`).
//!
//! Each sample times only the N writes; between samples the bench waits (untimed) until the drain thread has read
//! everything and gone back to sleep, so every write finds an empty socket buffer and a sleeping reader, as at
//! 20 Hz. Time per iteration / N = cost per subscriber; `conn_offer_delta / std_write` is the overhead of our path
//! over the kernel's. After the criterion group, an interleaved run (the three methods in turn, 600 rounds) prints
//! the median cost per subscriber of each and the ratios, which drift on the machine cannot skew.
//!
//! Run: `cargo bench --bench fanout`.

use std::cell::Cell;
use std::hint::black_box;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use orrery_actors::net::{self, Conn, Offer, Opcode, OutboxLimits};
use tokio::io::AsyncReadExt;

/// Subscribers per fan-out.
const N: usize = 100;
/// Payload bytes of the delta frame.
const PAYLOAD: usize = 1024;
/// Untimed pause between two fan-outs, once everything has been read.
const SETTLE: Duration = Duration::from_micros(500);

/// `n` connected loopback pairs: (server end, client end).
fn pairs(n: usize) -> Vec<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    (0..n)
        .map(|_| {
            let client = TcpStream::connect(addr).expect("connect");
            let (server, _) = listener.accept().expect("accept");
            server.set_nodelay(true).expect("nodelay");
            server.set_nonblocking(true).expect("nonblocking");
            (server, client)
        })
        .collect()
}

/// Reads every client end forever on a thread of its own (a current-thread tokio runtime: epoll, like the load
/// tester's clients), counting the bytes received.
fn drain(clients: Vec<TcpStream>, received: Arc<AtomicU64>) {
    std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("drain runtime");
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for c in clients {
                    c.set_nonblocking(true).expect("nonblocking");
                    let mut s = tokio::net::TcpStream::from_std(c).expect("register");
                    let received = Arc::clone(&received);
                    tasks.push(tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = s.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            received.fetch_add(n as u64, Ordering::Release);
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
        .expect("spawn drain thread");
}

/// Waits until the drain thread has read `expected` bytes in total.
fn wait_drained(received: &AtomicU64, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Acquire) < expected {
        assert!(Instant::now() < deadline, "the drain thread fell behind");
        std::thread::yield_now();
    }
}

/// Waits (untimed) until everything sent so far has been read and the drain thread is asleep again, then times
/// one fan-out. Returns its duration and adds the bytes it handed over to `sent`.
fn one_fanout(received: &AtomicU64, sent: &mut u64, write_all: impl FnOnce() -> u64) -> Duration {
    wait_drained(received, *sent);
    // Let the drain thread go back to sleep in epoll, as a client does between two 20 Hz frames.
    std::thread::sleep(SETTLE);
    let t = Instant::now();
    let bytes = write_all();
    let took = t.elapsed();
    *sent += bytes;
    took
}

/// The three ways of writing the frame, each over its own N sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Std,
    Tokio,
    Conn,
}

impl Method {
    const ALL: [Method; 3] = [Method::Std, Method::Tokio, Method::Conn];

    fn name(self) -> &'static str {
        match self {
            Method::Std => "std_write",
            Method::Tokio => "tokio_try_write",
            Method::Conn => "conn_offer_delta",
        }
    }
}

struct Targets {
    frame: Bytes,
    std: Vec<TcpStream>,
    tokio: Vec<tokio::net::TcpStream>,
    conns: Vec<Arc<Conn>>,
    /// Writes that were short or failed (or offers not accepted), per method.
    short: [Cell<u64>; 3],
}

impl Targets {
    /// Writes the frame to all N sockets of `m`; returns the bytes handed to the kernel (or queued, for `Conn`).
    fn fan_out(&self, m: Method) -> u64 {
        let len = self.frame.len();
        let mut bytes = 0u64;
        let mut short = 0u64;
        let mut count = |r: std::io::Result<usize>| match r {
            Ok(n) => {
                bytes += n as u64;
                short += u64::from(n != len);
            }
            Err(_) => short += 1,
        };
        match m {
            Method::Std => self.std.iter().for_each(|s| count((&*s).write(&self.frame))),
            Method::Tokio => self.tokio.iter().for_each(|s| count(s.try_write(&self.frame))),
            Method::Conn => {
                for conn in &self.conns {
                    // Accepted = written, or queued for the flusher (which delivers it later).
                    if black_box(conn.offer_delta(&self.frame)) == Offer::Accepted {
                        bytes += len as u64;
                    } else {
                        short += 1;
                    }
                }
            }
        }
        self.short[m as usize].set(self.short[m as usize].get() + short);
        bytes
    }
}

/// Rounds of the interleaved comparison printed after the criterion group.
const ROUNDS: usize = 600;

/// The three methods in turn (rotating which goes first), `ROUNDS` times: the median per-subscriber cost of each,
/// measured under the same conditions at the same moments, so that drift on the machine cancels out.
fn interleaved(targets: &Targets, received: &AtomicU64, sent: &mut u64) {
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        for k in 0..3 {
            let m = Method::ALL[(round + k) % 3];
            let took = one_fanout(received, sent, || targets.fan_out(m));
            times[m as usize].push(took.as_secs_f64() * 1e6 / N as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = times.iter_mut().map(median).collect();
    for m in Method::ALL {
        eprintln!(
            "fanout interleaved ({ROUNDS} rounds): {:<17} median {:.2} µs per subscriber ({:.2} x std_write)",
            m.name(),
            medians[m as usize],
            medians[m as usize] / medians[0],
        );
    }
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let received = Arc::new(AtomicU64::new(0));

    let (std_servers, std_clients): (Vec<_>, Vec<_>) = pairs(N).into_iter().unzip();
    let (tokio_servers, tokio_clients): (Vec<_>, Vec<_>) = pairs(N).into_iter().unzip();
    let (conn_servers, conn_clients): (Vec<_>, Vec<_>) = pairs(N).into_iter().unzip();
    let mut all_clients = std_clients;
    all_clients.extend(tokio_clients);
    all_clients.extend(conn_clients);
    drain(all_clients, Arc::clone(&received));

    let targets = {
        let _guard = rt.enter();
        Targets {
            frame: net::frame(Opcode::Binary, &[0x5a; PAYLOAD]),
            std: std_servers,
            tokio: tokio_servers
                .into_iter()
                .map(|s| tokio::net::TcpStream::from_std(s).expect("register"))
                .collect(),
            conns: conn_servers
                .into_iter()
                .map(|s| Conn::new(s, OutboxLimits::default()).expect("register"))
                .collect(),
            short: Default::default(),
        }
    };
    // Let the reactor see every new socket as writable before tokio's readiness-gated writes are timed.
    std::thread::sleep(Duration::from_millis(100));

    let mut sent = 0u64;
    let mut group = c.benchmark_group("fanout_100_subscribers_1KiB");
    group.throughput(Throughput::Elements(N as u64));
    for m in Method::ALL {
        group.bench_function(m.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| one_fanout(&received, &mut sent, || targets.fan_out(m)))
                    .sum()
            })
        });
    }
    group.finish();
    interleaved(&targets, &received, &mut sent);
    eprintln!(
        "fanout: frame {} B; short or failed writes: std {}, tokio {}; offers not accepted: {}; \
         pending in Conn queues: {} B",
        targets.frame.len(),
        targets.short[0].get(),
        targets.short[1].get(),
        targets.short[2].get(),
        targets.conns.iter().map(|c| c.pending_bytes()).sum::<usize>()
    );
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = fanout
}
criterion_main!(benches);
