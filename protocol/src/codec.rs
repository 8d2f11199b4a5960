//! JSON and postcard encodings of protocol v1.
//!
//! Binary (`orrery.bin.v1`) is postcard of [`ClientFrame`] / [`ServerFrame`]: `id` as an optional varint, then the
//! message enum as its variant index followed by its fields. JSON (`orrery.json.v1`) puts the message's `type` and
//! the optional `id` beside its fields in one flat object: `{"type":"thrust","id":7,"vx":10,"vy":0}`. Game commands
//! and events share the `type` namespace with the engine's own messages, and the `body` of `keyframe` and `delta` is
//! spread into the same object.

use orrery_engine::Game;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};

use crate::codes;
use crate::messages::{ClientFrame, ClientMessage, ServerFrame};

/// The two encodings of protocol v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON text frames.
    Json,
    /// postcard binary frames.
    Binary,
}

impl Encoding {
    /// The WebSocket subprotocol naming this encoding.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Json => crate::SUBPROTOCOL_JSON,
            Encoding::Binary => crate::SUBPROTOCOL_BIN,
        }
    }

    /// The encoding a subprotocol names, if it is one of ours.
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        match name.trim() {
            crate::SUBPROTOCOL_JSON => Some(Encoding::Json),
            crate::SUBPROTOCOL_BIN => Some(Encoding::Binary),
            _ => None,
        }
    }
}

/// A server frame that could not be encoded (a game type whose serialization fails). The server logs and counts it,
/// and sends an `internal` error frame in its place, never an empty or `null` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not encode a server frame: {0}")]
pub struct EncodeError(pub String);

/// A message that could not be decoded. `id` is the request id when it could still be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    pub id: Option<u64>,
    pub code: &'static str,
    pub message: String,
}

impl DecodeError {
    fn new(id: Option<u64>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            id,
            code,
            message: message.into(),
        }
    }
}

/// Engine message types in the JSON `type` namespace (everything else belongs to the game).
const CLIENT_TYPES: &[&str] = &["ping", "resync", "chat"];
const SERVER_TYPES: &[&str] = &[
    "welcome",
    "keyframe",
    "delta",
    "warped",
    "chat",
    "pong",
    "error",
    "time_dilation",
    "notice",
    "sector_paused",
];
/// Server messages whose `body` field is spread into the JSON object.
const SPREAD_BODY: &[&str] = &["keyframe", "delta"];
const BODY: &str = "body";

/// Turns an externally tagged serde value (`"ping"` or `{"chat": {...}}`) into `(type, fields)`.
fn untag(value: Value) -> (String, Map<String, Value>) {
    match value {
        Value::String(tag) => (tag, Map::new()),
        Value::Object(map) if map.len() == 1 => {
            let (tag, inner) = map.into_iter().next().expect("one entry");
            match inner {
                Value::Object(fields) => (tag, fields),
                other => {
                    let mut fields = Map::new();
                    fields.insert(BODY.to_owned(), other);
                    (tag, fields)
                }
            }
        }
        other => {
            let mut fields = Map::new();
            fields.insert(BODY.to_owned(), other);
            (String::new(), fields)
        }
    }
}

/// Turns `(type, fields)` back into the externally tagged form serde expects.
fn retag(tag: String, fields: Map<String, Value>) -> Value {
    if fields.is_empty() {
        Value::String(tag)
    } else {
        let mut map = Map::new();
        map.insert(tag, Value::Object(fields));
        Value::Object(map)
    }
}

/// Flattens an envelope: engine tag, or `game` whose inner tag takes its place.
fn flatten(value: Value, id: Option<u64>) -> Value {
    let (mut tag, mut fields) = untag(value);
    if tag == "game" {
        let inner = fields.remove(BODY).unwrap_or(Value::Object(fields));
        let (t, f) = untag(inner);
        tag = t;
        fields = f;
    }
    if SPREAD_BODY.contains(&tag.as_str()) {
        if let Some(Value::Object(body)) = fields.remove(BODY) {
            fields.extend(body);
        }
    }
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("type".to_owned(), Value::String(tag));
    if let Some(id) = id {
        out.insert("id".to_owned(), Value::from(id));
    }
    out.extend(fields);
    Value::Object(out)
}

/// A flat JSON message taken apart: request id, `type`, remaining fields.
type Parts = (Option<u64>, String, Map<String, Value>);

