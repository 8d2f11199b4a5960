//! The persister: a task that writes sector snapshots and parked avatars to the store off the tick path.
//!
//! Batches queued while a write is in flight are merged into the next transaction (group commit). A batch may
//! carry acknowledgements: callbacks run once its transaction has committed (or failed), which is how a durable
//! command's reply waits for the disk without the sector waiting for anything.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::store::SharedStore;

/// Called with `true` once the batch it came with is durable, `false` if writing it failed.
pub type Ack = Box<dyn FnOnce(bool) + Send>;

/// Snapshots, avatars and ledger transactions to write in one transaction.
pub type PersistBatch = crate::store::Batch;

struct Job {
    batch: PersistBatch,
    ack: Option<Ack>,
}

/// Writes that take longer than this are logged (at debug level).
const SLOW_WRITE: std::time::Duration = std::time::Duration::from_millis(20);

/// Periodic snapshots are skipped while more than this many jobs wait (the next interval retries).
const MAX_QUEUED_SNAPSHOTS: usize = 256;

/// A handle sectors use to hand batches to the persister without waiting.
#[derive(Clone)]
pub struct Persister {
    tx: mpsc::UnboundedSender<Job>,
    queued: Arc<AtomicUsize>,
    /// Whether the last write succeeded: while it did not, durable commands are refused.
    healthy: Arc<AtomicBool>,
    store: Option<SharedStore>,
}

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish()
    }
}

impl Persister {
    /// Starts the persister task over `store`.
    pub fn start(store: SharedStore) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let depth = Arc::clone(&queued);
        let healthy = Arc::new(AtomicBool::new(true));
        let health = Arc::clone(&healthy);
        let reader = Arc::clone(&store);
        let handle = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = first.batch;
                let mut acks: Vec<Ack> = first.ack.into_iter().collect();
                let mut jobs = 1;
                while let Ok(more) = rx.try_recv() {
                    batch.extend(more.batch);
                    acks.extend(more.ack);
                    jobs += 1;
                }
                let left = depth.fetch_sub(jobs, Ordering::AcqRel).saturating_sub(jobs);
                metrics::gauge!("orrery_persist_queue_depth").set(left as f64);
                metrics::histogram!("orrery_snapshot_batch_sectors").record(batch.sectors.len() as f64);
                metrics::histogram!("orrery_snapshot_batch_avatars").record(batch.avatars.len() as f64);
                let started = std::time::Instant::now();
                let ok = match store.save(&batch).await {
                    Ok(()) => {
                        let took = started.elapsed();
                        metrics::counter!("orrery_snapshots_written_total").increment(batch.sectors.len() as u64);
                        metrics::histogram!("orrery_snapshot_write_seconds").record(took.as_secs_f64());
                        if took > SLOW_WRITE {
                            debug!(
                                took_ms = took.as_secs_f64() * 1e3,
                                sectors = batch.sectors.len(),
                                avatars = batch.avatars.len(),
                                "slow snapshot write"
                            );
                        }
                        true
                    }
                    Err(e) => {
                        metrics::counter!("orrery_snapshot_errors_total").increment(1);
                        warn!(error = %e, "snapshot write failed");
                        false
                    }
                };
                health.store(ok, Ordering::Release);
                for ack in acks {
                    ack(ok);
                }
            }
        });
        (
            Self {
                tx,
                queued,
                healthy,
                store: Some(reader),
            },
            handle,
        )
    }

    /// Whether the store is taking writes (the last write succeeded).
    pub fn available(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// The store behind the persister, for reads off the tick path (none for a detached persister).
    pub fn store(&self) -> Option<SharedStore> {
        self.store.clone()
    }

    /// A persister with no task behind it: every batch fails at once (for tests that do not persist).
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        let (tx, _) = mpsc::unbounded_channel();
        Self {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            healthy: Arc::new(AtomicBool::new(true)),
            store: None,
        }
    }

    /// Queues a periodic snapshot; if the persister is far behind, it is skipped (the next interval retries).
    pub fn submit(&self, batch: PersistBatch) {
        if self.queued.load(Ordering::Acquire) > MAX_QUEUED_SNAPSHOTS {
            metrics::counter!("orrery_snapshots_skipped_total").increment(1);
            return;
        }
        self.push(Job { batch, ack: None });
    }

    /// Queues a batch that must reach the disk; `ack` runs after its transaction (never skipped).
    pub fn submit_durable(&self, batch: PersistBatch, ack: Ack) {
        self.push(Job { batch, ack: Some(ack) });
    }

    /// Waits until everything queued before this call has been written and its acknowledgements have run
    /// (graceful shutdown: every durable reply owed is sent before sessions close).
    pub async fn flush(&self) {
        self.write(PersistBatch::default()).await;
    }

    /// Queues a batch that must reach the disk, after everything already queued, and waits for it: true once it is
    /// written.
    pub async fn write(&self, batch: PersistBatch) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit_durable(
            batch,
            Box::new(move |ok| {
                let _ = tx.send(ok);
            }),
        );
        rx.await.unwrap_or(false)
    }

    fn push(&self, job: Job) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            if let Some(ack) = job.ack {
                ack(false);
            }
        }
    }
}
