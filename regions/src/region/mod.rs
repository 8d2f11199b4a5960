//! The region supervisor: owns its sectors' actors and restarts a crashed one from its last state (one_for_one),
//! escalating to the region manager when restarts exceed the configured intensity.

pub mod messages;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use orrery_actors::persist::Persister;
use orrery_actors::sector::{SectorActor, SectorArgs, SectorCell, SectorMsg};
use orrery_actors::{Directory, EngineConfig, Fabric, Parcel};
use orrery_engine::{Game, RegionId, SectorId};
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tracing::{error, warn};

use crate::fabric::NodeFabric;
pub use messages::RegionMsg;

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
        _myself: ActorRef<Self::Msg>,
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
            return Err(format!("region {} exceeded its restart intensity", state.args.name).into());
        }
        warn!(region = %state.args.name, %sector, %reason, "sector actor failed; restarting from its last state");
        let Some(cell) = state.cells.get(&sector).cloned() else {
            return Ok(());
        };
        state.start_sector(&myself, cell).await
    }
}
