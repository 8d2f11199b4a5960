//! `/healthz`, `/readyz` and `/metrics` (Prometheus text format).

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orrery_engine::Game;
use serde_json::json;

use crate::App;

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let seconds = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.045, 0.05, 0.055, 0.06, 0.075, 0.1, 0.25,
                0.5, 1.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is up: `{\"status\": \"ok\"}`", body = Object)))]
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ready\", \"sessions\", \"sectors\": {\"total\", \"running\"}}`", body = Object),
        (status = 503, description = "Shutting down: `{\"status\": \"shutting_down\"}`", body = Object),
    ))]
pub(crate) async fn readyz<G: Game>(State(app): State<Arc<App<G>>>) -> impl IntoResponse {
    if app.is_shutting_down() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
    } else {
        // Served only once `Node::start` has returned, i.e. once every sector's actor has started: `sectors` says
        // how many run now (one being restarted after a crash, or in a region an admin stopped, has none).
        let directory = &app.node.directory;
        (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "sessions": directory.session_count(),
                "sectors": {"total": directory.sector_count(), "running": directory.running_sector_count()},
            })),
        )
    }
}

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics<G: Game>(State(app): State<Arc<App<G>>>) -> impl IntoResponse {
    metrics::gauge!("orrery_sessions_connected").set(app.node.directory.session_count() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
