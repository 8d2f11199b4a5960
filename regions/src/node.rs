//! The node: builds the actor tree (root -> nexus, region manager -> region supervisors -> sectors) from the
//! game's layout and the store's snapshots, and takes it down again with a final snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orrery_actors::persist::{PersistBatch, Persister};
use orrery_actors::sector::{SectorCell, SectorMsg};
use orrery_actors::store::{SectorSnapshot, SharedStore};
use orrery_actors::{Directory, EngineConfig};
use orrery_engine::{Game, RegionId, SectorId};
use orrery_protocol::codes;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tracing::{error, info, warn};

use crate::fabric::NodeFabric;
use crate::manager::{ManagerMsg, RegionManager};
use crate::nexus::{Nexus, NexusArgs, NexusMsg};
use crate::region::{RegionArgs, RegionMsg};
use orrery_actors::store::{now_millis, ParkedAvatar};
use uuid::Uuid;

/// Sectors are restored on one thread per core, up to this many.
const MAX_RESTORE_THREADS: usize = 16;
/// How often ships in transit are checked for a lost delivery.
const PARCEL_SWEEP: Duration = Duration::from_millis(500);

/// How often the snapshot lag of each region is measured.
const LAG_EVERY: Duration = Duration::from_secs(1);
/// How long closing the store may take at the end of a shutdown (a pool waits for its connections).
const STORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Failures while starting or stopping the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] orrery_actors::store::StoreError),
    #[error("could not spawn the actor tree: {0}")]
    Spawn(String),
    #[error("restoring the sectors failed: {0}")]
    Restore(String),
    #[error("the snapshot could not be written (see the log)")]
    NotSaved,
    #[error("no sector {0}")]
    NoSector(SectorId),
    #[error("sector {0} is not running (its region is stopped, or it is restarting)")]
    SectorNotRunning(SectorId),
    #[error("sector {0} did not answer: {1}")]
    SectorDidNotAnswer(SectorId, String),
    #[error("character {0} has no ship (never logged in)")]
    NoShip(Uuid),
    #[error("{0}")]
    Conflict(String),
}

/// The root actor: parent of the nexus and the region manager.
struct NodeRoot<G: Game>(std::marker::PhantomData<fn() -> G>);

struct RootArgs<G: Game> {
    directory: Arc<Directory<G>>,
    fabric: Arc<NodeFabric<G>>,
    regions: Vec<RegionArgs<G>>,
}

struct RootState<G: Game> {
    directory: Arc<Directory<G>>,
    fabric: Arc<NodeFabric<G>>,
    manager: ActorRef<ManagerMsg>,
}

