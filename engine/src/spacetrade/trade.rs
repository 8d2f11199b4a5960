//! Trading with stations: stock-based pricing and the all-or-nothing exchange of credits, cargo and stock.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{Error, Event, Side};
use super::sector::SectorState;
use crate::galaxy::limits::MAX_CAPACITY;
use crate::galaxy::{Commodity, Listing};
use crate::ledger::{transfer, Holder, Posting};

/// The ledger's name for credits (commodities go by their `snake_case` names).
pub const CREDITS: &str = "credits";

/// One commodity in a station's book, in play.
///
/// Pricing rule (see `docs/content.md`): the price of the unit at stock level `s` is `base * (1.5 - s / capacity)`,
/// i.e. 1.5x base when empty, 1x at half stock, 0.5x when full. A trade of `n` units is charged `n` times the price
/// at the middle of the stock range it moves through, so the listed prices are exactly the price of the next single
/// unit, and splitting or reversing trades gains nothing. What a player pays (`sell_price`) is rounded up and what a
/// player receives (`buy_price`) rounded down, both at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListingState {
    pub commodity: Commodity,
    pub quantity: u32,
    pub capacity: u32,
    /// Content prices: the prices at half stock.
    pub base_buy_price: u32,
    pub base_sell_price: u32,
    /// Current prices (of the next single unit).
    pub buy_price: u32,
    pub sell_price: u32,
}

impl ListingState {
    /// A listing from content, taking its prices as base prices and pricing it from its stock.
    pub fn from_content(l: &Listing) -> ListingState {
        let mut s = ListingState {
            commodity: l.commodity,
            quantity: l.quantity,
            capacity: l.capacity,
            base_buy_price: l.buy_price,
            base_sell_price: l.sell_price.max(l.buy_price),
            buy_price: l.buy_price,
            sell_price: l.sell_price,
        };
        s.reprice();
        s
    }

    /// The listing as clients see it (current prices).
    pub fn listing(&self) -> Listing {
        Listing {
            commodity: self.commodity,
            quantity: self.quantity,
            capacity: self.capacity,
            buy_price: self.buy_price,
            sell_price: self.sell_price,
        }
    }

    /// Sets the listed prices from the current stock: the price of buying or selling one unit.
    pub fn reprice(&mut self) {
        self.buy_price = self.unit_price(Side::Sell, 1);
        self.sell_price = self.unit_price(Side::Buy, 1).max(self.buy_price);
    }

    /// Credits per unit for a player trading `qty` units on `side` (`Buy`: the player buys, pays rounded up).
    pub fn unit_price(&self, side: Side, qty: u32) -> u32 {
        let (q, n) = (u64::from(self.quantity), u64::from(qty));
        match side {
            Side::Buy => price_at(self.base_sell_price, (2 * q).saturating_sub(n), self.capacity, true),
            Side::Sell => price_at(self.base_buy_price, 2 * q + n, self.capacity, false),
        }
    }
}

/// `base * (1.5 - mid / capacity)` where `mid2 = 2 * mid` (clamped to `0..=2 * capacity`), at least 1.
fn price_at(base: u32, mid2: u64, capacity: u32, round_up: bool) -> u32 {
    let cap = u128::from(capacity.max(1));
    let mid2 = u128::from(mid2).min(2 * cap);
    let num = u128::from(base) * (6 * cap - 2 * mid2);
    let den = 4 * cap;
    let v = if round_up { num.div_ceil(den) } else { num / den };
    u32::try_from(v).unwrap_or(u32::MAX).max(1)
}

/// Applies a trade for the ship in `slot`; on any refusal nothing changes. Returns the reply and the ledger
/// postings: credits one way, the commodity the other, between the ship and the station.
///
/// Checks, in order: the station is here (`no_such_station`), trades the commodity (`not_traded_here`),
/// `1 <= qty <= 1_000_000` (`invalid_quantity`); buying: stock (`not_enough_stock`), hold space
/// (`not_enough_cargo_space`), credits (`not_enough_credits`); selling: cargo held (`not_enough_cargo`), station room
/// (`station_full`), the station's credits (`station_cannot_pay`), the wallet's room (`invalid_value`).
pub(crate) fn trade(
    state: &mut SectorState,
    slot: usize,
    station: Uuid,
    commodity: Commodity,
    side: Side,
    qty: u32,
) -> Result<(Event, Vec<Posting>), Error> {
    let st_slot = state.station_slot(station).ok_or(Error::NoSuchStation { station })?;
    let (ship, st) = state.ship_and_station_mut(slot, st_slot);
    let listing = st
        .listings
        .iter_mut()
        .find(|l| l.commodity == commodity)
        .ok_or(Error::NotTradedHere { station, commodity })?;
    if qty == 0 || qty > MAX_CAPACITY {
        return Err(Error::InvalidQuantity { qty, max: MAX_CAPACITY });
    }
    let unit_price = listing.unit_price(side, qty);
    let total = u64::from(unit_price) * u64::from(qty);
    let held = ship.cargo.get(&commodity).copied().unwrap_or(0);
    match side {
        Side::Buy => {
            if qty > listing.quantity {
                return Err(Error::NotEnoughStock {
                    requested: qty,
                    available: listing.quantity,
                });
            }
            let free = ship.cargo_free();
            if qty > free {
                return Err(Error::NotEnoughCargoSpace { requested: qty, free });
            }
            if total > ship.credits {
                return Err(Error::NotEnoughCredits {
                    needed: total,
                    available: ship.credits,
                });
            }
            listing.quantity -= qty;
            ship.credits -= total;
            st.credits = st.credits.saturating_add(total);
            ship.cargo.insert(commodity, held.saturating_add(qty));
        }
        Side::Sell => {
            if qty > held {
                return Err(Error::NotEnoughCargo { requested: qty, held });
            }
            let room = listing.capacity.saturating_sub(listing.quantity);
            if qty > room {
                return Err(Error::StationFull { requested: qty, room });
            }
            if total > st.credits {
                return Err(Error::StationCannotPay {
                    needed: total,
                    available: st.credits,
                });
            }
            // Never saturate: a wallet that silently stopped growing would destroy the station's credits.
            let Some(credits) = ship.credits.checked_add(total) else {
                return Err(Error::InvalidValue(format!(
                    "a sale worth {total} credits would overflow the wallet ({} credits)",
                    ship.credits
                )));
            };
            listing.quantity += qty;
            st.credits -= total;
            ship.credits = credits;
            if held == qty {
                ship.cargo.remove(&commodity);
            } else {
                ship.cargo.insert(commodity, held - qty);
            }
        }
    }
    listing.reprice();
    let (ship_h, station_h) = (Holder::Avatar(ship.id), Holder::Fixture(station));
    let (paid, goods) = (total as i64, i64::from(qty));
    let postings = match side {
        Side::Buy => [
            transfer(ship_h, station_h, CREDITS, paid),
            transfer(station_h, ship_h, commodity.as_str(), goods),
        ],
        Side::Sell => [
            transfer(station_h, ship_h, CREDITS, paid),
            transfer(ship_h, station_h, commodity.as_str(), goods),
        ],
    }
    .into_iter()
    .flatten()
    .collect();
    let event = Event::TradeResult {
        station,
        commodity,
        side,
        qty,
        unit_price,
        total,
        credits: ship.credits,
        cargo: ship.cargo.clone(),
        station_quantity: listing.quantity,
        buy_price: listing.buy_price,
        sell_price: listing.sell_price,
    };
    st.changed = true;
    Ok((event, postings))
}
