//! Tests of trading: prices, every refusal code, all-or-nothing updates, and no credits from thin air.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::tests::{game, sector_with, ship_at, DEPOT, EXCHANGE, T0};
use super::*;
use crate::galaxy::{Commodity, Listing};
use crate::game::{Game, GameError, Outcome};
use crate::ledger::{self, Holder};

fn trade(station: Uuid, commodity: Commodity, side: Side, qty: u32) -> Command {
    Command::Trade {
        station,
        commodity,
        side,
        qty,
        key: None,
    }
}

fn book(s: &SectorState, commodity: Commodity) -> Listing {
    let st = s.stations().iter().find(|st| st.id == EXCHANGE).unwrap();
    st.listings.iter().find(|l| l.commodity == commodity).unwrap().listing()
}

/// Everything every ship and station in the sector holds, per holder and asset.
fn holdings(s: &SectorState) -> std::collections::BTreeMap<(Holder, String), i128> {
    let mut h = std::collections::BTreeMap::new();
    for ship in s.ships() {
        h.insert((Holder::Avatar(ship.id), CREDITS.to_string()), i128::from(ship.credits));
        for (c, &q) in &ship.cargo {
            h.insert((Holder::Avatar(ship.id), c.as_str().to_string()), i128::from(q));
        }
    }
    for st in s.stations() {
        h.insert((Holder::Fixture(st.id), CREDITS.to_string()), i128::from(st.credits));
        for l in &st.listings {
            h.insert(
                (Holder::Fixture(st.id), l.commodity.as_str().to_string()),
                i128::from(l.quantity),
            );
        }
    }
    h.retain(|_, v| *v != 0);
    h
}

/// Runs a trade; an accepted one must come with balanced postings that describe exactly what changed.
fn run(game: &SpaceTrade, s: &mut SectorState, who: Uuid, c: Command) -> Result<Event, Error> {
    let before = holdings(s);
    match game.handle(s, who, c, T0) {
        Ok(Outcome::Posted { reply, postings }) => {
            assert!(ledger::balanced(&postings), "{postings:?}");
            let mut expected = before;
            for p in &postings {
                *expected.entry((p.holder, p.asset.clone())).or_default() += i128::from(p.amount);
            }
            expected.retain(|_, v| *v != 0);
            assert_eq!(expected, holdings(s), "the postings describe the change exactly");
            Ok(reply)
        }
        Ok(other) => panic!("unexpected outcome {other:?}"),
        Err(e) => {
            assert_eq!(before, holdings(s), "a refusal changes nothing");
            Err(e)
        }
    }
}

#[test]
fn buying_then_selling_back_follows_the_documented_example() {
    let game = game();
    let ship = ship_at(&game, 1, 500.0, 500.0);
    let id = ship.id;
    let mut s = sector_with(&game, vec![ship]);
    assert_eq!(
        book(&s, Commodity::Ore),
        Listing {
            commodity: Commodity::Ore,
            quantity: 500,
            capacity: 1000,
            buy_price: 17,
            sell_price: 23
        }
    );

    let e = run(&game, &mut s, id, trade(EXCHANGE, Commodity::Ore, Side::Buy, 100)).unwrap();
    assert_eq!(
        e,
        Event::TradeResult {
            station: EXCHANGE,
            commodity: Commodity::Ore,
            side: Side::Buy,
            qty: 100,
            unit_price: 24,
            total: 2_400,
            credits: 7_600,
            cargo: [(Commodity::Ore, 100)].into(),
            station_quantity: 400,
            buy_price: 19,
            sell_price: 25,
        }
    );
    let ship = s.ship(id).unwrap();
    assert_eq!((ship.credits, ship.cargo.get(&Commodity::Ore)), (7_600, Some(&100)));
    assert_eq!(
        book(&s, Commodity::Ore),
        Listing {
            commodity: Commodity::Ore,
            quantity: 400,
            capacity: 1000,
            buy_price: 19,
            sell_price: 25
        }
    );
    // The changed book goes out in the next delta; the ship did not move so it is not in it.
    let d = game.tick(&mut s, 0.05).unwrap();
    assert!(d.upserts.is_empty() && d.removes.is_empty());
    assert_eq!(d.stations.len(), 1);
    assert_eq!(d.stations[0].id, EXCHANGE);
    assert_eq!(d.stations[0].commodities[0], book(&s, Commodity::Ore));
    assert_eq!(game.tick(&mut s, 0.05), None);

    let e = run(&game, &mut s, id, trade(EXCHANGE, Commodity::Ore, Side::Sell, 100)).unwrap();
    let Event::TradeResult {
        unit_price,
        total,
        credits,
        cargo,
        station_quantity,
        buy_price,
        sell_price,
        ..
    } = e;
    assert_eq!((unit_price, total, credits), (18, 1_800, 9_400));
    assert!(cargo.is_empty(), "an emptied hold slot is removed");
    assert_eq!((station_quantity, buy_price, sell_price), (500, 17, 23));
}

