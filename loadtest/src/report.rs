//! The figures of a run: built from what `driver` measured, checked against the scenario's SLOs, written as a
//! human table and as JSON (field names documented in docs/loadtest.md and kept stable).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::driver::Measured;
use crate::prom::{counter_delta, histogram_quantile, histogram_quantile_bound};
use crate::rtt::LatencySummary;
use crate::scenario::{Scenario, Slo};

/// Version of the JSON layout.
pub const SCHEMA: &str = "orrery-loadtest/1";
/// Load generator CPU (% of one core) from which a run is marked load-generator-bound.
pub const LOADGEN_BOUND_PCT: f64 = 90.0;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    /// "server" or "floor".
    pub mode: &'static str,
    pub server: String,
    pub scenario: Scenario,
    /// Measured window length (seconds).
    pub window_secs: f64,
    /// Time from the first join to the last join's end.
    pub join_secs: f64,
    /// Whether the machine was idle (< 15 % busy for 3 s) before the run; null when not checked.
    pub machine_idle_before: Option<bool>,
    pub clients: Clients,
    pub join_latency_ms: Option<LatencySummary>,
    pub inputs: Inputs,
    pub frames: Frames,
    /// Per room (sector): what its clients received, and the time dilation its decoders were told.
    pub rooms: Vec<Room>,
    pub bytes: Bytes,
    pub rtt: Rtt,
    pub warp_latency_ms: Option<LatencySummary>,
    pub trade_latency_ms: Option<LatencySummary>,
    pub errors: Errors,
    pub stream: Stream,
    pub server_metrics: Option<ServerMetrics>,
    pub cpu: Cpu,
    pub slo: SloResult,
}

