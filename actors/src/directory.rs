//! Node-wide lookup tables (sector actors, sessions, online characters) and the routing contract sectors use.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use orrery_engine::{EntityId, Game, RegionId, SectorId};
use orrery_protocol::Encoding;
use parking_lot::Mutex;
use ractor::ActorRef;
use uuid::Uuid;

use crate::input::InputState;
use crate::net::Conn;
use crate::sector::messages::SectorMsg;
use crate::session::SessionMsg;

/// What sectors and the nexus know of a connected session: its connection, its ship and where that ship is.
#[derive(Debug)]
pub struct SessionLink {
    pub session: Uuid,
    pub character: Uuid,
    pub name: String,
    pub entity: EntityId,
    pub conn: Arc<Conn>,
    pub encoding: Encoding,
    /// What the client sent and has not been handled yet; read by the sector the ship is in.
    pub input: Mutex<InputState>,
    sector: Mutex<SectorId>,
    in_transit: AtomicBool,
    /// Whether the session may take its ship into the nexus region (false only when the server requires
    /// citizenship and the account lacks it).
    nexus_allowed: AtomicBool,
    session_actor: OnceLock<ActorRef<SessionMsg>>,
    /// When the session was set up (ms since the epoch), for the admin session list.
    pub connected_at: i64,
    /// The account behind the session's character (set by the session actor), for the admin session list.
    account: OnceLock<Uuid>,
}

impl SessionLink {
    pub fn new(
        session: Uuid,
        character: Uuid,
        name: String,
        entity: EntityId,
        conn: Arc<Conn>,
        encoding: Encoding,
        sector: SectorId,
    ) -> Arc<Self> {
        Arc::new(Self {
            session,
            character,
            name,
            entity,
            conn,
            encoding,
            input: Mutex::new(InputState::default()),
            sector: Mutex::new(sector),
            in_transit: AtomicBool::new(false),
            nexus_allowed: AtomicBool::new(true),
            session_actor: OnceLock::new(),
            connected_at: crate::store::now_millis(),
            account: OnceLock::new(),
        })
    }

    /// Names the account behind the session (once).
    pub fn set_account(&self, account: Uuid) {
        let _ = self.account.set(account);
    }

    /// The account behind the session, once known.
    pub fn account(&self) -> Option<Uuid> {
        self.account.get().copied()
    }

    /// The session actor, once the session is set up (admin controls such as a kick go to it).
    pub fn session_actor(&self) -> Option<ActorRef<SessionMsg>> {
        self.session_actor.get().cloned()
    }

    /// Names the session actor that is told when the connection ends.
    pub fn set_session_actor(&self, actor: ActorRef<SessionMsg>) {
        let _ = self.session_actor.set(actor);
    }

    /// Tells the session actor that the client's side of the connection has ended (it parks the ship and stops).
    pub fn input_ended(&self) {
        if let Some(actor) = self.session_actor.get() {
            let _ = actor.cast(SessionMsg::Closed);
        }
    }

    /// Sets whether the session may take its ship into the nexus region (allowed unless set otherwise).
    pub fn set_nexus_allowed(&self, allowed: bool) {
        self.nexus_allowed.store(allowed, Ordering::Release);
    }

    /// Whether the session may take its ship into the nexus region.
    pub fn nexus_allowed(&self) -> bool {
        self.nexus_allowed.load(Ordering::Acquire)
    }

    /// The sector the session's ship is in (or was in, while in transit).
    pub fn sector(&self) -> SectorId {
        *self.sector.lock()
    }

    /// Whether the ship is between two sectors.
    pub fn in_transit(&self) -> bool {
        self.in_transit.load(Ordering::Acquire)
    }

    /// Called by the source sector when the ship leaves.
    pub fn depart(&self) {
        self.in_transit.store(true, Ordering::Release);
    }

    /// Called by the sector that admits the ship.
    pub fn arrive(&self, sector: SectorId) {
        *self.sector.lock() = sector;
        self.in_transit.store(false, Ordering::Release);
    }
}

/// A ship on its way from one sector to another, with the session that follows it.
pub struct Transfer<G: Game> {
    pub avatar: G::Avatar,
    pub from: SectorId,
    pub to: SectorId,
    /// The session whose subscription follows the ship (none for a parked ship).
    pub link: Option<Arc<SessionLink>>,
    /// The request id of the `warp` command, echoed by `warped`.
    pub req_id: Option<u64>,
}

impl<G: Game> std::fmt::Debug for Transfer<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// The handle of a ship in transit. The ship itself (its [`Transfer`]) stays in the [`Directory`] until the target
/// sector takes it, so a handle lost on the way (a mailbox dropped with a crashing actor, a failed hop) loses
/// nothing: the directory's overdue parcels are delivered again, and sent back to their origin when the target stays
/// unreachable. Handles may be duplicated freely; only the first one to reach the current target takes the ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parcel {
    pub id: u64,
    pub from: SectorId,
    pub to: SectorId,
    /// Delivery attempts of this handle so far (a target that is restarting is retried).
    pub attempts: u32,
}

