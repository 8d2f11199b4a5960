//! The persister: a task that writes sector snapshots and parked avatars to the store off the tick path.
//!
//! Batches queued while a write is in flight are merged into the next transaction (group commit). A batch may
//! carry acknowledgements: callbacks run once its transaction has committed (or failed), which is how a durable
//! command's reply waits for the disk without the sector waiting for anything.
//!
//! # When the database is unreachable
//!
//! A write that fails with a transient error ([`StoreError::Database`]: connection refused or lost, pool timeout,
//! a read-only server, ...) is not given up: the batch is kept and written again after a delay that starts at
//! [`RETRY_FIRST`] and doubles up to [`RETRY_MAX`], for as long as it takes. Jobs that arrive meanwhile are merged
//! into it, and the merged batch is compacted (the last snapshot of each sector, the last row of each character,
//! each ledger transaction once), so what is held stays bounded by the number of sectors, characters and owed
//! ledger transactions, however long the outage. The acknowledgements of everything held run when it finally
//! commits. While a write is failing, [`Persister::available`] is false (sectors refuse durable commands with
//! `storage_unavailable`); it is true again after the next successful write.
//!
//! Other errors ([`StoreError::Fenced`], [`StoreError::Corrupt`], ...) would fail again: the batch is dropped and its
//! acknowledgements run with `false` at once.
//!
//! Metrics: `orrery_storage_available` (1 or 0), `orrery_persist_retries_total`, and what is held for a retry:
//! `orrery_persist_backlog_sectors`, `orrery_persist_backlog_avatars`, `orrery_persist_backlog_ledger_txs`,
//! `orrery_persist_backlog_acks`.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::store::{SharedStore, StoreError};

/// Called with `true` once the batch it came with is durable, `false` if writing it failed.
pub type Ack = Box<dyn FnOnce(bool) + Send>;

/// Snapshots, avatars and ledger transactions to write in one transaction.
pub type PersistBatch = crate::store::Batch;

struct Job {
    batch: PersistBatch,
    ack: Option<Ack>,
    /// A periodic snapshot queued through its sector's slot: the job's content is whatever the slot holds when the
    /// persister takes it (the newest snapshot submitted meanwhile).
    slot: Option<Arc<SnapshotSlot>>,
}

impl Job {
    /// The batch and acknowledgement this job carries (for a slot's job: the newest the slot holds).
    fn take(self) -> (PersistBatch, Option<Ack>) {
        match self.slot {
            Some(slot) => slot.pending.lock().take().unwrap_or_default(),
            None => (self.batch, self.ack),
        }
    }
}

/// Where one sector's periodic snapshot waits for the persister: at most one per sector is queued, and a newer one
/// replaces it there (the newest pending snapshot wins; an older one is dropped, never the newest). Its place in
/// the queue is that of the first one queued, so it is written no later than it would have been.
#[derive(Default)]
pub struct SnapshotSlot {
    pending: Mutex<Option<(PersistBatch, Option<Ack>)>>,
}

impl std::fmt::Debug for SnapshotSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotSlot")
            .field("pending", &self.pending.lock().is_some())
            .finish()
    }
}

/// Writes that take longer than this are logged (at debug level).
const SLOW_WRITE: Duration = Duration::from_millis(20);

/// The wait before the first retry of a batch whose write failed with a transient error.
pub const RETRY_FIRST: Duration = Duration::from_millis(100);

/// The longest wait between two retries: the wait doubles after each failed attempt up to this.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// While writes keep failing, the failure is logged at warn level at most this often (debug otherwise).
const WARN_EVERY: Duration = Duration::from_secs(30);

/// What the persister has taken and not written yet (the batch being written, or held for a retry), and what is
/// queued behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Sector snapshots (one per sector at most).
    pub sectors: usize,
    /// Parked ships (one per character at most).
    pub avatars: usize,
    /// Ledger transactions.
    pub ledger_txs: usize,
    /// Acknowledgements waiting for the commit (durable replies, logins, logouts, flushes).
    pub acks: usize,
    /// Jobs queued behind it, not merged yet.
    pub queued: usize,
}

impl Backlog {
    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.sectors == 0 && self.avatars == 0 && self.ledger_txs == 0 && self.acks == 0 && self.queued == 0
    }
}

