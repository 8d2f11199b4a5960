//! Protocol fixtures for the TypeScript SDK (sdk/typescript): a representative value of every client and server
//! message of protocol v1 with the reference game, encoded by the real Rust encoders in JSON and in binary
//! (postcard, hex), written to `sdk/typescript/test/fixtures/protocol-v1.json`.
//!
//! This test fails when the committed file differs from what the encoders produce now, so a change of the Rust
//! messages shows up here, and the SDK's tests (which decode every server fixture and encode every client fixture
//! byte for byte) then hold the TypeScript side to it. Regenerate after a deliberate change with
//! `UPDATE_FIXTURES=1 cargo test -p orrery-protocol --test sdk_fixtures`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use orrery_engine::galaxy::{Commodity, Listing};
use orrery_engine::spacetrade::{
    Command, Delta, Event, Keyframe, Move, Moves, Profile, ShipView, Side, SpaceTrade, StationView, Steer, Steers,
    WarpView,
};
use orrery_protocol::codec;
use orrery_protocol::{ChatChannel, ClientFrame, ClientMessage, ServerFrame, ServerMessage};
use serde_json::{json, Value};
use uuid::Uuid;

type Msg = ServerMessage<SpaceTrade>;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x5b0c_2f8e_3f0e_4a1c_9a53_0000_0000_0000 | n)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ship(h: u32, n: u128, name: &str, x: f32, y: f32, vx: f32, vy: f32) -> ShipView {
    ShipView {
        h,
        id: id(0x100 + n),
        owner: id(0x200 + n),
        name: Arc::from(name),
        x,
        y,
        vx,
        vy,
    }
}

fn station(n: u128, quantity: u32) -> StationView {
    StationView {
        id: id(0x300 + n),
        name: format!("Station {n}"),
        credits: 12_000_000_000,
        commodities: vec![
            Listing {
                commodity: Commodity::Ore,
                quantity,
                capacity: 2000,
                buy_price: 17,
                sell_price: 23,
            },
            Listing {
                commodity: Commodity::LuxuryGoods,
                quantity: 5,
                capacity: 300,
                buy_price: 410,
                sell_price: 455,
            },
        ],
    }
}

fn cargo() -> BTreeMap<Commodity, u32> {
    [
        (Commodity::Ore, 3),
        (Commodity::Fuel, 70_000),
        (Commodity::LuxuryGoods, 1),
    ]
    .into_iter()
    .collect()
}

fn client_cases() -> Vec<(&'static str, ClientFrame<Command>)> {
    let game = |id, c| ClientFrame::new(id, ClientMessage::Game(c));
    vec![
        ("ping", ClientFrame::new(Some(3), ClientMessage::Ping)),
        ("ping_without_id", ClientFrame::new(None, ClientMessage::Ping)),
        ("resync", ClientFrame::new(Some(300), ClientMessage::Resync)),
        (
            "chat_sector",
            ClientFrame::new(
                None,
                ClientMessage::Chat {
                    channel: ChatChannel::Sector,
                    text: "o7".into(),
                },
            ),
        ),
        (
            "chat_global",
            ClientFrame::new(
                Some(4),
                ClientMessage::Chat {
                    channel: ChatChannel::Global,
                    text: "anyone selling fuel near Vega? ✓ ü".into(),
                },
            ),
        ),
        ("thrust", game(Some(7), Command::Thrust { vx: 1.0, vy: 0.0 })),
        ("thrust_fractional", game(None, Command::Thrust { vx: -40.25, vy: 0.1 })),
        ("warp", game(Some(1 << 40), Command::Warp { to: id(0x400) })),
        (
            "trade_with_key",
            game(
                Some(9),
                Command::Trade {
                    station: id(0x301),
                    commodity: Commodity::Ore,
                    side: Side::Buy,
                    qty: 3,
                    key: Some("9f8e7d6c-buy-ore-1".into()),
                },
            ),
        ),
        (
            "trade_without_key",
            game(
                Some(10),
                Command::Trade {
                    station: id(0x302),
                    commodity: Commodity::LuxuryGoods,
                    side: Side::Sell,
                    qty: 1_000_000,
                    key: None,
                },
            ),
        ),
    ]
}

