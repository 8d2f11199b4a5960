//! Tests of the space-trade rules: spawn, motion, clamping, deltas, warps, keyframes, profiles and serde.

use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use uuid::Uuid;

use super::*;
use crate::galaxy::{Commodity, Galaxy, Listing, Region, Sector, Station, Warp};
use crate::game::{CharacterSeed, Game, GameError, Outcome};
use crate::turns::TurnPool;

pub(crate) const A: Uuid = Uuid::from_u128(0xA);
pub(crate) const B: Uuid = Uuid::from_u128(0xB);
pub(crate) const C: Uuid = Uuid::from_u128(0xC);
pub(crate) const EXCHANGE: Uuid = Uuid::from_u128(0x5A);
pub(crate) const DEPOT: Uuid = Uuid::from_u128(0x5C);
pub(crate) const NEXUS: Uuid = Uuid::from_u128(0x1);
pub(crate) const RIM: Uuid = Uuid::from_u128(0x2);
pub(crate) const T0: i64 = 1_700_000_000_000;

fn listing(commodity: Commodity, quantity: u32, capacity: u32, buy_price: u32, sell_price: u32) -> Listing {
    Listing {
        commodity,
        quantity,
        capacity,
        buy_price,
        sell_price,
    }
}

/// Nexus {A (spawn, "Exchange"), B} and Rim {C ("Depot")}; A <-> B at 1 turn, B <-> C at 5 turns.
pub(crate) fn galaxy() -> Galaxy {
    let sector = |id, name: &str, warps: Vec<Warp>, stations| Sector {
        id,
        name: name.into(),
        spawn: id == A,
        warps,
        stations,
    };
    let exchange = Station {
        id: EXCHANGE,
        name: "Exchange".into(),
        commodities: vec![
            listing(Commodity::Ore, 500, 1000, 18, 22),
            listing(Commodity::Fuel, 990, 1000, 13, 17),
            listing(Commodity::Equipment, 100, 400, 70, 90),
        ],
    };
    let depot = Station {
        id: DEPOT,
        name: "Depot".into(),
        commodities: vec![listing(Commodity::Organics, 10, 20, 5, 6)],
    };
    Galaxy {
        name: "Test".into(),
        seed: None,
        sector_size: 1000.0,
        regions: vec![
            Region {
                id: NEXUS,
                name: "Nexus".into(),
                nexus: true,
                sectors: vec![
                    sector(A, "Alpha", vec![Warp { to: B, turns: 1 }], vec![exchange]),
                    sector(
                        B,
                        "Beta",
                        vec![Warp { to: A, turns: 1 }, Warp { to: C, turns: 5 }],
                        vec![],
                    ),
                ],
            },
            Region {
                id: RIM,
                name: "Rim".into(),
                nexus: false,
                sectors: vec![sector(C, "Gamma", vec![Warp { to: B, turns: 5 }], vec![depot])],
            },
        ],
    }
}

pub(crate) fn game() -> SpaceTrade {
    let g = galaxy();
    assert_eq!(g.validate(), Ok(()));
    SpaceTrade::new(Arc::new(g), Rules::default())
}

pub(crate) fn character(n: u128) -> CharacterSeed {
    CharacterSeed {
        character_id: Uuid::from_u128(0xC0DE_0000 + n),
        name: format!("Pilot {n}"),
    }
}

/// A freshly spawned ship of character `n`, at rest at (x, y).
pub(crate) fn ship_at(game: &SpaceTrade, n: u128, x: f32, y: f32) -> Ship {
    let (_, mut ship) = game.spawn(&character(n), T0);
    (ship.x, ship.y) = (x, y);
    ship
}

/// Sector A with the given ships admitted and the admission delta already drained.
pub(crate) fn sector_with(game: &SpaceTrade, ships: Vec<Ship>) -> SectorState {
    let mut s = game.new_sector(A);
    for ship in ships {
        game.admit(&mut s, ship, T0);
    }
    game.tick(&mut s, 0.05);
    s
}

pub(crate) fn thrust(vx: f32, vy: f32) -> Command {
    Command::Thrust { vx, vy }
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), value, "json: {json}");
    let bytes = postcard::to_allocvec(value).unwrap();
    assert_eq!(&postcard::from_bytes::<T>(&bytes).unwrap(), value, "postcard");
}

