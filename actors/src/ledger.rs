//! The machinery's side of the ledger: turning the rules' postings into stored double-entry transactions with
//! idempotent ids, and the book of keyed commands in flight.
//!
//! A keyed command (a `trade` with a `key`) is applied at most once per character and key: its transaction id is
//! derived from the two, the database holds one row per id (a repeat of the write changes nothing) and one per
//! character and key, and the reply the client was sent is stored with it. While a keyed command is between its
//! arrival and its commit, repeats wait in the [`KeyBook`] and get the same answer; once it is committed, a repeat
//! finds its reply in the database, also after a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use orrery_engine::{EntityId, Holder, Posting};
use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

use crate::directory::SessionLink;
use crate::store::{HolderKind, LedgerEntry, LedgerTx};

/// A UUID (version-4 layout) from the SHA-256 of `parts`: the same parts always give the same id.
pub fn derived_id(parts: &[&[u8]]) -> Uuid {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Builder::from_random_bytes(bytes).into_uuid()
}

/// The id of a character's keyed command's transaction.
pub fn keyed_tx_id(character: Uuid, key: &str) -> Uuid {
    derived_id(&[b"orrery/ledger/key", character.as_bytes(), key.as_bytes()])
}

/// The id of a character's opening transaction (what it was issued when it was created).
pub fn character_opening_id(character: Uuid) -> Uuid {
    derived_id(&[b"orrery/ledger/opening/character", character.as_bytes()])
}

/// The id of a sector's opening transaction (what its stations were issued).
pub fn sector_opening_id(sector: Uuid) -> Uuid {
    derived_id(&[b"orrery/ledger/opening/sector", sector.as_bytes()])
}

/// The stored entries of `postings` (zero amounts left out); `character_of` names the character of an avatar.
pub fn entries(postings: &[Posting], character_of: impl Fn(EntityId) -> Uuid) -> Vec<LedgerEntry> {
    postings
        .iter()
        .filter(|p| p.amount != 0)
        .map(|p| {
            let (kind, holder) = match p.holder {
                Holder::Avatar(entity) => (HolderKind::Character, character_of(entity)),
                Holder::Fixture(id) => (HolderKind::Station, id),
                Holder::World => (HolderKind::World, Uuid::nil()),
            };
            LedgerEntry {
                kind,
                holder,
                asset: p.asset.clone(),
                amount: p.amount,
            }
        })
        .collect()
}

/// An opening transaction (issued by the world), or `None` when there is nothing to issue.
pub fn opening(
    id: Uuid,
    at: i64,
    sector: Option<Uuid>,
    character: Option<Uuid>,
    entries: Vec<LedgerEntry>,
) -> Option<LedgerTx> {
    (!entries.is_empty()).then(|| LedgerTx {
        id,
        at,
        kind: "opening".to_owned(),
        sector,
        character,
        key: None,
        reply: None,
        entries,
    })
}

/// The id of the transaction that respawns a character whose parked ship was in a sector that no longer exists
/// (one per parked ship: the same ship retired twice is one transaction).
pub fn respawn_id(character: Uuid, parked_sector: Uuid, parked_avatar: &[u8]) -> Uuid {
    derived_id(&[
        b"orrery/ledger/respawn",
        character.as_bytes(),
        parked_sector.as_bytes(),
        parked_avatar,
    ])
}

/// A respawn: what the retired ship held goes back to the world (`retired`, the retired ship's opening entries,
/// are reversed) and the new ship's opening (`issued`) is issued, netted per holder and asset; `None` when that
/// nets to nothing.
pub fn respawn(
    id: Uuid,
    at: i64,
    character: Uuid,
    retired: Vec<LedgerEntry>,
    issued: Vec<LedgerEntry>,
) -> Option<LedgerTx> {
    let mut net: std::collections::BTreeMap<(HolderKind, Uuid, String), i64> = std::collections::BTreeMap::new();
    for (sign, e) in retired
        .into_iter()
        .map(|e| (-1, e))
        .chain(issued.into_iter().map(|e| (1, e)))
    {
        *net.entry((e.kind, e.holder, e.asset)).or_default() += sign * e.amount;
    }
    let entries: Vec<LedgerEntry> = net
        .into_iter()
        .filter(|(_, amount)| *amount != 0)
        .map(|((kind, holder, asset), amount)| LedgerEntry {
            kind,
            holder,
            asset,
            amount,
        })
        .collect();
    (!entries.is_empty()).then(|| LedgerTx {
        id,
        at,
        kind: "respawn".to_owned(),
        sector: None,
        character: Some(character),
        key: None,
        reply: None,
        entries,
    })
}

