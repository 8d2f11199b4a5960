//! Every HTTP refusal says what was wrong: `{"error": {"code", "message"}}` where the message is never just the
//! code, and names the field, the parameter, the path, the method or the limit. Also: `/v1/openapi.json` is served.

mod common;

use common::*;
use serde_json::Value;

/// (status, code, message) of a refusal, checking its shape and that the message says more than the code.
async fn refusal(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text:?}"));
    let code = v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    let message = v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    assert!(
        !message.is_empty() && message != code,
        "{status} {code}: the message only repeats the code"
    );
    (status, code, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_names_what_was_wrong() {
    let mut server = TestServer::start().await;
    let http = &server.http;
    let guest = server.url("/v1/auth/guest");
    let station = uuid::Uuid::new_v4();

    // Bodies: not JSON, an unknown field, a field of the wrong type, too large.
    let (s, code, m) = refusal(http.post(&guest).body("{not json").send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "invalid_json"));
    assert!(m.contains("not valid JSON") && m.contains("line 1"), "{m}");
    let (s, code, m) = refusal(http.post(&guest).body(r#"{"nme":"Ann"}"#).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "invalid_body"));
    assert!(m.contains("unknown field `nme`") && m.contains("`name`"), "{m}");
    let (s, code, m) = refusal(http.post(&guest).body(r#"{"name":5}"#).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "invalid_body"));
    assert!(m.contains("`name`") && m.contains("invalid type"), "{m}");
    let (s, code, m) = refusal(http.post(&guest).body(r#"{"name":""}"#).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "invalid_name"));
    assert!(m.contains("name"), "{m}");
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(70_000));
    let (s, code, m) = refusal(http.post(&guest).body(big).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (413, "body_too_large"));
    assert!(m.contains("65536"), "{m}");
    // The empty body is still a guest login with defaults.
    assert_eq!(http.post(&guest).send().await.unwrap().status(), 200);

    // Queries and paths.
    let get = |path: String| http.get(server.url(&path)).bearer_auth(ADMIN).send();
    let (s, code, m) = refusal(
        get(format!("/v1/admin/stations/{station}/ledger?limit=abc"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "invalid_query"));
    assert!(m.contains("`limit`"), "{m}");
    let (s, code, m) = refusal(
        get(format!("/v1/admin/stations/{station}/ledger?lmit=3"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "invalid_query"));
    assert!(m.contains("`lmit`"), "{m}");
    let (s, code, m) = refusal(
        get(format!("/v1/admin/stations/{station}/ledger?limit=1000"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "invalid_limit"));
    assert!(m.contains("200") && m.contains("1000"), "{m}");
    let (s, code, m) = refusal(get("/v1/admin/stations/not-a-uuid/ledger".into()).await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "invalid_id"));
    assert!(m.contains("`id`") && m.contains("not-a-uuid"), "{m}");
    let (s, code, m) = refusal(get("/v1/admin/stations/%FF/ledger".into()).await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "invalid_path"));
    assert!(m.contains("/v1/admin/stations/%FF/ledger"), "{m}");

    // Routes and methods.
    let (s, code, m) = refusal(http.get(server.url("/v1/nowhere")).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (404, "not_found"));
    assert!(m.contains("GET /v1/nowhere") && m.contains("/v1/openapi.json"), "{m}");
    let r = http.get(server.url("/v1/admin/snapshot")).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "POST");
    let (s, code, m) = refusal(r).await;
    assert_eq!((s, code.as_str()), (405, "method_not_allowed"));
    assert!(
        m.contains("GET") && m.contains("/v1/admin/snapshot") && m.contains("allowed: POST"),
        "{m}"
    );
    let (s, code, m) = refusal(http.delete(server.url("/v1/auth/guest")).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (405, "method_not_allowed"));
    assert!(m.contains("DELETE") && m.contains("POST"), "{m}");

    // Credentials: what is needed, not which part was wrong.
    let (s, code, m) = refusal(http.get(server.url("/v1/admin/regions")).send().await.unwrap()).await;
    assert_eq!((s, code.as_str()), (401, "unauthorized"));
    assert!(m.contains("Authorization: Bearer"), "{m}");
    let wrong = http
        .get(server.url("/v1/admin/regions"))
        .bearer_auth(format!("{ADMIN}x"))
        .send()
        .await
        .unwrap();
    let (s, _, m2) = refusal(wrong).await;
    assert_eq!(s, 401);
    assert_eq!(m, m2, "a wrong token is refused exactly as a missing one");
    let (token, character) = server.guest("Ann").await;
    let (_, other) = server.guest("Bob").await;
    let r = http
        .get(server.url(&format!("/v1/characters/{other}/ledger")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (s, code, m) = refusal(r).await;
    assert_eq!((s, code.as_str()), (403, "not_yours"));
    assert!(
        m.contains(&other.to_string()) && !m.contains(&character.to_string()),
        "{m}"
    );
    let r = http
        .get(server.url("/v1/admin/regions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (s, _, m) = refusal(r).await;
    assert!(matches!(s, 401 | 403), "{s}");
    assert!(m.contains("admin") || m.contains("Bearer"), "{m}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_and_lists_the_endpoints() {
    let mut server = TestServer::start().await;
    let r = server.http.get(server.url("/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/v1/auth/guest", "post"),
        ("/v1/ws", "get"),
        ("/v1/admin/audit", "get"),
        ("/v1/admin/snapshot", "post"),
        ("/v1/characters/{id}/ledger", "get"),
        ("/v1/openapi.json", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
    }
    assert!(doc["components"]["schemas"]["AuditPage"].is_object());
    assert!(doc["components"]["schemas"]["GuestRequest"].is_object());
    server.stop().await;
}