#[test]
fn spawn_is_deterministic_and_starts_with_the_rules_defaults() {
    let game = game();
    let (sector, ship) = game.spawn(&character(1), T0);
    let (sector2, again) = game.spawn(&character(1), T0 + 5_000);
    assert_eq!(sector, A);
    assert_eq!(sector2, A);
    assert_eq!((ship.id, ship.x, ship.y), (again.id, again.x, again.y));
    assert_eq!(ship.id, SpaceTrade::ship_id_for(character(1).character_id));
    assert_eq!(ship.id.get_version_num(), 4);
    assert_ne!(ship.id, game.spawn(&character(2), T0).1.id);
    assert_eq!(ship.owner, character(1).character_id);
    assert_eq!(ship.name, "Pilot 1");
    assert!(
        (100.0..=900.0).contains(&ship.x) && (100.0..=900.0).contains(&ship.y),
        "{ship:?}"
    );
    assert_eq!((ship.vx, ship.vy), (0.0, 0.0));
    assert_eq!((ship.credits, ship.cargo_capacity), (10_000, 100));
    assert!(ship.cargo.is_empty());
    assert_eq!(
        ship.turns,
        TurnPool {
            turns: 100,
            updated_at: T0
        }
    );
    assert_eq!(game.avatar_id(&ship), ship.id);
}

#[test]
fn thrust_sets_clamped_velocity_and_shows_in_the_next_delta() {
    let game = game();
    let ship = ship_at(&game, 1, 500.0, 500.0);
    let id = ship.id;
    let mut s = sector_with(&game, vec![ship]);
    assert!(matches!(
        game.handle(&mut s, id, thrust(500.0, -30.0), T0),
        Ok(Outcome::Reply(None))
    ));
    let h = s.handle(id).unwrap();
    let d = game.tick(&mut s, 0.05).unwrap();
    assert!(d.upserts.is_empty(), "a known ship is not sent in full");
    assert_eq!(
        d.steers.items,
        vec![Steer {
            h,
            vx: 100.0,
            vy: -30.0
        }]
    );
    assert_eq!(d.moves.items, vec![Move { h, x: 505.0, y: 498.5 }]);
    assert!(d.removes.is_empty() && d.stations.is_empty());
    // Still moving: reported every tick; the velocity only when it changes.
    let d = game.tick(&mut s, 0.05).unwrap();
    assert_eq!(d.moves.items, vec![Move { h, x: 510.0, y: 497.0 }]);
    assert!(d.steers.items.is_empty());
    // Negative limit side too.
    game.handle(&mut s, id, thrust(-1e30, 0.0), T0).unwrap();
    assert_eq!(s.ship(id).unwrap().vx, -100.0);
}

#[test]
fn positions_clamp_to_the_sector_and_stuck_ships_drop_out_of_deltas() {
    let game = game();
    let ship = ship_at(&game, 1, 998.0, 2.0);
    let id = ship.id;
    let mut s = sector_with(&game, vec![ship]);
    game.handle(&mut s, id, thrust(100.0, -100.0), T0).unwrap();
    let h = s.handle(id).unwrap();
    let d = game.tick(&mut s, 0.05).unwrap();
    assert_eq!(d.moves.items, vec![Move { h, x: 1000.0, y: 0.0 }]);
    assert_eq!(
        d.steers.items,
        vec![Steer {
            h,
            vx: 100.0,
            vy: -100.0
        }]
    );
    assert_eq!(
        (s.ship(id).unwrap().vx, s.ship(id).unwrap().vy),
        (100.0, -100.0),
        "velocity is kept at the wall"
    );
    assert_eq!(
        game.tick(&mut s, 0.05),
        None,
        "pinned against the corner: nothing changes"
    );
    // Sliding along a wall still moves.
    game.handle(&mut s, id, thrust(100.0, 20.0), T0).unwrap();
    let d = game.tick(&mut s, 0.5).unwrap();
    assert_eq!(d.moves.items, vec![Move { h, x: 1000.0, y: 10.0 }]);
}

#[test]
fn non_finite_thrust_is_refused_and_changes_nothing() {
    let game = game();
    let ship = ship_at(&game, 1, 500.0, 500.0);
    let id = ship.id;
    let mut s = sector_with(&game, vec![ship]);
    let before = s.clone();
    for (vx, vy) in [(f32::NAN, 0.0), (0.0, f32::INFINITY), (f32::NEG_INFINITY, 1.0)] {
        let err = game.handle(&mut s, id, thrust(vx, vy), T0).unwrap_err();
        assert_eq!(err.code(), "invalid_value");
    }
    assert_eq!(s, before);
    assert_eq!(game.tick(&mut s, 0.05), None);
}