fn server_cases() -> Vec<(&'static str, ServerFrame<SpaceTrade>)> {
    let sector = id(0x10);
    let f = |id, m: Msg| ServerFrame::<SpaceTrade>::new(id, m);
    vec![
        (
            "welcome",
            f(
                None,
                Msg::Welcome {
                    session: id(0x20),
                    character: Profile {
                        id: id(0x201),
                        name: "Ada".into(),
                        ship: id(0x101),
                        credits: 10_000,
                        cargo: cargo(),
                        cargo_capacity: 100,
                        turns: 95,
                        turns_max: 100,
                    },
                    sector,
                    tick_hz: 20,
                },
            ),
        ),
        (
            "keyframe",
            f(
                Some(5),
                Msg::Keyframe {
                    sector,
                    seq: 123_456_789,
                    tick: 9_007_199_254_740_991,
                    body: Keyframe {
                        name: "Nexus Prime".into(),
                        size: 1000.0,
                        ships: vec![
                            ship(0, 1, "Ada", 512.5, 233.0, 0.0, 0.0),
                            ship(200, 2, "Bø", 0.1, 999.9, -100.0, 12.75),
                        ],
                        stations: vec![station(1, 1200)],
                        warps: vec![
                            WarpView {
                                to: id(0x400),
                                name: "Vega Gate".into(),
                                turns: 5,
                                region: id(0x500),
                            },
                            WarpView {
                                to: id(0x401),
                                name: "Deep Nexus".into(),
                                turns: 0,
                                region: id(0x501),
                            },
                        ],
                    },
                },
            ),
        ),
        (
            "keyframe_empty",
            f(
                None,
                Msg::Keyframe {
                    sector,
                    seq: 0,
                    tick: 0,
                    body: Keyframe {
                        name: "Quiet".into(),
                        size: 250.0,
                        ships: vec![],
                        stations: vec![],
                        warps: vec![],
                    },
                },
            ),
        ),
        (
            "delta",
            f(
                None,
                Msg::Delta {
                    sector,
                    seq: 123_456_790,
                    tick: 1871,
                    body: Delta {
                        upserts: vec![ship(2, 3, "Bo", 10.0, 990.0, 0.0, 0.0)],
                        removes: vec![5, 300],
                        moves: Moves {
                            size: 1000.0,
                            items: vec![
                                Move {
                                    h: 0,
                                    x: 514.5,
                                    y: 232.0,
                                },
                                Move {
                                    h: 9,
                                    x: 1000.0,
                                    y: 0.0,
                                },
                                Move {
                                    h: 200,
                                    x: 0.1,
                                    y: 999.9,
                                },
                            ],
                        },
                        steers: Steers {
                            items: vec![
                                Steer {
                                    h: 0,
                                    vx: 40.0,
                                    vy: -20.0,
                                },
                                Steer {
                                    h: 17,
                                    vx: -99.123_45,
                                    vy: 0.1,
                                },
                            ],
                        },
                        stations: vec![station(1, 1197)],
                    },
                },
            ),
        ),
        (
            "delta_empty",
            f(
                None,
                Msg::Delta {
                    sector,
                    seq: 1,
                    tick: 2,
                    body: Delta {
                        upserts: vec![],
                        removes: vec![],
                        moves: Moves {
                            size: 1000.0,
                            items: vec![],
                        },
                        steers: Steers { items: vec![] },
                        stations: vec![],
                    },
                },
            ),
        ),
        (
            "warped",
            f(
                Some(7),
                Msg::Warped {
                    from: sector,
                    to: id(0x400),
                },
            ),
        ),
        (
            "chat",
            f(
                None,
                Msg::Chat {
                    channel: ChatChannel::Global,
                    from: id(0x201),
                    name: "Ada".into(),
                    text: "o7 ✓".into(),
                },
            ),
        ),
        ("pong", f(Some(3), Msg::Pong)),
        ("pong_without_id", f(None, Msg::Pong)),
        (
            "error",
            f(
                Some(8),
                Msg::Error {
                    code: "not_enough_turns".into(),
                    message: "not enough turns: the warp costs 5, 2 available".into(),
                },
            ),
        ),
        (
            "trade_result",
            f(
                Some(9),
                Msg::Game(Event::TradeResult {
                    station: id(0x301),
                    commodity: Commodity::Ore,
                    side: Side::Buy,
                    qty: 3,
                    unit_price: 23,
                    total: 69,
                    credits: 9931,
                    cargo: cargo(),
                    station_quantity: 1197,
                    buy_price: 17,
                    sell_price: 23,
                }),
            ),
        ),
        ("time_dilation", f(None, Msg::TimeDilation { sector, factor: 0.45 })),
        (
            "notice_kick",
            f(
                None,
                Msg::Notice {
                    scope: "kick".into(),
                    text: "be nice".into(),
                },
            ),
        ),
        (
            "notice_global",
            f(
                None,
                Msg::Notice {
                    scope: "global".into(),
                    text: "Server restart at 12:00 UTC".into(),
                },
            ),
        ),
        ("sector_paused", f(None, Msg::SectorPaused { sector, paused: true })),
        ("sector_resumed", f(None, Msg::SectorPaused { sector, paused: false })),
    ]
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("the encoder writes JSON")
}

