//! The audit log of admin actions, end to end (SQLite, and PostgreSQL with `ORRERY_TEST_BACKEND=postgres`): every
//! action leaves a row (who, what, target, parameters, result), a refused one with its error; an action whose record
//! cannot be written does not run; `GET /v1/admin/audit` pages and filters, refuses bad filters by name, is for
//! operators only and rate-limited; the rows cannot be changed.

mod common;

use common::*;
use orrery_actors::store::migrate::DbPool;
use serde_json::Value;
use uuid::Uuid;

/// A connection pool on a test server's database (the embedded file, or its PostgreSQL database), for what the
/// server would never do itself.
async fn database(server: &TestServer) -> DbPool {
    let url = test_database_url(&server.data_dir);
    orrery_actors::store::migrate::connect(url.as_deref(), &server.data_dir.join("orrery.db"))
        .await
        .unwrap()
}

async fn exec(db: &DbPool, sql: &'static str) -> Result<(), sqlx::Error> {
    match db {
        DbPool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        DbPool::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
}

/// Makes the database refuse every new audit record (a stand-in for a store that cannot write).
async fn refuse_audit_records(db: &DbPool) {
    match db {
        DbPool::Sqlite(_) => exec(
            db,
            "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap(),
        DbPool::Postgres(_) => {
            exec(
                db,
                "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            )
            .await
            .unwrap();
            exec(
                db,
                "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION test_refuse()",
            )
            .await
            .unwrap();
        }
    }
}

async fn accept_audit_records(db: &DbPool) {
    match db {
        DbPool::Sqlite(_) => exec(db, "DROP TRIGGER test_refuse_audit").await.unwrap(),
        DbPool::Postgres(_) => exec(db, "DROP TRIGGER test_refuse_audit ON audit_log").await.unwrap(),
    }
}

/// `GET path` with the admin token: (status, JSON).
async fn admin_get(server: &TestServer, path: &str) -> (u16, Value) {
    let r = server
        .http
        .get(server.url(path))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn entries(server: &TestServer, query: &str) -> Vec<Value> {
    let (status, page) = admin_get(server, &format!("/v1/admin/audit{query}")).await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().clone()
}

/// A region that is not the nexus, and whether it runs.
async fn region(server: &TestServer) -> (Uuid, bool) {
    let (_, v) = admin_get(server, "/v1/admin/regions").await;
    let r = v["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["nexus"] == false)
        .unwrap()
        .clone();
    (
        r["id"].as_str().unwrap().parse().unwrap(),
        r["running"].as_bool().unwrap(),
    )
}

async fn running(server: &TestServer, id: Uuid) -> bool {
    let (_, v) = admin_get(server, "/v1/admin/regions").await;
    v["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.to_string())
        .unwrap()["running"]
        .as_bool()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_action_leaves_who_what_target_params_and_result() {
    let mut server = TestServer::start().await;
    let r = server.admin_post("/v1/admin/snapshot").await;
    assert_eq!(r.status(), 200);
    let (id, _) = region(&server).await;
    let r = server.admin_post(&format!("/v1/admin/regions/{id}/stop")).await;
    assert_eq!(r.status(), 200);
    let log = entries(&server, "").await;
    assert_eq!(log.len(), 2, "{log:?}");
    let (stop, snapshot) = (&log[0], &log[1]);
    assert_eq!(stop["actor"], "token:admin");
    assert_eq!(stop["action"], "region.stop");
    assert_eq!(stop["target"], id.to_string());
    assert_eq!(stop["params"], serde_json::json!({}));
    assert_eq!(stop["result"], "ok");
    assert_eq!(stop["answer"]["running"], false);
    assert!(stop["done_at"].as_i64().unwrap() >= stop["at"].as_i64().unwrap());
    assert!(stop["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(snapshot["action"], "snapshot");
    assert_eq!(snapshot["target"], Value::Null);
    assert_eq!(snapshot["result"], "ok");
    assert!(snapshot["answer"]["sectors"].as_u64().unwrap() > 0);
    assert!(server.metric("orrery_admin_actions_total").await >= 2.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_action_is_recorded_with_its_error() {
    let mut server = TestServer::start().await;
    let nowhere = Uuid::new_v4();
    let r = server.admin_post(&format!("/v1/admin/sectors/{nowhere}/crash")).await;
    assert_eq!(r.status(), 404);
    let log = entries(&server, "").await;
    assert_eq!(log.len(), 1, "{log:?}");
    let e = &log[0];
    assert_eq!(
        (&e["action"], &e["target"]),
        (&"sector.crash".into(), &nowhere.to_string().into())
    );
    assert_eq!(e["result"], "error");
    assert_eq!(e["answer"], Value::Null);
    assert_eq!(e["error"]["status"], 404);
    assert_eq!(e["error"]["code"], "not_found");
    assert!(e["error"]["message"].as_str().unwrap().contains(&nowhere.to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_whose_record_cannot_be_written_does_not_run() {
    let mut server = TestServer::start().await;
    let db = database(&server).await;
    let (id, was_running) = region(&server).await;
    assert!(was_running);
    refuse_audit_records(&db).await;
    let r = server.admin_post(&format!("/v1/admin/regions/{id}/stop")).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "storage_unavailable");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("region.stop"),
        "{body}"
    );
    assert!(
        running(&server, id).await,
        "the region was stopped without an audit record"
    );
    assert!(entries(&server, "").await.is_empty());
    assert!(server.metric("orrery_audit_write_failures_total").await >= 1.0);
    // Once records can be written again, the same action runs and is recorded.
    accept_audit_records(&db).await;
    let r = server.admin_post(&format!("/v1/admin/regions/{id}/stop")).await;
    assert_eq!(r.status(), 200);
    assert!(!running(&server, id).await);
    assert_eq!(entries(&server, "").await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_pages_newest_first_and_filters() {
    let mut server = TestServer::start().await;
    let (id, _) = region(&server).await;
    let before_all = orrery_actors::store::now_millis();
    for path in [
        "/v1/admin/snapshot".to_owned(),
        format!("/v1/admin/regions/{id}/stop"),
        "/v1/admin/snapshot".to_owned(),
        format!("/v1/admin/regions/{id}/start"),
        "/v1/admin/snapshot".to_owned(),
    ] {
        assert_eq!(server.admin_post(&path).await.status(), 200, "{path}");
    }
    let all = entries(&server, "").await;
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["snapshot", "region.start", "snapshot", "region.stop", "snapshot"]
    );
    // Pages of 2, following `next`, give the same entries in the same order.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let (status, page) = admin_get(&server, &format!("/v1/admin/audit{query}")).await;
        assert_eq!(status, 200);
        let got = page["entries"].as_array().unwrap();
        assert!(got.len() <= 2);
        seen.extend(got.iter().map(|e| e["id"].clone()));
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=2&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, all.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
    assert_eq!(entries(&server, "?action=region.*").await.len(), 2);
    assert_eq!(entries(&server, "?action=snapshot").await.len(), 3);
    assert_eq!(entries(&server, "?action=region").await.len(), 0);
    assert_eq!(entries(&server, &format!("?target={id}")).await.len(), 2);
    assert_eq!(entries(&server, "?actor=token:admin").await.len(), 5);
    assert_eq!(
        entries(&server, &format!("?actor=account:{}", Uuid::new_v4()))
            .await
            .len(),
        0
    );
    let future = orrery_actors::store::now_millis() + 60_000;
    assert_eq!(entries(&server, &format!("?since={future}")).await.len(), 0);
    assert_eq!(
        entries(&server, &format!("?since={before_all}&until={future}"))
            .await
            .len(),
        5
    );
    assert_eq!(
        entries(&server, "?since=2000-01-01T00:00:00Z&action=snapshot")
            .await
            .len(),
        3
    );
    assert_eq!(entries(&server, "?until=2000-01-01T00:00:00%2B01:00").await.len(), 0);
    // Bad filters are refused, naming the parameter.
    for (query, code, names) in [
        ("?limit=0", "invalid_limit", "`limit`"),
        ("?limit=many", "invalid_query", "`limit`"),
        ("?since=yesterday", "invalid_time", "`since`"),
        ("?before=nope", "invalid_cursor", "`before`"),
        ("?actr=token:admin", "invalid_query", "`actr`"),
        ("?target=", "invalid_query", "`target`"),
        ("?since=10&until=5", "invalid_time", "`since`"),
    ] {
        let (status, body) = admin_get(&server, &format!("/v1/admin/audit{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{query}: {message}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_and_strangers_cannot_read_the_log() {
    let mut server = TestServer::start().await;
    let url = server.url("/v1/admin/audit");
    let r = server.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = server.http.get(&url).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (token, _) = server.guest("Player").await;
    let r = server.http.get(&url).bearer_auth(&token).send().await.unwrap();
    let status = r.status().as_u16();
    assert!(matches!(status, 401 | 403), "a player read the audit log: {status}");
    let body: Value = r.json().await.unwrap();
    assert_ne!(body["error"]["message"], body["error"]["code"]);
    // Nor can they act: a refused caller leaves no record (it was never an admin action).
    let r = server
        .http
        .post(server.url("/v1/admin/snapshot"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403));
    assert!(entries(&server, "").await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_the_log_are_rate_limited() {
    let mut config = config(temp_dir());
    config.ledger_reads.per_minute = 1;
    config.ledger_reads.burst = 2;
    let mut server = TestServer::start_with(config).await;
    for _ in 0..2 {
        assert_eq!(admin_get(&server, "/v1/admin/audit").await.0, 200);
    }
    let r = server
        .http
        .get(server.url("/v1/admin/audit"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_cannot_be_changed_or_removed() {
    let mut server = TestServer::start().await;
    assert_eq!(server.admin_post("/v1/admin/snapshot").await.status(), 200);
    let db = database(&server).await;
    for sql in [
        "UPDATE audit_log SET actor = 'token:someone-else'",
        "DELETE FROM audit_log",
        "UPDATE audit_results SET ok = NOT ok",
        "DELETE FROM audit_results",
    ] {
        let refused = exec(&db, sql).await;
        assert!(refused.is_err(), "{sql} was allowed");
        assert!(refused.unwrap_err().to_string().contains("append-only"), "{sql}");
    }
    let log = entries(&server, "").await;
    assert_eq!(
        (log.len(), &log[0]["actor"], &log[0]["result"]),
        (1, &"token:admin".into(), &"ok".into())
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_without_a_result_reads_as_unknown() {
    let mut server = TestServer::start().await;
    let db = database(&server).await;
    // What a server that died while the action ran leaves behind: the record, and no result.
    exec(
        &db,
        "INSERT INTO audit_log (id, at, actor, action, target, params) \
         VALUES ('6f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f', 1, 'token:admin', 'region.stop', 'r', '{\"why\":\"test\"}')",
    )
    .await
    .unwrap();
    let log = entries(&server, "").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["result"], "unknown");
    assert_eq!(log[0]["params"]["why"], "test");
    assert_eq!(
        (&log[0]["answer"], &log[0]["error"], &log[0]["done_at"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(log[0]["time"], "1970-01-01T00:00:00.001Z");
    server.stop().await;
}