#[test]
fn deltas_carry_admissions_departures_and_only_changed_ships() {
    let game = game();
    let (a, b) = (ship_at(&game, 1, 100.0, 100.0), ship_at(&game, 2, 200.0, 200.0));
    let (ia, ib) = (a.id, b.id);
    let mut s = game.new_sector(A);
    game.admit(&mut s, a, T0);
    game.admit(&mut s, b, T0);
    let d = game.tick(&mut s, 0.05).unwrap();
    assert_eq!(
        d.upserts.iter().map(|v| v.id).collect::<Vec<_>>(),
        [ia, ib],
        "admission order"
    );
    assert_eq!(game.tick(&mut s, 0.05), None, "nothing changed since");

    game.handle(&mut s, ib, thrust(10.0, 0.0), T0).unwrap();
    let (ha, hb) = (s.handle(ia).unwrap(), s.handle(ib).unwrap());
    assert_eq!((ha, hb), (0, 1), "handles are the lowest free numbers");
    let d = game.tick(&mut s, 0.1).unwrap();
    assert_eq!(
        d.moves.items,
        vec![Move {
            h: hb,
            x: 201.0,
            y: 200.0
        }],
        "the ship at rest is absent"
    );
    assert_eq!(
        d.steers.items,
        vec![Steer {
            h: hb,
            vx: 10.0,
            vy: 0.0
        }]
    );
    // The same velocity again is no change, but the ship still moves.
    game.handle(&mut s, ib, thrust(10.0, 0.0), T0).unwrap();
    let d = game.tick(&mut s, 0.1).unwrap();
    assert_eq!((d.moves.items[0].x, d.steers.items.len()), (202.0, 0));
    game.handle(&mut s, ib, thrust(0.0, 0.0), T0).unwrap();
    let d = game.tick(&mut s, 0.1).unwrap();
    assert_eq!(
        d.steers.items,
        vec![Steer {
            h: hb,
            vx: 0.0,
            vy: 0.0
        }],
        "stopping is a change"
    );
    assert!(d.moves.items.is_empty());
    assert_eq!(game.tick(&mut s, 0.1), None);

    let gone = game.depart(&mut s, ia).unwrap();
    assert_eq!(gone.id, ia);
    assert_eq!(game.depart(&mut s, ia), None);
    let d = game.tick(&mut s, 0.05).unwrap();
    assert_eq!((d.upserts.len(), d.removes.clone()), (0, vec![ha]));
    assert_eq!(game.tick(&mut s, 0.05), None);
    assert_eq!(game.avatars(&s).iter().map(|s| s.id).collect::<Vec<_>>(), [ib]);

    // Leaving and coming back within one tick: a removal, then the ship in full (with the lowest free handle);
    // re-admitting replaces.
    game.depart(&mut s, ib).unwrap();
    let mut back = gone.clone();
    back.id = ib;
    back.x = 300.0;
    game.admit(&mut s, back.clone(), T0);
    game.admit(&mut s, back, T0);
    let d = game.tick(&mut s, 0.05).unwrap();
    assert_eq!(d.removes, vec![hb]);
    assert_eq!(d.upserts.len(), 1);
    assert_eq!((d.upserts[0].h, d.upserts[0].id, d.upserts[0].x), (0, ib, 300.0));
    assert_eq!(s.ships().len(), 1);
}

#[test]
fn departure_keeps_the_index_consistent() {
    let game = game();
    let ships: Vec<Ship> = (0..5).map(|n| ship_at(&game, n, 10.0 * n as f32, 0.0)).collect();
    let ids: Vec<Uuid> = ships.iter().map(|s| s.id).collect();
    let mut s = sector_with(&game, ships);
    let gone = s.handle(ids[1]).unwrap();
    game.depart(&mut s, ids[1]).unwrap();
    for &id in [ids[0], ids[2], ids[3], ids[4]].iter() {
        assert_eq!(s.ship(id).unwrap().id, id);
        game.handle(&mut s, id, thrust(1.0, 0.0), T0).unwrap();
    }
    let d = game.tick(&mut s, 1.0).unwrap();
    assert_eq!(d.moves.items.len(), 4);
    assert_eq!(d.removes, [gone]);
    assert!(ids.iter().all(|&id| id == ids[1] || s.handle(id).unwrap() != gone));
    assert_eq!(
        game.handle(&mut s, ids[1], thrust(1.0, 0.0), T0).unwrap_err().code(),
        "not_in_sector"
    );
}