/// State shared by the handles and the task.
struct Shared {
    queued: AtomicUsize,
    /// Whether the last write succeeded: while it did not, durable commands are refused.
    healthy: AtomicBool,
    /// The batch being written or held for a retry (everything but `queued`).
    taken: Mutex<Backlog>,
    /// A write is in flight (for attributing tick overruns: `orrery_tick_overruns_during_write_total`).
    writing: AtomicBool,
}

impl Shared {
    fn new() -> Self {
        Self {
            queued: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            taken: Mutex::new(Backlog::default()),
            writing: AtomicBool::new(false),
        }
    }

    fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Ordering::Release);
        metrics::gauge!("orrery_storage_available").set(if ok { 1.0 } else { 0.0 });
    }

    /// Notes the batch being written (the backlog gauges show only what is held for a retry: see [`Self::set_held`]).
    fn set_taken(&self, taken: Backlog) {
        *self.taken.lock() = taken;
    }

    /// Notes what is held for a retry, and shows it in the backlog gauges.
    fn set_held(&self, held: Backlog) {
        metrics::gauge!("orrery_persist_backlog_sectors").set(held.sectors as f64);
        metrics::gauge!("orrery_persist_backlog_avatars").set(held.avatars as f64);
        metrics::gauge!("orrery_persist_backlog_ledger_txs").set(held.ledger_txs as f64);
        metrics::gauge!("orrery_persist_backlog_acks").set(held.acks as f64);
        self.set_taken(held);
    }
}

/// A handle sectors use to hand batches to the persister without waiting.
#[derive(Clone)]
pub struct Persister {
    tx: mpsc::UnboundedSender<Job>,
    shared: Arc<Shared>,
    store: Option<SharedStore>,
}

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister")
            .field("queued", &self.shared.queued.load(Ordering::Relaxed))
            .field("healthy", &self.available())
            .finish()
    }
}

/// Whether a failed write may succeed if tried again unchanged.
fn transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(_))
}

/// Keeps the last item of each key, in their original order.
fn keep_last<T, K: Hash + Eq>(items: &mut Vec<T>, key: impl Fn(&T) -> K) {
    let mut seen = HashSet::with_capacity(items.len());
    items.reverse();
    items.retain(|t| seen.insert(key(t)));
    items.reverse();
}

/// Merged jobs: one batch and the acknowledgements to run when it is written.
struct Pending {
    batch: PersistBatch,
    acks: Vec<Ack>,
}

impl Pending {
    fn new(job: Job) -> Self {
        let (batch, ack) = job.take();
        Self {
            batch,
            acks: ack.into_iter().collect(),
        }
    }

    fn absorb(&mut self, job: Job) {
        let (batch, ack) = job.take();
        self.batch.extend(batch);
        self.acks.extend(ack);
    }

    /// Merges every job waiting in `rx` into this one; returns how many there were.
    fn drain(&mut self, rx: &mut mpsc::UnboundedReceiver<Job>, shared: &Shared) -> usize {
        let mut jobs = 0;
        while let Ok(job) = rx.try_recv() {
            self.absorb(job);
            jobs += 1;
        }
        if jobs > 0 {
            let left = shared.queued.fetch_sub(jobs, Ordering::AcqRel).saturating_sub(jobs);
            metrics::gauge!("orrery_persist_queue_depth").set(left as f64);
        }
        jobs
    }

    /// Drops what a later entry of the same batch supersedes: the store would write only the last snapshot of a
    /// sector and the last row of a character anyway, and a ledger transaction once (its id is idempotent).
    fn compact(&mut self) {
        keep_last(&mut self.batch.sectors, |s| s.sector);
        keep_last(&mut self.batch.avatars, |a| a.character_id);
        let mut ids = HashSet::with_capacity(self.batch.ledger.len());
        self.batch.ledger.retain(|t| ids.insert(t.id));
    }

    fn backlog(&self) -> Backlog {
        Backlog {
            sectors: self.batch.sectors.len(),
            avatars: self.batch.avatars.len(),
            ledger_txs: self.batch.ledger.len(),
            acks: self.acks.len(),
            queued: 0,
        }
    }

    fn acknowledge(self, ok: bool) {
        for ack in self.acks {
            ack(ok);
        }
    }
}

/// How the store has been failing, for the logs.
struct Outage {
    since: Instant,
    attempts: u64,
    delay: Duration,
    last_warned: Instant,
}

