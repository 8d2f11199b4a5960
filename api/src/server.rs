//! The accept loop: hyper HTTP/1.1 connections with upgrades over the axum router, with a connection cap, header,
//! idle and drain timeouts, stopped by a shutdown future.
//!
//! axum's own `serve` wraps sockets in a type that cannot be taken back after a WebSocket upgrade; this loop
//! serves each connection with hyper directly, so an upgraded connection downcasts to its TCP stream
//! ([`Tracked`]`<TcpStream>`, see [`take_stream`]).
//!
//! Limits on this path (each configurable, see [`HttpLimits`]):
//! - a connection cap: past `max_connections` (HTTP connections plus WebSocket sessions), new sockets are served
//!   by the *reserve* router, which answers only health, metrics and admin routes and `503 at_capacity` for
//!   everything else, so an operator can still see and act on a full server; when the reserve is full, its oldest
//!   connection is closed to make room, so idle sockets can never keep an operator out. Descriptors are never
//!   exhausted by clients;
//! - a header-read timeout (hyper's: the whole request head must arrive within it, from the moment the
//!   connection opens or the first byte of a later request);
//! - an idle timeout: a connection with no bytes in either direction for this long is closed, between requests
//!   or in the middle of one;
//! - TCP keepalive on every accepted socket, so that vanished peers are found by the kernel too;
//! - a drain timeout at shutdown: requests in flight get this long to finish, then their connections are dropped.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use orrery_actors::net::clock_ms;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_layer::Layer;
use tracing::debug;

/// Limits and timeouts of the HTTP side.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections served normally (HTTP connections plus WebSocket sessions).
    pub max_connections: usize,
    /// Extra connections past the cap that may reach only health, metrics and admin routes.
    pub reserve_connections: usize,
    /// The request head must arrive within this.
    pub header_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// A request (body included) must be answered within this, or it gets 408.
    pub request_timeout: Duration,
    /// The largest request body, in bytes (413 above it).
    pub body_limit: usize,
    /// At shutdown, how long requests in flight may take to finish.
    pub drain_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            reserve_connections: 32,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            body_limit: 64 * 1024,
            drain_timeout: Duration::from_secs(1),
        }
    }
}

/// Descriptors kept back from the connection cap for everything else the process opens (store, pollers, runtime).
pub const RESERVED_DESCRIPTORS: u64 = 512;

/// The descriptor limit of this process (its soft `RLIMIT_NOFILE`), raised to the hard limit first.
pub fn descriptor_limit() -> u64 {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
}

/// The default connection cap: the descriptor limit less [`RESERVED_DESCRIPTORS`] (at least a quarter of it).
pub fn default_max_connections() -> usize {
    let limit = descriptor_limit();
    limit.saturating_sub(RESERVED_DESCRIPTORS).max(limit / 4) as usize
}

/// Live connection counts, shared with the handlers (admission) and `/metrics`.
#[derive(Debug, Default)]
pub struct ConnCounts {
    /// HTTP connections being served (an upgraded connection leaves this count when it becomes a session).
    pub http: AtomicUsize,
    /// Connections in the reserve.
    pub reserve: AtomicUsize,
}

