//! `orrery admin ...`: the admin HTTP API from the command line, for operators and their scripts.
//!
//! Each subcommand is one request to `--server` (default `http://127.0.0.1:7700`, the address `orrery serve` listens
//! on by default) with `Authorization: Bearer <--token | ORRERY_ADMIN_TOKEN>`. The answer's JSON goes to stdout,
//! pretty-printed; a refusal goes to stderr as `error: HTTP <status>: <code>: <message>` and the exit code is 1; a
//! server that cannot be reached (or an answer that is not JSON) exits with 2.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

/// The admin API client's options.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The server's base URL.
    #[arg(long, env = "ORRERY_SERVER", default_value = "http://127.0.0.1:7700")]
    server: String,
    /// The admin token (`--admin-token` of the server) or an account's access token.
    #[arg(long, env = "ORRERY_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    #[command(subcommand)]
    command: AdminCommand,
}

/// Where a broadcast goes.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scope {
    Global,
    Region,
    Sector,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Every region, its sectors and whether it runs (GET /v1/admin/regions).
    Regions,
    /// The nodes of the cluster (GET /v1/admin/nodes).
    Nodes,
    /// The supervision tree and its restart history, newest first (GET /v1/admin/supervision).
    Supervision,
    /// Sectors, optionally of one region (GET /v1/admin/sectors[?region=]).
    Sectors {
        #[arg(long)]
        region: Option<String>,
    },
    /// One sector (GET /v1/admin/sectors/{id}).
    Sector { id: String },
    /// Sessions, optionally matching a query (GET /v1/admin/sessions[?q=]).
    Sessions { query: Option<String> },
    /// Pause a sector (POST /v1/admin/sectors/{id}/pause).
    Pause { sector: String },
    /// Resume a paused sector (POST /v1/admin/sectors/{id}/resume).
    Resume { sector: String },
    /// Restart a sector from its last state (POST /v1/admin/sectors/{id}/restart).
    Restart { sector: String },
    /// Pause every sector of a region (POST /v1/admin/regions/{id}/pause).
    PauseRegion { region: String },
    /// Resume a paused region (POST /v1/admin/regions/{id}/resume).
    ResumeRegion { region: String },
    /// Stop a region's supervisor and sectors (POST /v1/admin/regions/{id}/stop).
    StopRegion { region: String },
    /// Start a stopped region (POST /v1/admin/regions/{id}/start).
    StartRegion { region: String },
    /// Set a region's tick rate (POST /v1/admin/regions/{id}/tick-rate {"hz"}).
    TickRate { region: String, hz: f64 },
    /// Disconnect a character's session (POST /v1/admin/kick {"character", "reason"}).
    Kick {
        character: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send a message to players (POST /v1/admin/broadcast {"scope", "target", "text"}).
    Broadcast {
        #[arg(long, value_enum, default_value = "global")]
        scope: Scope,
        /// The region or sector (with --scope region|sector).
        #[arg(long)]
        target: Option<String>,
        text: String,
    },
    /// Snapshot every sector, or one (POST /v1/admin/snapshot, /v1/admin/sectors/{id}/snapshot).
    Snapshot {
        #[arg(long)]
        sector: Option<String>,
    },
    /// Move a character's ship to a sector (POST /v1/admin/teleport {"character", "sector"}).
    Teleport { character: String, sector: String },
    /// Read the audit log, newest first (GET /v1/admin/audit).
    Audit {
        /// `account:<uuid>` or `token:<name>`.
        #[arg(long)]
        actor: Option<String>,
        /// An action (`region.stop`) or a prefix ending in `*` (`region.*`).
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// Milliseconds since the epoch or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Milliseconds since the epoch or RFC 3339.
        #[arg(long)]
        until: Option<String>,
        /// Entries (1 to 200).
        #[arg(long)]
        limit: Option<u32>,
        /// The `next` of a previous page.
        #[arg(long)]
        before: Option<String>,
    },
    /// Grant an account a capability (POST /v1/admin/accounts/{id}/capabilities {"capability"}).
    Grant { account: String, capability: String },
    /// Revoke a capability (DELETE /v1/admin/accounts/{id}/capabilities/{capability}).
    Revoke { account: String, capability: String },
    /// GET any path (e.g. /v1/admin/ledger/audit).
    Get { path: String },
    /// POST to any path, with an optional JSON body.
    Post { path: String, json: Option<String> },
}

