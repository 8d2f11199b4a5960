//! The node's [`Fabric`]: how sectors reach region supervisors and the nexus.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use orrery_actors::{Directory, Fabric, Parcel};
use orrery_engine::{Game, RegionId};
use ractor::{ActorRef, MessagingErr};
use tracing::{debug, error, warn};
use uuid::Uuid;

use crate::nexus::messages::NexusMsg;
use crate::region::messages::RegionMsg;

/// How long a failed hop waits before it is tried again.
const HOP_RETRY: Duration = Duration::from_millis(50);
/// Hop retries before the parcel sweep takes over (10 s).
const MAX_HOP_RETRIES: u32 = 200;
/// A parcel not taken this long after its last delivery attempt is delivered again.
pub const REDRIVE_AFTER: Duration = Duration::from_secs(2);
/// A parcel not taken this long after it was posted goes back to its origin.
pub const RETURN_AFTER: Duration = Duration::from_secs(10);

/// Routing tables of the actor tree above sectors.
pub struct NodeFabric<G: Game> {
    pub directory: Arc<Directory<G>>,
    regions: DashMap<RegionId, ActorRef<RegionMsg>>,
    /// The running nexus: replaced each time the nexus (re)starts, so a restarted nexus is reached again.
    nexus: RwLock<Option<ActorRef<NexusMsg>>>,
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
            nexus: RwLock::new(None),
            me: me.clone(),
        })
    }

    /// Registers the nexus that just started (the first one, or one restarted after a failure).
    pub(crate) fn set_nexus(&self, nexus: ActorRef<NexusMsg>) {
        *self.nexus.write().unwrap_or_else(|e| e.into_inner()) = Some(nexus);
    }

    pub(crate) fn set_region(&self, id: RegionId, actor: Option<ActorRef<RegionMsg>>) {
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
    pub fn region(&self, id: RegionId) -> Option<ActorRef<RegionMsg>> {
        self.regions.get(&id).map(|r| r.clone())
    }

    /// The nexus actor (the latest one started; while it restarts, deliveries to it fail and are retried).
    pub fn nexus(&self) -> Option<ActorRef<NexusMsg>> {
        self.nexus.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Hands a parcel to a region supervisor (which gives it to the target sector); while the region restarts,
    /// tries again shortly.
    pub(crate) fn to_region(&self, region: RegionId, parcel: Parcel) {
        let sent = self
            .region(region)
            .is_some_and(|r| r.cast(RegionMsg::Transfer(parcel)).is_ok());
        if !sent {
            self.retry_later(parcel, move |fabric, p| fabric.to_region(region, p));
        }
    }

    /// Hands a parcel crossing regions to the nexus; while the nexus restarts, tries again shortly.
    pub(crate) fn to_nexus(&self, parcel: Parcel) {
        let sent = self.nexus().is_some_and(|n| n.cast(NexusMsg::Transfer(parcel)).is_ok());
        if !sent {
            self.retry_later(parcel, |fabric, p| fabric.to_nexus(p));
        }
    }

    /// Hands a global chat line to the nexus; while the nexus restarts, tries again every 50 ms for up to 2 s.
    fn chat_via_nexus(&self, msg: NexusMsg, attempts: u32) {
        let failed = match self.nexus() {
            Some(nexus) => match nexus.cast(msg) {
                Ok(()) => return,
                Err(MessagingErr::SendErr(m)) => m,
                Err(e) => return error!(error = %e, "nexus refused a global chat line"),
            },
            None => msg,
        };
        if attempts >= 40 {
            metrics::counter!("orrery_global_chat_dropped_total").increment(1);
            return warn!("no nexus for 2 s; a global chat line was dropped");
        }
        self.after_hop_retry(move |fabric| fabric.chat_via_nexus(failed, attempts + 1));
    }

    /// Runs `again` once [`HOP_RETRY`] has passed (nothing when the node is gone).
    fn after_hop_retry(&self, again: impl FnOnce(&Arc<Self>) + Send + 'static) {
        let Some(fabric) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(HOP_RETRY).await;
            again(&fabric);
        });
    }

    /// Tries a failed hop again in 50 ms, for up to 10 s; past that, [`NodeFabric::sweep_parcels`] keeps delivering
    /// the parcel and sends it back to its origin (the ship stays in the directory all along).
    pub(crate) fn retry_later(&self, mut parcel: Parcel, again: impl FnOnce(&Arc<Self>, Parcel) + Send + 'static) {
        parcel.attempts += 1;
        metrics::counter!("orrery_transfer_retries_total").increment(1);
        if parcel.attempts > MAX_HOP_RETRIES {
            return debug!(from = %parcel.from, to = %parcel.to, "hop retries exhausted; the parcel sweep takes over");
        }
        self.after_hop_retry(move |fabric| again(fabric, parcel));
    }

    /// Delivers again every parcel its target has not taken within [`REDRIVE_AFTER`] of the last attempt (its
    /// handle was lost, e.g. in the mailbox of an actor that crashed), and sends back to its origin one that has not
    /// been taken for [`RETURN_AFTER`]. Duplicate handles are harmless: only the first one takes the ship.
    pub fn sweep_parcels(&self) {
        for (parcel, age) in self.directory.overdue_parcels(REDRIVE_AFTER) {
            let parcel = if age >= RETURN_AFTER {
                let Some(back) = self.directory.return_parcel(parcel) else {
                    continue;
                };
                error!(from = %parcel.from, to = %parcel.to, "transfer target unreachable; returning the ship to its origin");
                back
            } else {
                parcel
            };
            metrics::counter!("orrery_transfer_redeliveries_total").increment(1);
            self.transfer(parcel);
        }
    }
}

impl<G: Game> Fabric<G> for NodeFabric<G> {
    fn transfer(&self, parcel: Parcel) {
        let from = self.directory.region_of(parcel.from);
        match (from, self.directory.region_of(parcel.to)) {
            (Some(a), Some(b)) if a == b => self.to_region(b, parcel),
            (_, Some(_)) => self.to_nexus(parcel),
            (Some(_), None) => {
                error!(to = %parcel.to, "transfer to an unknown sector; returning the ship");
                if let Some(back) = self.directory.return_parcel(parcel) {
                    self.transfer(back);
                }
            }
            (None, None) => error!(from = %parcel.from, to = %parcel.to, "transfer between unknown sectors"),
        }
    }

    fn global_chat(&self, from: Uuid, name: String, text: String) {
        self.chat_via_nexus(NexusMsg::GlobalChat { from, name, text }, 0);
    }
}