/// A keyed command in flight is given up after this long (its sector died before answering): a repeat then starts
/// over and finds the command's reply in the database if it was committed.
const IN_FLIGHT_FOR: Duration = Duration::from_secs(30);

/// A client waiting for a keyed command's answer: its connection and the request id to answer with.
pub struct Waiter {
    pub link: Arc<SessionLink>,
    pub req_id: Option<u64>,
}

struct InFlight {
    since: Instant,
    waiters: Vec<Waiter>,
}

/// Keyed commands between their arrival and their commit, per character and key.
#[derive(Default)]
pub struct KeyBook {
    in_flight: DashMap<(Uuid, String), InFlight>,
}

impl std::fmt::Debug for KeyBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyBook")
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl KeyBook {
    /// Registers a keyed command: true if it is the first with this key in flight (the caller goes on with it),
    /// false if it joined one already in flight (it will be answered with that one's result).
    pub fn begin(&self, character: Uuid, key: &str, waiter: Waiter) -> bool {
        use dashmap::mapref::entry::Entry;
        match self.in_flight.entry((character, key.to_owned())) {
            Entry::Occupied(mut e) if e.get().since.elapsed() < IN_FLIGHT_FOR => {
                e.get_mut().waiters.push(waiter);
                false
            }
            Entry::Occupied(mut e) => {
                e.insert(InFlight {
                    since: Instant::now(),
                    waiters: vec![waiter],
                });
                true
            }
            Entry::Vacant(e) => {
                e.insert(InFlight {
                    since: Instant::now(),
                    waiters: vec![waiter],
                });
                true
            }
        }
    }

    /// Ends a keyed command: every waiter is sent `frame(req_id, encoding)` (nothing, if it is empty).
    pub fn finish(&self, character: Uuid, key: &str, frame: impl Fn(Option<u64>, orrery_protocol::Encoding) -> Bytes) {
        if let Some((_, flight)) = self.in_flight.remove(&(character, key.to_owned())) {
            for w in flight.waiters {
                let bytes = frame(w.req_id, w.link.encoding);
                if !bytes.is_empty() {
                    w.link.conn.send(&bytes);
                }
            }
        }
    }

    /// Keyed commands in flight.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let c = Uuid::new_v4();
        assert_eq!(keyed_tx_id(c, "a"), keyed_tx_id(c, "a"));
        assert_ne!(keyed_tx_id(c, "a"), keyed_tx_id(c, "b"));
        assert_ne!(keyed_tx_id(c, "a"), keyed_tx_id(Uuid::new_v4(), "a"));
        assert_ne!(character_opening_id(c), sector_opening_id(c));
        // Length-prefixed parts: ("ab", "c") and ("a", "bc") differ.
        assert_ne!(derived_id(&[b"ab", b"c"]), derived_id(&[b"a", b"bc"]));
    }

    #[test]
    fn avatars_are_recorded_as_their_characters_and_zero_amounts_left_out() {
        let ship = Uuid::new_v4();
        let station = Uuid::new_v4();
        let mut postings =
            orrery_engine::ledger::transfer(Holder::Avatar(ship), Holder::Fixture(station), "credits", 5).to_vec();
        postings.push(orrery_engine::Posting::new(Holder::World, "ore", 0));
        let character = Uuid::new_v4();
        let e = entries(&postings, |id| if id == ship { character } else { Uuid::nil() });
        assert_eq!(e.len(), 2, "the zero posting is left out");
        assert_eq!(e[0].kind, HolderKind::Character);
        assert_eq!(e[0].holder, character);
        assert_eq!((e[1].kind, e[1].holder, e[1].amount), (HolderKind::Station, station, 5));
    }
}
