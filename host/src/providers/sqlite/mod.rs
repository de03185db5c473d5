//! SQLite provider of the [`HistoryStore`] contract.
//!
//! One file holds instances, histories and both queues, so a turn commit or
//! an activity completion is atomic. Writes funnel through one writer thread
//! that owns the write connection and commits concurrent writes together, in
//! one `BEGIN IMMEDIATE` transaction (group commit, see `writer.rs`): one
//! sync to disk serves a whole batch, so durability does not cost
//! throughput, and in-process writers queue instead of spinning on
//! `SQLITE_BUSY`. Other processes are waited for with a busy timeout. Reads
//! use their own connections and never block the writer.
//!
//! Each write has a front half, run by the caller (encoding, and decoding
//! what a fetch returned), and an op body (`*_in`) that the writer runs on
//! its connection inside the shared transaction. The writer calls SQLite
//! directly (rusqlite), statement after statement on its own thread, with
//! every statement prepared once.
//!
//! Prepared once is not a given. SQLite prepares a statement again on every
//! new binding when the plan it chose read a bound value: some lookups of a
//! queue or history by instance (`instance_id = ?1`) do, which costs several
//! times the lookup. Those compare with `+?1`, the same value as an
//! expression, which keeps the index and the plan. A `LIMIT ?n` is written
//! `LIMIT ?n + 0` for the same reason. `RETURNING` and triggers cost SQLite
//! more than a second statement does, so the store uses neither on hot paths.

mod activity_queue;
mod artifacts;
mod codec;
mod connect;
mod fair;
mod management;
mod ops;
mod orchestrator_queue;
mod reads;
mod settings;
mod signal;
mod turn;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, oneshot};

use crate::clock::{self, SharedClock};
use crate::history::{Event, OrchestratorMessage};
use crate::limits::TextLimits;
use crate::providers::artifacts::{Artifact, ArtifactSummary, NewArtifact, RemoveOutcome};
use crate::providers::notices::FinishNotices;
use crate::providers::query::{
    CountsQuery, InstanceCounts, InstanceFilter, InstancePage, PurgeFilter, PurgeOutcome,
};
use crate::providers::{
    HistoryStore, InstanceRecord, LockedActivity, LockedTurn, NewInstance, OrchestrationWork,
    QueueStats, SignalOutcome, StoreError, TurnCommit,
};
use codec::to_i64;

/// How much a commit does to survive a crash, traded against commit latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is synced to disk, so a committed turn
    /// survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits survive a process crash, but the last ones
    /// may be lost on power loss or an OS crash. Faster.
    Normal,
}

/// Settings for [`SqliteHistoryStore::with_options`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Durability of each commit; [`Durability::Full`] unless chosen otherwise.
    pub synchronous: Durability,
    /// The clock every stored time is read from: the wall clock unless a
    /// test drives one of its own ([`crate::clock::ManualClock`]).
    pub clock: SharedClock,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Durability::default(),
            clock: clock::system(),
        }
    }
}

/// A [`HistoryStore`] in one SQLite database, shareable by several processes.
#[derive(Debug)]
pub struct SqliteHistoryStore {
    /// The writer thread, which owns the write connection.
    writer: writer::WriterHandle,
    reader: reads::ReadPool,
    orchestrator_signal: Arc<Notify>,
    activity_signal: Arc<Notify>,
    /// Waiters for instances that this store object's commits finish.
    finished: Arc<FinishNotices>,
    /// The tenant this store object's last fetch took work of last: fetches
    /// rotate through the tenants with work from there (see `fair`).
    rotation: fair::Rotation,
}

impl SqliteHistoryStore {
    /// Opens the database at `url` (`sqlite:./file.db`, `sqlite:///abs/file.db`
    /// or a bare path), creating and migrating it if needed, with durable commits.
    pub async fn new(url: &str) -> Result<Self, StoreError> {
        Self::with_options(url, SqliteOptions::default()).await
    }

    /// Opens the database at `url` like [`SqliteHistoryStore::new`], with explicit settings.
    pub async fn with_options(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        Self::open(connect::Location::parse(url, &options)?).await
    }

    /// Opens a private in-memory database, gone when the store is dropped; for tests.
    pub async fn new_in_memory() -> Result<Self, StoreError> {
        Self::open(connect::Location::memory(clock::system())).await
    }

