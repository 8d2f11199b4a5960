//! The nexus actor: coordinates cross-region traffic (ships crossing regions, global chat).

pub mod messages;

use std::sync::Arc;

use orrery_actors::sector::Encoded;
use orrery_actors::Directory;
use orrery_actors::Fabric;
use orrery_engine::Game;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::warn;

use crate::fabric::NodeFabric;
pub use messages::NexusMsg;

/// Everything the nexus is started with.
pub struct NexusArgs<G: Game> {
    pub directory: Arc<Directory<G>>,
    pub fabric: Arc<NodeFabric<G>>,
}

/// The nexus actor.
pub struct Nexus<G: Game>(std::marker::PhantomData<fn() -> G>);

impl<G: Game> Default for Nexus<G> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<G: Game> Actor for Nexus<G> {
    type Msg = NexusMsg;
    type State = NexusArgs<G>;
    type Arguments = NexusArgs<G>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.fabric.set_nexus(myself);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NexusMsg::Transfer(parcel) => match state.directory.region_of(parcel.to) {
                Some(region) => {
                    metrics::counter!("orrery_nexus_transfers_total").increment(1);
                    state.fabric.to_region(region, parcel);
                }
                // The fabric sends a parcel for an unknown sector back to its origin.
                None => state.fabric.transfer(parcel),
            },
            NexusMsg::GlobalChat { from, name, text } => {
                let frame = orrery_protocol::ServerFrame::<G>::new(
                    None,
                    orrery_protocol::ServerMessage::Chat {
                        channel: orrery_protocol::ChatChannel::Global,
                        from,
                        name,
                        text,
                    },
                );
                let mut frames = Encoded::new(&frame);
                for link in state.directory.sessions() {
                    link.conn.send(frames.get(link.encoding));
                }
            }
            NexusMsg::Notice { text, reply } => {
                let frame = orrery_protocol::ServerFrame::<G>::new(
                    None,
                    orrery_protocol::ServerMessage::Notice {
                        scope: "global".into(),
                        text,
                    },
                );
                let mut frames = Encoded::new(&frame);
                let mut reached = 0;
                for link in state.directory.sessions() {
                    if link.conn.send(frames.get(link.encoding)) {
                        reached += 1;
                    }
                }
                let _ = reply.send(reached);
            }
            NexusMsg::InjectCrash => {
                warn!("injected crash in the nexus");
                return Err("injected crash in the nexus".into());
            }
        }
        Ok(())
    }
}
