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
            describe_metrics();
            handle
        })
        .clone()
}

/// Describes every metric Orrery records, so that `/metrics` gives each series a `# HELP` line (and a unit where it
/// has one). The one place that lists them: a new metric gets its description here (docs/operations.md has the same
/// table for operators).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    // Sessions and connections.
    describe_gauge!(
        "orrery_sessions_connected",
        "Live WebSocket sessions (set when /metrics is scraped)."
    );
    describe_counter!(
        "orrery_sessions_superseded_total",
        "Sessions closed with 4001 by a new login of their character."
    );
    describe_counter!(
        "orrery_connections_refused_total",
        "Sockets closed past the connection cap and its reserve."
    );
    describe_counter!(
        "orrery_accept_errors_total",
        "Failed accept calls (e.g. out of descriptors)."
    );
    describe_counter!(
        "orrery_admission_refused_total",
        "Logins refused with 503 at_capacity (the session cap)."
    );
    describe_counter!(
        "orrery_ws_origin_refused_total",
        "WebSocket upgrades refused for their Origin."
    );
    describe_counter!(
        "orrery_ws_pings_sent_total",
        "Liveness pings sent to silent WebSocket clients."
    );
    describe_counter!(
        "orrery_ws_timeouts_total",
        "Silent WebSocket connections closed with 4002."
    );
    describe_counter!(
        "orrery_ws_protocol_errors_total",
        "WebSocket connections closed for a protocol violation, by kind (protocol, invalid_utf8, too_big)."
    );
    describe_counter!(
        "orrery_rate_limited_total",
        "WebSocket connections closed with 1008 for exceeding the message rate."
    );
    describe_counter!(
        "orrery_slow_consumers_closed_total",
        "Connections reset past the outbound queue's hard limit."
    );
    describe_counter!(
        "orrery_http_timeouts_total",
        "HTTP connections or requests ended by a timeout, by kind (header, idle, request)."
    );
    describe_counter!(
        "orrery_http_rate_limited_total",
        "HTTP requests refused with 429, by route."
    );
    // Identity.
    describe_counter!(
        "orrery_auth_failures_total",
        "Refused logins and token refreshes, by reason."
    );
    describe_counter!(
        "orrery_accounts_registered_total",
        "Accounts registered with a username and password."
    );
    describe_counter!(
        "orrery_guests_upgraded_total",
        "Guest accounts upgraded to registered accounts."
    );
    describe_counter!("orrery_guests_purged_total", "Idle guests deleted.");
    describe_counter!(
        "orrery_text_refused_total",
        "Names, chat lines and operators' notices refused by the text rule, by what."
    );
    // Ticks and deltas.
    describe_counter!("orrery_ticks_total", "Sector ticks simulated.");
    describe_histogram!(
        "orrery_tick_duration_seconds",
        Unit::Seconds,
        "Time inside one sector tick (inputs, simulation, encoding, socket writes)."
    );
    describe_histogram!(
        "orrery_tick_interval_seconds",
        Unit::Seconds,
        "Time between consecutive simulated ticks of a sector."
    );
    describe_counter!(
        "orrery_tick_overruns_total",
        "Intervals between two simulated ticks longer than 1.5 tick periods."
    );
    describe_counter!(
        "orrery_tick_overruns_during_write_total",
        "Tick overruns that happened while a store write was in flight."
    );
    describe_counter!(
        "orrery_dilated_ticks_total",
        "Timer ticks that time-dilated sectors skipped."
    );
    describe_gauge!("orrery_dilated_sectors", "Sectors running slower than real time.");
    describe_gauge!(
        "orrery_time_dilation_min",
        "The lowest time dilation factor among sectors (1 when none is dilated)."
    );
    describe_counter!("orrery_commands_total", "Client commands handled by sectors.");
    describe_counter!(
        "orrery_client_messages_total",
        "Client messages read from connections by sectors."
    );
    describe_counter!(
        "orrery_commands_refused_total",
        "Commands refused before they were applied, by reason."
    );
    describe_counter!(
        "orrery_command_key_repeats_total",
        "Keyed commands answered from the stored reply of an earlier one."
    );
    describe_counter!(
        "orrery_deltas_total",
        "Deltas produced (one per sector per changed tick)."
    );
    describe_counter!(
        "orrery_delta_frames_sent_total",
        "Delta frames written or queued to sockets."
    );
    describe_counter!(
        "orrery_bytes_sent_total",
        Unit::Bytes,
        "Bytes of delta and recovery keyframe frames sent."
    );
    describe_counter!(
        "orrery_deltas_dropped_total",
        "Deltas dropped for slow clients (each then gets a keyframe)."
    );
    describe_counter!("orrery_keyframes_sent_total", "Keyframes encoded.");
    describe_counter!(
        "orrery_frame_encode_errors_total",
        "Server frames that could not be encoded (sent as an internal error)."
    );
    describe_counter!(
        "orrery_ledger_unbalanced_total",
        "Ledger transactions posted by the rules that do not sum to zero per asset."
    );
    // Supervision and transfers.
    describe_counter!("orrery_sector_restarts_total", "Sector actors restarted after a crash.");
    describe_counter!(
        "orrery_region_restarts_total",
        "Region supervisors restarted after an escalation."
    );
    describe_counter!("orrery_nexus_restarts_total", "Nexus actors restarted after a failure.");
    describe_counter!(
        "orrery_nexus_transfers_total",
        "Avatars carried across regions by the nexus."
    );
    describe_gauge!("orrery_transfers_in_flight", "Avatars between two sectors right now.");
    describe_counter!(
        "orrery_transfer_retries_total",
        "Transfer hops retried while an actor restarts."
    );
    describe_counter!(
        "orrery_transfer_redeliveries_total",
        "Transfer deliveries driven again after a lost handle."
    );
    describe_counter!(
        "orrery_transfers_returned_total",
        "Avatars sent back to their origin sector."
    );
    describe_counter!(
        "orrery_global_chat_dropped_total",
        "Global chat lines dropped because no nexus answered."
    );
    // Persistence.
    describe_counter!(
        "orrery_snapshots_written_total",
        "Sector snapshots written to the store."
    );
    describe_histogram!(
        "orrery_snapshot_write_seconds",
        Unit::Seconds,
        "Time of each store write (one transaction)."
    );
    describe_histogram!("orrery_snapshot_batch_sectors", "Sectors per store write.");
    describe_histogram!("orrery_snapshot_batch_avatars", "Avatars per store write.");
    describe_counter!("orrery_snapshot_errors_total", "Failed snapshot writes.");
    describe_counter!(
        "orrery_snapshot_encode_errors_total",
        "Snapshots not written because the state could not be encoded."
    );
    describe_counter!(
        "orrery_snapshots_superseded_total",
        "Periodic snapshots replaced by a newer one of the same sector before the store took them."
    );
    describe_gauge!(
        "orrery_snapshot_lag_seconds",
        Unit::Seconds,
        "Per region, how long its oldest change not known to be in the store has waited."
    );
    describe_gauge!(
        "orrery_persist_queue_depth",
        "Jobs waiting for the store after the last write started."
    );
    describe_gauge!(
        "orrery_storage_available",
        "1 while the store takes writes, 0 from a failed write until the next success."
    );
    describe_counter!(
        "orrery_persist_retries_total",
        "Store writes retried after a transient failure."
    );
    describe_gauge!(
        "orrery_persist_backlog_sectors",
        "Sector snapshots held for a store retry."
    );
    describe_gauge!("orrery_persist_backlog_avatars", "Avatars held for a store retry.");
    describe_gauge!(
        "orrery_persist_backlog_ledger_txs",
        "Ledger transactions held for a store retry."
    );
    describe_gauge!(
        "orrery_persist_backlog_acks",
        "Replies to durable commands held for a store retry."
    );
    // Administration.
    describe_counter!(
        "orrery_admin_actions_total",
        "Admin actions recorded in the audit log, by action and outcome."
    );
    describe_counter!(
        "orrery_audit_write_failures_total",
        "Audit log writes that failed, by stage (before, after)."
    );
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