/// Splits a flat JSON object into `(id, type, remaining fields)`.
fn split(text: &str) -> Result<Parts, DecodeError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(None, codes::MALFORMED, format!("not valid JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(DecodeError::new(
            None,
            codes::MALFORMED,
            "a message must be a JSON object",
        ));
    };
    let id = match map.remove("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| DecodeError::new(None, codes::INVALID_MESSAGE, "`id` must be an unsigned integer"))?,
        ),
    };
    let tag = match map.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err(DecodeError::new(id, codes::INVALID_MESSAGE, "`type` must be a string")),
        None => return Err(DecodeError::new(id, codes::INVALID_MESSAGE, "missing `type`")),
    };
    Ok((id, tag, map))
}

fn classify(id: Option<u64>, tag: &str, err: serde_json::Error) -> DecodeError {
    let text = err.to_string();
    if text.starts_with(&format!("unknown variant `{tag}`")) {
        DecodeError::new(id, codes::UNKNOWN_TYPE, format!("unknown message type `{tag}`"))
    } else {
        DecodeError::new(id, codes::INVALID_MESSAGE, format!("invalid `{tag}` message: {text}"))
    }
}

/// Decodes a client's JSON text frame.
pub fn client_from_json<C: DeserializeOwned>(text: &str) -> Result<ClientFrame<C>, DecodeError> {
    let (id, tag, fields) = split(text)?;
    let value = if CLIENT_TYPES.contains(&tag.as_str()) {
        retag(tag.clone(), fields)
    } else {
        let mut map = Map::new();
        map.insert("game".to_owned(), retag(tag.clone(), fields));
        Value::Object(map)
    };
    let msg: ClientMessage<C> = serde_json::from_value(value).map_err(|e| classify(id, &tag, e))?;
    Ok(ClientFrame { id, msg })
}

/// Encodes a client frame as JSON text (for clients written in Rust: tests, the load tester).
pub fn client_to_json<C: Serialize>(frame: &ClientFrame<C>) -> String {
    let value = serde_json::to_value(&frame.msg).unwrap_or(Value::Null);
    flatten(value, frame.id).to_string()
}

/// Decodes a client's binary frame.
pub fn client_from_bin<C: DeserializeOwned>(bytes: &[u8]) -> Result<ClientFrame<C>, DecodeError> {
    postcard::from_bytes(bytes).map_err(|e| {
        let code = match e {
            postcard::Error::DeserializeBadEnum => codes::UNKNOWN_TYPE,
            _ => codes::MALFORMED,
        };
        DecodeError::new(None, code, format!("undecodable binary message: {e}"))
    })
}

/// Encodes a client frame as postcard bytes.
pub fn client_to_bin<C: Serialize>(frame: &ClientFrame<C>) -> Vec<u8> {
    postcard::to_allocvec(frame).unwrap_or_default()
}

/// Encodes a server frame as JSON text.
pub fn server_to_json<G: Game>(frame: &ServerFrame<G>) -> Result<String, EncodeError> {
    let value = serde_json::to_value(&frame.msg).map_err(|e| EncodeError(e.to_string()))?;
    Ok(flatten(value, frame.id).to_string())
}

/// Encodes a server frame as postcard bytes.
pub fn server_to_bin<G: Game>(frame: &ServerFrame<G>) -> Result<Vec<u8>, EncodeError> {
    postcard::to_allocvec(frame).map_err(|e| EncodeError(e.to_string()))
}

/// Encodes a server frame in the given encoding.
pub fn server_encode<G: Game>(frame: &ServerFrame<G>, encoding: Encoding) -> Result<Vec<u8>, EncodeError> {
    match encoding {
        Encoding::Json => server_to_json(frame).map(String::into_bytes),
        Encoding::Binary => server_to_bin(frame),
    }
}

/// Decodes a server JSON frame (for Rust clients).
pub fn server_from_json<G: Game>(text: &str) -> Result<ServerFrame<G>, DecodeError> {
    let (id, tag, mut fields) = split(text)?;
    let value = if SERVER_TYPES.contains(&tag.as_str()) {
        if SPREAD_BODY.contains(&tag.as_str()) {
            let mut body = Map::new();
            let keys: Vec<String> = fields
                .keys()
                .filter(|k| !matches!(k.as_str(), "sector" | "seq" | "tick"))
                .cloned()
                .collect();
            for k in keys {
                if let Some(v) = fields.remove(&k) {
                    body.insert(k, v);
                }
            }
            fields.insert(BODY.to_owned(), Value::Object(body));
        }
        retag(tag.clone(), fields)
    } else {
        let mut map = Map::new();
        map.insert("game".to_owned(), retag(tag.clone(), fields));
        Value::Object(map)
    };
    let msg = serde_json::from_value(value).map_err(|e| classify(id, &tag, e))?;
    Ok(ServerFrame { id, msg })
}

