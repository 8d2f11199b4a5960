//! The accept loop: hyper HTTP/1.1 connections with upgrades over the axum router, stopped by a shutdown future.
//!
//! axum's own `serve` wraps sockets in a type that cannot be taken back after a WebSocket upgrade; this loop
//! serves each connection with hyper directly, so an upgraded connection downcasts to its `TcpStream`.

use std::future::Future;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight HTTP requests finish.
/// Upgraded WebSocket connections are not tracked here: the node closes their sessions.
pub async fn run(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => if let Err(e) = r { debug!(%peer, error = %e, "connection ended with an error") },
                () = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
}