    /// [`new_in_memory`](Self::new_in_memory) on `clock`.
    pub async fn new_in_memory_with_clock(clock: SharedClock) -> Result<Self, StoreError> {
        Self::open(connect::Location::memory(clock)).await
    }

    /// Commits the writes already queued, stops the writer and closes every
    /// connection, so the WAL is checkpointed and the file can be reopened or
    /// copied. Later writes on this store fail with a database error.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close();
    }

    /// Queues the op `make` builds around a reply channel and waits for its
    /// result, which arrives once the batch it ran in has committed.
    async fn write<T>(
        &self,
        make: impl FnOnce(ops::ReplyTo<T>) -> ops::Op,
    ) -> Result<T, StoreError> {
        let (reply, result) = oneshot::channel();
        self.writer.send(make(reply)).await?;
        // A dropped reply channel: the writer stopped before it could report.
        result.await.map_err(|_| writer::closed())?
    }

    /// Opens (creating and migrating) the database and starts the writer.
    async fn open(location: connect::Location) -> Result<Self, StoreError> {
        let writer_location = location.clone();
        let conn = tokio::task::spawn_blocking(move || writer_location.open_writer())
            .await
            .map_err(|e| StoreError::database(format!("opening the database: {e}")))??;
        let orchestrator_signal = Arc::new(Notify::new());
        let activity_signal = Arc::new(Notify::new());
        let writer = writer::WriterHandle::spawn(
            conn,
            location.clone(),
            Arc::clone(&orchestrator_signal),
            Arc::clone(&activity_signal),
        )?;
        Ok(Self {
            writer,
            reader: reads::ReadPool::new(location),
            orchestrator_signal,
            activity_signal,
            finished: Arc::default(),
            rotation: fair::Rotation::default(),
        })
    }
}

#[async_trait]
impl HistoryStore for SqliteHistoryStore {
    async fn create_instance(&self, new: NewInstance) -> Result<(), StoreError> {
        orchestrator_queue::create_instance(self, new).await
    }

    async fn enqueue_message(
        &self,
        instance_id: &str,
        message: OrchestratorMessage,
        visible_at_ms: u64,
    ) -> Result<(), StoreError> {
        orchestrator_queue::enqueue_message(self, instance_id, &message, visible_at_ms).await
    }

    async fn signal_with_start(
        &self,
        new: NewInstance,
        event: OrchestratorMessage,
    ) -> Result<SignalOutcome, StoreError> {
        signal::signal_with_start(self, new, &event).await
    }

    async fn text_limits(&self) -> Result<Option<TextLimits>, StoreError> {
        settings::text_limits(&self.reader).await
    }

    async fn set_text_limits(&self, limits: TextLimits) -> Result<(), StoreError> {
        settings::set_text_limits(self, limits).await
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        reads::instance(&self.reader, instance_id).await
    }

    async fn read_history(
        &self,
        instance_id: &str,
        execution_id: u64,
    ) -> Result<Vec<Event>, StoreError> {
        reads::history(&self.reader, instance_id, execution_id).await
    }

    async fn fetch_orchestration_work(
        &self,
        lock_for: Duration,
    ) -> Result<Option<OrchestrationWork>, StoreError> {
        orchestrator_queue::fetch(self, 1, lock_for, Duration::ZERO)
            .await?
            .pop()
            .transpose()
    }