/// Every fixture, as the file holds it.
fn fixtures() -> Value {
    let client: Vec<Value> = client_cases()
        .into_iter()
        .map(|(name, frame)| {
            let text = codec::client_to_json(&frame);
            let bin = codec::client_to_bin(&frame);
            // The server decodes both back to the same message.
            assert_eq!(codec::client_from_json::<Command>(&text).unwrap(), frame, "{name}");
            assert_eq!(codec::client_from_bin::<Command>(&bin).unwrap(), frame, "{name}");
            json!({"name": name, "json": parse(&text), "bin": hex(&bin)})
        })
        .collect();
    let server: Vec<Value> = server_cases()
        .into_iter()
        .map(|(name, frame)| {
            let text = codec::server_to_json(&frame).unwrap();
            let bin = codec::server_to_bin(&frame).unwrap();
            // What a client decoding the binary frame sees, in JSON: binary positions in deltas are quantized.
            let from_bin = codec::server_from_bin::<SpaceTrade>(&bin).unwrap();
            let json_from_bin = codec::server_to_json(&from_bin).unwrap();
            json!({"name": name, "json": parse(&text), "bin": hex(&bin), "json_from_bin": parse(&json_from_bin)})
        })
        .collect();
    json!({
        "about": "Protocol v1 fixtures written by protocol/tests/sdk_fixtures.rs with the Rust encoders; \
                  regenerate with UPDATE_FIXTURES=1 cargo test -p orrery-protocol --test sdk_fixtures",
        "subprotocols": {"json": orrery_protocol::SUBPROTOCOL_JSON, "binary": orrery_protocol::SUBPROTOCOL_BIN},
        "client": client,
        "server": server,
    })
}

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk/typescript/test/fixtures/protocol-v1.json")
}

#[test]
fn every_message_has_a_fixture() {
    let server: Vec<&str> = server_cases().iter().map(|(_, f)| f.msg.kind()).collect();
    for kind in [
        "welcome",
        "keyframe",
        "delta",
        "warped",
        "chat",
        "pong",
        "error",
        "game",
        "time_dilation",
        "notice",
        "sector_paused",
    ] {
        assert!(server.contains(&kind), "no server fixture of `{kind}`");
    }
    let client: Vec<String> = client_cases()
        .iter()
        .map(|(_, f)| parse(&codec::client_to_json(f))["type"].as_str().unwrap().to_owned())
        .collect();
    for kind in ["ping", "resync", "chat", "thrust", "warp", "trade"] {
        assert!(client.iter().any(|c| c == kind), "no client fixture of `{kind}`");
    }
}

#[test]
fn the_sdk_fixtures_match_the_rust_encoders() {
    let text = serde_json::to_string_pretty(&fixtures()).unwrap() + "\n";
    let path = fixture_path();
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; generate it with UPDATE_FIXTURES=1 cargo test -p orrery-protocol --test sdk_fixtures",
            path.display()
        )
    });
    assert!(
        committed == text,
        "{} is out of date with the Rust encoders: regenerate it with \
         UPDATE_FIXTURES=1 cargo test -p orrery-protocol --test sdk_fixtures, then run the SDK's tests \
         (cd sdk/typescript && npm test)",
        path.display()
    );
}