/// Decodes a server binary frame (for Rust clients).
pub fn server_from_bin<G: Game>(bytes: &[u8]) -> Result<ServerFrame<G>, DecodeError> {
    postcard::from_bytes(bytes).map_err(|e| DecodeError::new(None, codes::MALFORMED, format!("undecodable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ChatChannel, ServerMessage};
    use orrery_engine::galaxy::{generate, Commodity, GenerateParams};
    use orrery_engine::spacetrade::{
        Command, Delta, Event, Move, Moves, Rules, ShipView, Side, SpaceTrade, Steer, Steers,
    };
    use serde_json::json;
    use uuid::Uuid;

    type G = SpaceTrade;

    fn client(text: &str) -> Result<ClientFrame<Command>, DecodeError> {
        client_from_json(text)
    }

    #[test]
    fn documented_binary_examples_are_exact() {
        let thrust = ClientFrame::new(Some(7), ClientMessage::Game(Command::Thrust { vx: 1.0, vy: 0.0 }));
        assert_eq!(
            client_to_bin(&thrust),
            vec![0x01, 0x07, 0x03, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x00]
        );
        let ping = ClientFrame::<Command>::new(None, ClientMessage::Ping);
        assert_eq!(client_to_bin(&ping), vec![0x00, 0x00]);
        assert_eq!(client_from_bin::<Command>(&[0x00, 0x00]).unwrap(), ping);
    }

    #[test]
    fn json_client_messages_are_flat_and_round_trip() {
        let to = Uuid::new_v4();
        let cases = vec![
            ClientFrame::new(Some(1), ClientMessage::Ping),
            ClientFrame::new(None, ClientMessage::Resync),
            ClientFrame::new(
                Some(2),
                ClientMessage::Chat {
                    channel: ChatChannel::Global,
                    text: "hi".into(),
                },
            ),
            ClientFrame::new(Some(3), ClientMessage::Game(Command::Thrust { vx: 1.5, vy: -2.0 })),
            ClientFrame::new(Some(4), ClientMessage::Game(Command::Warp { to })),
            ClientFrame::new(
                Some(5),
                ClientMessage::Game(Command::Trade {
                    station: to,
                    commodity: Commodity::LuxuryGoods,
                    side: Side::Sell,
                    qty: 9,
                    key: None,
                }),
            ),
        ];
        for frame in cases {
            let text = client_to_json(&frame);
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v["type"].is_string(), "{text}");
            assert_eq!(client(&text).unwrap(), frame, "{text}");
        }
        assert_eq!(
            serde_json::from_str::<Value>(&client_to_json(&ClientFrame::new(
                Some(4),
                ClientMessage::Game(Command::Warp { to })
            )))
            .unwrap(),
            json!({"type": "warp", "id": 4, "to": to})
        );
    }

    #[test]
    fn json_decode_errors_carry_the_id_and_a_stable_code() {
        let e = client("nope").unwrap_err();
        assert_eq!((e.id, e.code), (None, codes::MALFORMED));
        let e = client(r#"{"type":"dance","id":3}"#).unwrap_err();
        assert_eq!((e.id, e.code), (Some(3), codes::UNKNOWN_TYPE));
        let e = client(r#"{"type":"thrust","id":4,"vx":1}"#).unwrap_err();
        assert_eq!((e.id, e.code), (Some(4), codes::INVALID_MESSAGE));
        let e = client(r#"{"type":"resync","id":5,"x":1}"#).unwrap_err();
        assert_eq!((e.id, e.code), (Some(5), codes::INVALID_MESSAGE));
        let e = client(r#"{"type":"ping","id":-1}"#).unwrap_err();
        assert_eq!(e.code, codes::INVALID_MESSAGE);
        let e = client_from_bin::<Command>(&[0x00, 0x09]).unwrap_err();
        assert_eq!((e.id, e.code), (None, codes::MALFORMED));
    }

    #[test]
    fn server_keyframes_and_deltas_spread_their_body_and_round_trip() {
        let galaxy = std::sync::Arc::new(generate(GenerateParams {
            seed: 1,
            regions: 1,
            sectors_per_region: 3,
        }));
        let game = SpaceTrade::new(galaxy.clone(), Rules::default());
        let sector = galaxy.spawn_sector().unwrap().id;
        let state = orrery_engine::Game::new_sector(&game, sector);
        let key = ServerFrame::<G>::new(
            Some(9),
            ServerMessage::Keyframe {
                sector,
                seq: 4,
                tick: 10,
                body: orrery_engine::Game::keyframe(&game, &state),
            },
        );
        let text = server_to_json(&key).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "keyframe");
        assert_eq!(v["id"], 9);
        assert!(v["stations"].is_array() && v["warps"].is_array() && v["ships"].is_array());
        let back = server_from_json::<G>(&text).unwrap();
        assert_eq!(server_to_json(&back).unwrap(), text);
        assert_eq!(server_to_bin(&back).unwrap(), server_to_bin(&key).unwrap());

        let ship = ShipView {
            h: 0,
            id: Uuid::new_v4(),
            owner: Uuid::new_v4(),
            name: "A".into(),
            x: 1.0,
            y: 2.0,
            vx: 3.0,
            vy: 4.0,
        };
        let delta = ServerFrame::<G>::new(
            None,
            ServerMessage::Delta {
                sector,
                seq: 5,
                tick: 11,
                body: Delta {
                    upserts: vec![ship],
                    removes: vec![3],
                    moves: Moves {
                        size: 1000.0,
                        items: vec![Move { h: 1, x: 10.0, y: 20.0 }],
                    },
                    steers: Steers {
                        items: vec![Steer {
                            h: 1,
                            vx: -5.0,
                            vy: 0.5,
                        }],
                    },
                    stations: vec![],
                },
            },
        );
        let text = server_to_json(&delta).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "delta");
        assert!(v.get("id").is_none());
        assert_eq!(v["upserts"][0]["vx"], 3.0);
        assert_eq!(v["moves"], json!([{"h": 1, "x": 10.0, "y": 20.0}]));
        assert_eq!(v["steers"], json!([{"h": 1, "vx": -5.0, "vy": 0.5}]));
        assert_eq!(v["removes"], json!([3]));
        let bin = server_to_bin(&delta).unwrap();
        assert_eq!(server_to_bin(&server_from_bin::<G>(&bin).unwrap()).unwrap(), bin);
        assert_eq!(server_to_json(&server_from_json::<G>(&text).unwrap()).unwrap(), text);
    }

    #[test]
    fn time_dilation_is_flat_in_json_and_the_last_variant_in_binary() {
        let sector = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let frame = ServerFrame::<G>::new(None, ServerMessage::TimeDilation { sector, factor: 0.45 });
        let text = server_to_json(&frame).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"type": "time_dilation", "sector": sector, "factor": 0.45})
        );
        assert_eq!(server_to_json(&server_from_json::<G>(&text).unwrap()).unwrap(), text);
        let bin = server_to_bin(&frame).unwrap();
        // No id; variant 8 (after the eight older ones, whose indices are unchanged); the uuid; the f64.
        let mut expected = vec![0x00, 0x08, 0x10];
        expected.extend_from_slice(sector.as_bytes());
        expected.extend_from_slice(&0.45f64.to_le_bytes());
        assert_eq!(bin, expected);
        assert_eq!(server_to_bin(&server_from_bin::<G>(&bin).unwrap()).unwrap(), bin);
        assert_eq!(
            server_to_bin(&ServerFrame::<G>::new(None, ServerMessage::Pong)).unwrap(),
            vec![0x00, 0x05]
        );
    }

    #[test]
    fn game_events_share_the_type_namespace() {
        let event = ServerFrame::<G>::new(
            Some(2),
            ServerMessage::Game(Event::TradeResult {
                station: Uuid::new_v4(),
                commodity: Commodity::Ore,
                side: Side::Buy,
                qty: 1,
                unit_price: 10,
                total: 10,
                credits: 90,
                cargo: [(Commodity::Ore, 1)].into_iter().collect(),
                station_quantity: 5,
                buy_price: 8,
                sell_price: 11,
            }),
        );
        let text = server_to_json(&event).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "trade_result");
        assert_eq!(v["cargo"]["ore"], 1);
        assert_eq!(server_to_json(&server_from_json::<G>(&text).unwrap()).unwrap(), text);
        let pong = server_to_json(&ServerFrame::<G>::new(Some(1), ServerMessage::Pong)).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&pong).unwrap(),
            json!({"type": "pong", "id": 1})
        );
        let err = server_to_json(&ServerFrame::<G>::error(None, "x_y", "why")).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&err).unwrap(),
            json!({"type": "error", "code": "x_y", "message": "why"})
        );
    }

    #[test]
    fn notice_and_sector_paused_are_flat_in_json_and_appended_in_binary() {
        let sector = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let notice = ServerFrame::<G>::new(
            None,
            ServerMessage::Notice {
                scope: "global".into(),
                text: "restart at noon".into(),
            },
        );
        let text = server_to_json(&notice).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"type": "notice", "scope": "global", "text": "restart at noon"})
        );
        assert_eq!(server_to_json(&server_from_json::<G>(&text).unwrap()).unwrap(), text);
        let bin = server_to_bin(&notice).unwrap();
        let mut expected = vec![0x00, 0x09, 6];
        expected.extend_from_slice(b"global");
        expected.push(15);
        expected.extend_from_slice(b"restart at noon");
        assert_eq!(bin, expected);
        let paused = ServerFrame::<G>::new(None, ServerMessage::SectorPaused { sector, paused: true });
        let text = server_to_json(&paused).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"type": "sector_paused", "sector": sector, "paused": true})
        );
        assert_eq!(server_to_json(&server_from_json::<G>(&text).unwrap()).unwrap(), text);
        let bin = server_to_bin(&paused).unwrap();
        let mut expected = vec![0x00, 0x0a, 0x10];
        expected.extend_from_slice(sector.as_bytes());
        expected.push(0x01);
        assert_eq!(bin, expected);
        assert_eq!(server_to_bin(&server_from_bin::<G>(&bin).unwrap()).unwrap(), bin);
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::messages::ServerMessage;
    use orrery_engine::galaxy::{generate, GenerateParams};
    use orrery_engine::spacetrade::{Command, Rules, SpaceTrade};
    use orrery_engine::{CharacterSeed, Game};
    use uuid::Uuid;

    /// The binary delta of a sector of 100 moving ships, half of which changed course this tick, fits in the
    /// 1,000-byte budget (the reference Colyseus patch is 2,001 bytes).
    #[test]
    fn a_hundred_moving_ships_fit_in_a_thousand_bytes() {
        let galaxy = std::sync::Arc::new(generate(GenerateParams {
            seed: 1,
            regions: 1,
            sectors_per_region: 2,
        }));
        let game = SpaceTrade::new(galaxy.clone(), Rules::default());
        let sector_id = galaxy.spawn_sector().unwrap().id;
        let mut sector = game.new_sector(sector_id);
        let mut ids = Vec::new();
        for n in 0..100u128 {
            let seed = CharacterSeed {
                character_id: Uuid::from_u128(n + 1),
                name: format!("r0c{n}"),
            };
            let (_, ship) = game.spawn(&seed, 0);
            ids.push(game.avatar_id(&ship));
            game.admit(&mut sector, ship, 0);
        }
        for (i, id) in ids.iter().enumerate() {
            let v = (i as f32 * 1.7) % 90.0 + 5.0;
            game.handle(&mut sector, *id, Command::Thrust { vx: v, vy: -v }, 0)
                .unwrap();
        }
        game.tick(&mut sector, 0.05);
        for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            let v = (i as f32 * 3.1) % 80.0 + 3.0;
            game.handle(&mut sector, *id, Command::Thrust { vx: -v, vy: v }, 0)
                .unwrap();
        }
        let delta = game.tick(&mut sector, 0.05).unwrap();
        assert_eq!((delta.moves.items.len(), delta.steers.items.len()), (100, 50));
        let frame = ServerFrame::<SpaceTrade>::new(
            None,
            ServerMessage::Delta {
                sector: sector_id,
                seq: 123_456,
                tick: 1_234_567,
                body: delta,
            },
        );
        let bytes = server_to_bin(&frame).unwrap().len();
        assert!(bytes <= 1000, "{bytes} bytes");
        let json = server_to_json(&frame).unwrap().len();
        assert!(json > bytes, "JSON ({json}) is the readable, larger form");
    }
}
