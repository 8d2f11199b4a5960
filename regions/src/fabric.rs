//! The node's [`Fabric`]: how sectors reach region supervisors and the nexus.

use std::sync::{Arc, OnceLock, Weak};

use dashmap::DashMap;
use orrery_actors::{Directory, Fabric, Transfer};
use orrery_engine::{Game, RegionId};
use ractor::{ActorRef, MessagingErr};
use tracing::error;
use uuid::Uuid;

use crate::nexus::messages::NexusMsg;
use crate::region::messages::RegionMsg;

/// Routing tables of the actor tree above sectors.
pub struct NodeFabric<G: Game> {
    pub directory: Arc<Directory<G>>,
    regions: DashMap<RegionId, ActorRef<RegionMsg<G>>>,
    nexus: OnceLock<ActorRef<NexusMsg<G>>>,
    me: Weak<NodeFabric<G>>,
}

impl<G: Game> std::fmt::Debug for NodeFabric<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeFabric")
            .field("regions", &self.regions.len())
            .finish()
    }
}

impl<G: Game> NodeFabric<G> {
    pub fn new(directory: Arc<Directory<G>>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            directory,
            regions: DashMap::new(),
            nexus: OnceLock::new(),
            me: me.clone(),
        })
    }

    pub(crate) fn set_nexus(&self, nexus: ActorRef<NexusMsg<G>>) {
        let _ = self.nexus.set(nexus);
    }

    pub(crate) fn set_region(&self, id: RegionId, actor: Option<ActorRef<RegionMsg<G>>>) {
        match actor {
            Some(a) => {
                self.regions.insert(id, a);
            }
            None => {
                self.regions.remove(&id);
            }
        }
    }

    /// The running supervisor of a region.
    pub fn region(&self, id: RegionId) -> Option<ActorRef<RegionMsg<G>>> {
        self.regions.get(&id).map(|r| r.clone())
    }

    /// The nexus actor.
    pub fn nexus(&self) -> Option<ActorRef<NexusMsg<G>>> {
        self.nexus.get().cloned()
    }

    /// Delivers a transfer to a region supervisor, retrying while the region restarts.
    pub(crate) fn to_region(&self, region: RegionId, transfer: Transfer<G>) {
        let msg = RegionMsg::Transfer(transfer);
        let failed = match self.region(region) {
            Some(r) => match r.cast(msg) {
                Ok(()) => return,
                Err(MessagingErr::SendErr(RegionMsg::Transfer(t))) => t,
                Err(_) => return error!(%region, "region supervisor dropped a transfer"),
            },
            None => match msg {
                RegionMsg::Transfer(t) => t,
                RegionMsg::InjectCrash(_) => return,
            },
        };
        self.retry_later(failed, move |fabric, t| fabric.to_region(region, t));
    }

    /// Schedules another delivery attempt of a transfer (every 50 ms, up to 10 s, then back to its origin).
    pub(crate) fn retry_later(&self, mut t: Transfer<G>, again: impl FnOnce(&Arc<Self>, Transfer<G>) + Send + 'static) {
        t.attempts += 1;
        let Some(fabric) = self.me.upgrade() else {
            return error!("node is gone; transfer dropped at shutdown");
        };
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if t.attempts > 200 {
                error!(from = %t.from, to = %t.to, "transfer target unreachable for 10 s; returning the ship to its origin");
                std::mem::swap(&mut t.from, &mut t.to);
                t.attempts = 0;
                fabric.transfer(t);
            } else {
                again(&fabric, t);
            }
        });
    }
}

impl<G: Game> Fabric<G> for NodeFabric<G> {
    fn transfer(&self, transfer: Transfer<G>) {
        match self.directory.region_of(transfer.from) {
            Some(region) => self.to_region(region, transfer),
            None => error!(from = %transfer.from, "transfer from an unknown sector"),
        }
    }

    fn global_chat(&self, from: Uuid, name: String, text: String) {
        if let Some(nexus) = self.nexus() {
            let _ = nexus.cast(NexusMsg::GlobalChat { from, name, text });
        }
    }
}