#[test]
fn admit_sanitizes_positions_and_velocities() {
    let game = game();
    let mut ship = ship_at(&game, 1, f32::NAN, 5_000.0);
    (ship.vx, ship.vy) = (f32::INFINITY, -250.0);
    let id = ship.id;
    let mut s = game.new_sector(A);
    game.admit(&mut s, ship, T0);
    let ship = s.ship(id).unwrap();
    assert_eq!((ship.x, ship.y, ship.vx, ship.vy), (500.0, 1000.0, 0.0, -100.0));
}

#[test]
fn bad_dt_moves_nothing_but_still_flushes_changes() {
    let game = game();
    let ship = ship_at(&game, 1, 500.0, 500.0);
    let id = ship.id;
    let mut s = game.new_sector(A);
    game.admit(&mut s, ship, T0);
    game.handle(&mut s, id, thrust(50.0, 0.0), T0).unwrap();
    let d = game.tick(&mut s, f32::NAN).unwrap();
    assert_eq!(
        (d.upserts[0].x, d.upserts[0].vx),
        (500.0, 50.0),
        "admitted this tick: sent in full"
    );
    assert!(d.moves.items.is_empty() && d.steers.items.is_empty());
    assert_eq!(game.tick(&mut s, -1.0), None);
}

#[test]
fn warp_transfers_the_ship_and_pays_its_turns() {
    let game = game();
    let mut ship = ship_at(&game, 1, 100.0, 100.0);
    (ship.vx, ship.vy) = (30.0, 40.0);
    let id = ship.id;
    let mut s = sector_with(&game, vec![ship]);
    let h = s.handle(id).unwrap();
    let Outcome::Transfer { avatar, to } = game.handle(&mut s, id, Command::Warp { to: B }, T0 + 1).unwrap() else {
        panic!("expected a transfer");
    };
    assert_eq!(to, B);
    assert_eq!(
        (avatar.id, avatar.x, avatar.y, avatar.vx, avatar.vy),
        (id, 500.0, 500.0, 0.0, 0.0)
    );
    assert_eq!(avatar.turns.available(T0 + 1, &game.rules().turns), 99);
    assert!(s.ship(id).is_none());
    assert_eq!(game.tick(&mut s, 0.05).unwrap().removes, [h]);

    let mut b = game.new_sector(B);
    game.admit(&mut b, avatar, T0 + 1);
    let d = game.tick(&mut b, 0.05).unwrap();
    assert_eq!((d.upserts[0].id, d.upserts[0].x), (id, 500.0));
    assert_eq!(game.profile(&b.ships()[0], T0 + 1).turns, 99);
}

#[test]
fn warp_refusals_change_nothing() {
    let game = game();
    let mut poor = ship_at(&game, 1, 100.0, 100.0);
    poor.turns = TurnPool {
        turns: 0,
        updated_at: T0,
    };
    let id = poor.id;
    let mut s = sector_with(&game, vec![poor]);
    let before = s.clone();
    let refuse = |s: &mut SectorState, who, to| game.handle(s, who, Command::Warp { to }, T0 + 999).unwrap_err();
    assert_eq!(refuse(&mut s, id, C), Error::NoSuchWarp { to: C }, "C is two hops away");
    assert_eq!(refuse(&mut s, id, A).code(), "no_such_warp", "no warp to itself");
    assert_eq!(refuse(&mut s, Uuid::from_u128(99), B).code(), "not_in_sector");
    let e = refuse(&mut s, id, B);
    assert_eq!(
        e,
        Error::NotEnoughTurns {
            needed: 1,
            available: 0
        }
    );
    assert_eq!(e.code(), "not_enough_turns");
    assert_eq!(s, before);
    // One second later the pool has regained a turn.
    assert!(matches!(
        game.handle(&mut s, id, Command::Warp { to: B }, T0 + 1_000),
        Ok(Outcome::Transfer { .. })
    ));
}