impl Parcel {
    /// A fresh handle (no attempts yet) of parcel `id`, addressed as its transfer is now.
    fn new<G: Game>(id: u64, transfer: &Transfer<G>) -> Self {
        Self {
            id,
            from: transfer.from,
            to: transfer.to,
            attempts: 0,
        }
    }
}

/// A posted ship, with the times its delivery was started and last driven.
struct Posted<G: Game> {
    transfer: Transfer<G>,
    posted: Instant,
    driven: Instant,
}

/// How sectors reach the rest of the actor tree (implemented by the region layer).
pub trait Fabric<G: Game>: Send + Sync + 'static {
    /// Carries a posted ship ([`Directory::post`]) to its target sector: through the region supervisor, and the
    /// nexus when regions differ.
    fn transfer(&self, parcel: Parcel);
    /// Sends an encoded global chat line to every session on the node (through the nexus).
    fn global_chat(&self, from: Uuid, name: String, text: String);
}

struct SectorEntry<G: Game> {
    region: RegionId,
    actor: Option<ActorRef<SectorMsg<G>>>,
    /// The sector's tick rate when an operator changed it (0: the configured one).
    tick_hz: AtomicU32,
}

/// Node-wide lookup tables.
pub struct Directory<G: Game> {
    sectors: DashMap<SectorId, SectorEntry<G>>,
    /// Sectors whose entry holds a running actor (kept by `add_sector` and `set_sector_actor`).
    sectors_running: AtomicUsize,
    sessions: DashMap<Uuid, Arc<SessionLink>>,
    online: DashMap<Uuid, Uuid>,
    /// Ships between two sectors, by parcel id.
    parcels: DashMap<u64, Posted<G>>,
    next_parcel: AtomicU64,
    /// A graceful shutdown has begun: sectors stop reading client input (no new commands), so that every reply
    /// already owed can be delivered before sessions are closed.
    draining: AtomicBool,
    /// Keyed commands between their arrival and their commit.
    pub keys: crate::ledger::KeyBook,
    /// The regions that are the nexus (from the game's layout, read once when first needed).
    nexus_regions: OnceLock<Vec<RegionId>>,
    /// Restarts, failures, stops and starts of sectors and regions on this node.
    pub supervision: crate::supervision::SupervisionLog,
}

impl<G: Game> std::fmt::Debug for Directory<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("sectors", &self.sectors.len())
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl<G: Game> Default for Directory<G> {
    fn default() -> Self {
        Self {
            sectors: DashMap::new(),
            sectors_running: AtomicUsize::new(0),
            sessions: DashMap::new(),
            online: DashMap::new(),
            parcels: DashMap::new(),
            next_parcel: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            keys: crate::ledger::KeyBook::default(),
            nexus_regions: OnceLock::new(),
            supervision: Default::default(),
        }
    }
}

