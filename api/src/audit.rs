//! The audit trail of admin actions: every control is recorded (who, what, target, parameters) before it takes
//! effect, and its result after; `GET /v1/admin/audit` reads it back.
//!
//! Handlers wrap each control in [`run`]; nothing else writes the audit log. The log is append-only: one row per
//! action written before it runs (`audit_log`), one per result written after (`audit_results`), neither ever updated
//! or deleted (the database refuses it). An action whose process died in between reads back as `"unknown"`.

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::Json;
use orrery_actors::store::{now_millis, AuditEntry, AuditOutcome, AuditQuery, AuditRecord};
use orrery_engine::Game;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::access::{Operator, Principal};
use crate::error::ApiError;
use crate::paging::{self, cursor, parse_cursor};
use crate::server::Peer;
use crate::App;

/// Records `action` on `target` by `who` with `params`, then runs `act`, then records its result. If the record
/// cannot be written the action does not run (`503 storage_unavailable`).
pub async fn run<G, F, Fut>(
    app: &App<G>,
    who: &Principal,
    action: &'static str,
    target: Option<String>,
    params: Value,
    act: F,
) -> Result<Value, ApiError>
where
    G: Game,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let record = AuditRecord {
        id: Uuid::new_v4(),
        at: now_millis(),
        actor: who.audit_name(),
        action: action.to_owned(),
        target,
        params: params.to_string(),
    };
    if let Err(e) = app.node.store.audit_begin(&record).await {
        metrics::counter!("orrery_audit_write_failures_total", "stage" => "before").increment(1);
        tracing::warn!(error = %e, action, actor = %record.actor, "audit log not writable: admin action refused");
        return Err(ApiError::AuditUnavailable(action));
    }
    tracing::info!(id = %record.id, actor = %record.actor, action, target = ?record.target, %params, "admin action");
    let result = act().await;
    let (ok, answer) = match &result {
        Ok(v) => (true, v.clone()),
        Err(e) => {
            let (status, code) = e.status_and_code();
            (
                false,
                json!({"status": status.as_u16(), "code": code, "message": e.to_string()}),
            )
        }
    };
    let outcome = AuditOutcome {
        id: record.id,
        at: now_millis(),
        ok,
        result: answer.to_string(),
    };
    if let Err(e) = app.node.store.audit_end(&outcome).await {
        // The action ran: its answer stands, and the log shows it as `unknown`.
        metrics::counter!("orrery_audit_write_failures_total", "stage" => "after").increment(1);
        tracing::warn!(error = %e, id = %record.id, action, "audit result not written (reads as unknown)");
    }
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.status_and_code().1,
    };
    metrics::counter!("orrery_admin_actions_total", "action" => action, "outcome" => outcome).increment(1);
    tracing::info!(id = %record.id, action, ok, "admin action done");
    result
}

/// The query of `GET /v1/admin/audit`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Entries per page (1 to 200, default 50).
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub before: Option<String>,
    /// Exact actor: `account:<uuid>` or `token:<name>`.
    pub actor: Option<String>,
    /// Exact action (`region.stop`), or a prefix ending in `*` (`region.*`).
    pub action: Option<String>,
    /// Exact target (a region's or sector's id, ...).
    pub target: Option<String>,
    /// At or after: milliseconds since the Unix epoch, or RFC 3339 (`2026-12-01T08:00:00Z`).
    pub since: Option<String>,
    /// At or before: milliseconds since the Unix epoch, or RFC 3339.
    pub until: Option<String>,
}

/// The result of an audited action.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It ran and answered `answer`.
    Ok,
    /// It was refused or failed with `error`.
    Error,
    /// No result was recorded: the action is running, or the server stopped before it finished.
    Unknown,
}

/// One admin action in the audit log.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditLogEntry {
    pub id: Uuid,
    /// When it was recorded (before it ran), in milliseconds since the Unix epoch.
    pub at: i64,
    /// The same instant in RFC 3339 (UTC).
    pub time: String,
    /// `account:<uuid>` or `token:<name>`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    #[schema(value_type = Object)]
    pub params: Value,
    pub result: Outcome,
    /// When the result was recorded (ms since the epoch).
    pub done_at: Option<i64>,
    /// The answer of an action that ran.
    #[schema(value_type = Option<Object>)]
    pub answer: Option<Value>,
    /// `{"status", "code", "message"}` of an action that was refused or failed.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditLogEntry>,
    /// Pass as `?before=` for the next (older) page; `null` on the last page.
    pub next: Option<String>,
}