#[test]
fn every_trade_refusal_has_its_code_and_changes_nothing() {
    let game = game();
    let mut rich = ship_at(&game, 1, 500.0, 500.0);
    rich.cargo.insert(Commodity::Fuel, 50);
    let mut poor = ship_at(&game, 2, 500.0, 500.0);
    poor.credits = 100;
    let (rich_id, poor_id) = (rich.id, poor.id);
    let mut s = sector_with(&game, vec![rich, poor]);
    let before = s.clone();
    let cases = [
        (
            Uuid::from_u128(77),
            trade(EXCHANGE, Commodity::Ore, Side::Buy, 1),
            "not_in_sector",
        ),
        (
            rich_id,
            trade(DEPOT, Commodity::Organics, Side::Buy, 1),
            "no_such_station",
        ),
        (
            rich_id,
            trade(Uuid::from_u128(5), Commodity::Ore, Side::Buy, 1),
            "no_such_station",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Organics, Side::Buy, 1),
            "not_traded_here",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Ore, Side::Buy, 0),
            "invalid_quantity",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Ore, Side::Sell, 1_000_001),
            "invalid_quantity",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Ore, Side::Buy, u32::MAX),
            "invalid_quantity",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Ore, Side::Buy, 501),
            "not_enough_stock",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Ore, Side::Buy, 51),
            "not_enough_cargo_space",
        ),
        (
            poor_id,
            trade(EXCHANGE, Commodity::Equipment, Side::Buy, 2),
            "not_enough_credits",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Ore, Side::Sell, 1),
            "not_enough_cargo",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Fuel, Side::Sell, 51),
            "not_enough_cargo",
        ),
        (
            rich_id,
            trade(EXCHANGE, Commodity::Fuel, Side::Sell, 11),
            "station_full",
        ),
    ];
    for (who, command, code) in cases {
        let e = game.handle(&mut s, who, command.clone(), T0).unwrap_err();
        assert_eq!(e.code(), code, "{command:?}: {e}");
        assert_eq!(s, before, "{command:?} changed the sector");
    }
    assert_eq!(game.tick(&mut s, 0.05), None);
    // The numbers in the messages are the ones that matter to the player.
    let e = game
        .handle(&mut s, poor_id, trade(EXCHANGE, Commodity::Equipment, Side::Buy, 2), T0)
        .unwrap_err();
    assert_eq!(
        e,
        Error::NotEnoughCredits {
            needed: 226,
            available: 100
        }
    );
    let e = game
        .handle(&mut s, rich_id, trade(EXCHANGE, Commodity::Fuel, Side::Sell, 11), T0)
        .unwrap_err();
    assert_eq!(
        e,
        Error::StationFull {
            requested: 11,
            room: 10
        }
    );
    let e = game
        .handle(&mut s, rich_id, trade(EXCHANGE, Commodity::Ore, Side::Buy, 51), T0)
        .unwrap_err();
    assert_eq!(
        e,
        Error::NotEnoughCargoSpace {
            requested: 51,
            free: 50
        }
    );
    // Exactly enough works: fill the station, fill the hold.
    run(&game, &mut s, rich_id, trade(EXCHANGE, Commodity::Fuel, Side::Sell, 10)).unwrap();
    assert_eq!(book(&s, Commodity::Fuel).quantity, 1000);
    run(&game, &mut s, rich_id, trade(EXCHANGE, Commodity::Ore, Side::Buy, 60)).unwrap();
    assert_eq!(s.ship(rich_id).unwrap().cargo_free(), 0);
}