#[test]
fn keyframe_shows_ships_stations_and_named_warps() {
    let game = game();
    let ship = ship_at(&game, 1, 100.0, 200.0);
    let mut s = game.new_sector(B);
    game.admit(&mut s, ship.clone(), T0);
    let k = game.keyframe(&s);
    assert_eq!((k.name.as_str(), k.size), ("Beta", 1000.0));
    assert_eq!(k.ships, vec![ship.view(0)]);
    assert!(k.stations.is_empty());
    assert_eq!(
        k.warps,
        vec![
            WarpView {
                to: A,
                name: "Alpha".into(),
                turns: 1,
                region: NEXUS
            },
            WarpView {
                to: C,
                name: "Gamma".into(),
                turns: 5,
                region: RIM
            },
        ]
    );
    let k = game.keyframe(&game.new_sector(A));
    assert_eq!(k.stations.len(), 1);
    assert_eq!(k.stations[0].id, EXCHANGE);
    // Listed prices follow stock from the start (ore: half stock, base 18/22).
    assert_eq!(k.stations[0].commodities[0], listing(Commodity::Ore, 500, 1000, 17, 23));
    assert!(
        game.tick(&mut s, 0.05).is_some(),
        "a keyframe leaves pending changes for the next delta"
    );
}

#[test]
fn layout_profile_and_unknown_sectors() {
    let game = game();
    let layout = game.layout();
    assert_eq!(layout.len(), 2);
    assert!(layout[0].nexus);
    assert_eq!(layout[0].sectors.iter().map(|s| s.id).collect::<Vec<_>>(), [A, B]);
    assert_eq!(game.spawn_sector(), A);

    let (_, mut ship) = game.spawn(&character(7), T0);
    ship.turns.spend(30, T0, &game.rules().turns).unwrap();
    ship.cargo.insert(Commodity::Fuel, 3);
    let p = game.profile(&ship, T0 + 10_000);
    assert_eq!(
        p,
        Profile {
            id: character(7).character_id,
            name: "Pilot 7".into(),
            ship: ship.id,
            credits: 10_000,
            cargo: [(Commodity::Fuel, 3)].into(),
            cargo_capacity: 100,
            turns: 80,
            turns_max: 100,
        }
    );

    let unknown = Uuid::from_u128(0xDEAD);
    let mut s = game.new_sector(unknown);
    assert_eq!((s.id(), s.warps().len(), s.stations().len()), (unknown, 0, 0));
    assert_eq!(game.tick(&mut s, 0.05), None);
}

