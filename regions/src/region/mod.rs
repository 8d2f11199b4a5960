//! The region supervisor: owns its sectors' actors and restarts a crashed one from its last state (one_for_one),
//! escalating to the region manager when restarts exceed the configured intensity.

pub mod messages;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orrery_actors::persist::PersistBatch;
use orrery_actors::persist::Persister;
use orrery_actors::sector::{SectorActor, SectorArgs, SectorCell, SectorMsg};
use orrery_actors::session::SessionMsg;
use orrery_actors::store::now_millis;
use orrery_actors::supervision::SupervisionKind;
use orrery_actors::{Directory, EngineConfig, Fabric, Parcel};
use orrery_engine::{Game, RegionId, SectorId};
use orrery_protocol::codes;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tracing::{error, info, warn};

use crate::fabric::NodeFabric;
pub use messages::{Drained, RegionMsg, Restarted};

/// How long a supervisor waits for one sector to answer an admin control.
const SECTOR_CALL_MS: u64 = 5_000;
/// How long draining a region waits for its sessions to park their ships and end.
const DRAIN_WAIT: Duration = Duration::from_secs(20);

/// Everything a region supervisor is started with. The sector cells belong to the region manager, so they
/// survive a restart of the supervisor itself.
pub struct RegionArgs<G: Game> {
    pub id: RegionId,
    pub name: String,
    pub game: Arc<G>,
    pub cells: Vec<Arc<SectorCell<G>>>,
    pub directory: Arc<Directory<G>>,
    pub fabric: Arc<NodeFabric<G>>,
    pub config: Arc<EngineConfig>,
    pub persister: Persister,
}

impl<G: Game> Clone for RegionArgs<G> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            name: self.name.clone(),
            game: Arc::clone(&self.game),
            cells: self.cells.clone(),
            directory: Arc::clone(&self.directory),
            fabric: Arc::clone(&self.fabric),
            config: Arc::clone(&self.config),
            persister: self.persister.clone(),
        }
    }
}

/// The region supervisor actor.
pub struct RegionSupervisor<G: Game>(std::marker::PhantomData<fn() -> G>);

impl<G: Game> Default for RegionSupervisor<G> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// A running region supervisor's state.
pub struct RegionState<G: Game> {
    args: RegionArgs<G>,
    cells: HashMap<SectorId, Arc<SectorCell<G>>>,
    children: HashMap<ActorId, SectorId>,
    restarts: VecDeque<Instant>,
}

impl<G: Game> RegionState<G> {
    async fn start_sector(
        &mut self,
        myself: &ActorRef<RegionMsg>,
        cell: Arc<SectorCell<G>>,
    ) -> Result<(), ActorProcessingErr> {
        let id = cell.id;
        let fabric: Arc<dyn Fabric<G>> = self.args.fabric.clone();
        let args = SectorArgs {
            game: Arc::clone(&self.args.game),
            cell,
            directory: Arc::clone(&self.args.directory),
            fabric,
            config: Arc::clone(&self.args.config),
            persister: self.args.persister.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, SectorActor::<G>::default(), args, myself.get_cell()).await?;
        self.children.insert(actor.get_id(), id);
        Ok(())
    }

    /// The running actors of this region's sectors.
    fn sector_actors(&self) -> Vec<(SectorId, ActorRef<SectorMsg<G>>)> {
        self.args
            .cells
            .iter()
            .filter_map(|c| self.args.directory.sector(c.id).map(|a| (c.id, a)))
            .collect()
    }

