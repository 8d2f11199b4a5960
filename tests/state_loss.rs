//! State is never lost between actors, tested on the node itself (no HTTP): ships between sectors (the directory
//! keeps a ship in transit until a sector takes it, delivers it again when the message carrying it is lost on the
//! way, and sends it back to its origin when its target cannot take it), and parked ships (one writer per character
//! row: a snapshot queued before a ship was parked can never overwrite its parking).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use orrery_actors::net::{Conn, OutboxLimits};
use orrery_actors::persist::PersistBatch;
use orrery_actors::sector::SectorMsg;
use orrery_actors::session::{SessionActor, SessionArgs};
use orrery_actors::store::sqlite::SqliteStore;
use orrery_actors::store::{ParkedAvatar, SharedStore};
use orrery_actors::{EngineConfig, Fabric, Transfer};
use orrery_engine::galaxy::generate;
use orrery_engine::spacetrade::{Rules, SpaceTrade};
use orrery_engine::{CharacterSeed, EntityId, Game, SectorId};
use orrery_protocol::Encoding;
use orrery_regions::Node;
use ractor::Actor;
use uuid::Uuid;

async fn node() -> Node<SpaceTrade> {
    let game = Arc::new(SpaceTrade::new(Arc::new(generate(small_galaxy())), Rules::default()));
    let store: SharedStore = Arc::new(SqliteStore::open(&temp_dir().join("orrery.db")).await.unwrap());
    let config = EngineConfig {
        debug_hooks: true,
        ..EngineConfig::default()
    };
    Node::start(game, store, config).await.unwrap()
}

/// The ships in a sector right now (empty while its actor restarts).
async fn ships_in(node: &Node<SpaceTrade>, sector: SectorId) -> Vec<EntityId> {
    let Some(actor) = node.directory.sector(sector) else {
        return Vec::new();
    };
    let Ok(batch) = ractor::call_t!(actor, SectorMsg::Snapshot, 5_000) else {
        return Vec::new();
    };
    let state = postcard::from_bytes(&batch.sectors[0].state).unwrap();
    let game = &node.game;
    game.avatars(&state).iter().map(|a| game.avatar_id(a)).collect()
}

/// Waits (up to 15 s) until the ship is in `sector`; true if it got there.
async fn arrives(node: &Node<SpaceTrade>, ship: EntityId, sector: SectorId) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if ships_in(node, sector).await.contains(&ship) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A parked ship (no session follows it) leaving its spawn sector for another sector of the same region.
fn departing(node: &Node<SpaceTrade>) -> (Transfer<SpaceTrade>, EntityId) {
    let seed = CharacterSeed {
        character_id: Uuid::new_v4(),
        name: "Courier".into(),
    };
    let (from, avatar) = node.game.spawn(&seed, 0);
    let region = node
        .game
        .layout()
        .into_iter()
        .find(|r| r.sectors.iter().any(|s| s.id == from))
        .unwrap();
    let to = region.sectors.iter().map(|s| s.id).find(|id| *id != from).unwrap();
    let ship = node.game.avatar_id(&avatar);
    let transfer = Transfer {
        avatar,
        from,
        to,
        link: None,
        req_id: None,
    };
    (transfer, ship)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ship_whose_delivery_dies_with_a_crashing_sector_is_delivered_again() {
    let node = node().await;
    let (transfer, ship) = departing(&node);
    let (from, to) = (transfer.from, transfer.to);
    let parcel = node.directory.post(transfer);
    // The region supervisor passes both on in order: the crash reaches the target sector first, and the ship's
    // delivery dies in its mailbox (or finds it restarting).
    assert!(node.inject_crash(to));
    node.fabric.transfer(parcel);
    assert!(arrives(&node, ship, to).await, "the ship never arrived");
    assert_eq!(node.directory.parcels_in_flight(), 0);
    // Exactly once: a late duplicate of the delivery finds nothing to take.
    node.fabric.transfer(parcel);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let here = ships_in(&node, to).await;
    assert_eq!(here.iter().filter(|s| **s == ship).count(), 1);
    assert!(!ships_in(&node, from).await.contains(&ship));
    node.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ship_sent_to_a_sector_that_does_not_exist_returns_to_its_origin() {
    let node = node().await;
    let (mut transfer, ship) = departing(&node);
    transfer.to = Uuid::new_v4();
    let from = transfer.from;
    let parcel = node.directory.post(transfer);
    node.fabric.transfer(parcel);
    assert!(arrives(&node, ship, from).await, "the ship did not come back");
    assert_eq!(node.directory.parcels_in_flight(), 0);
    node.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_queued_before_a_ship_was_parked_never_overwrites_the_parking() {
    let node = node().await;
    let identity = node.store.create_guest("Parker", "parker-token", None).await.unwrap();
    let character = identity.character_id;
    // A real connection for the session (the test holds the client side and never reads it).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (socket, _) = listener.accept().unwrap();
    let conn = Conn::new(socket, OutboxLimits::default()).unwrap();
    let session = Uuid::new_v4();
    assert!(node.directory.reserve_character(character, session));
    let args = SessionArgs {
        game: Arc::clone(&node.game),
        directory: Arc::clone(&node.directory),
        store: Arc::clone(&node.store),
        persister: node.persister().clone(),
        config: Arc::clone(&node.config),
        identity,
        session,
        conn,
        encoding: Encoding::Json,
        leftover: Bytes::new(),
        nexus_allowed: true,
    };
    Actor::spawn(None, SessionActor::<SpaceTrade>::default(), args)
        .await
        .unwrap();
    let link = node.directory.session_of(character).expect("the session is attached");
    let home = link.sector();
    assert!(arrives(&node, link.entity, home).await);

    // The persister is busy (a write whose acknowledgement takes a while), and a sector's periodic snapshot taken
    // before the logout, with the ship somewhere else, waits in its queue.
    node.persister().submit_durable(
        PersistBatch::default(),
        Box::new(|_| std::thread::sleep(Duration::from_millis(800))),
    );
    let elsewhere = node
        .game
        .layout()
        .into_iter()
        .flat_map(|r| r.sectors)
        .map(|s| s.id)
        .find(|id| *id != home)
        .unwrap();
    let seed = CharacterSeed {
        character_id: character,
        name: "Parker".into(),
    };
    let (_, stale) = node.game.spawn(&seed, 0);
    node.persister().submit(PersistBatch {
        avatars: vec![ParkedAvatar {
            character_id: character,
            sector: elsewhere,
            avatar: postcard::to_allocvec(&stale).unwrap(),
        }],
        ..PersistBatch::default()
    });
    // The client goes away: the session parks the ship in `home`.
    link.input_ended();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while node.directory.session_count() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the session did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.persister().flush().await;
    let parked = node
        .store
        .load_avatar(character)
        .await
        .unwrap()
        .expect("the ship is parked");
    assert_eq!(parked.sector, home, "an older snapshot overwrote the parked ship");
    node.shutdown(Duration::from_secs(5)).await;
}
