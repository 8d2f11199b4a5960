//! Bad input gets typed errors (HTTP JSON bodies, `error` frames, documented close codes), never a panic, and
//! never disturbs other sessions.

mod common;

use common::*;
use orrery_protocol::{ClientMessage, Encoding, ServerMessage};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

async fn still_alive(c: &mut Client) {
    let id = c.send(ClientMessage::Ping).await;
    let got = c
        .recv_until(|f| matches!(f.msg, ServerMessage::Pong).then_some(f.id))
        .await;
    assert_eq!(got, Some(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_wrong_fields_get_error_frames_and_the_connection_stays() {
    let server = TestServer::start().await;
    let (t, _) = server.guest("Fuzzy").await;
    let mut j = Client::join(&server, &t, Encoding::Json).await;
    let c = &mut j.client;
    let cases = [
        (r#"{"type":"thrust","vx":1"#, None, "malformed"),
        ("[1,2,3]", None, "malformed"),
        (r#"{"type":"teleport","id":11}"#, Some(11), "unknown_type"),
        (r#"{"id":12}"#, Some(12), "invalid_message"),
        (
            r#"{"type":"thrust","id":13,"vx":"fast","vy":0}"#,
            Some(13),
            "invalid_message",
        ),
        (r#"{"type":"thrust","id":14,"vx":1}"#, Some(14), "invalid_message"),
        (
            r#"{"type":"thrust","id":15,"vx":1,"vy":2,"vz":3}"#,
            Some(15),
            "invalid_message",
        ),
        (r#"{"type":"ping","id":16,"extra":true}"#, Some(16), "invalid_message"),
        (
            r#"{"type":"warp","id":17,"to":"not-a-uuid"}"#,
            Some(17),
            "invalid_message",
        ),
        (
            r#"{"type":"trade","id":18,"station":"00000000-0000-0000-0000-000000000000","commodity":"unobtainium","side":"buy","qty":1}"#,
            Some(18),
            "invalid_message",
        ),
        (
            r#"{"type":"chat","id":19,"channel":"whisper","text":"hi"}"#,
            Some(19),
            "invalid_message",
        ),
    ];
    for (text, id, code) in cases {
        c.send_raw(Message::Text(text.into())).await;
        let (got_id, got_code) = c
            .recv_until(|f| match &f.msg {
                ServerMessage::Error { code, .. } => Some((f.id, code.clone())),
                _ => None,
            })
            .await;
        assert_eq!((got_id, got_code.as_str()), (id, code), "for {text}");
    }
    still_alive(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_garbage_gets_an_error_frame() {
    let server = TestServer::start().await;
    let (t, _) = server.guest("Noise").await;
    let mut j = Client::join(&server, &t, Encoding::Binary).await;
    j.client
        .send_raw(Message::Binary(vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff].into()))
        .await;
    let code = j
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Error { code, .. } => Some(code.clone()),
            _ => None,
        })
        .await;
    assert!(code == "malformed" || code == "unknown_type", "{code}");
    still_alive(&mut j.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_with_1009_and_others_keep_streaming() {
    let server = TestServer::start().await;
    let (t1, _) = server.guest("Big").await;
    let (t2, c2) = server.guest("Bystander").await;
    let mut big = Client::join(&server, &t1, Encoding::Json).await;
    let mut by = Client::join(&server, &t2, Encoding::Binary).await;
    let huge = format!(
        r#"{{"type":"chat","channel":"sector","text":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    big.client.send_raw(Message::Text(huge.into())).await;
    assert_eq!(big.client.close_code().await, Some(1009));
    by.client
        .command(orrery_engine::spacetrade::Command::Thrust { vx: 3.0, vy: 0.0 })
        .await;
    by.client.until_ship(c2, |s| s.vx == 3.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_above_the_rate_limit_are_closed_with_1008() {
    let mut cfg = config(temp_dir());
    cfg.engine.max_msgs_per_sec = 5;
    cfg.engine.msg_burst = 10;
    let server = TestServer::start_with(cfg).await;
    let (t, _) = server.guest("Spammer").await;
    let mut j = Client::join(&server, &t, Encoding::Json).await;
    for _ in 0..40 {
        j.client.send_raw(Message::Text(r#"{"type":"ping"}"#.into())).await;
    }
    assert_eq!(j.client.close_code().await, Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_json_with_a_code() {
    let server = TestServer::start().await;
    let http = &server.http;
    let body = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        (status, v["error"]["code"].as_str().unwrap().to_owned())
    };
    let r = http
        .post(server.url("/v1/auth/guest"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await, (400, "invalid_json".into()));
    let r = http
        .post(server.url("/v1/auth/guest"))
        .json(&serde_json::json!({"name": "x".repeat(40)}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await, (400, "invalid_name".into()));
    let r = http.post(server.url("/v1/auth/guest")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the body is optional");
    let ws = |q: &str| {
        http.get(server.url(&format!("/v1/ws{q}")))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    };
    assert_eq!(body(ws("").send().await.unwrap()).await, (401, "unauthorized".into()));
    assert_eq!(
        body(ws("?token=nope").send().await.unwrap()).await,
        (401, "unauthorized".into())
    );
    let (token, _) = server.guest("Proto").await;
    let r = ws(&format!("?token={token}"))
        .header("Sec-WebSocket-Protocol", "chat.v9")
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await, (400, "unsupported_subprotocol".into()));
    let r = http
        .get(server.url(&format!("/v1/ws?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await, (400, "not_websocket".into()));
    let r = http
        .get(server.url(&format!("/v1/ws?token={token}")))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "8")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["sec-websocket-version"],
        "13",
        "426 names the version it speaks"
    );
    assert_eq!(body(r).await, (426, "unsupported_version".into()));
    // No credentials: 401; a credential that is not an admin's or operator's: 401 too (it names no principal).
    let r = http.post(server.url("/v1/admin/snapshot")).send().await.unwrap();
    assert_eq!(body(r).await, (401, "unauthorized".into()));
    let r = http
        .post(server.url("/v1/admin/snapshot"))
        .bearer_auth("not-the-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await, (401, "unauthorized".into()));
    let r = http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(body(r).await, (404, "not_found".into()));
}