    /// Calls every running sector of the region with the message `make` builds; returns the answers.
    async fn call_sectors<T: Send + 'static>(&self, make: impl Fn(ractor::RpcReplyPort<T>) -> SectorMsg<G>) -> Vec<T> {
        let mut answers = Vec::new();
        for (id, actor) in self.sector_actors() {
            match ractor::call_t!(actor, &make, SECTOR_CALL_MS) {
                Ok(t) => answers.push(t),
                Err(e) => warn!(sector = %id, error = %e, "a sector did not answer an admin control"),
            }
        }
        answers
    }

    /// Snapshots `sectors` and writes them in one transaction through the persister; returns how many sectors were
    /// in it, the tick of each, and whether it was written.
    async fn snapshot(&self, sectors: &[(SectorId, ActorRef<SectorMsg<G>>)]) -> (Vec<(SectorId, u64)>, bool) {
        let mut batch = PersistBatch::default();
        for (id, actor) in sectors {
            match ractor::call_t!(actor, SectorMsg::Snapshot, SECTOR_CALL_MS) {
                Ok(b) => batch.extend(b),
                Err(e) => warn!(sector = %id, error = %e, "a sector did not answer a snapshot"),
            }
        }
        let ticks: Vec<(SectorId, u64)> = batch.sectors.iter().map(|s| (s.sector, s.tick)).collect();
        if ticks.is_empty() {
            return (ticks, true);
        }
        let written = self.args.persister.write(batch).await;
        if written {
            let now = now_millis();
            for (id, _) in &ticks {
                if let Some(cell) = self.cells.get(id) {
                    cell.snapshot_committed(now);
                }
            }
        }
        (ticks, written)
    }

    async fn restart_sector(&mut self, myself: &ActorRef<RegionMsg>, sector: SectorId) -> Result<Restarted, String> {
        let Some(cell) = self.cells.get(&sector).cloned() else {
            return Err(format!("sector {sector} is not in region {}", self.args.name));
        };
        let running = self.args.directory.sector(sector);
        let mut snapshot_tick = None;
        if let Some(actor) = &running {
            let (ticks, written) = self.snapshot(&[(sector, actor.clone())]).await;
            if !written {
                return Err("the sector's snapshot could not be written; it was not restarted".into());
            }
            snapshot_tick = ticks.first().map(|(_, t)| *t);
            // Forget the child first: its termination is not a failure to act on.
            self.children.retain(|_, s| *s != sector);
            self.args.directory.set_sector_actor(sector, None);
            actor
                .stop_and_wait(Some("restarted by an operator".into()), Some(Duration::from_secs(5)))
                .await
                .map_err(|e| format!("the sector's actor did not stop: {e}"))?;
        }
        // From its cell: the checkpoint the snapshot just took, with anything journaled since replayed on it.
        self.start_sector(myself, cell)
            .await
            .map_err(|e| format!("the sector could not be started: {e}"))?;
        info!(region = %self.args.name, %sector, was_running = running.is_some(), "sector restarted by an operator");
        self.args.directory.supervision.record(
            SupervisionKind::SectorRestartedByOperator,
            self.args.id,
            Some(sector),
            if running.is_some() {
                "restarted by an operator"
            } else {
                "started by an operator (it was not running)"
            },
        );
        Ok(Restarted {
            was_running: running.is_some(),
            snapshot_tick,
        })
    }

    /// Before the region stops: snapshot its sectors, then tell and close its sessions (each parks its ship).
    async fn drain(&self) -> Drained {
        let sectors = self.sector_actors();
        let (ticks, written) = self.snapshot(&sectors).await;
        let directory = &self.args.directory;
        let here: Vec<_> = directory
            .sessions()
            .into_iter()
            .filter(|l| directory.region_of(l.sector()) == Some(self.args.id))
            .collect();
        for link in &here {
            let reason = format!("region {} was stopped by an operator", self.args.name);
            let told = link.session_actor().is_some_and(|actor| {
                actor
                    .cast(SessionMsg::End {
                        scope: "region_stopped",
                        code: codes::CLOSE_REGION_STOPPED,
                        reason: reason.clone(),
                        reply: None,
                    })
                    .is_ok()
            });
            if !told {
                link.conn.close(codes::CLOSE_REGION_STOPPED, &reason);
                link.input_ended();
            }
        }
        let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        let left = || {
            here.iter()
                .filter(|l| {
                    directory
                        .session_of(l.character)
                        .is_some_and(|now| now.session == l.session)
                })
                .count()
        };
        while left() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Drained {
            sectors_snapshotted: ticks.len(),
            snapshot_written: written,
            sessions_closed: here.len(),
            sessions_left: left(),
        }
    }

    fn deliver(&self, parcel: Parcel) {
        if self.args.directory.region_of(parcel.to) != Some(self.args.id) {
            return self.args.fabric.to_nexus(parcel);
        }
        let sent = self
            .args
            .directory
            .sector(parcel.to)
            .is_some_and(|s| s.cast(SectorMsg::Admit(parcel)).is_ok());
        if !sent {
            // The sector is restarting: try again shortly, through whichever supervisor runs this region by then.
            let region = self.args.id;
            self.args
                .fabric
                .retry_later(parcel, move |fabric, p| fabric.to_region(region, p));
        }
    }
}