#[test]
fn prices_stay_in_bounds_and_sell_never_below_buy() {
    let mut l = ListingState::from_content(&Listing {
        commodity: Commodity::Ore,
        quantity: 0,
        capacity: 1000,
        buy_price: 100,
        sell_price: 120,
    });
    assert_eq!((l.buy_price, l.sell_price), (149, 180), "empty: about 1.5x base");
    l.quantity = 1000;
    l.reprice();
    assert_eq!((l.buy_price, l.sell_price), (50, 61), "full: about 0.5x base");
    for q in 0..=1000 {
        l.quantity = q;
        l.reprice();
        assert!(
            l.sell_price >= l.buy_price && l.buy_price >= 50 && l.sell_price <= 180,
            "{l:?}"
        );
    }
    // Tiny and huge bases never reach 0 or overflow.
    let mut tiny = ListingState::from_content(&Listing {
        commodity: Commodity::Ore,
        quantity: 1_000_000,
        capacity: 1_000_000,
        buy_price: 1,
        sell_price: 1,
    });
    assert_eq!((tiny.buy_price, tiny.sell_price), (1, 1));
    tiny.base_sell_price = u32::MAX;
    tiny.capacity = u32::MAX;
    tiny.quantity = 0;
    tiny.reprice();
    assert_eq!(tiny.sell_price, u32::MAX);
}

#[test]
fn a_sale_that_would_overflow_the_wallet_is_refused_and_huge_balances_still_trade() {
    let game = game();
    let mut whale = ship_at(&game, 1, 0.0, 0.0);
    whale.credits = u64::MAX - 1;
    whale.cargo.insert(Commodity::Ore, 10);
    whale.cargo_capacity = u32::MAX;
    let id = whale.id;
    let mut s = sector_with(&game, vec![whale]);
    let e = run(&game, &mut s, id, trade(EXCHANGE, Commodity::Ore, Side::Sell, 10)).unwrap_err();
    assert_eq!(e.code(), "invalid_value");
    assert_eq!(s.ship(id).unwrap().credits, u64::MAX - 1);
    run(&game, &mut s, id, trade(EXCHANGE, Commodity::Ore, Side::Buy, 490)).unwrap();
    assert_eq!(s.ship(id).unwrap().cargo[&Commodity::Ore], 500);
}

#[test]
fn a_station_pays_sellers_from_its_balance_and_refuses_what_it_cannot_pay() {
    let game = game();
    let mut seller = ship_at(&game, 1, 0.0, 0.0);
    seller.cargo.insert(Commodity::Ore, 100);
    let id = seller.id;
    let mut s = sector_with(&game, vec![seller]);
    let opening = s.stations().iter().find(|st| st.id == EXCHANGE).unwrap().credits;
    assert_eq!(opening, Rules::default().station_credits);
    let Event::TradeResult { total, .. } =
        run(&game, &mut s, id, trade(EXCHANGE, Commodity::Ore, Side::Sell, 10)).unwrap();
    let station = |s: &SectorState| s.stations().iter().find(|st| st.id == EXCHANGE).unwrap().credits;
    assert_eq!(station(&s), opening - total);
    // Drain the station: a sale worth more than it holds is refused and changes nothing.
    let at = s.stations().iter().position(|st| st.id == EXCHANGE).unwrap();
    let (_, st) = s.ship_and_station_mut(0, at);
    st.credits = 5;
    let e = run(&game, &mut s, id, trade(EXCHANGE, Commodity::Ore, Side::Sell, 10)).unwrap_err();
    assert_eq!(e.code(), "station_cannot_pay");
    assert!(e.to_string().contains("the station has 5"), "{e}");
}

