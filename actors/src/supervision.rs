//! The node's supervision history: every restart, failure, escalation, stop and start of a sector or a region,
//! newest last, in a bounded ring (the admin API's `GET /v1/admin/supervision` and the console's supervision tree
//! read it). Kept in memory for the node's lifetime; the log (`tracing`) and the restart counters
//! (`orrery_sector_restarts_total`, `orrery_region_restarts_total`) carry the same events.

use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use orrery_engine::{RegionId, SectorId};
use parking_lot::Mutex;
use serde::Serialize;
use uuid::Uuid;

/// How many events the ring keeps (the oldest are dropped first; the per-target counts keep counting).
pub const SUPERVISION_HISTORY: usize = 512;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervisionKind {
    /// A sector's actor failed and its region supervisor restarted it from its last state.
    SectorRestarted,
    /// An operator restarted a sector (snapshot, stop, start through its supervisor).
    SectorRestartedByOperator,
    /// A sector failed once too often within the restart window: its region supervisor escalated (failed).
    SectorEscalated,
    /// A region supervisor failed and the region manager restarted it (with its sectors).
    RegionRestarted,
    /// A region supervisor failed too often within the window: the manager left the region stopped.
    RegionGaveUp,
    /// An operator stopped a region (snapshot, sessions told, supervisor stopped).
    RegionStopped,
    /// An operator started a stopped region.
    RegionStarted,
}

/// One event.
#[derive(Clone, Debug, Serialize)]
pub struct SupervisionRecord {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub kind: SupervisionKind,
    pub region: RegionId,
    /// The sector, for sector events.
    pub sector: Option<SectorId>,
    /// Why (the failure's message, or who asked).
    pub reason: String,
}

/// The ring and, per region and per sector, how many restarts it has had since the node started.
#[derive(Debug, Default)]
pub struct SupervisionLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<SupervisionRecord>,
    restarts: HashMap<Uuid, u64>,
}

impl SupervisionLog {
    /// Records an event (a restart of either kind also counts against its target).
    pub fn record(&self, kind: SupervisionKind, region: RegionId, sector: Option<SectorId>, reason: impl Into<String>) {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut inner = self.inner.lock();
        if matches!(
            kind,
            SupervisionKind::SectorRestarted
                | SupervisionKind::SectorRestartedByOperator
                | SupervisionKind::RegionRestarted
        ) {
            *inner.restarts.entry(sector.unwrap_or(region)).or_default() += 1;
        }
        if inner.events.len() == SUPERVISION_HISTORY {
            inner.events.pop_front();
        }
        inner.events.push_back(SupervisionRecord {
            at,
            kind,
            region,
            sector,
            reason: reason.into(),
        });
    }

    /// The events, newest first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<SupervisionRecord> {
        self.inner.lock().events.iter().rev().take(limit).cloned().collect()
    }

    /// Restarts of a region (its supervisor) or a sector since the node started.
    pub fn restarts(&self, id: Uuid) -> u64 {
        self.inner.lock().restarts.get(&id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_and_the_counts_keep_counting() {
        let log = SupervisionLog::default();
        let (region, sector) = (Uuid::new_v4(), Uuid::new_v4());
        for i in 0..SUPERVISION_HISTORY + 10 {
            log.record(
                SupervisionKind::SectorRestarted,
                region,
                Some(sector),
                format!("crash {i}"),
            );
        }
        log.record(SupervisionKind::RegionStopped, region, None, "operator");
        let recent = log.recent(usize::MAX);
        assert_eq!(recent.len(), SUPERVISION_HISTORY);
        assert_eq!(recent[0].kind, SupervisionKind::RegionStopped);
        assert_eq!(recent[1].reason, format!("crash {}", SUPERVISION_HISTORY + 9));
        assert_eq!(log.restarts(sector), (SUPERVISION_HISTORY + 10) as u64);
        assert_eq!(log.restarts(region), 0, "a stop is not a restart");
        assert_eq!(log.recent(3).len(), 3);
    }
}
