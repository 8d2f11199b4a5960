//! `orrery admin ...` against a running server: the built binary, its JSON on stdout, its refusals on stderr with a
//! non-zero exit code, and its actions in the audit log.

mod common;

use common::*;
use serde_json::Value;

/// Runs `orrery admin <args>` against `server` with `token` (through ORRERY_ADMIN_TOKEN when `env` is set):
/// (exit code, stdout, stderr).
async fn orrery_admin(server: &TestServer, token: Option<&str>, env: bool, args: &[&str]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orrery"));
    command
        .arg("admin")
        .arg("--server")
        .arg(format!("http://{}", server.addr()))
        .env_remove("ORRERY_ADMIN_TOKEN")
        .env_remove("ORRERY_SERVER")
        .env("RUST_LOG", "warn");
    match (token, env) {
        (Some(t), true) => {
            command.env("ORRERY_ADMIN_TOKEN", t);
        }
        (Some(t), false) => {
            command.arg("--token").arg(t);
        }
        (None, _) => {}
    }
    let out = command.args(args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_snapshot_and_audit_from_the_command_line() {
    let mut server = TestServer::start().await;
    let (code, out, err) = orrery_admin(&server, Some(ADMIN), false, &["regions"]).await;
    assert_eq!(code, 0, "{err}");
    let regions: Value = serde_json::from_str(&out).unwrap();
    assert!(regions["regions"].as_array().unwrap().len() >= 2, "{out}");
    assert!(out.contains("\n  "), "pretty-printed: {out}");

    let (code, out, err) = orrery_admin(&server, Some(ADMIN), true, &["snapshot"]).await;
    assert_eq!(code, 0, "{err}");
    let snap: Value = serde_json::from_str(&out).unwrap();
    assert!(snap["sectors"].as_u64().unwrap() > 0, "{out}");

    let (code, out, err) = orrery_admin(
        &server,
        Some(ADMIN),
        false,
        &["audit", "--action", "snapshot", "--limit", "5"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let page: Value = serde_json::from_str(&out).unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{out}");
    assert_eq!(entries[0]["actor"], "token:admin");
    assert_eq!(entries[0]["result"], "ok");
    assert_eq!(entries[0]["answer"], snap);

    let (code, out, err) = orrery_admin(&server, Some(ADMIN), false, &["get", "/v1/admin/ledger/audit"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        serde_json::from_str::<Value>(&out).unwrap()["transactions"].is_u64(),
        "{out}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_go_to_stderr_with_a_non_zero_exit_code() {
    let mut server = TestServer::start().await;
    let (code, out, err) = orrery_admin(&server, Some("wrong-token"), false, &["regions"]).await;
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("HTTP 401") && err.contains("unauthorized"), "{err}");
    let (code, _, err) = orrery_admin(&server, None, false, &["snapshot"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 401") && err.contains("ORRERY_ADMIN_TOKEN"), "{err}");
    // A refused action: the server's message is shown, and the audit log has it.
    let nowhere = uuid::Uuid::new_v4().to_string();
    let (code, _, err) = orrery_admin(&server, Some(ADMIN), false, &["stop-region", &nowhere]).await;
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 404") && err.contains(&nowhere), "{err}");
    let (code, _, err) = orrery_admin(&server, Some(ADMIN), false, &["audit", "--limit", "0"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("invalid_limit") && err.contains("`limit`"), "{err}");
    let (code, _, err) = orrery_admin(&server, Some(ADMIN), false, &["get", "v1/admin/regions"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("must start with `/`"), "{err}");
    let addr = server.addr();
    server.stop().await;
    let gone = TestServer::remote(addr);
    let (code, _, err) = orrery_admin(&gone, Some(ADMIN), false, &["regions"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach"), "{err}");
}
