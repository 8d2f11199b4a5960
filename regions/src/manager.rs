//! The region manager: spawns and stops region supervisors, and restarts one that escalated a failure.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use orrery_actors::supervision::SupervisionKind;
use orrery_engine::{Game, RegionId};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::{error, info, warn};

use crate::region::{Drained, RegionArgs, RegionMsg, RegionSupervisor};

/// How long stopping a region waits for its supervisor's drain (snapshot, sessions parked).
const DRAIN_CALL_MS: u64 = 30_000;

/// Messages of the region manager.
pub enum ManagerMsg {
    /// Starts a known region's supervisor (no-op if it runs); replies whether it runs afterwards.
    StartRegion(RegionId, RpcReplyPort<bool>),
    /// Stops a region: first its supervisor snapshots every sector and closes the region's sessions (4004, each
    /// parks its ship; [`RegionMsg::Drain`]), then the supervisor and its sectors stop. Replies what the drain did,
    /// or none if the region was not running.
    StopRegion(RegionId, RpcReplyPort<Option<Drained>>),
    /// Ids of the regions whose supervisors run.
    RunningRegions(RpcReplyPort<Vec<RegionId>>),
}

/// The region manager actor.
pub struct RegionManager<G: Game>(std::marker::PhantomData<fn() -> G>);

impl<G: Game> Default for RegionManager<G> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

struct Managed<G: Game> {
    args: RegionArgs<G>,
    actor: Option<ActorRef<RegionMsg>>,
    restarts: VecDeque<Instant>,
}

/// The region manager's state.
pub struct ManagerState<G: Game> {
    regions: HashMap<RegionId, Managed<G>>,
    children: HashMap<ActorId, RegionId>,
}

impl<G: Game> ManagerState<G> {
    async fn start(&mut self, myself: &ActorRef<ManagerMsg>, id: RegionId) -> Result<bool, ActorProcessingErr> {
        let Some(m) = self.regions.get_mut(&id) else {
            return Ok(false);
        };
        if m.actor.is_some() {
            return Ok(true);
        }
        let (actor, _) = Actor::spawn_linked(
            None,
            RegionSupervisor::<G>::default(),
            m.args.clone(),
            myself.get_cell(),
        )
        .await?;
        self.children.insert(actor.get_id(), id);
        m.actor = Some(actor);
        Ok(true)
    }
}

impl<G: Game> Actor for RegionManager<G> {
    type Msg = ManagerMsg;
    type State = ManagerState<G>;
    type Arguments = Vec<RegionArgs<G>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = ManagerState {
            regions: args
                .into_iter()
                .map(|a| {
                    (
                        a.id,
                        Managed {
                            args: a,
                            actor: None,
                            restarts: VecDeque::new(),
                        },
                    )
                })
                .collect(),
            children: HashMap::new(),
        };
        let ids: Vec<RegionId> = state.regions.keys().copied().collect();
        for id in ids {
            state.start(&myself, id).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ManagerMsg::StartRegion(id, reply) => {
                let was_running = state.regions.get(&id).is_some_and(|m| m.actor.is_some());
                let running = state.start(&myself, id).await?;
                if running && !was_running {
                    if let Some(m) = state.regions.get(&id) {
                        m.args.directory.supervision.record(
                            SupervisionKind::RegionStarted,
                            id,
                            None,
                            "started by an operator",
                        );
                    }
                }
                let _ = reply.send(running);
            }
            ManagerMsg::StopRegion(id, reply) => {
                let actor = state.regions.get(&id).and_then(|m| m.actor.clone());
                let mut drained = None;
                if let Some(actor) = actor {
                    drained = Some(match ractor::call_t!(actor, RegionMsg::Drain, DRAIN_CALL_MS) {
                        Ok(d) => d,
                        Err(e) => {
                            warn!(region = %id, error = %e, "the region did not drain before its stop");
                            Drained::default()
                        }
                    });
                    if let Some(m) = state.regions.get_mut(&id) {
                        m.actor = None;
                    }
                    state.children.remove(&actor.get_id());
                    actor.stop_children_and_wait(None, None).await;
                    actor.stop_and_wait(None, None).await?;
                    info!(region = %id, "region stopped");
                    if let Some(m) = state.regions.get(&id) {
                        m.args.directory.supervision.record(
                            SupervisionKind::RegionStopped,
                            id,
                            None,
                            "stopped by an operator",
                        );
                    }
                }
                let _ = reply.send(drained);
            }
            ManagerMsg::RunningRegions(reply) => {
                let _ = reply.send(
                    state
                        .regions
                        .iter()
                        .filter(|(_, m)| m.actor.is_some())
                        .map(|(id, _)| *id)
                        .collect(),
                );
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
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(id) = state.children.remove(&cell.get_id()) {
                    if let Some(m) = state.regions.get_mut(&id) {
                        m.actor = None;
                    }
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let Some(id) = state.children.remove(&cell.get_id()) else {
            return Ok(());
        };
        let Some(m) = state.regions.get_mut(&id) else {
            return Ok(());
        };
        m.actor = None;
        // The failed supervisor's sectors are gone with it; make sure no one routes to them.
        for c in &m.args.cells {
            m.args.directory.set_sector_actor(c.id, None);
        }
        let now = Instant::now();
        let window = m.args.config.restart_window;
        while m.restarts.front().is_some_and(|t| now.duration_since(*t) > window) {
            m.restarts.pop_front();
        }
        m.restarts.push_back(now);
        metrics::counter!("orrery_region_restarts_total").increment(1);
        if m.restarts.len() > m.args.config.max_restarts {
            error!(region = %m.args.name, %reason, "region keeps failing; leaving it stopped");
            m.args.directory.supervision.record(
                SupervisionKind::RegionGaveUp,
                id,
                None,
                format!(
                    "{reason} (more than {} restarts within {:?})",
                    m.args.config.max_restarts, window
                ),
            );
            return Ok(());
        }
        warn!(region = %m.args.name, %reason, "region supervisor failed; restarting the region");
        m.args
            .directory
            .supervision
            .record(SupervisionKind::RegionRestarted, id, None, reason);
        state.start(&myself, id).await?;
        Ok(())
    }
}