/// The persister task: writes batches, retrying transient failures, until every handle is gone and nothing is held.
async fn run(store: SharedStore, mut rx: mpsc::UnboundedReceiver<Job>, shared: Arc<Shared>) {
    let mut held: Option<Pending> = None;
    let mut outage: Option<Outage> = None;
    let mut open = true;
    loop {
        let mut work = match held.take() {
            Some(work) => work,
            None => match rx.recv().await {
                Some(first) => {
                    shared.queued.fetch_sub(1, Ordering::AcqRel);
                    Pending::new(first)
                }
                None => return,
            },
        };
        work.drain(&mut rx, &shared);
        if outage.is_some() {
            work.compact();
        }
        let left = shared.queued.load(Ordering::Acquire);
        metrics::gauge!("orrery_persist_queue_depth").set(left as f64);
        metrics::histogram!("orrery_snapshot_batch_sectors").record(work.batch.sectors.len() as f64);
        metrics::histogram!("orrery_snapshot_batch_avatars").record(work.batch.avatars.len() as f64);
        shared.set_taken(work.backlog());
        let started = Instant::now();
        shared.writing.store(true, Ordering::Release);
        let saved = store.save(&work.batch).await;
        shared.writing.store(false, Ordering::Release);
        match saved {
            Ok(()) => {
                let took = started.elapsed();
                metrics::counter!("orrery_snapshots_written_total").increment(work.batch.sectors.len() as u64);
                metrics::histogram!("orrery_snapshot_write_seconds").record(took.as_secs_f64());
                if took > SLOW_WRITE {
                    debug!(
                        took_ms = took.as_secs_f64() * 1e3,
                        sectors = work.batch.sectors.len(),
                        avatars = work.batch.avatars.len(),
                        "slow snapshot write"
                    );
                }
                if let Some(o) = outage.take() {
                    let held = work.backlog();
                    info!(
                        down_for_s = o.since.elapsed().as_secs_f64(),
                        attempts = o.attempts,
                        sectors = held.sectors,
                        avatars = held.avatars,
                        ledger_txs = held.ledger_txs,
                        acks = held.acks,
                        "the store takes writes again: the held batch is written"
                    );
                    shared.set_held(Backlog::default());
                } else {
                    shared.set_taken(Backlog::default());
                }
                shared.set_healthy(true);
                work.acknowledge(true);
            }
            Err(e) if transient(&e) => {
                metrics::counter!("orrery_snapshot_errors_total").increment(1);
                metrics::counter!("orrery_persist_retries_total").increment(1);
                shared.set_healthy(false);
                work.compact();
                let now = Instant::now();
                let o = outage.get_or_insert(Outage {
                    since: now,
                    attempts: 0,
                    delay: RETRY_FIRST,
                    last_warned: now,
                });
                o.attempts += 1;
                let held_now = work.backlog();
                if o.attempts == 1 || now.duration_since(o.last_warned) >= WARN_EVERY {
                    o.last_warned = now;
                    warn!(
                        error = %e,
                        attempts = o.attempts,
                        down_for_s = now.duration_since(o.since).as_secs_f64(),
                        retry_in_ms = o.delay.as_millis() as u64,
                        sectors = held_now.sectors,
                        avatars = held_now.avatars,
                        ledger_txs = held_now.ledger_txs,
                        acks = held_now.acks,
                        "the store does not take writes: holding the batch and retrying; durable commands are refused"
                    );
                } else {
                    debug!(error = %e, attempts = o.attempts, retry_in_ms = o.delay.as_millis() as u64, "write retry failed");
                }
                shared.set_held(held_now);
                // Wait out the delay, merging what arrives meanwhile so that nothing piles up in the queue.
                let until = Instant::now() + o.delay;
                o.delay = (o.delay * 2).min(RETRY_MAX);
                while open {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => break,
                        job = rx.recv() => match job {
                            Some(job) => {
                                shared.queued.fetch_sub(1, Ordering::AcqRel);
                                work.absorb(job);
                                work.drain(&mut rx, &shared);
                                work.compact();
                                shared.set_held(work.backlog());
                            }
                            None => open = false,
                        },
                    }
                }
                if !open {
                    tokio::time::sleep_until(until).await;
                }
                held = Some(work);
            }
            Err(e) => {
                metrics::counter!("orrery_snapshot_errors_total").increment(1);
                warn!(
                    error = %e,
                    sectors = work.batch.sectors.len(),
                    avatars = work.batch.avatars.len(),
                    ledger_txs = work.batch.ledger.len(),
                    "snapshot write failed and cannot succeed by retrying: the batch is dropped"
                );
                if outage.take().is_some() {
                    shared.set_held(Backlog::default());
                } else {
                    shared.set_taken(Backlog::default());
                }
                shared.set_healthy(false);
                work.acknowledge(false);
            }
        }
    }
}