    async fn fetch_orchestration_batch(
        &self,
        max: usize,
        lock_for: Duration,
        lookahead: Duration,
    ) -> Result<Vec<OrchestrationWork>, StoreError> {
        let fetched = orchestrator_queue::fetch(self, max, lock_for, lookahead).await?;
        Ok(fetched
            .into_iter()
            .filter_map(|work| {
                work.inspect_err(|e| tracing::error!("a fetched instance cannot be read: {e}"))
                    .ok()
            })
            .collect())
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<(), StoreError> {
        turn::commit_turn(self, commit).await
    }

    async fn commit_turn_and_lock_activities(
        &self,
        commit: TurnCommit,
        max: usize,
        lock_for: Duration,
        hold: Option<Duration>,
    ) -> Result<LockedTurn, StoreError> {
        turn::commit_turn_and_lock(self, commit, max, lock_for, hold).await
    }

    async fn release_orchestration_work(
        &self,
        instance_id: &str,
        lock_token: &str,
    ) -> Result<(), StoreError> {
        orchestrator_queue::release(self, instance_id, lock_token).await
    }

    async fn defer_orchestration_work(
        &self,
        work: &OrchestrationWork,
        until_ms: u64,
    ) -> Result<(), StoreError> {
        orchestrator_queue::defer(self, work, to_i64(until_ms, "deferral time")?).await
    }

    async fn fetch_activity_work(
        &self,
        max: usize,
        lock_for: Duration,
    ) -> Result<Vec<LockedActivity>, StoreError> {
        activity_queue::fetch(self, max, lock_for).await
    }

    async fn complete_activity(
        &self,
        locked: &LockedActivity,
        completion: OrchestratorMessage,
    ) -> Result<(), StoreError> {
        activity_queue::complete(self, locked, &completion).await
    }

    async fn complete_activity_and_lock(
        &self,
        locked: &LockedActivity,
        completion: OrchestratorMessage,
        lock_for: Duration,
    ) -> Result<Option<OrchestrationWork>, StoreError> {
        let locked = activity_queue::complete_and_lock(self, locked, &completion, lock_for).await?;
        Ok(locked.and_then(|work| {
            work.inspect_err(|e| tracing::error!("a locked instance cannot be read: {e}"))
                .ok()
        }))
    }

    async fn release_activity_work(&self, locked: &LockedActivity) -> Result<(), StoreError> {
        activity_queue::release(self, locked).await
    }

    async fn renew_activity_lock(
        &self,
        locked: &LockedActivity,
        lock_for: Duration,
    ) -> Result<(), StoreError> {
        activity_queue::renew(self, locked, lock_for).await
    }

    async fn defer_activity_work(
        &self,
        locked: &LockedActivity,
        until_ms: u64,
    ) -> Result<(), StoreError> {
        activity_queue::defer(self, locked, to_i64(until_ms, "deferral time")?).await
    }

    async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        reads::queue_stats(&self.reader).await
    }

    fn clock(&self) -> SharedClock {
        self.reader.location.clock.clone()
    }

    async fn next_wake_at_ms(&self) -> Result<Option<u64>, StoreError> {
        reads::next_wake_at_ms(&self.reader).await
    }

    fn orchestrator_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.orchestrator_signal)
    }

    fn activity_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.activity_signal)
    }

    fn finish_notices(&self) -> Option<Arc<FinishNotices>> {
        Some(Arc::clone(&self.finished))
    }

    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage, StoreError> {
        management::list_instances(&self.reader, filter).await
    }

    async fn instances_by_id(&self, ids: &[String]) -> Result<Vec<InstanceRecord>, StoreError> {
        management::instances_by_id(&self.reader, ids).await
    }

    async fn instance_counts(&self, query: CountsQuery) -> Result<InstanceCounts, StoreError> {
        management::instance_counts(&self.reader, query).await
    }

    async fn purge_instance(&self, instance_id: &str) -> Result<PurgeOutcome, StoreError> {
        management::purge_instance(self, instance_id).await
    }

    async fn purge_finished(&self, filter: &PurgeFilter, limit: u32) -> Result<u64, StoreError> {
        management::purge_finished(self, filter, limit).await
    }

    async fn put_artifact(
        &self,
        artifact: NewArtifact,
    ) -> Result<(ArtifactSummary, bool), StoreError> {
        artifacts::put(self, artifact).await
    }

    async fn list_artifacts(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<ArtifactSummary>, StoreError> {
        artifacts::list(&self.reader, tenant).await
    }

    async fn artifact(&self, tenant: &str, digest: &str) -> Result<Option<Artifact>, StoreError> {
        artifacts::get(&self.reader, tenant, digest).await
    }

    async fn remove_artifact(
        &self,
        tenant: &str,
        digest: &str,
    ) -> Result<RemoveOutcome, StoreError> {
        artifacts::remove(self, tenant, digest).await
    }

    async fn pinned_instances(
        &self,
        tenant: &str,
        digest: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        artifacts::pinned(&self.reader, tenant, digest, limit).await
    }

    async fn repin_instance(
        &self,
        instance_id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        artifacts::repin(self, instance_id, from, to).await
    }
}
