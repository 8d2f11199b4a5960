//! Paged reads newest first (the ledger and the audit log): the cursor `"<at>.<id>"` that `next` hands out and
//! `before` takes back, and the `limit` rule.

use uuid::Uuid;

use crate::error::ApiError;

/// Items per page when `limit` is not given.
pub const DEFAULT_PAGE: u32 = 50;
/// The largest `limit`.
pub const MAX_PAGE: u32 = 200;

/// The cursor of the item at `(at, id)`: `"<at>.<id>"`.
pub fn cursor(at: i64, id: Uuid) -> String {
    format!("{at}.{id}")
}

/// Reads a cursor given as query parameter `before` (`400 invalid_cursor` naming it).
pub fn parse_cursor(raw: &str) -> Result<(i64, Uuid), ApiError> {
    let bad = || {
        ApiError::BadRequest(
            "invalid_cursor",
            format!("query parameter `before`: {raw:?} is not a cursor; pass the `next` of a previous page"),
        )
    };
    let (at, id) = raw.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// The page size asked for (`DEFAULT_PAGE` when absent); `400 invalid_limit` outside 1 to `MAX_PAGE`, naming what
/// is counted (`transactions`, `entries`).
pub fn limit(given: Option<u32>, items: &str) -> Result<u32, ApiError> {
    let limit = given.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(
            "invalid_limit",
            format!("query parameter `limit`: must be 1 to {MAX_PAGE} {items}, got {limit}"),
        ));
    }
    Ok(limit)
}
