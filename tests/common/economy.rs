//! What characters and stations hold, per asset, as the game shows it and as the ledger endpoints say it.

use std::collections::BTreeMap;

use orrery_engine::galaxy::Commodity;
use orrery_engine::spacetrade::{Event, Profile, Side, StationView};
use serde_json::Value;
use uuid::Uuid;

use super::{TestServer, ADMIN};

/// What a holder holds, per asset (zeros left out), named as the ledger names assets.
pub type Holdings = BTreeMap<String, i64>;

/// A trade: station, commodity, side, quantity.
pub type Trade = (Uuid, Commodity, Side, u32);

pub fn ship_holdings(credits: u64, cargo: &BTreeMap<Commodity, u32>) -> Holdings {
    let mut h: Holdings = cargo
        .iter()
        .map(|(c, &q)| (c.as_str().to_owned(), i64::from(q)))
        .collect();
    h.insert("credits".into(), credits as i64);
    h.retain(|_, v| *v != 0);
    h
}

pub fn profile_holdings(p: &Profile) -> Holdings {
    ship_holdings(p.credits, &p.cargo)
}

pub fn result_holdings(e: &Event) -> Holdings {
    let Event::TradeResult { credits, cargo, .. } = e;
    ship_holdings(*credits, cargo)
}

pub fn station_holdings(s: &StationView) -> Holdings {
    let mut h: Holdings = s
        .commodities
        .iter()
        .map(|l| (l.commodity.as_str().to_owned(), i64::from(l.quantity)))
        .collect();
    h.insert("credits".into(), s.credits as i64);
    h.retain(|_, v| *v != 0);
    h
}

pub fn add(total: &mut Holdings, h: &Holdings) {
    for (asset, v) in h {
        *total.entry(asset.clone()).or_default() += v;
    }
}

/// `GET path` with an optional bearer token: status and JSON body.
pub async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = server.http.get(server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The `balances` of a ledger page.
pub fn balances(body: &Value) -> Holdings {
    let mut h: Holdings = serde_json::from_value(body["balances"].clone()).unwrap();
    h.retain(|_, v| *v != 0);
    h
}

/// What the ledger says a character holds (read with its own token).
pub async fn character_balances(server: &TestServer, character: Uuid, token: &str) -> Holdings {
    let (status, body) = get(server, &format!("/v1/characters/{character}/ledger"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    balances(&body)
}

/// What the ledger says a station holds (admin).
pub async fn station_balances(server: &TestServer, station: Uuid) -> Holdings {
    let (status, body) = get(server, &format!("/v1/admin/stations/{station}/ledger"), Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    balances(&body)
}

/// The audit: asserts no transaction is unbalanced, and returns what the world issued.
pub async fn audit(server: &TestServer) -> Holdings {
    let (status, body) = get(server, "/v1/admin/ledger/audit", Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unbalanced"], 0, "{body}");
    let mut issued: Holdings = serde_json::from_value(body["issued"].clone()).unwrap();
    issued.retain(|_, v| *v != 0);
    issued
}
