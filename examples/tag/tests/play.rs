//! Plays the tag game over a real server: guest logins over HTTP, WebSocket sessions (JSON subprotocol), a step and
//! its delta, a tag and its reply, a refusal, and a door to the next room.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

/// Logs a guest in over HTTP; its token and character id.
async fn guest(http: &reqwest::Client, addr: std::net::SocketAddr, name: &str) -> (String, String) {
    let answer: Value = http
        .post(format!("http://{addr}/v1/auth/guest"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("guest login answers")
        .json()
        .await
        .expect("guest login is JSON");
    let token = answer["token"].as_str().expect("a token").to_owned();
    let character = answer["character_id"].as_str().expect("a character id").to_owned();
    (token, character)
}

async fn connect(addr: std::net::SocketAddr, token: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws?token={token}"))
        .await
        .expect("the WebSocket opens");
    ws
}

/// The next JSON message for which `pick` returns something (others are skipped), within [`WAIT`].
async fn until<T>(ws: &mut Ws, mut pick: impl FnMut(&Value) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the expected message arrives in time")
            .expect("the connection stays open")
            .expect("a frame");
        if let Message::Text(text) = next {
            let value: Value = serde_json::from_str(text.as_str()).expect("server frames are JSON");
            if let Some(found) = pick(&value) {
                return found;
            }
        }
    }
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.expect("sent");
}

fn of_type<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    (v["type"] == kind).then_some(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_step_tag_and_walk_through_a_door() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("not").join("yet").join("there");
    let args = orrery::ServerArgs::from_flags([
        "--bind",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--guest-logins-per-minute",
        "0",
        "--shutdown-timeout",
        "5",
    ])
    .expect("valid flags");
    let server = orrery::start(Arc::new(orrery_tag::Tag::new(4)), args)
        .await
        .expect("the server starts");
    let addr = server.addr;
    let http = reqwest::Client::new();

    // Ada joins first: she is it, alone in room 1.
    let (ada_token, ada) = guest(&http, addr, "Ada").await;
    let mut ada_ws = connect(addr, &ada_token).await;
    let welcome = until(&mut ada_ws, |v| of_type(v, "welcome").cloned()).await;
    assert_eq!(welcome["character"], json!({"name": "Ada", "tags": 0}));
    let keyframe = until(&mut ada_ws, |v| of_type(v, "keyframe").cloned()).await;
    assert_eq!(keyframe["name"], "Room 1");
    assert_eq!(keyframe["it"], ada.as_str());
    assert_eq!(keyframe["doors"].as_array().map(Vec::len), Some(2));
    let next_room = keyframe["doors"][0].as_str().unwrap().to_owned();

    // A step shows in a delta (an earlier delta may still carry her arrival at 0,0: skip those).
    send(&mut ada_ws, json!({"type": "step", "dx": 1, "dy": 1})).await;
    let moved = until(&mut ada_ws, |v| {
        of_type(v, "delta")?
            .get("upserts")?
            .as_array()?
            .iter()
            .find(|p| p["id"] == ada.as_str() && p["x"] != json!(0))
            .cloned()
    })
    .await;
    assert_eq!((moved["x"].as_i64(), moved["y"].as_i64()), (Some(1), Some(1)));

    // Bob joins next to her; Ada tags him: her reply, and both see that Bob is it.
    let (bob_token, bob) = guest(&http, addr, "Bob").await;
    let mut bob_ws = connect(addr, &bob_token).await;
    let bob_view = until(&mut bob_ws, |v| of_type(v, "keyframe").cloned()).await;
    assert_eq!(bob_view["it"], ada.as_str());
    assert_eq!(bob_view["players"].as_array().map(Vec::len), Some(2));
    send(&mut ada_ws, json!({"type": "tag", "id": 1, "target": bob})).await;
    let reply = until(&mut ada_ws, |v| (v["id"] == 1).then(|| v.clone())).await;
    assert_eq!(reply["type"], "tagged", "{reply}");
    assert_eq!(reply["target"], bob.as_str());
    until(&mut bob_ws, |v| {
        (of_type(v, "delta")?["it"] == bob.as_str()).then_some(())
    })
    .await;

    // Ada is no longer it: tagging again is refused with the game's code, and changes nothing.
    send(&mut ada_ws, json!({"type": "tag", "id": 2, "target": bob})).await;
    let refusal = until(&mut ada_ws, |v| (v["id"] == 2).then(|| v.clone())).await;
    assert_eq!(
        (refusal["type"].as_str(), refusal["code"].as_str()),
        (Some("error"), Some("not_it")),
        "{refusal}"
    );
    // A typo in a command is the machinery's invalid_message.
    send(&mut ada_ws, json!({"type": "step", "dx": 1, "dy": 0, "dz": 1, "id": 3})).await;
    let invalid = until(&mut ada_ws, |v| of_type(v, "error").cloned()).await;
    assert_eq!(invalid["code"], "invalid_message", "{invalid}");

    // Through the door: warped, then the next room's keyframe with Ada in it (and it, being alone).
    send(&mut ada_ws, json!({"type": "door", "id": 4, "to": next_room})).await;
    let warped = until(&mut ada_ws, |v| of_type(v, "warped").cloned()).await;
    assert_eq!(warped["to"], next_room.as_str());
    let arrived = until(&mut ada_ws, |v| of_type(v, "keyframe").cloned()).await;
    assert_eq!(arrived["name"], "Room 2");
    assert_eq!(arrived["it"], ada.as_str());
    // Bob sees her leave room 1.
    until(&mut bob_ws, |v| {
        of_type(v, "delta")?["removes"]
            .as_array()?
            .iter()
            .any(|id| id == ada.as_str())
            .then_some(())
    })
    .await;

    server.stop().await;
    assert!(
        data.join("orrery.db").exists(),
        "the store was created under the missing directories"
    );
}