impl<G: Game> Actor for NodeRoot<G> {
    type Msg = RootMsg;
    type State = RootState<G>;
    type Arguments = RootArgs<G>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        spawn_nexus(&myself, &args.directory, &args.fabric).await?;
        let (manager, _) =
            Actor::spawn_linked(None, RegionManager::<G>::default(), args.regions, myself.get_cell()).await?;
        Ok(RootState {
            directory: args.directory,
            fabric: args.fabric,
            manager,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Manager(reply) => {
                let _ = reply.send(state.manager.clone());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = event {
            if cell.get_id() == state.manager.get_id() {
                return Err(format!("region manager failed: {err}").into());
            }
            // The root's only other child is the nexus (whichever incarnation of it): start a new one, which
            // registers itself with the fabric; deliveries that failed meanwhile are retried.
            warn!(error = %err, "nexus failed; restarting it");
            metrics::counter!("orrery_nexus_restarts_total").increment(1);
            spawn_nexus(&myself, &state.directory, &state.fabric).await?;
        }
        Ok(())
    }
}

/// Starts a nexus under the root (it registers itself with the fabric).
async fn spawn_nexus<G: Game>(
    root: &ActorRef<RootMsg>,
    directory: &Arc<Directory<G>>,
    fabric: &Arc<NodeFabric<G>>,
) -> Result<(), ActorProcessingErr> {
    let args = NexusArgs {
        directory: Arc::clone(directory),
        fabric: Arc::clone(fabric),
    };
    Actor::spawn_linked(None, Nexus::<G>::default(), args, root.get_cell()).await?;
    Ok(())
}

/// Messages of the root actor.
pub enum RootMsg {
    /// The region manager's reference.
    Manager(ractor::RpcReplyPort<ActorRef<ManagerMsg>>),
}

/// A running node: the actor tree and what the API needs to reach it.
pub struct Node<G: Game> {
    pub game: Arc<G>,
    pub directory: Arc<Directory<G>>,
    pub fabric: Arc<NodeFabric<G>>,
    pub store: SharedStore,
    pub config: Arc<EngineConfig>,
    pub manager: ActorRef<ManagerMsg>,
    root: ActorRef<RootMsg>,
    persister: Persister,
    persister_task: tokio::task::JoinHandle<()>,
    liveness: tokio::task::JoinHandle<()>,
    /// Delivers again the ships in transit whose handle was lost ([`NodeFabric::sweep_parcels`]).
    parcel_sweep: tokio::task::JoinHandle<()>,
    /// Sets `orrery_snapshot_lag_seconds{region}` every [`LAG_EVERY`].
    lag_gauge: tokio::task::JoinHandle<()>,
    region_of_sector: HashMap<SectorId, RegionId>,
    /// Every sector's cell, in layout order (statistics and operator controls that survive the actor).
    cells: Vec<Arc<SectorCell<G>>>,
    /// This node's id (random at each start) and when it started.
    pub id: Uuid,
    pub started: Instant,
}

impl<G: Game> std::fmt::Debug for Node<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("sectors", &self.region_of_sector.len())
            .finish()
    }
}

/// Milliseconds since `since`, for the startup log.
fn millis(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e4).round() / 10.0
}

/// What a sector starts from: its state, and its seq and tick counters.
type Restored<G> = (<G as Game>::Sector, u64, u64);

/// Restores a sector's state from its snapshot, parking nobody: avatars in it are removed (their characters'
/// rows hold them until they log in again).
fn restore<G: Game>(game: &G, id: SectorId, snapshot: Option<&orrery_actors::store::SectorSnapshot>) -> Restored<G> {
    if let Some(snap) = snapshot {
        match game.decode_sector(snap.format, &snap.state) {
            Ok(mut state) => {
                game.depart_all(&mut state);
                // Drains the departures, so that the sector's first tick has nothing to send or write.
                let _ = game.tick(&mut state, 0.0);
                return (state, snap.seq, snap.tick);
            }
            Err(e) => {
                warn!(sector = %id, error = %e, "unreadable sector snapshot; starting the sector fresh");
                // Its counters go on from the stored ones: the store only replaces a snapshot with a newer tick.
                return (game.new_sector(id), snap.seq, snap.tick);
            }
        }
    }
    (game.new_sector(id), 0, 0)
}

/// Reads every stored snapshot and restores the sectors in `wanted` from theirs ([`restore`]), on one blocking
/// thread per core, while the store is still reading the rest. Returns the restored sectors, how many snapshots
/// the store held, and how long reading them took.
async fn restore_stored<G: Game>(
    game: &Arc<G>,
    store: &SharedStore,
    wanted: &HashSet<SectorId>,
) -> Result<(HashMap<SectorId, Restored<G>>, usize, f64), NodeError> {
    let started = Instant::now();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_RESTORE_THREADS);
    let (queue, inbox) = std::sync::mpsc::channel::<SectorSnapshot>();
    let inbox = Arc::new(std::sync::Mutex::new(inbox));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (game, inbox) = (Arc::clone(game), Arc::clone(&inbox));
            tokio::task::spawn_blocking(move || {
                let mut restored = Vec::new();
                loop {
                    // The lock is only held while waiting for the next snapshot, not while restoring it.
                    let next = match inbox.lock() {
                        Ok(inbox) => inbox.recv(),
                        Err(_) => break,
                    };
                    let Ok(snap) = next else { break };
                    restored.push((snap.sector, restore(game.as_ref(), snap.sector, Some(&snap))));
                }
                restored
            })
        })
        .collect();
    let mut stored = 0;
    let read = store
        .each_sector(&mut |snap| {
            stored += 1;
            if wanted.contains(&snap.sector) {
                // A worker that is gone panicked: joining it below reports that.
                let _ = queue.send(snap);
            }
        })
        .await;
    drop(queue);
    let read_ms = millis(started);
    let mut restored = HashMap::with_capacity(wanted.len());
    for worker in workers {
        restored.extend(worker.await.map_err(|e| NodeError::Restore(e.to_string()))?);
    }
    read?;
    Ok((restored, stored, read_ms))
}

