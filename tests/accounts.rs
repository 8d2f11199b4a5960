//! Accounts, tokens and entitlements, end to end: registration, password login, refresh rotation, logout, the one
//! 401 for every refused credential, capabilities on the admin endpoints, the `orrery accounts` grant, characters
//! and the WebSocket's choice of one, guest upgrade, login rate limits, and the citizenship gate on the nexus.

mod common;

use std::time::Duration;

use common::{config, temp_dir, Client, TestServer, ADMIN};
use orrery_api::ServerConfig;
use orrery_engine::galaxy::generate;
use orrery_protocol::{codes, Encoding, ServerMessage};
use serde_json::{json, Value};
use uuid::Uuid;

const SECRET: &str = "a test signing key of more than 32 bytes";
const PASSWORD: &str = "correct horse battery";

/// The test server's configuration with a known signing key and no login rate limits (they have a test of their own).
fn cfg() -> ServerConfig {
    let mut c = config(temp_dir());
    c.identity.jwt_secret = Some(SECRET.into());
    c.identity.per_address.per_minute = 0;
    c.identity.per_account.per_minute = 0;
    c
}

async fn send(server: &TestServer, req: reqwest::RequestBuilder, bearer: Option<&str>) -> (u16, Value) {
    let _ = server;
    let req = match bearer {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(server: &TestServer, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
    send(server, server.http.post(server.url(path)).json(&body), bearer).await
}

async fn get(server: &TestServer, path: &str, bearer: Option<&str>) -> (u16, Value) {
    send(server, server.http.get(server.url(path)), bearer).await
}

async fn register(server: &TestServer, username: &str) -> Uuid {
    let (status, body) = post(
        server,
        "/v1/accounts",
        json!({"username": username, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["account_id"].as_str().unwrap().parse().unwrap()
}

/// Logs in; returns the token pair.
async fn login(server: &TestServer, username: &str) -> Value {
    let (status, body) = post(
        server,
        "/v1/auth/login",
        json!({"username": username, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn access(pair: &Value) -> String {
    pair["access_token"].as_str().unwrap().to_owned()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A guest login: (token, account id, character id).
async fn guest(server: &TestServer, body: Value) -> (String, Uuid, Uuid) {
    let (status, r) = post(server, "/v1/auth/guest", body, None).await;
    assert_eq!(status, 200, "{r}");
    (
        r["token"].as_str().unwrap().to_owned(),
        r["account_id"].as_str().unwrap().parse().unwrap(),
        r["character_id"].as_str().unwrap().parse().unwrap(),
    )
}

/// The `?token=` value that also names a character.
fn with_character(token: &str, character: Uuid) -> String {
    format!("{token}&character={character}")
}

/// The status and error code of a refused WebSocket upgrade.
async fn ws_refusal(server: &TestServer, query: &str) -> (u16, String) {
    let (status, body) = send(
        server,
        server
            .http
            .get(server.url(&format!("/v1/ws?{query}")))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        None,
    )
    .await;
    (status, code(&body).to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_refresh_logout_and_one_401_for_every_refused_credential() {
    let server = TestServer::start_with(cfg()).await;
    let id = register(&server, "Ada").await;
    // Usernames are unique whatever their case; the rules name what is wrong.
    let (status, body) = post(
        &server,
        "/v1/accounts",
        json!({"username": "ada", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, code(&body)), (409, "username_taken"));
    let (status, body) = post(
        &server,
        "/v1/accounts",
        json!({"username": "a b", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_username"));
    assert!(body["error"]["message"].as_str().unwrap().contains("letters"), "{body}");
    let (status, body) = post(
        &server,
        "/v1/accounts",
        json!({"username": "bob", "password": "short"}),
        None,
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_password"));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("8 to 128"),
        "{body}"
    );
    let (status, body) = post(
        &server,
        "/v1/accounts",
        json!({"username": "bob", "pasword": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_body"));

    let pair = login(&server, "ADA").await;
    assert_eq!(pair["account_id"], id.to_string());
    assert_eq!(pair["expires_in"], 900);
    let (status, me) = get(&server, "/v1/accounts/me", Some(&access(&pair))).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["account"]["username"], "Ada");
    assert_eq!(me["account"]["kind"], "registered");

    // Refresh rotates: the new pair works, the old refresh token does not, and its reuse revokes the family.
    let first = pair["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = post(&server, "/v1/auth/refresh", json!({"refresh_token": first}), None).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first);
    let (status, _) = get(&server, "/v1/characters", Some(&access(&second))).await;
    assert_eq!(status, 200);
    let (status, reused) = post(&server, "/v1/auth/refresh", json!({"refresh_token": first}), None).await;
    assert_eq!(status, 401);
    let (status, family) = post(
        &server,
        "/v1/auth/refresh",
        json!({"refresh_token": second["refresh_token"]}),
        None,
    )
    .await;
    assert_eq!(status, 401, "the reuse of a rotated token revoked its family: {family}");

    // Logout revokes; a revoked refresh token is refused.
    let third = login(&server, "ada").await;
    let token = third["refresh_token"].clone();
    let r = server
        .http
        .post(server.url("/v1/auth/logout"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, revoked) = post(&server, "/v1/auth/refresh", json!({"refresh_token": token}), None).await;
    assert_eq!(status, 401);

    // Wrong password, unknown user, tampered and expired access tokens: the same 401.
    let (status, wrong) = post(
        &server,
        "/v1/auth/login",
        json!({"username": "ada", "password": "wrong password"}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, unknown) = post(
        &server,
        "/v1/auth/login",
        json!({"username": "nobody", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let other = register(&server, "Bob2").await;
    let theirs = access(&login(&server, "bob2").await);
    let mine = access(&third);
    let parts: Vec<&str> = mine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], theirs.split('.').nth(1).unwrap(), parts[2]);
    let (status, forged) = get(&server, "/v1/characters", Some(&tampered)).await;
    assert_eq!(status, 401);
    let signer = orrery_api::tokens::Signer::new(SECRET.as_bytes(), Duration::from_secs(900)).unwrap();
    let expired = signer.issue_at(other, orrery_api::tokens::now_secs() - 901).unwrap();
    let (status, late) = get(&server, "/v1/characters", Some(&expired)).await;
    assert_eq!(status, 401);
    let fresh = signer.issue(other).unwrap();
    assert_eq!(
        get(&server, "/v1/characters", Some(&fresh)).await.0,
        200,
        "the same key, not expired"
    );
    for body in [&reused, &family, &revoked, &wrong, &unknown, &forged, &late] {
        assert_eq!(body, &wrong, "every refusal is the same");
    }
    assert_eq!(code(&wrong), "unauthorized");
    assert!(server.metric("orrery_auth_failures_total").await >= 7.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_gate_the_admin_endpoints_and_only_admins_grant() {
    let server = TestServer::start_with(cfg()).await;
    let player = register(&server, "player").await;
    let operator = register(&server, "operator").await;
    let admin = register(&server, "chief").await;
    let player_token = access(&login(&server, "player").await);
    let (guest_token, _, _) = guest(&server, json!({"name": "Guest"})).await;
    let grant = |id: Uuid| format!("/v1/admin/accounts/{id}/capabilities");

    // A player (registered or guest) holds no capability.
    for token in [&player_token, &guest_token] {
        let (status, body) = get(&server, "/v1/admin/regions", Some(token)).await;
        assert_eq!((status, code(&body)), (403, "forbidden"));
        let (status, _) = post(&server, &grant(player), json!({"capability": "admin"}), Some(token)).await;
        assert_eq!(status, 403);
    }
    // The admin token grants operator and admin.
    let (status, body) = post(
        &server,
        &grant(operator),
        json!({"capability": "operator"}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["granted"], true);
    let (status, _) = post(&server, &grant(admin), json!({"capability": "admin"}), Some(ADMIN)).await;
    assert_eq!(status, 200);
    let (status, body) = post(&server, &grant(admin), json!({"capability": "emperor"}), Some(ADMIN)).await;
    assert_eq!((status, code(&body)), (400, "unknown_capability"));

    // An operator reads (regions, account search) but cannot grant.
    let operator_token = access(&login(&server, "operator").await);
    assert_eq!(get(&server, "/v1/admin/regions", Some(&operator_token)).await.0, 200);
    let (status, found) = get(&server, "/v1/admin/accounts?q=OPER", Some(&operator_token)).await;
    assert_eq!(status, 200, "{found}");
    let accounts = found["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{found}");
    assert_eq!(accounts[0]["id"], operator.to_string());
    assert_eq!(accounts[0]["capabilities"], json!(["operator"]));
    let (status, by_id) = get(
        &server,
        &format!("/v1/admin/accounts?q={player}"),
        Some(&operator_token),
    )
    .await;
    assert_eq!(
        (status, by_id["accounts"][0]["username"].as_str()),
        (200, Some("player"))
    );
    let (status, body) = post(
        &server,
        &grant(player),
        json!({"capability": "galactic_citizen"}),
        Some(&operator_token),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    assert_eq!(get(&server, "/v1/admin/accounts?q=", Some(&player_token)).await.0, 403);

    // An admin grants and revokes; the access token it already holds sees the change at once.
    let admin_token = access(&login(&server, "chief").await);
    let (status, body) = post(
        &server,
        &grant(player),
        json!({"capability": "operator"}),
        Some(&admin_token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&server, "/v1/admin/regions", Some(&player_token)).await.0, 200);
    let r = server
        .http
        .delete(server.url(&format!("/v1/admin/accounts/{player}/capabilities/operator")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&server, "/v1/admin/regions", Some(&player_token)).await.0, 403);
    let (status, body) = post(
        &server,
        &grant(Uuid::new_v4()),
        json!({"capability": "operator"}),
        Some(&admin_token),
    )
    .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_is_made_from_the_command_line_without_a_server() {
    let config = cfg();
    let dir = config.data_dir.clone();
    let url = config.database_url.clone();
    let mut server = TestServer::start_with(config.clone()).await;
    register(&server, "founder").await;
    server.stop().await;

    let store = orrery_api::open_store(url.as_deref(), &dir).await.unwrap();
    assert!(orrery_api::accounts::cli::grant(&store, "FOUNDER", "admin")
        .await
        .unwrap());
    assert!(
        !orrery_api::accounts::cli::grant(&store, "founder", "admin")
            .await
            .unwrap(),
        "already granted"
    );
    let err = orrery_api::accounts::cli::grant(&store, "nobody", "admin")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no registered account named"), "{err}");
    let err = orrery_api::accounts::cli::grant(&store, "founder", "king")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown capability"), "{err}");
    let listed = orrery_api::accounts::cli::list(&store, "found").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].capabilities.contains("admin"));
    store.close().await;

    // The binary does the same (`orrery accounts grant|list`), exiting 1 with a message on a mistake.
    let mut store_args = vec!["--data-dir".to_owned(), dir.display().to_string()];
    if let Some(url) = &url {
        store_args.extend(["--database-url".to_owned(), url.clone()]);
    }
    let orrery = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_orrery"))
            .args(args)
            .args(&store_args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, text) = orrery(&["accounts", "grant", "founder", "operator"]);
    assert!(ok && text.contains("granted operator to founder"), "{text}");
    let (ok, text) = orrery(&["accounts", "list", "FOUND"]);
    assert!(
        ok && text.contains("founder") && text.contains("admin,operator"),
        "{text}"
    );
    let (ok, text) = orrery(&["accounts", "grant", "ghost", "admin"]);
    assert!(!ok && text.contains("no registered account named"), "{text}");

    let server = TestServer::start_with(config).await;
    let token = access(&login(&server, "founder").await);
    assert_eq!(get(&server, "/v1/admin/regions", Some(&token)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn characters_their_limit_and_one_session_per_character() {
    let mut config = cfg();
    config.identity.max_characters = 2;
    let server = TestServer::start_with(config).await;
    register(&server, "pilot").await;
    register(&server, "rival").await;
    let token = access(&login(&server, "pilot").await);
    let rival = access(&login(&server, "rival").await);

    // No character yet: the WebSocket says which parameter is missing.
    assert_eq!(
        ws_refusal(&server, &format!("token={token}")).await,
        (400, "character_required".into())
    );
    let (status, a) = post(&server, "/v1/characters", json!({"name": "Alpha"}), Some(&token)).await;
    assert_eq!(status, 201, "{a}");
    let a: Uuid = a["id"].as_str().unwrap().parse().unwrap();
    // One character: it is the default.
    let only = Client::join(&server, &token, Encoding::Json).await;
    assert!(
        only.keyframe.ships.iter().any(|s| s.owner == a),
        "the only character is played"
    );
    only.client.close().await;
    let (status, b) = post(&server, "/v1/characters", json!({"name": "Beta"}), Some(&token)).await;
    assert_eq!(status, 201);
    let b: Uuid = b["id"].as_str().unwrap().parse().unwrap();
    let (status, body) = post(&server, "/v1/characters", json!({"name": "Gamma"}), Some(&token)).await;
    assert_eq!((status, code(&body)), (409, "character_limit"));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("at most 2"),
        "{body}"
    );
    let (status, body) = post(&server, "/v1/characters", json!({"name": ""}), Some(&token)).await;
    assert_eq!((status, code(&body)), (400, "invalid_name"));
    let (status, list) = get(&server, "/v1/characters", Some(&token)).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["characters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.to_string(), b.to_string()]);
    assert_eq!(get(&server, "/v1/characters", None).await.0, 401);

    // Two characters: the session must name one; another account's character is refused.
    assert_eq!(
        ws_refusal(&server, &format!("token={token}")).await,
        (400, "character_required".into())
    );
    assert_eq!(
        ws_refusal(&server, &format!("token={rival}&character={a}")).await,
        (403, "not_yours".into())
    );
    assert_eq!(
        ws_refusal(&server, &format!("token={token}&character=nope")).await,
        (400, "invalid_character".into())
    );
    let mut first = Client::join(&server, &with_character(&token, b), Encoding::Json).await;
    assert!(first.keyframe.ships.iter().any(|s| s.owner == b));
    // The same character again (a reconnect elsewhere): the first session is replaced.
    let second = Client::join(&server, &with_character(&token, b), Encoding::Binary).await;
    assert_eq!(first.client.close_code().await, Some(codes::CLOSE_REPLACED));
    assert!(second.keyframe.ships.iter().any(|s| s.owner == b));
    // Meanwhile the other character plays alongside.
    let other = Client::join(&server, &with_character(&token, a), Encoding::Json).await;
    assert!(other.keyframe.ships.iter().any(|s| s.owner == a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_upgrade_keeps_its_account_and_character() {
    let server = TestServer::start_with(cfg()).await;
    let (guest_token, account, character) = guest(&server, json!({"name": "Wanderer"})).await;
    let j = Client::join(&server, &guest_token, Encoding::Json).await;
    j.client.close().await;
    let (status, body) = post(
        &server,
        "/v1/accounts/upgrade",
        json!({"username": "wanderer", "password": PASSWORD}),
        Some(&guest_token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account_id"], account.to_string());
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
    // The guest token is retired; the password logs in to the same account and character.
    assert_eq!(get(&server, "/v1/characters", Some(&guest_token)).await.0, 401);
    let pair = login(&server, "wanderer").await;
    assert_eq!(pair["account_id"], account.to_string());
    let token = access(&pair);
    let (_, list) = get(&server, "/v1/characters", Some(&token)).await;
    assert_eq!(list["characters"][0]["id"], character.to_string());
    let j = Client::join(&server, &token, Encoding::Json).await;
    assert!(j.keyframe.ships.iter().any(|s| s.owner == character));
    // Its ledger is readable with the account's token, not with another's.
    assert_eq!(
        get(&server, &format!("/v1/characters/{character}/ledger"), Some(&token))
            .await
            .0,
        200
    );
    let (other, _, _) = guest(&server, json!({"name": "Nosy"})).await;
    let (status, body) = get(&server, &format!("/v1/characters/{character}/ledger"), Some(&other)).await;
    assert_eq!((status, code(&body)), (403, "not_yours"));
    // A registered account is not upgraded again; a taken username is refused.
    let (status, body) = post(
        &server,
        "/v1/accounts/upgrade",
        json!({"username": "another", "password": PASSWORD}),
        Some(&token),
    )
    .await;
    assert_eq!((status, code(&body)), (409, "not_a_guest"));
    let (status, body) = post(
        &server,
        "/v1/accounts/upgrade",
        json!({"username": "WANDERER", "password": PASSWORD}),
        Some(&other),
    )
    .await;
    assert_eq!((status, code(&body)), (409, "username_taken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited_per_address_and_per_account() {
    // Per account: 3 attempts for one username, whatever the address; another username is not affected.
    let mut config = cfg();
    config.identity.per_account = orrery_api::RateLimit {
        per_minute: 1,
        burst: 3,
    };
    let server = TestServer::start_with(config).await;
    register(&server, "target").await; // attempt 1
    login(&server, "target").await; // 2
    let wrong = json!({"username": "target", "password": "not the password"});
    assert_eq!(post(&server, "/v1/auth/login", wrong.clone(), None).await.0, 401); // 3
    let (status, body) = post(&server, "/v1/auth/login", wrong, None).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("this account"),
        "{body}"
    );
    let (status, _) = post(
        &server,
        "/v1/auth/login",
        json!({"username": "TARGET", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(
        status, 429,
        "the right password does not lift the limit, nor does another case"
    );
    register(&server, "bystander").await;
    login(&server, "bystander").await;
    let limited = server.metrics().await;
    assert!(
        limited.contains("orrery_http_rate_limited_total{route=\"login_account\"}"),
        "counted"
    );

    // Per address: 3 attempts from 127.0.0.1, whatever the username.
    let mut config = cfg();
    config.identity.per_address = orrery_api::RateLimit {
        per_minute: 1,
        burst: 3,
    };
    let server = TestServer::start_with(config).await;
    for name in ["u1", "u2", "u3"] {
        let (status, _) = post(
            &server,
            "/v1/auth/login",
            json!({"username": name, "password": PASSWORD}),
            None,
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, body) = post(
        &server,
        "/v1/auth/login",
        json!({"username": "u4", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
    let (status, _) = post(
        &server,
        "/v1/accounts",
        json!({"username": "user5", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 429, "registration shares the limit");
    assert!(server
        .metrics()
        .await
        .contains("orrery_http_rate_limited_total{route=\"login\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warps_into_the_nexus_need_citizenship_when_required() {
    let mut config = cfg();
    config.identity.require_citizenship = true;
    config.allow_spawn_choice = true;
    let server = TestServer::start_with(config).await;
    // A sector outside the nexus with a warp into it.
    let g = generate(common::small_galaxy());
    let in_nexus = |id: Uuid| g.sector(id).unwrap().0.nexus;
    let (from, to) = g
        .regions
        .iter()
        .filter(|r| !r.nexus)
        .flat_map(|r| r.sectors.iter())
        .find_map(|s| s.warps.iter().find(|w| in_nexus(w.to)).map(|w| (s.id, w.to)))
        .expect("a warp into the nexus");
    let (token, account, character) = guest(&server, json!({"name": "Pilgrim", "sector": from})).await;
    let mut j = Client::join(&server, &token, Encoding::Json).await;
    assert_eq!(j.sector, from);
    let id = j.client.command(orrery_engine::spacetrade::Command::Warp { to }).await;
    let (code, message) = j.client.error_for(id).await;
    assert_eq!(code, codes::CITIZENSHIP_REQUIRED);
    assert!(message.contains("galactic_citizen"), "{message}");
    // The ship stayed where it was.
    let resync = j.client.send(orrery_protocol::ClientMessage::Resync).await;
    let (sector, ships) = j
        .client
        .recv_until(|f| match &f.msg {
            ServerMessage::Keyframe { sector, body, .. } if f.id == Some(resync) => Some((*sector, body.ships.clone())),
            _ => None,
        })
        .await;
    assert_eq!(sector, from);
    assert!(ships.iter().any(|s| s.owner == character));
    assert!(server.metrics().await.contains("reason=\"citizenship_required\""));

    // Granted: the session in play may enter at once.
    let (status, body) = post(
        &server,
        &format!("/v1/admin/accounts/{account}/capabilities"),
        json!({"capability": "galactic_citizen"}),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(j.client.warp(to).await, Ok(to));
}
