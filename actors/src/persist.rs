//! The persister: a task that writes sector snapshots and parked avatars to the store off the tick path.

use tokio::sync::mpsc;
use tracing::warn;

use crate::store::{ParkedAvatar, SectorSnapshot, SharedStore};

/// Snapshots and avatars to write in one transaction.
#[derive(Debug, Default, Clone)]
pub struct PersistBatch {
    pub sectors: Vec<SectorSnapshot>,
    pub avatars: Vec<ParkedAvatar>,
}

impl PersistBatch {
    pub fn extend(&mut self, other: PersistBatch) {
        self.sectors.extend(other.sectors);
        self.avatars.extend(other.avatars);
    }
}

/// A handle sectors use to hand batches to the persister without waiting.
#[derive(Debug, Clone)]
pub struct Persister {
    tx: mpsc::Sender<PersistBatch>,
}

impl Persister {
    /// Starts the persister task over `store`.
    pub fn start(store: SharedStore) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<PersistBatch>(1024);
        let handle = tokio::spawn(async move {
            while let Some(mut batch) = rx.recv().await {
                while let Ok(more) = rx.try_recv() {
                    batch.extend(more);
                }
                let started = std::time::Instant::now();
                match store.save(&batch.sectors, &batch.avatars).await {
                    Ok(()) => {
                        metrics::counter!("orrery_snapshots_written_total").increment(batch.sectors.len() as u64);
                        metrics::histogram!("orrery_snapshot_write_seconds").record(started.elapsed().as_secs_f64());
                    }
                    Err(e) => {
                        metrics::counter!("orrery_snapshot_errors_total").increment(1);
                        warn!(error = %e, "snapshot write failed");
                    }
                }
            }
        });
        (Self { tx }, handle)
    }

    /// Queues a batch; if the persister is far behind, the batch is skipped (the next interval retries).
    pub fn submit(&self, batch: PersistBatch) {
        if self.tx.try_send(batch).is_err() {
            metrics::counter!("orrery_snapshots_skipped_total").increment(1);
        }
    }
}