#[derive(Debug, Clone, Serialize)]
pub struct Clients {
    pub planned: u32,
    pub decoders: u32,
    pub joined: u32,
    pub failed_to_join: u64,
    /// Lost after joining, before the window ended.
    pub lost_before_window_end: u64,
    /// failed_to_join + lost_before_window_end.
    pub failed: u64,
    pub connected_at_window_start: u32,
    pub connected_at_window_end: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inputs {
    /// Thrust inputs written during the window.
    pub sent: u64,
    pub per_sec: f64,
    /// thrust_hz x clients connected at the window's start (0 against the floor).
    pub ideal_per_sec: f64,
    pub chats_sent: u64,
    pub warps_sent: u64,
    pub trades_sent: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Frames {
    /// Patch frames received during the window, all clients (count-only: every data message after the join;
    /// decoders: deltas).
    pub patch_frames: u64,
    pub per_sec: f64,
    /// tick_hz x clients connected at the window's start; 0 when the scenario sends no thrusts (idle clients:
    /// sectors send a delta only when something changed, so there is no ideal).
    pub ideal_per_sec: f64,
    pub delivered_ratio: Option<f64>,
    pub tick_hz: u32,
    /// Every data message received during the window, per second.
    pub messages_per_sec: f64,
    /// Patch frames per second of the client that received the fewest (connected at the end).
    pub min_client_per_sec: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub room: u32,
    /// The room's sector (null against the floor).
    pub sector: Option<String>,
    /// Clients of the room connected at the window's end.
    pub clients: u32,
    /// Patch frames per second per client of the room (its sector's delivered tick rate).
    pub per_client_per_sec: Option<f64>,
    /// The room's slowest client.
    pub min_client_per_sec: Option<f64>,
    /// The lowest time dilation factor in force during the window, as the room's decoders were told (1: none).
    pub dilation_min: f64,
    /// The factor in force at the window's end.
    pub dilation_last: f64,
    /// `time_dilation` messages the room's decoders received over the run.
    pub dilation_messages: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bytes {
    pub payload_per_sec: f64,
    pub wire_per_sec: f64,
    /// Per client connected at the window's start.
    pub payload_per_client_per_sec: f64,
    pub wire_per_client_per_sec: f64,
    /// Mean payload of a delta frame, from decoders.
    pub mean_delta_payload_bytes: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rtt {
    /// Thrust inputs decoders sent in the window.
    pub measured_inputs: u64,
    pub samples: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    /// Measured inputs not seen 1 s after the window.
    pub unresolved: u64,
    pub unresolved_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Errors {
    /// `error` frames decoders received during the window, by code.
    pub window_by_code: BTreeMap<String, u64>,
    pub window_total: u64,
    /// The same over the whole run.
    pub run_by_code: BTreeMap<String, u64>,
    pub join_failures_by_kind: BTreeMap<String, u64>,
    pub disconnects_by_kind: BTreeMap<String, u64>,
    /// Load-generator-side oddities (undecodable frames, timeouts), by kind.
    pub client_anomalies: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stream {
    /// Deltas (decoders, window) whose seq was not the previous + 1.
    pub seq_gaps: u64,
    /// Keyframes decoders received during the window after their first one.
    pub keyframes: u64,
    /// WebSocket pings answered over the run.
    pub pings: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerMetrics {
    pub tick_p99_ms: Option<f64>,
    pub tick_p50_ms: Option<f64>,
    /// Upper bound of the histogram bucket holding the tick-interval p99 (null if in +Inf).
    pub tick_interval_p99_le_ms: Option<f64>,
    pub ticks: Option<f64>,
    pub tick_overruns: Option<f64>,
    pub tick_overrun_ratio: Option<f64>,
    pub deltas_dropped: Option<f64>,
    pub commands: Option<f64>,
    pub commands_per_sec: Option<f64>,
    pub delta_frames_sent: Option<f64>,
    pub delta_frames_sent_per_sec: Option<f64>,
    pub keyframes_sent: Option<f64>,
    pub bytes_sent_per_sec: Option<f64>,
    pub slow_consumers_closed: Option<f64>,
    pub rate_limited: Option<f64>,
    /// Liveness pings the server sent (`orrery_ws_pings_sent_total`) and sessions it ended for silence
    /// (`orrery_ws_timeouts_total`).
    pub ws_pings_sent: Option<f64>,
    pub ws_pings_sent_per_sec: Option<f64>,
    pub ws_timeouts: Option<f64>,
    /// Timer ticks that dilated sectors skipped (`orrery_dilated_ticks_total`).
    pub dilated_ticks: Option<f64>,
    /// Dilated sectors and the lowest factor at the window's end (gauges; null when the server has none yet).
    pub dilated_sectors: Option<f64>,
    pub time_dilation_min: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// Percent of one core (100 = one core busy), over the window.
    pub server_pct: Option<f64>,
    pub loadgen_pct: Option<f64>,
    /// Whole machine busy time, percent of one core (up to 100 x cores).
    pub machine_pct: Option<f64>,
    /// Machine minus server minus load generator.
    pub other_pct: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_hwm_mib: Option<f64>,
    /// Server CPU time per patch frame delivered to a client, microseconds.
    pub server_us_per_delivered_frame: Option<f64>,
    /// Load generator at or above 90 % of its core: the figures may show its limit, not the server's.
    pub loadgen_bound: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SloResult {
    pub passed: bool,
    pub checks: Vec<SloCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloCheck {
    pub name: &'static str,
    pub threshold: f64,
    pub value: Option<f64>,
    /// "pass", "fail" or "skipped".
    pub status: &'static str,
}

/// What the SLOs are checked against.
#[derive(Debug, Clone, Copy, Default)]
pub struct SloInputs {
    pub delivered_ratio: Option<f64>,
    pub rtt_p99_ms: Option<f64>,
    pub unresolved_ratio: Option<f64>,
    pub tick_overrun_ratio: Option<f64>,
    pub errors: u64,
    pub failed_clients: u64,
    /// Against the floor server: RTT and server-metric objectives are skipped.
    pub floor: bool,
    /// The clients send no thrusts (idle clients): delivery, RTT and unresolved-input objectives are skipped
    /// (nothing moves, so there is no ideal frame rate and no round trip to measure).
    pub idle: bool,
}

/// Checks every objective that is set. A value that could not be measured fails its objective.
pub fn evaluate(slo: &Slo, m: &SloInputs) -> SloResult {
    let mut checks = Vec::new();
    let mut check = |name: &'static str, threshold: Option<f64>, value: Option<f64>, min: bool, skip: bool| {
        let Some(threshold) = threshold else { return };
        let status = if skip {
            "skipped"
        } else {
            match value {
                Some(v) if (min && v >= threshold) || (!min && v <= threshold) => "pass",
                _ => "fail",
            }
        };
        checks.push(SloCheck {
            name,
            threshold,
            value,
            status,
        });
    };
    check(
        "min_delivered_ratio",
        slo.min_delivered_ratio,
        m.delivered_ratio,
        true,
        m.idle,
    );
    check(
        "max_rtt_p99_ms",
        slo.max_rtt_p99_ms,
        m.rtt_p99_ms,
        false,
        m.floor || m.idle,
    );
    check(
        "max_unresolved_ratio",
        slo.max_unresolved_ratio,
        m.unresolved_ratio,
        false,
        m.floor || m.idle,
    );
    check(
        "max_tick_overrun_ratio",
        slo.max_tick_overrun_ratio,
        m.tick_overrun_ratio,
        false,
        m.floor,
    );
    check(
        "max_errors",
        slo.max_errors.map(|v| v as f64),
        Some(m.errors as f64),
        false,
        m.floor,
    );
    check(
        "max_failed_clients",
        slo.max_failed_clients.map(|v| v as f64),
        Some(m.failed_clients as f64),
        false,
        false,
    );
    SloResult {
        passed: checks.iter().all(|c| c.status != "fail"),
        checks,
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Whether the clients are idle: against the server with no thrusts, nothing moves, so sectors send deltas only
/// when something else changes (a join, a chat line) and there is neither an ideal frame rate nor a round trip.
pub fn idle_clients(s: &Scenario, floor: bool) -> bool {
    !floor && s.thrust_hz == 0.0
}

/// The ideal patch frames per second (tick_hz x clients, 0 for idle clients) and the delivered ratio (None when
/// there is no ideal).
fn delivery(idle: bool, tick_hz: u32, clients: f64, frames: u64, secs: f64) -> (f64, Option<f64>) {
    if idle {
        return (0.0, None);
    }
    let ideal = f64::from(tick_hz) * clients;
    (ideal, ratio(frames as f64, ideal * secs))
}

/// Builds the report from what was measured.
pub fn build(m: &Measured) -> Report {
    let s = &m.opts.scenario;
    let secs = m.window_secs.max(1e-9);
    let c = &m.counts;
    let n = f64::from(m.alive_at_window_start);
    let shared = &m.shared;
    let failed_to_join: u64 = shared.join_failures.borrow().values().sum();
    let lost = shared.lost_before_window_end.get();
    let idle = idle_clients(s, m.opts.floor);
    let (ideal_frames, delivered_ratio) = delivery(idle, m.tick_hz, n, c.patch_frames, secs);
    let rtt = m.rtt.summary();
    let measured_inputs = m.rtt.len() + m.unresolved;
    let unresolved_ratio = ratio(m.unresolved as f64, measured_inputs as f64);
    let server_metrics = m.metrics.as_ref().map(|(a, b)| {
        let d = |name: &str| counter_delta(a, b, name);
        let ms = |name: &str, q: f64| histogram_quantile(a, b, name, q).map(|v| v * 1000.0);
        let ticks = d("orrery_ticks_total");
        let overruns = d("orrery_tick_overruns_total");
        ServerMetrics {
            tick_p99_ms: ms("orrery_tick_duration_seconds", 0.99),
            tick_p50_ms: ms("orrery_tick_duration_seconds", 0.50),
            tick_interval_p99_le_ms: histogram_quantile_bound(a, b, "orrery_tick_interval_seconds", 0.99)
                .filter(|v| v.is_finite())
                .map(|v| v * 1000.0),
            ticks,
            tick_overruns: overruns,
            tick_overrun_ratio: match (overruns, ticks) {
                (Some(o), Some(t)) => ratio(o, t),
                _ => None,
            },
            deltas_dropped: d("orrery_deltas_dropped_total"),
            commands: d("orrery_commands_total"),
            commands_per_sec: d("orrery_commands_total").map(|v| v / secs),
            delta_frames_sent: d("orrery_delta_frames_sent_total"),
            delta_frames_sent_per_sec: d("orrery_delta_frames_sent_total").map(|v| v / secs),
            keyframes_sent: d("orrery_keyframes_sent_total"),
            bytes_sent_per_sec: d("orrery_bytes_sent_total").map(|v| v / secs),
            slow_consumers_closed: d("orrery_slow_consumers_closed_total"),
            rate_limited: d("orrery_rate_limited_total"),
            ws_pings_sent: d("orrery_ws_pings_sent_total"),
            ws_pings_sent_per_sec: d("orrery_ws_pings_sent_total").map(|v| v / secs),
            ws_timeouts: d("orrery_ws_timeouts_total"),
            dilated_ticks: d("orrery_dilated_ticks_total"),
            dilated_sectors: b.sum("orrery_dilated_sectors"),
            time_dilation_min: b.sum("orrery_time_dilation_min"),
        }
    });
    let mib = |kib: Option<u64>| kib.map(|k| k as f64 / 1024.0);
    let server_cpu_us = m.cpu.server_pct.map(|p| p / 100.0 * secs * 1e6);
    let errors_window = shared.errors_window.borrow().clone();
    let window_total: u64 = errors_window.values().sum();
    let slo_inputs = SloInputs {
        delivered_ratio,
        rtt_p99_ms: rtt.map(|r| r.p99_ms),
        unresolved_ratio,
        tick_overrun_ratio: server_metrics.as_ref().and_then(|sm| sm.tick_overrun_ratio),
        errors: window_total,
        failed_clients: failed_to_join + lost,
        floor: m.opts.floor,
        idle,
    };
    Report {
        schema: SCHEMA,
        mode: match (m.opts.floor, m.opts.floor_inputs) {
            (true, true) => "floor+inputs",
            (true, false) => "floor",
            _ => "server",
        },
        server: m.opts.server.clone(),
        scenario: s.clone(),
        window_secs: m.window_secs,
        join_secs: m.join_secs,
        machine_idle_before: m.machine_idle_before,
        clients: Clients {
            planned: m.planned,
            decoders: m.decoders,
            joined: m.joined,
            failed_to_join,
            lost_before_window_end: lost,
            failed: failed_to_join + lost,
            connected_at_window_start: m.alive_at_window_start,
            connected_at_window_end: m.alive_at_window_end,
        },
        join_latency_ms: m.join_latency.summary(),
        inputs: Inputs {
            sent: c.inputs,
            per_sec: c.inputs as f64 / secs,
            ideal_per_sec: if m.opts.floor { 0.0 } else { s.thrust_hz * n },
            chats_sent: c.chats,
            warps_sent: c.warps,
            trades_sent: c.trades,
        },
        frames: Frames {
            patch_frames: c.patch_frames,
            per_sec: c.patch_frames as f64 / secs,
            ideal_per_sec: ideal_frames,
            delivered_ratio,
            tick_hz: m.tick_hz,
            messages_per_sec: c.messages as f64 / secs,
            min_client_per_sec: m.min_client_frames.map(|f| f as f64 / secs),
        },
        rooms: m
            .rooms
            .iter()
            .enumerate()
            .map(|(i, room)| Room {
                room: i as u32,
                sector: room.sector.map(|s| s.to_string()),
                clients: room.clients,
                per_client_per_sec: ratio(room.patch_frames as f64, f64::from(room.clients) * secs),
                min_client_per_sec: room.min_client_frames.map(|f| f as f64 / secs),
                dilation_min: room.dilation.window_min,
                dilation_last: room.dilation.last,
                dilation_messages: room.dilation.messages,
            })
            .collect(),
        bytes: Bytes {
            payload_per_sec: c.payload_bytes as f64 / secs,
            wire_per_sec: c.wire_bytes as f64 / secs,
            payload_per_client_per_sec: ratio(c.payload_bytes as f64, n * secs).unwrap_or(0.0),
            wire_per_client_per_sec: ratio(c.wire_bytes as f64, n * secs).unwrap_or(0.0),
            mean_delta_payload_bytes: ratio(c.delta_payload_bytes as f64, c.delta_frames as f64),
        },
        rtt: Rtt {
            measured_inputs,
            samples: m.rtt.len(),
            p50_ms: rtt.map(|r| r.p50_ms),
            p90_ms: rtt.map(|r| r.p90_ms),
            p99_ms: rtt.map(|r| r.p99_ms),
            max_ms: rtt.map(|r| r.max_ms),
            mean_ms: rtt.map(|r| r.mean_ms),
            unresolved: m.unresolved,
            unresolved_ratio,
        },
        warp_latency_ms: (s.warp_hz > 0.0).then(|| m.warp_latency.summary()).flatten(),
        trade_latency_ms: (s.trade_hz > 0.0).then(|| m.trade_latency.summary()).flatten(),
        errors: Errors {
            window_by_code: errors_window,
            window_total,
            run_by_code: shared.errors_total.borrow().clone(),
            join_failures_by_kind: shared.join_failures.borrow().clone(),
            disconnects_by_kind: shared.disconnects.borrow().clone(),
            client_anomalies: shared.anomalies.borrow().clone(),
        },
        stream: Stream {
            seq_gaps: c.seq_gaps,
            keyframes: c.keyframes,
            pings: shared.totals.pings.get(),
        },
        server_metrics,
        cpu: Cpu {
            server_pct: m.cpu.server_pct,
            loadgen_pct: m.cpu.loadgen_pct,
            machine_pct: m.cpu.machine_pct,
            other_pct: m.cpu.other_pct,
            server_rss_mib: mib(m.server_memory_kib.0),
            server_hwm_mib: mib(m.server_memory_kib.1),
            server_us_per_delivered_frame: server_cpu_us.and_then(|us| ratio(us, c.patch_frames as f64)),
            loadgen_bound: m.cpu.loadgen_pct.is_some_and(|p| p >= LOADGEN_BOUND_PCT),
        },
        slo: evaluate(&s.slo, &slo_inputs),
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

fn thousands(v: f64) -> String {
    let neg = v < 0.0;
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

fn map_line(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        "none".to_owned()
    } else {
        m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    }
}

fn latency_line(l: &LatencySummary) -> String {
    format!(
        "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  ({} samples)",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.samples
    )
}

/// The human summary.
pub fn write_human(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    let s = &r.scenario;
    let enc = match s.encoding {
        crate::scenario::EncodingName::Binary => "binary",
        crate::scenario::EncodingName::Json => "json",
    };
    writeln!(out)?;
    writeln!(
        out,
        "orrery loadtest: {} ({}, {} rooms x {} clients{}, {} decoders) against {}{}",
        s.name,
        enc,
        s.rooms,
        s.clients_per_room,
        if s.room_clients.is_empty() {
            String::new()
        } else {
            format!(" but the first {:?}", s.room_clients)
        },
        r.clients.decoders,
        r.server,
        if r.mode == "floor" { " [fan-out floor]" } else { "" }
    )?;
    writeln!(
        out,
        "window {:.2} s after {} s warm-up; joins took {:.1} s{}",
        r.window_secs,
        s.warmup_secs,
        r.join_secs,
        r.join_latency_ms
            .map(|j| format!(" (join p50 {:.0} ms, p99 {:.0} ms)", j.p50_ms, j.p99_ms))
            .unwrap_or_default()
    )?;
    let row = |out: &mut dyn Write, k: &str, v: String| writeln!(out, "  {k:<22} {v}");
    row(
        out,
        "clients",
        format!(
            "{} of {} connected at window start ({} at end); failed {} (join {}, lost {})",
            r.clients.connected_at_window_start,
            r.clients.planned,
            r.clients.connected_at_window_end,
            r.clients.failed,
            r.clients.failed_to_join,
            r.clients.lost_before_window_end
        ),
    )?;
    if r.mode == "server" {
        let processed = r
            .server_metrics
            .as_ref()
            .and_then(|m| m.commands_per_sec)
            .map(|v| format!(", server processed {}/s", thousands(v)))
            .unwrap_or_default();
        row(
            out,
            "inputs",
            format!(
                "{}/s sent (ideal {}/s){processed}",
                thousands(r.inputs.per_sec),
                thousands(r.inputs.ideal_per_sec)
            ),
        )?;
        if r.inputs.chats_sent + r.inputs.warps_sent + r.inputs.trades_sent > 0 {
            row(
                out,
                "other requests",
                format!(
                    "chat {}, warp {}, trade {} (in the window)",
                    r.inputs.chats_sent, r.inputs.warps_sent, r.inputs.trades_sent
                ),
            )?;
        }
    }
    let sent = r
        .server_metrics
        .as_ref()
        .and_then(|m| m.delta_frames_sent_per_sec)
        .map(|v| format!("; server sent {}/s", thousands(v)))
        .unwrap_or_default();
    let patch_frames = if r.mode == "server" && idle_clients(s, false) {
        format!(
            "{}/s received{sent}; no ideal (no thrusts: sectors send a delta only when something changed)",
            thousands(r.frames.per_sec)
        )
    } else {
        format!(
            "{}/s received of ideal {}/s ({} %){sent}; slowest client {}/s",
            thousands(r.frames.per_sec),
            thousands(r.frames.ideal_per_sec),
            opt(r.frames.delivered_ratio.map(|v| v * 100.0), 2),
            opt(r.frames.min_client_per_sec, 1)
        )
    };
    row(out, "patch frames", patch_frames)?;
    // Per room, when the rooms differ in size or some sector was dilated (otherwise the line above says it all).
    if s.uneven() || r.rooms.iter().any(|room| room.dilation_min < 1.0) {
        for room in &r.rooms {
            row(
                out,
                &format!("room {}", room.room),
                format!(
                    "{} clients: {}/s per client (slowest {}/s); time dilation {}",
                    room.clients,
                    opt(room.per_client_per_sec, 2),
                    opt(room.min_client_per_sec, 2),
                    if room.dilation_messages == 0 {
                        "none".to_owned()
                    } else {
                        format!(
                            "min {:.2}, at end {:.2} ({} messages)",
                            room.dilation_min, room.dilation_last, room.dilation_messages
                        )
                    }
                ),
            )?;
        }
    }
    row(
        out,
        "bytes / client / s",
        format!(
            "payload {}, wire {}; mean delta payload {} B",
            thousands(r.bytes.payload_per_client_per_sec),
            thousands(r.bytes.wire_per_client_per_sec),
            opt(r.bytes.mean_delta_payload_bytes, 0)
        ),
    )?;
    if r.mode == "server" {
        let rtt = match (r.rtt.p50_ms, r.rtt.p90_ms, r.rtt.p99_ms, r.rtt.max_ms) {
            (Some(a), Some(b), Some(c), Some(d)) => {
                format!(
                    "p50 {a:.1}  p90 {b:.1}  p99 {c:.1}  max {d:.1}  ({} samples",
                    r.rtt.samples
                )
            }
            _ if r.rtt.measured_inputs == 0 => "no samples (no thrust inputs measured".to_owned(),
            _ => "no samples (".to_owned(),
        };
        let rtt = if rtt.ends_with('(') {
            format!("{rtt}{} unresolved)", r.rtt.unresolved)
        } else {
            format!("{rtt}, {} unresolved)", r.rtt.unresolved)
        };
        row(out, "input RTT ms", rtt)?;
        if let Some(l) = &r.warp_latency_ms {
            row(out, "warp handoff ms", latency_line(l))?;
        }
        if let Some(l) = &r.trade_latency_ms {
            row(out, "trade round trip ms", latency_line(l))?;
        }
        row(
            out,
            "stream",
            format!(
                "seq gaps {}, keyframes after join {}",
                r.stream.seq_gaps, r.stream.keyframes
            ),
        )?;
    }
    if let Some(m) = &r.server_metrics {
        row(
            out,
            "server tick",
            format!(
                "duration p50 {} ms, p99 {} ms; interval p99 <= {} ms; overruns {} / {} ticks ({} %)",
                opt(m.tick_p50_ms, 2),
                opt(m.tick_p99_ms, 2),
                opt(m.tick_interval_p99_le_ms, 0),
                opt(m.tick_overruns, 0),
                opt(m.ticks, 0),
                opt(m.tick_overrun_ratio.map(|v| v * 100.0), 3)
            ),
        )?;
        if m.dilated_ticks.is_some_and(|t| t > 0.0) || m.dilated_sectors.is_some_and(|n| n > 0.0) {
            row(
                out,
                "server dilation",
                format!(
                    "timer ticks skipped {}; at the end {} sector(s) dilated, lowest factor {}",
                    opt(m.dilated_ticks, 0),
                    opt(m.dilated_sectors, 0),
                    opt(m.time_dilation_min, 2)
                ),
            )?;
        }
        row(
            out,
            "server drops",
            format!(
                "deltas dropped {}, keyframes sent {}, slow consumers closed {}, rate limited {}",
                opt(m.deltas_dropped, 0),
                opt(m.keyframes_sent, 0),
                opt(m.slow_consumers_closed, 0),
                opt(m.rate_limited, 0)
            ),
        )?;
        row(
            out,
            "server liveness",
            format!(
                "pings sent {} ({}/s), sessions timed out {}; pings answered by the clients over the run {}",
                opt(m.ws_pings_sent, 0),
                opt(m.ws_pings_sent_per_sec, 1),
                opt(m.ws_timeouts, 0),
                r.stream.pings
            ),
        )?;
    } else if r.mode == "server" {
        row(
            out,
            "server metrics",
            "unavailable (/metrics could not be scraped)".to_owned(),
        )?;
    }
    row(
        out,
        "CPU % of one core",
        format!(
            "server {} (RSS {} MiB, peak {} MiB), load generator {}{}, other {}",
            opt(r.cpu.server_pct, 1),
            opt(r.cpu.server_rss_mib, 0),
            opt(r.cpu.server_hwm_mib, 0),
            opt(r.cpu.loadgen_pct, 1),
            if r.cpu.loadgen_bound {
                " [LOAD-GENERATOR-BOUND]"
            } else {
                ""
            },
            opt(r.cpu.other_pct, 1)
        ),
    )?;
    row(
        out,
        "server CPU / frame",
        format!(
            "{} µs per delivered patch frame",
            opt(r.cpu.server_us_per_delivered_frame, 2)
        ),
    )?;
    row(
        out,
        "errors",
        format!(
            "window: {}; join failures: {}; disconnects: {}{}",
            map_line(&r.errors.window_by_code),
            map_line(&r.errors.join_failures_by_kind),
            map_line(&r.errors.disconnects_by_kind),
            if r.errors.client_anomalies.is_empty() {
                String::new()
            } else {
                format!("; load generator: {}", map_line(&r.errors.client_anomalies))
            }
        ),
    )?;
    if r.machine_idle_before == Some(false) {
        row(out, "note", "the machine was not idle before the run".to_owned())?;
    }
    if r.slo.checks.is_empty() {
        row(out, "SLO", "none set".to_owned())?;
    } else {
        row(out, "SLO", if r.slo.passed { "PASS" } else { "FAIL" }.to_owned())?;
        for c in &r.slo.checks {
            writeln!(
                out,
                "    {:<6} {:<24} threshold {:<10} measured {}",
                c.status,
                c.name,
                c.threshold,
                opt(c.value, 4)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> SloInputs {
        SloInputs {
            delivered_ratio: Some(0.999),
            rtt_p99_ms: Some(50.0),
            unresolved_ratio: Some(0.0),
            tick_overrun_ratio: Some(0.0005),
            errors: 0,
            failed_clients: 0,
            floor: false,
            idle: false,
        }
    }

    #[test]
    fn no_objectives_pass() {
        let r = evaluate(&Slo::default(), &inputs());
        assert!(r.passed);
        assert!(r.checks.is_empty());
    }

    #[test]
    fn each_objective_compares_the_right_way() {
        let slo = Slo {
            min_delivered_ratio: Some(0.995),
            max_rtt_p99_ms: Some(60.0),
            max_unresolved_ratio: Some(0.01),
            max_tick_overrun_ratio: Some(0.001),
            max_errors: Some(0),
            max_failed_clients: Some(0),
        };
        let r = evaluate(&slo, &inputs());
        assert!(r.passed, "{r:?}");
        assert_eq!(r.checks.len(), 6);

        let mut bad = inputs();
        bad.delivered_ratio = Some(0.99);
        bad.rtt_p99_ms = Some(60.5);
        let r = evaluate(&slo, &bad);
        assert!(!r.passed);
        let failed: Vec<_> = r.checks.iter().filter(|c| c.status == "fail").map(|c| c.name).collect();
        assert_eq!(failed, vec!["min_delivered_ratio", "max_rtt_p99_ms"]);

        let mut edge = inputs();
        edge.rtt_p99_ms = Some(60.0);
        edge.delivered_ratio = Some(0.995);
        assert!(evaluate(&slo, &edge).passed, "thresholds are inclusive");

        let mut errs = inputs();
        errs.errors = 1;
        errs.failed_clients = 2;
        let failed: Vec<_> = evaluate(&slo, &errs)
            .checks
            .into_iter()
            .filter(|c| c.status == "fail")
            .map(|c| c.name)
            .collect();
        assert_eq!(failed, vec!["max_errors", "max_failed_clients"]);
    }

    #[test]
    fn unmeasured_values_fail_and_floor_skips_server_objectives() {
        let slo = Slo {
            min_delivered_ratio: Some(0.99),
            max_rtt_p99_ms: Some(60.0),
            max_tick_overrun_ratio: Some(0.001),
            ..Slo::default()
        };
        let mut m = inputs();
        m.rtt_p99_ms = None;
        m.tick_overrun_ratio = None;
        let r = evaluate(&slo, &m);
        assert!(!r.passed);
        assert_eq!(r.checks.iter().filter(|c| c.status == "fail").count(), 2);

        m.floor = true;
        let r = evaluate(&slo, &m);
        assert!(r.passed, "{r:?}");
        let skipped = skipped(&r);
        assert_eq!(skipped, vec!["max_rtt_p99_ms", "max_tick_overrun_ratio"]);
        m.delivered_ratio = Some(0.5);
        assert!(!evaluate(&slo, &m).passed, "delivery still counts against the floor");
    }

    /// The names of the objectives a result skipped.
    fn skipped(r: &SloResult) -> Vec<&'static str> {
        r.checks
            .iter()
            .filter(|c| c.status == "skipped")
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn idle_clients_skip_delivery_and_round_trips_but_not_health() {
        let slo = Slo {
            min_delivered_ratio: Some(0.99),
            max_rtt_p99_ms: Some(60.0),
            max_unresolved_ratio: Some(0.01),
            max_tick_overrun_ratio: Some(0.001),
            max_errors: Some(0),
            max_failed_clients: Some(0),
        };
        // What an idle run measures: no frames (so no ratio), no inputs (so no round trip, no unresolved ratio).
        let (ideal, delivered) = delivery(true, 20, 19_000.0, 0, 60.0);
        assert_eq!((ideal, delivered), (0.0, None), "no ideal and no division by zero");
        let mut m = SloInputs {
            delivered_ratio: delivered,
            rtt_p99_ms: None,
            unresolved_ratio: ratio(0.0, 0.0),
            tick_overrun_ratio: Some(0.0),
            errors: 0,
            failed_clients: 0,
            floor: false,
            idle: true,
        };
        let r = evaluate(&slo, &m);
        assert!(r.passed, "{r:?}");
        let skipped = skipped(&r);
        assert_eq!(
            skipped,
            vec!["min_delivered_ratio", "max_rtt_p99_ms", "max_unresolved_ratio"]
        );
        m.failed_clients = 1;
        m.errors = 2;
        m.tick_overrun_ratio = None;
        let failed: Vec<_> = evaluate(&slo, &m)
            .checks
            .into_iter()
            .filter(|c| c.status == "fail")
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            vec!["max_tick_overrun_ratio", "max_errors", "max_failed_clients"],
            "idle clients still answer for their health and the server's ticks"
        );
        // With thrusts the ideal is there again.
        let (ideal, delivered) = delivery(false, 20, 100.0, 59_900, 30.0);
        assert_eq!(ideal, 2_000.0);
        assert!((delivered.unwrap() - 0.998_333).abs() < 1e-6);
        let scenario = |thrust: &str| {
            Scenario::parse(&format!("name = \"x\"\nrooms = 1\nclients_per_room = 1\n{thrust}")).unwrap()
        };
        assert!(idle_clients(&scenario("thrust_hz = 0\n"), false));
        assert!(
            !idle_clients(&scenario("thrust_hz = 0\n"), true),
            "the floor has its own rules"
        );
        assert!(!idle_clients(&scenario(""), false));
    }

    #[test]
    fn number_formatting() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(opt(None, 2), "-");
        assert_eq!(opt(Some(1.234), 1), "1.2");
    }
}