/// One request to make.
#[derive(Debug, PartialEq)]
struct Call {
    method: reqwest::Method,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Call {
    fn get(path: impl Into<String>) -> Self {
        Self {
            method: reqwest::Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    fn post(path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method: reqwest::Method::POST,
            body,
            ..Self::get(path)
        }
    }

    fn query(mut self, name: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.query.push((name, v.to_string()));
        }
        self
    }
}

/// A path segment taken from the command line, percent-encoded so that it stays one segment.
fn seg(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request a subcommand makes.
fn call(command: AdminCommand) -> Result<Call, String> {
    use AdminCommand as C;
    Ok(match command {
        C::Regions => Call::get("/v1/admin/regions"),
        C::Nodes => Call::get("/v1/admin/nodes"),
        C::Supervision => Call::get("/v1/admin/supervision"),
        C::Sectors { region } => Call::get("/v1/admin/sectors").query("region", region),
        C::Sector { id } => Call::get(format!("/v1/admin/sectors/{}", seg(&id))),
        C::Sessions { query } => Call::get("/v1/admin/sessions").query("q", query),
        C::Pause { sector } => Call::post(format!("/v1/admin/sectors/{}/pause", seg(&sector)), None),
        C::Resume { sector } => Call::post(format!("/v1/admin/sectors/{}/resume", seg(&sector)), None),
        C::Restart { sector } => Call::post(format!("/v1/admin/sectors/{}/restart", seg(&sector)), None),
        C::PauseRegion { region } => Call::post(format!("/v1/admin/regions/{}/pause", seg(&region)), None),
        C::ResumeRegion { region } => Call::post(format!("/v1/admin/regions/{}/resume", seg(&region)), None),
        C::StopRegion { region } => Call::post(format!("/v1/admin/regions/{}/stop", seg(&region)), None),
        C::StartRegion { region } => Call::post(format!("/v1/admin/regions/{}/start", seg(&region)), None),
        C::TickRate { region, hz } => {
            if !(hz.is_finite() && hz > 0.0) {
                return Err(format!("HZ must be a positive number, got {hz}"));
            }
            let hz = if hz.fract() == 0.0 && hz <= f64::from(u32::MAX) {
                json!(hz as u32)
            } else {
                json!(hz)
            };
            Call::post(
                format!("/v1/admin/regions/{}/tick-rate", seg(&region)),
                Some(json!({ "hz": hz })),
            )
        }
        C::Kick { character, reason } => {
            let mut body = json!({ "character": character });
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            Call::post("/v1/admin/kick", Some(body))
        }
        C::Broadcast { scope, target, text } => {
            let scope = match scope {
                Scope::Global => "global",
                Scope::Region => "region",
                Scope::Sector => "sector",
            };
            if (scope == "global") != target.is_none() {
                return Err("--target is needed with --scope region|sector, and only then".into());
            }
            let mut body = json!({ "scope": scope, "text": text });
            if let Some(t) = target {
                body["target"] = json!(t);
            }
            Call::post("/v1/admin/broadcast", Some(body))
        }
        C::Snapshot { sector: None } => Call::post("/v1/admin/snapshot", None),
        C::Snapshot { sector: Some(s) } => Call::post(format!("/v1/admin/sectors/{}/snapshot", seg(&s)), None),
        C::Teleport { character, sector } => Call::post(
            "/v1/admin/teleport",
            Some(json!({ "character": character, "sector": sector })),
        ),
        C::Audit {
            actor,
            action,
            target,
            since,
            until,
            limit,
            before,
        } => Call::get("/v1/admin/audit")
            .query("actor", actor)
            .query("action", action)
            .query("target", target)
            .query("since", since)
            .query("until", until)
            .query("limit", limit)
            .query("before", before),
        C::Grant { account, capability } => Call::post(
            format!("/v1/admin/accounts/{}/capabilities", seg(&account)),
            Some(json!({ "capability": capability })),
        ),
        C::Revoke { account, capability } => Call {
            method: reqwest::Method::DELETE,
            ..Call::get(format!(
                "/v1/admin/accounts/{}/capabilities/{}",
                seg(&account),
                seg(&capability)
            ))
        },
        C::Get { path } => Call::get(checked_path(path)?),
        C::Post { path, json } => {
            let body = json
                .map(|j| serde_json::from_str::<Value>(&j).map_err(|e| format!("the JSON argument is not JSON: {e}")))
                .transpose()?;
            Call::post(checked_path(path)?, body)
        }
    })
}

fn checked_path(path: String) -> Result<String, String> {
    if path.starts_with('/') {
        Ok(path)
    } else {
        Err(format!(
            "PATH must start with `/` (e.g. /v1/admin/regions), got {path:?}"
        ))
    }
}

/// Runs one admin command; the exit code says how it went (0 done, 1 refused, 2 not reached or bad usage).
pub async fn run(args: AdminArgs) -> ExitCode {
    let call = match call(args.command) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let base = args.server.trim_end_matches('/');
    let url = format!("{base}{}", call.path);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.timeout.max(0.001)))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut request = client.request(call.method.clone(), &url).query(&call.query);
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {} {url}: cannot reach the server: {e}", call.method);
            return ExitCode::from(2);
        }
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let parsed = serde_json::from_str::<Value>(&text);
    if status.is_success() {
        let shown = match &parsed {
            Ok(v) => serde_json::to_string_pretty(v).unwrap_or(text),
            Err(_) => text,
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{shown}");
        return ExitCode::SUCCESS;
    }
    match parsed {
        Ok(v) if v["error"]["code"].is_string() => eprintln!(
            "error: HTTP {status}: {}: {}",
            v["error"]["code"].as_str().unwrap_or(""),
            v["error"]["message"].as_str().unwrap_or("")
        ),
        _ => eprintln!("error: HTTP {status}: {}", text.trim()),
    }
    if args.token.is_none() && status.as_u16() == 401 {
        eprintln!("hint: pass --token or set ORRERY_ADMIN_TOKEN");
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_their_requests() {
        let c = call(AdminCommand::Sessions {
            query: Some("ann".into()),
        })
        .unwrap();
        assert_eq!(
            (c.path.as_str(), c.query),
            ("/v1/admin/sessions", vec![("q", "ann".to_owned())])
        );
        let c = call(AdminCommand::TickRate {
            region: "r".into(),
            hz: 10.0,
        })
        .unwrap();
        assert_eq!(c.body, Some(json!({"hz": 10})));
        let c = call(AdminCommand::Snapshot {
            sector: Some("a/b".into()),
        })
        .unwrap();
        assert_eq!(c.path, "/v1/admin/sectors/a%2Fb/snapshot");
        assert!(call(AdminCommand::Broadcast {
            scope: Scope::Region,
            target: None,
            text: "hi".into()
        })
        .is_err());
        assert!(call(AdminCommand::Get { path: "v1".into() }).is_err());
        assert!(call(AdminCommand::Post {
            path: "/x".into(),
            json: Some("{".into())
        })
        .is_err());
    }
}