#[test]
fn openings_issue_what_new_ships_and_stations_hold() {
    let game = game();
    let ship = ship_at(&game, 1, 0.0, 0.0);
    let opening = game.avatar_opening(&ship);
    assert!(ledger::balanced(&opening));
    let credits: i64 = opening
        .iter()
        .filter(|p| p.holder == Holder::Avatar(ship.id) && p.asset == CREDITS)
        .map(|p| p.amount)
        .sum();
    assert_eq!(credits as u64, ship.credits);
    let s = sector_with(&game, vec![]);
    let opening = game.sector_opening(&s);
    assert!(ledger::balanced(&opening));
    let mut issued = std::collections::BTreeMap::new();
    for p in opening.iter().filter(|p| p.holder != Holder::World) {
        *issued.entry((p.holder, p.asset.clone())).or_insert(0i128) += i128::from(p.amount);
    }
    assert_eq!(
        issued,
        holdings(&s),
        "the opening issues exactly what the stations hold"
    );
}

#[test]
fn no_sequence_of_trades_creates_credits() {
    let game = game();
    let mut trader = ship_at(&game, 1, 0.0, 0.0);
    trader.cargo_capacity = 1_000;
    trader.credits = 1_000_000;
    let id = trader.id;
    let mut s = sector_with(&game, vec![trader]);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut refused = 0;
    for _ in 0..2_000 {
        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        let qty = rng.random_range(1..=60);
        if run(&game, &mut s, id, trade(EXCHANGE, Commodity::Equipment, side, qty)).is_err() {
            refused += 1;
        }
        let l = book(&s, Commodity::Equipment);
        assert!(l.sell_price >= l.buy_price && l.quantity <= l.capacity);
    }
    assert!(refused < 1_500, "most random trades go through ({refused} refused)");
    // Sell back what is held to return the station to its starting stock, then compare wallets.
    let held = s
        .ship(id)
        .unwrap()
        .cargo
        .get(&Commodity::Equipment)
        .copied()
        .unwrap_or(0);
    let start_stock = 100;
    let stock = book(&s, Commodity::Equipment).quantity;
    assert_eq!(stock + held, start_stock, "units are conserved");
    if held > 0 {
        run(
            &game,
            &mut s,
            id,
            trade(EXCHANGE, Commodity::Equipment, Side::Sell, held),
        )
        .unwrap();
    }
    assert!(
        s.ship(id).unwrap().credits <= 1_000_000,
        "credits {}",
        s.ship(id).unwrap().credits
    );
}

#[test]
fn a_big_trade_costs_about_the_same_as_many_small_ones() {
    let game = game();
    let (one, many) = (ship_at(&game, 1, 0.0, 0.0), ship_at(&game, 2, 0.0, 0.0));
    let (one_id, many_id) = (one.id, many.id);
    let mut s1 = sector_with(&game, vec![one]);
    let mut s2 = sector_with(&game, vec![many]);
    run(&game, &mut s1, one_id, trade(EXCHANGE, Commodity::Ore, Side::Buy, 50)).unwrap();
    for _ in 0..50 {
        run(&game, &mut s2, many_id, trade(EXCHANGE, Commodity::Ore, Side::Buy, 1)).unwrap();
    }
    let (c1, c2) = (s1.ship(one_id).unwrap().credits, s2.ship(many_id).unwrap().credits);
    assert!(c1.abs_diff(c2) <= 50, "one trade left {c1}, fifty left {c2}");
    assert_eq!(book(&s1, Commodity::Ore), book(&s2, Commodity::Ore));
}