impl<G: Game> Directory<G> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Declares a sector (its actor is attached once running).
    pub fn add_sector(&self, id: SectorId, region: RegionId) {
        if let Some(old) = self.sectors.insert(
            id,
            SectorEntry {
                region,
                actor: None,
                tick_hz: AtomicU32::new(0),
            },
        ) {
            if old.actor.is_some() {
                self.sectors_running.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Attaches (or, with `None`, detaches while restarting) a sector's running actor.
    pub fn set_sector_actor(&self, id: SectorId, actor: Option<ActorRef<SectorMsg<G>>>) {
        if let Some(mut e) = self.sectors.get_mut(&id) {
            match (e.actor.is_some(), actor.is_some()) {
                (false, true) => {
                    self.sectors_running.fetch_add(1, Ordering::AcqRel);
                }
                (true, false) => {
                    self.sectors_running.fetch_sub(1, Ordering::AcqRel);
                }
                _ => {}
            }
            e.actor = actor;
        }
    }

    /// Records a sector's tick rate as set by an operator (what `welcome` tells a client entering it).
    pub fn set_tick_hz(&self, id: SectorId, hz: u32) {
        if let Some(e) = self.sectors.get(&id) {
            e.tick_hz.store(hz, Ordering::Release);
        }
    }

    /// A sector's tick rate if an operator changed it (none: the configured one).
    pub fn tick_hz(&self, id: SectorId) -> Option<u32> {
        self.sectors
            .get(&id)
            .map(|e| e.tick_hz.load(Ordering::Acquire))
            .filter(|&hz| hz > 0)
    }

    /// Every declared sector with its region.
    pub fn sector_regions(&self) -> Vec<(SectorId, RegionId)> {
        self.sectors.iter().map(|e| (*e.key(), e.region)).collect()
    }

    /// Sectors declared.
    pub fn sector_count(&self) -> usize {
        self.sectors.len()
    }

    /// Sectors with a running actor (a sector being restarted has none for a moment).
    pub fn running_sector_count(&self) -> usize {
        self.sectors_running.load(Ordering::Acquire)
    }

    /// The running actor of a sector.
    pub fn sector(&self, id: SectorId) -> Option<ActorRef<SectorMsg<G>>> {
        self.sectors.get(&id).and_then(|e| e.actor.clone())
    }

    /// Whether the sector exists at all.
    pub fn has_sector(&self, id: SectorId) -> bool {
        self.sectors.contains_key(&id)
    }

    /// The region a sector belongs to.
    pub fn region_of(&self, id: SectorId) -> Option<RegionId> {
        self.sectors.get(&id).map(|e| e.region)
    }

    /// Whether a sector belongs to a nexus region; `layout` (the game's) is read the first time only.
    pub fn in_nexus(&self, sector: SectorId, layout: impl FnOnce() -> Vec<orrery_engine::RegionLayout>) -> bool {
        let nexus = self
            .nexus_regions
            .get_or_init(|| layout().into_iter().filter(|r| r.nexus).map(|r| r.id).collect());
        self.region_of(sector).is_some_and(|r| nexus.contains(&r))
    }

    /// Every running sector actor.
    pub fn sector_actors(&self) -> Vec<(SectorId, ActorRef<SectorMsg<G>>)> {
        self.sectors
            .iter()
            .filter_map(|e| e.actor.clone().map(|a| (*e.key(), a)))
            .collect()
    }

    /// Reserves a character for a session that is being set up; false if it is already online.
    pub fn reserve_character(&self, character: Uuid, session: Uuid) -> bool {
        use dashmap::mapref::entry::Entry;
        match self.online.entry(character) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(session);
                true
            }
        }
    }

    /// Attaches the link of a session whose character was reserved.
    pub fn attach_session(&self, link: Arc<SessionLink>) {
        self.sessions.insert(link.session, link);
    }

    /// Removes a session and frees its character.
    pub fn remove_session(&self, session: Uuid, character: Uuid) {
        self.sessions.remove(&session);
        self.online.remove_if(&character, |_, s| *s == session);
    }

    /// The session that holds a character, if it is online and attached.
    pub fn session_of(&self, character: Uuid) -> Option<Arc<SessionLink>> {
        let session = *self.online.get(&character)?;
        self.sessions.get(&session).map(|e| Arc::clone(e.value()))
    }

    /// Stops every sector from reading client input (graceful shutdown).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether client input is no longer read.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Every live session.
    pub fn sessions(&self) -> Vec<Arc<SessionLink>> {
        self.sessions.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// Calls `f` with every live session, under the map's read locks: `f` must not touch the directory.
    pub fn for_each_session(&self, mut f: impl FnMut(&Arc<SessionLink>)) {
        for entry in self.sessions.iter() {
            f(entry.value());
        }
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Takes custody of a ship leaving its sector; the returned handle is what travels to the target.
    pub fn post(&self, transfer: Transfer<G>) -> Parcel {
        let id = self.next_parcel.fetch_add(1, Ordering::Relaxed);
        let parcel = Parcel::new(id, &transfer);
        let now = Instant::now();
        self.parcels.insert(
            id,
            Posted {
                transfer,
                posted: now,
                driven: now,
            },
        );
        metrics::gauge!("orrery_transfers_in_flight").increment(1.0);
        parcel
    }

    /// Hands the ship over to the sector `at`, if the parcel is still on its way there (a duplicate or stale handle,
    /// or one for a parcel since sent back to its origin, gets `None`).
    pub fn take_parcel(&self, parcel: Parcel, at: SectorId) -> Option<Transfer<G>> {
        let (_, posted) = self.parcels.remove_if(&parcel.id, |_, p| p.transfer.to == at)?;
        metrics::gauge!("orrery_transfers_in_flight").decrement(1.0);
        Some(posted.transfer)
    }

    /// Sends a parcel back where it came from, if `parcel` is its current handle (so that two parties giving up on
    /// the same delivery do not send it back and forth). Returns the new handle.
    pub fn return_parcel(&self, parcel: Parcel) -> Option<Parcel> {
        let mut p = self.parcels.get_mut(&parcel.id)?;
        if p.transfer.from != parcel.from || p.transfer.to != parcel.to {
            return None;
        }
        let t = &mut p.transfer;
        std::mem::swap(&mut t.from, &mut t.to);
        let now = Instant::now();
        p.posted = now;
        p.driven = now;
        metrics::counter!("orrery_transfers_returned_total").increment(1);
        Some(Parcel::new(parcel.id, &p.transfer))
    }

    /// The parcels not taken within `redrive` of their last delivery attempt (marked as driven now), each with how
    /// long ago it was posted (or last returned).
    pub fn overdue_parcels(&self, redrive: Duration) -> Vec<(Parcel, Duration)> {
        let now = Instant::now();
        let mut due = Vec::new();
        for mut entry in self.parcels.iter_mut() {
            if now.duration_since(entry.driven) >= redrive {
                entry.driven = now;
                due.push((
                    Parcel::new(*entry.key(), &entry.transfer),
                    now.duration_since(entry.posted),
                ));
            }
        }
        due
    }

    /// Ships between two sectors right now.
    pub fn parcels_in_flight(&self) -> usize {
        self.parcels.len()
    }
}
