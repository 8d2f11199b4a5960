//! The ledger, readable: a character's own entries (its owner or an admin), a station's (admins), and an audit of
//! the whole ledger (admins).
//!
//! `GET /v1/characters/{id}/ledger`, `GET /v1/admin/stations/{id}/ledger` and `GET /v1/admin/ledger/audit`. Pages
//! hold whole transactions, newest first: `?limit=` transactions (default 50, at most 200) older than `?before=`
//! (the `next` cursor of the previous page).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use orrery_actors::store::{LedgerAudit, LedgerLine, LedgerPage};
use orrery_engine::Game;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{self, principal, Operator};
use crate::admin::parse_id;
use crate::auth::bearer;
use crate::error::ApiError;
use crate::paging::{self, cursor, parse_cursor};
use crate::server::Peer;
use crate::App;

/// The query of a ledger page.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub before: Option<String>,
    pub limit: Option<u32>,
}

/// One entry of a transaction, as the holder sees it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Entry {
    pub asset: String,
    pub amount: i64,
}

/// One transaction of a holder's ledger, with the holder's entries in it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Transaction {
    pub id: Uuid,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// `opening` (what the world issued), `trade`, ...
    pub kind: String,
    pub sector: Option<Uuid>,
    /// The idempotency key of the command, if it had one.
    pub key: Option<String>,
    pub entries: Vec<Entry>,
}

/// A page of a holder's ledger.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerResponse {
    pub holder: Uuid,
    /// What the holder holds according to the whole ledger (not only this page), per asset.
    pub balances: BTreeMap<String, i64>,
    pub transactions: Vec<Transaction>,
    /// Pass as `?before=` for the next (older) page; `null` on the last page.
    pub next: Option<String>,
}

/// Checks a page query.
pub fn parse_page(query: Result<Query<PageQuery>, QueryRejection>) -> Result<LedgerPage, ApiError> {
    let Query(q) = query.map_err(crate::body::query_error)?;
    let limit = paging::limit(q.limit, "transactions")?;
    Ok(LedgerPage {
        before: q.before.as_deref().map(parse_cursor).transpose()?,
        limit,
    })
}

/// Groups a page's lines by transaction (they come ordered by transaction).
fn transactions(lines: Vec<LedgerLine>) -> Vec<Transaction> {
    let mut out: Vec<Transaction> = Vec::new();
    for l in lines {
        let entry = Entry {
            asset: l.asset,
            amount: l.amount,
        };
        match out.last_mut() {
            Some(t) if t.id == l.tx => t.entries.push(entry),
            _ => out.push(Transaction {
                id: l.tx,
                at: l.at,
                kind: l.kind,
                sector: l.sector,
                key: l.key,
                entries: vec![entry],
            }),
        }
    }
    out
}

async fn page<G: Game>(app: &App<G>, holder: Uuid, page: LedgerPage) -> Result<LedgerResponse, ApiError> {
    let store = &app.node.store;
    let transactions = transactions(store.ledger(holder, page).await?);
    let next = (transactions.len() == page.limit as usize)
        .then(|| transactions.last().map(|t| cursor(t.at, t.id)))
        .flatten();
    Ok(LedgerResponse {
        holder,
        balances: store.balances(holder).await?,
        transactions,
        next,
    })
}

/// `GET /v1/characters/{id}/ledger`: the character's owner (its login token) or an admin.
#[utoipa::path(get, path = "/v1/characters/{id}/ledger", tag = "ledger", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The character"),
        ("limit" = Option<u32>, Query, description = "Transactions per page (1 to 200, default 50)"),
        ("before" = Option<String>, Query, description = "The `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of the character's ledger, newest first", body = LedgerResponse),
        (status = 400, description = "A bad id, limit or cursor (the message names it)", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Not the character's owner (nor an operator)", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many reads from this address", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn character<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<LedgerResponse>, ApiError> {
    app.ledger_limiter.check(peer.ip(), "ledger")?;
    let id = parse_id(&id)?;
    let operator = principal(&app, &headers)
        .await
        .is_ok_and(|who| who.has(access::ADMIN) || who.has(access::OPERATOR));
    if !operator {
        // The owning account's access token, or its guest token.
        let token = bearer(&headers).ok_or(ApiError::Unauthorized)?;
        let caller = crate::accounts::caller(&app, &token).await?;
        let owned = match &caller.guest {
            Some(identity) if identity.character_id == id => true,
            _ => app
                .node
                .store
                .character(id)
                .await?
                .is_some_and(|c| c.account_id == caller.account.id),
        };
        if !owned {
            return Err(ApiError::NotYours(id));
        }
    }
    let query = parse_page(query)?;
    Ok(Json(page(&app, id, query).await?))
}

/// `GET /v1/admin/stations/{id}/ledger`.
#[utoipa::path(get, path = "/v1/admin/stations/{id}/ledger", tag = "ledger", security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The station"),
        ("limit" = Option<u32>, Query, description = "Transactions per page (1 to 200, default 50)"),
        ("before" = Option<String>, Query, description = "The `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of the station's ledger, newest first", body = LedgerResponse),
        (status = 400, description = "A bad id, limit or cursor (the message names it)", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Neither `admin` nor `operator`", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many reads from this address", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn station<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    Path(id): Path<String>,
    Operator(_): Operator,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<LedgerResponse>, ApiError> {
    app.ledger_limiter.check(peer.ip(), "ledger")?;
    let id = parse_id(&id)?;
    let query = parse_page(query)?;
    Ok(Json(page(&app, id, query).await?))
}

/// `GET /v1/admin/ledger/audit`: every transaction checked, and what the world issued per asset.
#[utoipa::path(get, path = "/v1/admin/ledger/audit", tag = "ledger", security(("bearer" = [])),
    responses(
        (status = 200, description = "`{\"transactions\", \"unbalanced\", \"issued\": {asset: total}}`", body = Object),
        (status = 401, description = "No valid token", body = crate::openapi::ErrorBody),
        (status = 403, description = "Neither `admin` nor `operator`", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many reads from this address", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn audit<G: Game>(
    State(app): State<Arc<App<G>>>,
    ConnectInfo(peer): Peer,
    Operator(_): Operator,
) -> Result<Json<LedgerAudit>, ApiError> {
    app.ledger_limiter.check(peer.ip(), "ledger")?;
    Ok(Json(app.node.store.audit_ledger().await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::{DEFAULT_PAGE, MAX_PAGE};

    #[test]
    fn cursors_round_trip_and_bad_ones_say_what_to_pass() {
        let id = Uuid::new_v4();
        assert_eq!(parse_cursor(&cursor(17, id)).unwrap(), (17, id));
        for bad in ["", "17", "x.y", "17.not-a-uuid"] {
            let e = parse_cursor(bad).unwrap_err();
            assert_eq!(e.status_and_code().1, "invalid_cursor");
            assert!(e.to_string().contains("`next`"), "{e}");
        }
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        for limit in [0, MAX_PAGE + 1] {
            let q = PageQuery {
                before: None,
                limit: Some(limit),
            };
            let e = parse_page(Ok(Query(q))).unwrap_err();
            assert_eq!(e.status_and_code().1, "invalid_limit");
        }
        let ok = parse_page(Ok(Query(PageQuery::default()))).unwrap();
        assert_eq!((ok.before, ok.limit), (None, DEFAULT_PAGE));
    }
}