impl<G: Game> Actor for RegionSupervisor<G> {
    type Msg = RegionMsg;
    type State = RegionState<G>;
    type Arguments = RegionArgs<G>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = RegionState {
            cells: args.cells.iter().map(|c| (c.id, Arc::clone(c))).collect(),
            args,
            children: HashMap::new(),
            restarts: VecDeque::new(),
        };
        for cell in state.args.cells.clone() {
            state.start_sector(&myself, cell).await?;
        }
        state.args.fabric.set_region(state.args.id, Some(myself));
        Ok(state)
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.args.fabric.set_region(state.args.id, None);
        for id in state.cells.keys() {
            state.args.directory.set_sector_actor(*id, None);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RegionMsg::Transfer(t) => state.deliver(t),
            RegionMsg::InjectCrash(sector) => {
                if let Some(actor) = state.args.directory.sector(sector) {
                    let _ = actor.cast(SectorMsg::InjectCrash);
                }
            }
            RegionMsg::Pause { paused, reply } => {
                let n = state
                    .call_sectors(|reply| SectorMsg::Pause { paused, reply })
                    .await
                    .len();
                info!(region = %state.args.name, paused, sectors = n, "region paused by an operator");
                let _ = reply.send(n);
            }
            RegionMsg::SetTickRate { hz, reply } => {
                let n = state
                    .call_sectors(|reply| SectorMsg::SetTickRate { hz, reply })
                    .await
                    .len();
                // Sectors not running now (restarting) take the rate when they start: their cells keep it only
                // once they answered, so say how many did.
                let _ = reply.send(n);
            }
            RegionMsg::Notice { text, reply } => {
                let reached: usize = state
                    .call_sectors(|reply| SectorMsg::Notice {
                        scope: "region".into(),
                        text: text.clone(),
                        reply,
                    })
                    .await
                    .into_iter()
                    .sum();
                let _ = reply.send(reached);
            }
            RegionMsg::RestartSector { sector, reply } => {
                let done = state.restart_sector(&myself, sector).await;
                let _ = reply.send(done);
            }
            RegionMsg::Drain(reply) => {
                let _ = reply.send(state.drain().await);
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
        let (cell, reason): (ActorCell, String) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                // Sectors only stop on purpose (shutdown): nothing to restart.
                state.children.remove(&cell.get_id());
                return Ok(());
            }
            _ => return Ok(()),
        };
        let Some(sector) = state.children.remove(&cell.get_id()) else {
            return Ok(());
        };
        state.args.directory.set_sector_actor(sector, None);
        metrics::counter!("orrery_sector_restarts_total").increment(1);
        let now = Instant::now();
        let window = state.args.config.restart_window;
        while state.restarts.front().is_some_and(|t| now.duration_since(*t) > window) {
            state.restarts.pop_front();
        }
        state.restarts.push_back(now);
        if state.restarts.len() > state.args.config.max_restarts {
            error!(region = %state.args.name, %sector, "restart intensity exceeded; escalating to the region manager");
            state.args.directory.supervision.record(
                SupervisionKind::SectorEscalated,
                state.args.id,
                Some(sector),
                format!(
                    "{reason} (more than {} restarts within {:?})",
                    state.args.config.max_restarts, window
                ),
            );
            return Err(format!("region {} exceeded its restart intensity", state.args.name).into());
        }
        warn!(region = %state.args.name, %sector, %reason, "sector actor failed; restarting from its last state");
        state
            .args
            .directory
            .supervision
            .record(SupervisionKind::SectorRestarted, state.args.id, Some(sector), reason);
        let Some(cell) = state.cells.get(&sector).cloned() else {
            return Ok(());
        };
        state.start_sector(&myself, cell).await
    }
}