#[test]
fn commands_use_the_documented_json_shape() {
    assert_eq!(
        serde_json::to_string(&thrust(1.0, 2.5)).unwrap(),
        r#"{"thrust":{"vx":1.0,"vy":2.5}}"#
    );
    let c: Command = serde_json::from_str(r#"{"thrust":{"vx":1,"vy":2}}"#).unwrap();
    assert_eq!(c, thrust(1.0, 2.0));
    let trade = format!(r#"{{"trade":{{"station":"{EXCHANGE}","commodity":"luxury_goods","side":"sell","qty":3}}}}"#);
    assert_eq!(
        serde_json::from_str::<Command>(&trade).unwrap(),
        Command::Trade {
            station: EXCHANGE,
            commodity: Commodity::LuxuryGoods,
            side: Side::Sell,
            qty: 3,
            key: None,
        }
    );
    assert!(
        serde_json::from_str::<Command>(r#"{"thrust":{"vx":1,"vy":2,"vz":3}}"#).is_err(),
        "unknown field"
    );
    assert!(
        serde_json::from_str::<Command>(r#"{"jump":{}}"#).is_err(),
        "unknown command"
    );
    let warp = serde_json::to_value(Command::Warp { to: B }).unwrap();
    assert_eq!(warp, serde_json::json!({ "warp": { "to": B.to_string() } }));
}

#[test]
fn every_wire_and_snapshot_type_round_trips_through_json_and_postcard() {
    let game = game();
    let mut ship = ship_at(&game, 1, 12.5, 700.25);
    ship.cargo.insert(Commodity::Ore, 4);
    ship.cargo.insert(Commodity::LuxuryGoods, 1);
    let (id, other) = (ship.id, ship_at(&game, 2, 1.0, 2.0));
    round_trip(&ship);
    for c in [
        thrust(-3.5, 99.0),
        Command::Warp { to: B },
        Command::Trade {
            station: EXCHANGE,
            commodity: Commodity::Fuel,
            side: Side::Buy,
            qty: 7,
            key: None,
        },
    ] {
        round_trip(&c);
    }
    let mut s = game.new_sector(A);
    game.admit(&mut s, ship.clone(), T0);
    game.admit(&mut s, other.clone(), T0);
    game.tick(&mut s, 0.05);
    let Outcome::Posted { reply: event, .. } = game
        .handle(
            &mut s,
            id,
            Command::Trade {
                station: EXCHANGE,
                commodity: Commodity::Ore,
                side: Side::Sell,
                qty: 4,
                key: Some("retry-1".into()),
            },
            T0,
        )
        .unwrap()
    else {
        panic!("expected a trade result");
    };
    assert!(serde_json::to_string(&event)
        .unwrap()
        .starts_with(r#"{"trade_result":{"#));
    round_trip(&event);
    game.handle(&mut s, id, thrust(5.0, 5.0), T0).unwrap();
    game.depart(&mut s, other.id);
    // The sector with pending changes (a moved ship, a departure, a changed station) survives a snapshot.
    round_trip(&s);
    let restored: SectorState = postcard::from_bytes(&postcard::to_allocvec(&s).unwrap()).unwrap();
    assert_eq!(restored.ship(id).unwrap().id, id, "the index is rebuilt");
    round_trip(&game.keyframe(&s));
    let mut copy = restored.clone();
    assert_eq!(game.tick(&mut copy, 0.05), game.tick(&mut s, 0.05));
    let delta = game.tick(&mut restored.clone(), 0.05).unwrap();
    assert_eq!(
        (
            delta.moves.items.len(),
            delta.steers.items.len(),
            delta.removes.len(),
            delta.stations.len()
        ),
        (1, 1, 1, 1)
    );
    // JSON is exact; binary quantizes positions, so it is checked for a stable encoding instead.
    let json = serde_json::to_string(&delta).unwrap();
    assert_eq!(serde_json::from_str::<Delta>(&json).unwrap(), delta, "json: {json}");
    let bytes = postcard::to_allocvec(&delta).unwrap();
    let back: Delta = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(postcard::to_allocvec(&back).unwrap(), bytes);
    assert_eq!(back.steers, delta.steers, "velocities are exact");
    assert!((back.moves.items[0].x - delta.moves.items[0].x).abs() <= 1000.0 / 65535.0);
    round_trip(&game.profile(&ship, T0));
    round_trip(&Rules::default());
}

#[test]
fn error_codes_are_stable_and_distinct() {
    let u = Uuid::nil();
    let errors = [
        Error::NotInSector { ship: u },
        Error::InvalidValue("x".into()),
        Error::NoSuchWarp { to: u },
        Error::NotEnoughTurns {
            needed: 1,
            available: 0,
        },
        Error::NoSuchStation { station: u },
        Error::NotTradedHere {
            station: u,
            commodity: Commodity::Ore,
        },
        Error::InvalidQuantity { qty: 0, max: 1 },
        Error::NotEnoughCredits {
            needed: 2,
            available: 1,
        },
        Error::NotEnoughStock {
            requested: 2,
            available: 1,
        },
        Error::NotEnoughCargoSpace { requested: 2, free: 1 },
        Error::NotEnoughCargo { requested: 2, held: 1 },
        Error::StationFull { requested: 2, room: 1 },
    ];
    let codes: Vec<&str> = errors.iter().map(GameError::code).collect();
    assert_eq!(
        codes,
        [
            "not_in_sector",
            "invalid_value",
            "no_such_warp",
            "not_enough_turns",
            "no_such_station",
            "not_traded_here",
            "invalid_quantity",
            "not_enough_credits",
            "not_enough_stock",
            "not_enough_cargo_space",
            "not_enough_cargo",
            "station_full",
        ]
    );
    assert_eq!(errors[7].to_string(), "not enough credits: 2 needed, 1 available");
}

#[test]
fn ticking_many_ships_touches_only_the_moving_ones() {
    let game = game();
    let ships: Vec<Ship> = (0..1_000)
        .map(|n| ship_at(&game, n, (n % 1000) as f32, 500.0))
        .collect();
    let movers: Vec<Uuid> = ships.iter().step_by(10).map(|s| s.id).collect();
    let mut s = sector_with(&game, ships);
    for &id in &movers {
        game.handle(&mut s, id, thrust(0.0, 10.0), T0).unwrap();
    }
    let handles: Vec<u32> = movers.iter().map(|&id| s.handle(id).unwrap()).collect();
    for _ in 0..3 {
        let d = game.tick(&mut s, 0.05).unwrap();
        assert_eq!(d.moves.items.iter().map(|m| m.h).collect::<Vec<_>>(), handles);
        assert!(d.upserts.is_empty());
    }
}

#[test]
fn a_format_1_snapshot_is_read_with_its_stations_opening_with_the_rules_credits() {
    /// Format 1's station: no credits.
    #[derive(Serialize)]
    struct StationV1<'a> {
        id: Uuid,
        name: &'a str,
        listings: &'a [ListingState],
        changed: bool,
    }
    #[derive(Serialize)]
    struct SectorV1<'a> {
        id: Uuid,
        name: &'a str,
        region: Uuid,
        size: f32,
        ships: Vec<Ship>,
        handles: Vec<u32>,
        flags: Vec<u8>,
        stations: Vec<StationV1<'a>>,
        warps: &'a [WarpView],
        removed: Vec<u32>,
    }
    let game = game();
    let mut fresh = game.new_sector(A);
    fresh.stations_mut()[0].listings[0].quantity = 7;
    let old = SectorV1 {
        id: fresh.id(),
        name: fresh.name(),
        region: fresh.region(),
        size: fresh.size(),
        ships: Vec::new(),
        handles: Vec::new(),
        flags: Vec::new(),
        stations: fresh
            .stations()
            .iter()
            .map(|s| StationV1 {
                id: s.id,
                name: &s.name,
                listings: &s.listings,
                changed: s.changed,
            })
            .collect(),
        warps: fresh.warps(),
        removed: Vec::new(),
    };
    let blob = postcard::to_allocvec(&old).unwrap();
    let read = game.decode_sector(1, &blob).unwrap();
    assert_eq!(read, fresh);
    assert!(read
        .stations()
        .iter()
        .all(|s| s.credits == Rules::default().station_credits));
    // The current format reads itself; an unknown one is refused with a message naming it.
    let now = postcard::to_allocvec(&fresh).unwrap();
    assert_eq!(game.decode_sector(SpaceTrade::SECTOR_FORMAT, &now).unwrap(), fresh);
    assert!(game
        .decode_sector(9, &now)
        .unwrap_err()
        .contains("unknown sector format 9"));
    // A format 2 blob is not silently read as format 1.
    assert!(game.decode_sector(1, &now).is_err() || game.decode_sector(1, &now).unwrap() != fresh);
}

#[test]
fn depart_all_leaves_what_departing_every_ship_in_turn_leaves() {
    let game = game();
    let ships: Vec<Ship> = (0..8).map(|n| ship_at(&game, n, 10.0 * n as f32, 5.0)).collect();
    let ids: Vec<Uuid> = ships.iter().map(|s| s.id).collect();
    // Pending removals, and a handle that is both pending removal and taken again by a newcomer.
    let mut busy = sector_with(&game, ships);
    game.depart(&mut busy, ids[1]).unwrap();
    game.depart(&mut busy, ids[5]).unwrap();
    game.admit(&mut busy, ship_at(&game, 20, 1.0, 1.0), T0);
    game.handle(&mut busy, ids[2], thrust(3.0, 0.0), T0).unwrap();
    let decoded = game
        .decode_sector(SpaceTrade::SECTOR_FORMAT, &postcard::to_allocvec(&busy).unwrap())
        .unwrap();
    for sector in [game.new_sector(A), sector_with(&game, Vec::new()), busy, decoded] {
        let (mut one_by_one, mut at_once) = (sector.clone(), sector);
        for ship in game.avatars(&one_by_one) {
            game.depart(&mut one_by_one, game.avatar_id(&ship)).unwrap();
        }
        game.depart_all(&mut at_once);
        assert_eq!(format!("{one_by_one:?}"), format!("{at_once:?}"));
        assert!(at_once.ships().is_empty());
        assert_eq!(game.tick(&mut one_by_one, 0.0), game.tick(&mut at_once, 0.0));
        assert_eq!(format!("{one_by_one:?}"), format!("{at_once:?}"));
    }
}