impl<G: Game> Node<G> {
    /// Builds and starts the actor tree.
    pub async fn start(game: Arc<G>, store: SharedStore, config: EngineConfig) -> Result<Self, NodeError> {
        let node_started = Instant::now();
        let config = Arc::new(config);
        let directory = Directory::<G>::new();
        let fabric = NodeFabric::new(Arc::clone(&directory));
        let (persister, persister_task) = Persister::start(Arc::clone(&store));
        let started = Instant::now();
        let layout = game.layout();
        // Sector ids are unique in valid content; a repeated one gets a copy of the same restored state.
        let mut wanted = HashSet::new();
        let mut repeated = HashSet::new();
        for sector in layout.iter().flat_map(|r| &r.sectors) {
            if !wanted.insert(sector.id) {
                repeated.insert(sector.id);
            }
        }
        let (mut restored, stored, load_ms) = restore_stored(&game, &store, &wanted).await?;
        let restore_ms = millis(started);
        let started = Instant::now();
        let mut region_of_sector = HashMap::new();
        let mut regions = Vec::new();
        let mut lag_cells = Vec::new();
        let mut all_cells = Vec::new();
        for region in layout {
            let mut cells = Vec::new();
            for sector in region.sectors {
                directory.add_sector(sector.id, region.id);
                region_of_sector.insert(sector.id, region.id);
                let from_store = if repeated.contains(&sector.id) {
                    restored.get(&sector.id).cloned()
                } else {
                    restored.remove(&sector.id)
                };
                let (state, seq, tick) = from_store.unwrap_or_else(|| restore(game.as_ref(), sector.id, None));
                cells.push(SectorCell::new(sector.id, region.id, sector.name, state, seq, tick));
            }
            lag_cells.push((region.id, cells.clone()));
            all_cells.extend(cells.iter().cloned());
            regions.push(RegionArgs {
                id: region.id,
                name: region.name,
                game: Arc::clone(&game),
                cells,
                directory: Arc::clone(&directory),
                fabric: Arc::clone(&fabric),
                config: Arc::clone(&config),
                persister: persister.clone(),
            });
        }
        let cells_ms = millis(started);
        let started = Instant::now();
        let root_args = RootArgs {
            directory: Arc::clone(&directory),
            fabric: Arc::clone(&fabric),
            regions,
        };
        let (root, _) = Actor::spawn(None, NodeRoot::<G>(std::marker::PhantomData), root_args)
            .await
            .map_err(|e| NodeError::Spawn(e.to_string()))?;
        let manager = ractor::call_t!(root, RootMsg::Manager, 5_000).map_err(|e| NodeError::Spawn(e.to_string()))?;
        info!(
            sectors = region_of_sector.len(),
            restored = stored,
            load_ms,
            restore_ms,
            cells_ms,
            spawn_ms = millis(started),
            "actor tree running"
        );
        let liveness = orrery_actors::liveness::spawn(Arc::clone(&directory), Arc::clone(&config));
        let parcel_sweep = {
            let fabric = Arc::clone(&fabric);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(PARCEL_SWEEP);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    fabric.sweep_parcels();
                }
            })
        };
        let lag_gauge = tokio::spawn(async move {
            let mut every = tokio::time::interval(LAG_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let now = orrery_actors::store::now_millis();
                for (region, cells) in &lag_cells {
                    let lag = cells.iter().map(|c| c.snapshot_lag(now)).fold(0.0, f64::max);
                    metrics::gauge!("orrery_snapshot_lag_seconds", "region" => region.to_string()).set(lag);
                }
            }
        });
        Ok(Self {
            game,
            directory,
            fabric,
            store,
            config,
            manager,
            root,
            persister,
            persister_task,
            liveness,
            parcel_sweep,
            lag_gauge,
            region_of_sector,
            cells: all_cells,
            id: Uuid::new_v4(),
            started: node_started,
        })
    }

    /// The node's persister: the one writer of snapshots and parked ships.
    pub fn persister(&self) -> &Persister {
        &self.persister
    }

    /// Every sector's cell, in layout order.
    pub fn cells(&self) -> &[Arc<SectorCell<G>>] {
        &self.cells
    }

    /// A sector's cell.
    pub fn cell(&self, sector: SectorId) -> Option<&Arc<SectorCell<G>>> {
        self.cells.iter().find(|c| c.id == sector)
    }

    /// The region a sector belongs to.
    pub fn region_of(&self, sector: SectorId) -> Option<RegionId> {
        self.region_of_sector.get(&sector).copied()
    }

    /// Snapshots one sector and writes it through the persister (after everything already queued); returns the
    /// tick of the snapshot once the store has it.
    pub async fn snapshot_sector(&self, sector: SectorId) -> Result<u64, NodeError> {
        if !self.region_of_sector.contains_key(&sector) {
            return Err(NodeError::NoSector(sector));
        }
        let actor = self
            .directory
            .sector(sector)
            .ok_or(NodeError::SectorNotRunning(sector))?;
        let batch = ractor::call_t!(actor, SectorMsg::Snapshot, 5_000)
            .map_err(|e| NodeError::SectorDidNotAnswer(sector, e.to_string()))?;
        let tick = batch.sectors.first().map(|s| s.tick).ok_or(NodeError::NotSaved)?;
        if !self.persister.write(batch).await {
            return Err(NodeError::NotSaved);
        }
        if let Some(cell) = self.cell(sector) {
            cell.snapshot_committed(now_millis());
        }
        Ok(tick)
    }

    /// Moves a character's ship to sector `to`. Online: its sector posts the ship to `to` through the transfer path
    /// of a warp (the client gets `warped` and a keyframe). Offline: its parked row names `to` (through the
    /// persister), and it logs in there. Returns whether the character was online.
    pub async fn teleport(&self, character: Uuid, to: SectorId, at: Option<(f32, f32)>) -> Result<bool, NodeError> {
        if !self.region_of_sector.contains_key(&to) {
            return Err(NodeError::NoSector(to));
        }
        if let Some(link) = self.directory.session_of(character) {
            if link.in_transit() {
                return Err(NodeError::Conflict("the ship is between sectors; try again".into()));
            }
            let from = link.sector();
            let actor = self.directory.sector(from).ok_or(NodeError::SectorNotRunning(from))?;
            let session = link.session;
            let moved = ractor::call_t!(actor, |reply| SectorMsg::Teleport { session, to, at, reply }, 5_000)
                .map_err(|e| NodeError::SectorDidNotAnswer(from, e.to_string()))?;
            return moved.map(|()| true).map_err(NodeError::Conflict);
        }
        // Offline: hold the character so that it cannot log in while its row is rewritten.
        let hold = Uuid::new_v4();
        if !self.directory.reserve_character(character, hold) {
            return Err(NodeError::Conflict("the character is logging in; try again".into()));
        }
        let done = async {
            let parked = self
                .store
                .load_avatar(character)
                .await?
                .ok_or(NodeError::NoShip(character))?;
            let mut blob = parked.avatar;
            if let Some((x, y)) = at {
                let mut avatar: G::Avatar = postcard::from_bytes(&blob)
                    .map_err(|e| NodeError::Conflict(format!("the parked ship cannot be read: {e}")))?;
                if !self.game.place(&mut avatar, x, y) {
                    return Err(NodeError::Conflict(
                        "this game has no positions: teleport without `x` and `y`".into(),
                    ));
                }
                blob = postcard::to_allocvec(&avatar)
                    .map_err(|e| NodeError::Conflict(format!("the ship cannot be encoded: {e}")))?;
            }
            let batch = PersistBatch {
                avatars: vec![ParkedAvatar {
                    character_id: character,
                    sector: to,
                    avatar: blob,
                }],
                ..PersistBatch::default()
            };
            if self.persister.write(batch).await {
                Ok(false)
            } else {
                Err(NodeError::NotSaved)
            }
        }
        .await;
        self.directory.remove_session(hold, character);
        done
    }

    /// Debug hook: makes a sector's actor panic. Returns false for an unknown sector.
    pub fn inject_crash(&self, sector: SectorId) -> bool {
        let Some(region) = self.region_of_sector.get(&sector) else {
            return false;
        };
        match self.fabric.region(*region) {
            Some(r) => r.cast(RegionMsg::InjectCrash(sector)).is_ok(),
            None => false,
        }
    }

    /// Debug hook: makes the nexus fail. Returns false if there is no nexus to reach.
    pub fn inject_nexus_crash(&self) -> bool {
        self.fabric
            .nexus()
            .is_some_and(|n| n.cast(NexusMsg::InjectCrash).is_ok())
    }

    /// Asks every sector for a snapshot and writes them all, with every online ship, in one transaction, through
    /// the persister (after everything already queued, so that nothing older can overwrite them).
    pub async fn snapshot_all(&self) -> Result<usize, NodeError> {
        let mut batch = PersistBatch::default();
        for (_, sector) in self.directory.sector_actors() {
            if let Ok(b) = ractor::call_t!(sector, SectorMsg::Snapshot, 5_000) {
                batch.extend(b);
            }
        }
        let n = batch.sectors.len();
        let ids: Vec<SectorId> = batch.sectors.iter().map(|s| s.sector).collect();
        if self.persister.write(batch).await {
            let now = now_millis();
            for id in ids {
                if let Some(cell) = self.cell(id) {
                    cell.snapshot_committed(now);
                }
            }
            Ok(n)
        } else {
            Err(NodeError::NotSaved)
        }
    }

    /// Graceful shutdown, bounded by `timeout` overall: stop reading client input (no new commands), deliver every
    /// reply already owed (durable trades wait for their commit; at most half the time), close every session with
    /// 1001 (each parks its ship), snapshot every sector, stop the tree, close the store. While the database is
    /// unreachable the persister holds what it could not write; whatever is still held at the deadline is lost, and
    /// logged at error level.
    pub async fn shutdown(&self, timeout: Duration) {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        self.liveness.abort();
        self.directory.start_draining();
        // A tick that started before the flag was set may still be applying commands: let it finish.
        tokio::time::sleep(self.config.tick_period() * 2).await;
        // Half the time at most: a dead database must leave time to close the sessions and queue the final snapshot
        // (written too if it comes back before the deadline).
        if tokio::time::timeout_at(started + timeout / 2, self.persister.flush())
            .await
            .is_err()
        {
            warn!(
                store_available = self.persister.available(),
                "owed durable replies did not complete in time; closing sessions"
            );
        }
        for link in self.directory.sessions() {
            link.conn.close(codes::CLOSE_GOING_AWAY, "server shutting down");
            link.input_ended();
        }
        while self.directory.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match tokio::time::timeout_at(deadline, self.snapshot_all()).await {
            Ok(Ok(n)) => info!(sectors = n, "final snapshot written"),
            Ok(Err(e)) => warn!(error = %e, "final snapshot failed"),
            Err(_) => warn!("final snapshot timed out"),
        }
        let _ = tokio::time::timeout_at(deadline, self.root.stop_and_wait(None, None)).await;
        let lost = self.persister.backlog();
        if !lost.is_empty() {
            error!(
                sectors = lost.sectors,
                ships = lost.avatars,
                ledger_txs = lost.ledger_txs,
                owed_replies = lost.acks,
                queued_jobs = lost.queued,
                "writes not confirmed before the shutdown deadline are lost: the database keeps its last committed \
                 state (every acknowledged trade is in it; the owed replies were never sent)"
            );
        }
        self.persister_task.abort();
        self.parcel_sweep.abort();
        self.lag_gauge.abort();
        if tokio::time::timeout(STORE_CLOSE_TIMEOUT, self.store.close())
            .await
            .is_err()
        {
            warn!("closing the store timed out");
        }
    }
}
