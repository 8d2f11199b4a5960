//! The ledger's vocabulary: what a game's rules say moved, when a command changes who holds what.
//!
//! Every change of an asset (credits, a commodity) that a client is told succeeded is a balanced transaction: a set
//! of [`Posting`]s whose amounts sum to zero for each asset. Nothing is created or destroyed except by explicit
//! postings from [`Holder::World`] (the issuer: a new character's starting credits, a station's opening stock), so
//! the sum of an asset over characters and fixtures changes only by what the world issued. The machinery writes
//! the postings as double-entry rows in the same database transaction as the state they describe.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::game::EntityId;

/// Who holds an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// An avatar (its character's account in the ledger).
    Avatar(EntityId),
    /// A fixture of a sector that holds assets (a station in the reference game).
    Fixture(Uuid),
    /// The issuer: the source of everything the world creates and the sink of everything it destroys.
    World,
}

/// One leg of a ledger transaction: `amount` units of `asset` credited to `holder` (negative: debited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub holder: Holder,
    pub asset: String,
    pub amount: i64,
}

impl Posting {
    pub fn new(holder: Holder, asset: impl Into<String>, amount: i64) -> Posting {
        Posting {
            holder,
            asset: asset.into(),
            amount,
        }
    }
}

/// Whether every asset's postings sum to zero (a transaction the ledger accepts).
pub fn balanced(postings: &[Posting]) -> bool {
    let mut sums: std::collections::BTreeMap<&str, i128> = std::collections::BTreeMap::new();
    for p in postings {
        *sums.entry(p.asset.as_str()).or_default() += i128::from(p.amount);
    }
    sums.values().all(|&s| s == 0)
}

/// The postings that move `amount` of `asset` from `from` to `to` (nothing for a zero amount).
pub fn transfer(from: Holder, to: Holder, asset: &str, amount: i64) -> [Posting; 2] {
    [Posting::new(from, asset, -amount), Posting::new(to, asset, amount)]
}

/// The postings that issue `holdings` to `holder` from the world (opening balances), skipping zeros.
pub fn issue<'a>(holder: Holder, holdings: impl IntoIterator<Item = (&'a str, i64)>) -> Vec<Posting> {
    holdings
        .into_iter()
        .filter(|&(_, amount)| amount != 0)
        .flat_map(|(asset, amount)| transfer(Holder::World, holder, asset, amount))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_is_balanced_only_when_every_asset_sums_to_zero() {
        let a = Holder::Avatar(Uuid::new_v4());
        let s = Holder::Fixture(Uuid::new_v4());
        let mut tx: Vec<Posting> = transfer(a, s, "credits", 30).into();
        tx.extend(transfer(s, a, "ore", 3));
        assert!(balanced(&tx));
        tx.push(Posting::new(a, "ore", 1));
        assert!(!balanced(&tx));
        // Two assets that cancel each other out numerically are still unbalanced.
        assert!(!balanced(&[Posting::new(a, "credits", 5), Posting::new(s, "ore", -5)]));
    }

    #[test]
    fn issuing_skips_zero_holdings_and_balances() {
        let s = Holder::Fixture(Uuid::new_v4());
        let tx = issue(s, [("credits", 100), ("ore", 0), ("fuel", 7)]);
        assert_eq!(tx.len(), 4);
        assert!(balanced(&tx));
        assert!(tx.iter().all(|p| p.holder == Holder::World || p.amount > 0));
    }
}