/// A time given as milliseconds since the epoch or as RFC 3339.
fn parse_time(param: &str, raw: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    rfc3339_millis(raw).ok_or_else(|| {
        ApiError::BadRequest(
            "invalid_time",
            format!(
                "query parameter `{param}`: {raw:?} is neither milliseconds since the Unix epoch nor an RFC 3339 time \
                 such as 2026-12-01T08:00:00Z"
            ),
        )
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]` into milliseconds since the epoch.
pub fn rfc3339_millis(raw: &str) -> Option<i64> {
    let b = raw.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = raw.get(from..from + len)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, s) = (
        num(0, 4)?,
        num(5, 2)?,
        num(8, 2)?,
        num(11, 2)?,
        num(14, 2)?,
        num(17, 2)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &raw[start..i.min(start + 3)];
        ms = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
    }
    let offset = match &raw[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(tz.as_bytes()[0], b'+' | b'-') && tz.as_bytes()[3] == b':' => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (num(i + 1, 2)? * 60 + num(i + 4, 2)?)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi - offset) * 60_000 + s * 1000 + ms)
}

/// Milliseconds since the epoch as RFC 3339 in UTC, with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Checks the query of `GET /v1/admin/audit`.
pub fn parse_params(query: Result<Query<AuditParams>, QueryRejection>) -> Result<AuditQuery, ApiError> {
    let Query(q) = query.map_err(crate::body::query_error)?;
    let limit = paging::limit(q.limit, "entries")?;
    let non_empty = |param: &str, v: Option<String>| match v {
        Some(v) if v.trim().is_empty() => Err(ApiError::BadRequest(
            "invalid_query",
            format!("query parameter `{param}`: empty; leave it out to match any"),
        )),
        other => Ok(other),
    };
    let (action, action_prefix) = match non_empty("action", q.action)? {
        Some(a) => match a.strip_suffix('*') {
            Some(prefix) => (None, Some(prefix.to_owned())),
            None => (Some(a), None),
        },
        None => (None, None),
    };
    let since = q.since.as_deref().map(|s| parse_time("since", s)).transpose()?;
    let until = q.until.as_deref().map(|s| parse_time("until", s)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::BadRequest(
                "invalid_time",
                format!("query parameters `since` ({s}) and `until` ({u}): since is after until"),
            ));
        }
    }
    Ok(AuditQuery {
        before: q.before.as_deref().map(parse_cursor).transpose()?,
        limit,
        actor: non_empty("actor", q.actor)?,
        action,
        action_prefix,
        target: non_empty("target", q.target)?,
        since,
        until,
    })
}

fn entry(e: AuditEntry) -> AuditLogEntry {
    let r = e.record;
    let params = serde_json::from_str(&r.params).unwrap_or(Value::String(r.params));
    let (result, done_at, answer, error) = match e.outcome {
        None => (Outcome::Unknown, None, None, None),
        Some(o) => {
            let v: Value = serde_json::from_str(&o.result).unwrap_or(Value::String(o.result));
            if o.ok {
                (Outcome::Ok, Some(o.at), Some(v), None)
            } else {
                (Outcome::Error, Some(o.at), None, Some(v))
            }
        }
    };
    AuditLogEntry {
        id: r.id,
        at: r.at,
        time: rfc3339(r.at),
        actor: r.actor,
        action: r.action,
        target: r.target,
        params,
        result,
        done_at,
        answer,
        error,
    }
}

/// `GET /v1/admin/audit`: the audit log, newest first, paged and filtered (`admin` or `operator`).
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    params(AuditParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the audit log, newest first", body = AuditPage),
        (status = 400, description = "A bad filter, limit or cursor (the message names it)", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "The caller is neither `admin` nor `operator`", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many reads from this address", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn list<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    Operator(_): Operator,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    app.audit_limiter.check(peer.ip(), "audit")?;
    let query = parse_params(query)?;
    let entries: Vec<AuditLogEntry> = app.node.store.audit_log(&query).await?.into_iter().map(entry).collect();
    let next = (entries.len() == query.limit as usize)
        .then(|| entries.last().map(|e| cursor(e.at, e.id)))
        .flatten();
    Ok(Json(AuditPage { entries, next }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_both_ways_and_round_trip() {
        assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_millis("2026-12-01T08:00:00.5Z"), Some(1_796_112_000_500));
        assert_eq!(rfc3339_millis("2026-12-01T09:00:00+01:00"), Some(1_796_112_000_000));
        assert_eq!(rfc3339(1_796_112_000_500), "2026-12-01T08:00:00.500Z");
        for bad in ["yesterday", "2026-13-01T00:00:00Z", "2026-12-01", "2026-12-01T00:00:00"] {
            assert_eq!(rfc3339_millis(bad), None, "{bad}");
        }
        assert_eq!(parse_time("since", "12").unwrap(), 12);
        let e = parse_time("since", "soon").unwrap_err().to_string();
        assert!(e.contains("`since`") && e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn filters_are_checked_and_named() {
        let q = |p: AuditParams| parse_params(Ok(Query(p)));
        let ok = q(AuditParams {
            action: Some("region.*".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (ok.action, ok.action_prefix, ok.limit),
            (None, Some("region.".into()), paging::DEFAULT_PAGE)
        );
        for (p, name) in [
            (
                AuditParams {
                    limit: Some(0),
                    ..Default::default()
                },
                "`limit`",
            ),
            (
                AuditParams {
                    before: Some("x".into()),
                    ..Default::default()
                },
                "`before`",
            ),
            (
                AuditParams {
                    actor: Some(" ".into()),
                    ..Default::default()
                },
                "`actor`",
            ),
            (
                AuditParams {
                    until: Some("nope".into()),
                    ..Default::default()
                },
                "`until`",
            ),
            (
                AuditParams {
                    since: Some("10".into()),
                    until: Some("5".into()),
                    ..Default::default()
                },
                "`since`",
            ),
        ] {
            let e = q(p).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