impl Persister {
    /// Starts the persister task over `store`.
    pub fn start(store: SharedStore) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let shared = Arc::new(Shared::new());
        shared.set_healthy(true);
        shared.set_held(Backlog::default());
        let handle = tokio::spawn(run(Arc::clone(&store), rx, Arc::clone(&shared)));
        (
            Self {
                tx,
                shared,
                store: Some(store),
            },
            handle,
        )
    }

    /// Whether a write to the store is in flight right now.
    pub fn writing(&self) -> bool {
        self.shared.writing.load(Ordering::Acquire)
    }

    /// Whether the store is taking writes (the last write succeeded).
    pub fn available(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// What is not written yet: being written, held for a retry, or queued.
    pub fn backlog(&self) -> Backlog {
        Backlog {
            queued: self.shared.queued.load(Ordering::Acquire),
            ..*self.shared.taken.lock()
        }
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
            shared: Arc::new(Shared::new()),
            store: None,
        }
    }

    /// Queues a batch with no acknowledgement.
    pub fn submit(&self, batch: PersistBatch) {
        self.push(Job {
            batch,
            ack: None,
            slot: None,
        });
    }

    /// Queues a sector's periodic snapshot through its slot: if the sector's previous one is still queued, this
    /// one replaces it (whose acknowledgement runs with `false`: it will not be written), so that a slow store
    /// holds at most one pending snapshot per sector, the newest.
    pub fn submit_latest(&self, slot: &Arc<SnapshotSlot>, batch: PersistBatch, ack: Option<Ack>) {
        let replaced = slot.pending.lock().replace((batch, ack));
        match replaced {
            Some((_, older_ack)) => {
                metrics::counter!("orrery_snapshots_superseded_total").increment(1);
                if let Some(ack) = older_ack {
                    ack(false);
                }
            }
            None => self.push(Job {
                batch: PersistBatch::default(),
                ack: None,
                slot: Some(Arc::clone(slot)),
            }),
        }
    }

    /// Queues a batch that must reach the disk; `ack` runs after its transaction (never skipped). While the store
    /// is unreachable, that is when it comes back.
    pub fn submit_durable(&self, batch: PersistBatch, ack: Ack) {
        self.push(Job {
            batch,
            ack: Some(ack),
            slot: None,
        });
    }

    /// Waits until everything queued before this call has been written and its acknowledgements have run
    /// (graceful shutdown: every durable reply owed is sent before sessions close). While the store is unreachable
    /// this waits for it to come back: bound it with a timeout.
    pub async fn flush(&self) {
        self.write(PersistBatch::default()).await;
    }

    /// Queues a batch that must reach the disk, after everything already queued, and waits for it: true once it is
    /// written. While the store is unreachable this waits for it to come back: bound it with a timeout (the batch
    /// stays queued and is written when the store returns).
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
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            if let (_, Some(ack)) = job.take() {
                ack(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, VecDeque};

    use async_trait::async_trait;
    use uuid::Uuid;

    use super::*;
    use crate::store::{
        Account, Batch, CharacterInfo, Identity, LedgerAudit, LedgerLine, LedgerPage, LedgerTx, ParkedAvatar, Refresh,
        SectorSnapshot, Store, Upgrade,
    };

    /// A store whose writes fail while `down` is set (with a transient error), or with the next scripted error.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        script: Mutex<VecDeque<StoreError>>,
        /// When each write was tried, whether it succeeded, and what it carried.
        tries: Mutex<Vec<(Instant, bool, Batch)>>,
    }

    impl Flaky {
        fn tries(&self) -> Vec<(Instant, bool, Batch)> {
            self.tries.lock().clone()
        }

        fn written(&self) -> Vec<Batch> {
            self.tries().into_iter().filter(|t| t.1).map(|t| t.2).collect()
        }
    }

    fn refused<T>() -> Result<T, StoreError> {
        Err(StoreError::Database("not in this test".into()))
    }

    #[async_trait]
    impl Store for Flaky {
        async fn create_guest(&self, _: &str, _: &str, _: Option<Uuid>) -> Result<Identity, StoreError> {
            refused()
        }
        async fn authenticate(&self, _: &str) -> Result<Option<Identity>, StoreError> {
            refused()
        }
        async fn create_account(&self, _: &str, _: &str) -> Result<Option<Uuid>, StoreError> {
            refused()
        }
        async fn account(&self, _: Uuid) -> Result<Option<Account>, StoreError> {
            refused()
        }
        async fn account_by_username(&self, _: &str) -> Result<Option<Account>, StoreError> {
            refused()
        }
        async fn search_accounts(&self, _: &str, _: u32) -> Result<Vec<Account>, StoreError> {
            refused()
        }
        async fn upgrade_guest(&self, _: Uuid, _: &str, _: &str) -> Result<Upgrade, StoreError> {
            refused()
        }
        async fn characters(&self, _: Uuid) -> Result<Vec<CharacterInfo>, StoreError> {
            refused()
        }
        async fn character(&self, _: Uuid) -> Result<Option<CharacterInfo>, StoreError> {
            refused()
        }
        async fn create_character(&self, _: Uuid, _: &str, _: usize) -> Result<Option<CharacterInfo>, StoreError> {
            refused()
        }
        async fn add_refresh_token(&self, _: Uuid, _: &str, _: Uuid, _: i64) -> Result<(), StoreError> {
            refused()
        }
        async fn rotate_refresh_token(&self, _: &str, _: &str, _: i64) -> Result<Refresh, StoreError> {
            refused()
        }
        async fn revoke_refresh_token(&self, _: &str) -> Result<bool, StoreError> {
            refused()
        }
        async fn grant_capability(&self, _: Uuid, _: &str, _: &str) -> Result<bool, StoreError> {
            refused()
        }
        async fn revoke_capability(&self, _: Uuid, _: &str) -> Result<bool, StoreError> {
            refused()
        }
        async fn load_avatar(&self, _: Uuid) -> Result<Option<ParkedAvatar>, StoreError> {
            refused()
        }
        async fn spawn_sector(&self, _: Uuid) -> Result<Option<Uuid>, StoreError> {
            refused()
        }
        async fn save(&self, batch: &Batch) -> Result<(), StoreError> {
            // A write takes a moment, as a real one does: jobs queue up behind it.
            tokio::time::sleep(Duration::from_millis(1)).await;
            let outcome = match self.script.lock().pop_front() {
                Some(e) => Err(e),
                None if self.down.load(Ordering::Acquire) => Err(StoreError::Database("connection refused".into())),
                None => Ok(()),
            };
            self.tries.lock().push((Instant::now(), outcome.is_ok(), batch.clone()));
            outcome
        }
        async fn keyed_reply(&self, _: Uuid, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            refused()
        }
        async fn ledger(&self, _: Uuid, _: LedgerPage) -> Result<Vec<LedgerLine>, StoreError> {
            refused()
        }
        async fn balances(&self, _: Uuid) -> Result<BTreeMap<String, i64>, StoreError> {
            refused()
        }
        async fn audit_ledger(&self) -> Result<LedgerAudit, StoreError> {
            refused()
        }
        async fn each_sector(&self, _: &mut (dyn FnMut(SectorSnapshot) + Send)) -> Result<(), StoreError> {
            refused()
        }
        async fn purge_guests(&self, _: i64) -> Result<u64, StoreError> {
            refused()
        }
        async fn audit_begin(&self, _: &crate::store::AuditRecord) -> Result<(), StoreError> {
            refused()
        }
        async fn audit_end(&self, _: &crate::store::AuditOutcome) -> Result<(), StoreError> {
            refused()
        }
        async fn audit_log(&self, _: &crate::store::AuditQuery) -> Result<Vec<crate::store::AuditEntry>, StoreError> {
            refused()
        }
        async fn close(&self) {}
    }

    fn snapshot(sector: Uuid, tick: u64) -> SectorSnapshot {
        SectorSnapshot {
            sector,
            seq: tick,
            tick,
            epoch: 1,
            format: 1,
            state: vec![tick as u8; 64],
        }
    }

    fn parked(character: Uuid, byte: u8) -> ParkedAvatar {
        ParkedAvatar {
            character_id: character,
            sector: Uuid::nil(),
            avatar: vec![byte],
        }
    }

    fn tx(id: Uuid) -> LedgerTx {
        LedgerTx {
            id,
            at: 1,
            kind: "trade".into(),
            sector: None,
            character: None,
            key: None,
            reply: None,
            entries: Vec::new(),
        }
    }

    /// An acknowledgement that records its outcome in `acks`.
    fn recorder(acks: &Arc<Mutex<Vec<bool>>>) -> Ack {
        let acks = Arc::clone(acks);
        Box::new(move |ok| acks.lock().push(ok))
    }

    /// Waits (in test time) until `cond` holds; panics after a minute of test time.
    async fn until(mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "condition not met within a minute of test time"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_is_kept_merged_with_later_jobs_and_retried_with_backoff() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::Release);
        let (persister, _task) = Persister::start(store.clone());
        let acks = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (ada, bo) = (Uuid::new_v4(), Uuid::new_v4());
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        persister.submit_durable(
            Batch {
                sectors: vec![snapshot(a, 1)],
                avatars: vec![parked(ada, 1)],
                ledger: vec![tx(t1)],
            },
            recorder(&acks),
        );
        until(|| !persister.available()).await;
        // Later jobs while it is held: newer states of the same sector and character, the same ledger row again.
        persister.submit(Batch {
            sectors: vec![snapshot(a, 2), snapshot(b, 1)],
            avatars: vec![parked(ada, 2), parked(bo, 1)],
            ledger: vec![tx(t1), tx(t2)],
        });
        persister.submit_durable(
            Batch {
                sectors: vec![snapshot(a, 3)],
                ..Batch::default()
            },
            recorder(&acks),
        );
        until(|| store.tries().len() >= 6).await;
        assert!(acks.lock().is_empty(), "nothing is acknowledged while the write fails");
        assert!(!persister.available());
        let held = persister.backlog();
        assert_eq!((held.sectors, held.avatars, held.ledger_txs, held.acks), (2, 2, 2, 2));

        store.down.store(false, Ordering::Release);
        until(|| acks.lock().len() == 2).await;
        assert_eq!(
            *acks.lock(),
            [true, true],
            "every held acknowledgement runs once, after the commit"
        );
        assert!(persister.available());
        assert!(persister.backlog().is_empty());
        let written = store.written();
        assert_eq!(written.len(), 1, "one transaction writes everything held");
        let w = &written[0];
        let sectors: Vec<(Uuid, u64)> = w.sectors.iter().map(|s| (s.sector, s.tick)).collect();
        assert_eq!(sectors, [(b, 1), (a, 3)], "the last snapshot of each sector");
        let avatars: Vec<(Uuid, u8)> = w.avatars.iter().map(|p| (p.character_id, p.avatar[0])).collect();
        assert_eq!(avatars, [(ada, 2), (bo, 1)], "the last row of each character");
        assert_eq!(
            w.ledger.iter().map(|t| t.id).collect::<Vec<_>>(),
            [t1, t2],
            "each transaction once"
        );

        // The waits between attempts: 100 ms doubling (each try also takes the store's 1 ms).
        let times: Vec<Instant> = store.tries().iter().map(|t| t.0).collect();
        let gaps: Vec<u128> = times.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        for (gap, want) in gaps.iter().zip([100u128, 200, 400, 800, 1600]) {
            assert!((want..=want + 2).contains(gap), "gaps {gaps:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_held_stays_bounded_and_the_delay_is_capped_during_a_long_outage() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::Release);
        let (persister, _task) = Persister::start(store.clone());
        let sectors: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let characters: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let owed = Uuid::new_v4();
        // Ten simulated minutes of snapshots every 50 ms from 4 sectors with 3 ships, each carrying the same owed
        // ledger transaction.
        let start = Instant::now();
        let mut tick = 0;
        while start.elapsed() < Duration::from_secs(600) {
            tick += 1;
            for (i, s) in sectors.iter().enumerate() {
                persister.submit(Batch {
                    sectors: vec![snapshot(*s, tick)],
                    avatars: vec![parked(characters[i % 3], tick as u8)],
                    ledger: vec![tx(owed)],
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let held = persister.backlog();
            assert!(
                held.sectors <= 4 && held.avatars <= 3 && held.ledger_txs <= 1,
                "{held:?}"
            );
            assert!(
                held.queued <= 4,
                "the queue is drained while the batch is held: {held:?}"
            );
        }
        let times: Vec<Instant> = store.tries().iter().map(|t| t.0).collect();
        let longest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(
            longest >= RETRY_MAX && longest <= RETRY_MAX + Duration::from_millis(2),
            "{longest:?}"
        );
        assert!(times.len() > 100, "retried all along: {} tries", times.len());

        store.down.store(false, Ordering::Release);
        persister.flush().await;
        assert!(persister.available());
        let last = store.written().pop().unwrap();
        assert_eq!(last.sectors.len(), 4);
        assert!(
            last.sectors.iter().all(|s| s.tick == tick),
            "the newest snapshots are written"
        );
        assert_eq!(last.avatars.len(), 3);
        assert_eq!(last.ledger.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_transient_error_fails_the_batch_at_once_and_the_next_success_restores_availability() {
        let store = Arc::new(Flaky::default());
        let sector = Uuid::new_v4();
        store.script.lock().push_back(StoreError::Fenced(sector));
        let (persister, _task) = Persister::start(store.clone());
        let acks = Arc::new(Mutex::new(Vec::new()));
        persister.submit_durable(
            Batch {
                sectors: vec![snapshot(sector, 1)],
                ..Batch::default()
            },
            recorder(&acks),
        );
        until(|| !acks.lock().is_empty()).await;
        assert_eq!(*acks.lock(), [false]);
        assert!(!persister.available());
        assert_eq!(store.tries().len(), 1, "no retry");
        assert!(persister.backlog().is_empty(), "nothing is held");
        assert!(persister.write(Batch::default()).await);
        assert!(persister.available());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_waits_for_the_store_to_come_back() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::Release);
        let (persister, _task) = Persister::start(store.clone());
        let batch = Batch {
            avatars: vec![parked(Uuid::new_v4(), 1)],
            ..Batch::default()
        };
        let waited = tokio::time::timeout(Duration::from_secs(30), persister.write(batch.clone())).await;
        assert!(waited.is_err(), "no answer while the store is down");
        store.down.store(false, Ordering::Release);
        // The timed-out write is still held and is written when the store returns.
        assert!(persister.write(Batch::default()).await);
        assert_eq!(store.written().len(), 1);
        assert_eq!(store.written()[0].avatars, batch.avatars);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_store_writes_only_the_newest_pending_snapshot_of_a_sector_in_its_place_in_the_queue() {
        let store = Arc::new(Flaky::default());
        let (persister, _task) = Persister::start(store.clone());
        let acks = Arc::new(Mutex::new(Vec::new()));
        let (a, b, ada) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let slot_a = Arc::new(SnapshotSlot::default());
        let slot_b = Arc::new(SnapshotSlot::default());
        // Sector `a` holds the ship (its row `row`); sector `b` holds no ship (row 0: none).
        let with = |sector: Uuid, tick: u64, row: u8| Batch {
            sectors: vec![snapshot(sector, tick)],
            avatars: if row == 0 { Vec::new() } else { vec![parked(ada, row)] },
            ledger: Vec::new(),
        };
        // A write in flight; meanwhile sector `a` snapshots three times, the ship is parked between the first and
        // the second (its row 9), and sector `b` once.
        persister.submit_durable(with(b, 1, 0), recorder(&acks));
        tokio::task::yield_now().await;
        persister.submit_latest(&slot_a, with(a, 1, 1), Some(recorder(&acks)));
        persister.submit_durable(
            Batch {
                avatars: vec![parked(ada, 9)],
                ..Batch::default()
            },
            recorder(&acks),
        );
        persister.submit_latest(&slot_a, with(a, 2, 1), None);
        persister.submit_latest(&slot_b, with(b, 2, 0), None);
        persister.submit_latest(&slot_a, with(a, 3, 1), None);
        until(|| store.written().len() == 2).await;
        let written = store.written();
        let ticks: Vec<(Uuid, u64)> = written[1].sectors.iter().map(|s| (s.sector, s.tick)).collect();
        assert_eq!(ticks, [(a, 3), (b, 2)], "only the newest of each sector, nothing older");
        // The slot kept its place (before the parking): the parked row is the last row of that character.
        assert_eq!(written[1].avatars.last(), Some(&parked(ada, 9)));
        // The superseded snapshot's acknowledgement said it was not written; the others that it was.
        let mut outcomes = acks.lock().clone();
        outcomes.sort();
        assert_eq!(outcomes, [false, true, true]);
        // With nothing queued, the slot queues afresh.
        persister.submit_latest(&slot_a, with(a, 4, 1), None);
        until(|| store.written().len() == 3).await;
        assert_eq!(store.written()[2].sectors[0].tick, 4);
    }
}