/// Decrements a counter when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream that records when bytes last went through it (either way), for the idle timeout.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    last: Arc<AtomicU64>,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        self.last.store(clock_ms(), Ordering::Relaxed);
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            me.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let r = Pin::new(&mut me.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            me.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The type an upgraded connection downcasts to.
pub type UpgradedIo = TokioIo<Tracked<TcpStream>>;

/// The TCP stream of an upgraded connection.
pub fn take_stream(io: UpgradedIo) -> TcpStream {
    io.into_inner().into_inner()
}

fn keepalive(stream: &TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
    let _ = stream.set_nodelay(true);
}

/// Serves `router` on `listener` (and `reserve` on connections past the cap) until `shutdown` resolves, then
/// gives requests in flight `limits.drain_timeout` and returns. `sessions` counts live WebSocket sessions.
pub async fn run(
    listener: TcpListener,
    router: Router,
    reserve: Router,
    limits: HttpLimits,
    counts: Arc<ConnCounts>,
    sessions: impl Fn() -> usize + Send + Sync + 'static,
    shutdown: impl Future<Output = ()>,
) {
    let tracker = TaskTracker::new();
    let drain = CancellationToken::new();
    let dropped = CancellationToken::new();
    let refused = metrics::counter!("orrery_connections_refused_total");
    let reserve_queue: Arc<parking_lot::Mutex<VecDeque<(u64, CancellationToken)>>> = Arc::default();
    let mut next_reserve_id = 0u64;
    let header_timeouts = metrics::counter!("orrery_http_timeouts_total", "kind" => "header");
    let idle_timeouts = metrics::counter!("orrery_http_timeouts_total", "kind" => "idle");
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors (or another transient failure): back off instead of spinning.
                debug!(error = %e, "accept failed");
                metrics::counter!("orrery_accept_errors_total").increment(1);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let in_use = counts.http.load(Ordering::Acquire) + sessions();
        let reserved = in_use >= limits.max_connections;
        if reserved && limits.reserve_connections == 0 {
            refused.increment(1);
            drop(stream);
            continue;
        }
        // A reserve connection may be evicted by a newer one when the reserve is full (the oldest goes), so that
        // sockets held open by others can never keep an operator's request out.
        let evict = if reserved {
            let token = CancellationToken::new();
            let mut queue = reserve_queue.lock();
            if queue.len() >= limits.reserve_connections {
                if let Some((_, oldest)) = queue.pop_front() {
                    refused.increment(1);
                    oldest.cancel();
                }
            }
            next_reserve_id += 1;
            queue.push_back((next_reserve_id, token.clone()));
            Some((next_reserve_id, token))
        } else {
            None
        };
        keepalive(&stream);
        let counter = if reserved { &counts.reserve } else { &counts.http };
        counter.fetch_add(1, Ordering::AcqRel);
        let routes = if reserved { reserve.clone() } else { router.clone() };
        let service = TowerToHyperService::new(Extension(ConnectInfo(peer)).layer(routes));
        let last = Arc::new(AtomicU64::new(clock_ms()));
        let io = TokioIo::new(Tracked {
            inner: stream,
            last: Arc::clone(&last),
        });
        let (drain, dropped, counts) = (drain.clone(), dropped.clone(), Arc::clone(&counts));
        let reserve_queue = Arc::clone(&reserve_queue);
        let (header_timeouts, idle_timeouts) = (header_timeouts.clone(), idle_timeouts.clone());
        tracker.spawn(async move {
            let _slot = Slot(if reserved { &counts.reserve } else { &counts.http });
            let started = tokio::time::Instant::now();
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(io, service)
                .with_upgrades();
            tokio::pin!(conn);
            let idle_check = (limits.idle_timeout / 4).max(Duration::from_millis(10));
            let mut draining = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            if e.is_timeout() {
                                header_timeouts.increment(1);
                            }
                            debug!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep(idle_check) => {
                        let idle = Duration::from_millis(clock_ms().saturating_sub(last.load(Ordering::Relaxed)));
                        if idle >= limits.idle_timeout {
                            idle_timeouts.increment(1);
                            debug!(%peer, age_ms = started.elapsed().as_millis() as u64, "closing an idle connection");
                            break;
                        }
                    }
                    () = drain.cancelled(), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    () = dropped.cancelled() => break,
                    () = evicted(&evict) => break,
                }
            }
            if let Some((id, _)) = evict {
                reserve_queue.lock().retain(|(i, _)| *i != id);
            }
        });
    }
    drop(listener);
    drain.cancel();
    tracker.close();
    if tokio::time::timeout(limits.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        debug!("dropping HTTP connections still open after the drain timeout");
        dropped.cancel();
        tracker.wait().await;
    }
}

/// Resolves when a reserve connection is evicted; never for an ordinary one.
async fn evicted(evict: &Option<(u64, CancellationToken)>) {
    match evict {
        Some((_, token)) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

/// The peer address of a request.
pub type Peer = ConnectInfo<SocketAddr>;
