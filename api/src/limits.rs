//! Per-request limits of the HTTP API: request timeout (408), body size (413), CORS and the WebSocket's `Origin`
//! check, guest logins, ledger reads and audit log reads per client address (429 with `Retry-After`), every error
//! of a lower layer rewritten as JSON ([`crate::error::json_errors`]), and the chores that keep them bounded (the
//! limiter forgets idle addresses; expired guests are purged).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use orrery_engine::Game;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::{info, warn};

use crate::error::ApiError;
use crate::App;

/// A rate limit per client address (governor's keyed GCRA limiter).
pub struct AddressLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl std::fmt::Debug for AddressLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressLimiter")
            .field("addresses", &self.limiter.len())
            .finish()
    }
}

impl AddressLimiter {
    /// `per_minute` sustained, bursts of `burst` (0 for either means unlimited).
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let quota = match (NonZeroU32::new(per_minute), NonZeroU32::new(burst)) {
            (Some(rate), Some(burst)) => Quota::per_minute(rate).allow_burst(burst),
            _ => Quota::per_second(NonZeroU32::MAX),
        };
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request from `addr`; the error says when to retry.
    pub fn check(&self, addr: IpAddr, what: &'static str) -> Result<(), ApiError> {
        self.limiter.check_key(&addr).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            metrics::counter!("orrery_http_rate_limited_total", "route" => what).increment(1);
            ApiError::RateLimited {
                what,
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets addresses whose limit has fully recovered.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Wraps `routes` in the request timeout, the body limit and, when origins are configured, CORS.
pub(crate) fn apply<G: Game>(routes: Router<Arc<App<G>>>, app: &App<G>) -> Router<Arc<App<G>>> {
    let timeout = app.http.request_timeout;
    let body_limit = app.http.body_limit;
    let table: Arc<Vec<(Method, &'static str)>> = Arc::new(
        crate::routes::<G>()
            .iter()
            .map(|r| (r.method.clone(), r.path))
            .collect(),
    );
    let routes = routes
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            crate::error::json_errors(body_limit, Arc::clone(&table), req, next)
        }))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(response) => response,
                Err(_) => {
                    metrics::counter!("orrery_http_timeouts_total", "kind" => "request").increment(1);
                    ApiError::Timeout(timeout.as_secs()).into_response()
                }
            }
        }))
        .layer(DefaultBodyLimit::max(app.http.body_limit));
    match cors(&app.cors_origins) {
        Some(layer) => routes.layer(layer),
        None => routes,
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER])
            .max_age(Duration::from_secs(3600)),
    )
}

/// The WebSocket's `Origin` check: with origins configured (and not `*`), a request that names an origin must name
/// one of them. Requests without `Origin` (not from a browser) pass.
pub(crate) fn check_origin(origins: &[String], headers: &HeaderMap) -> Result<(), ApiError> {
    if origins.is_empty() || origins.iter().any(|o| o == "*") {
        return Ok(());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    if origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else {
        metrics::counter!("orrery_ws_origin_refused_total").increment(1);
        Err(ApiError::OriginNotAllowed(origin.to_owned()))
    }
}

/// Background chores: every minute the address limiter forgets idle addresses; at start and every hour, guests
/// idle for longer than `guest_ttl` are purged.
pub(crate) fn spawn_chores<G: Game>(app: Arc<App<G>>, guest_ttl: Option<Duration>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut minute = tokio::time::interval(Duration::from_secs(60));
        let mut ticks: u64 = 0;
        loop {
            minute.tick().await;
            app.guest_limiter.forget_idle();
            app.ledger_limiter.forget_idle();
            app.audit_limiter.forget_idle();
            app.admin_limiter.forget_idle();
            app.accounts.forget_idle();
            if let Some(ttl) = guest_ttl {
                if ticks % 60 == 0 {
                    let cutoff = orrery_actors::store::now_millis() - ttl.as_millis() as i64;
                    match app.node.store.purge_guests(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => {
                            metrics::counter!("orrery_guests_purged_total").increment(n);
                            info!(guests = n, "purged idle guests");
                        }
                        Err(e) => warn!(error = %e, "purging idle guests failed"),
                    }
                }
            }
            ticks += 1;
        }
    })
}
