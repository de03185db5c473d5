//! SQLite provider of the [`HistoryStore`] contract.
//!
//! One file holds instances, histories and both queues, so a turn commit or
//! an activity completion is a single SQLite transaction. Writes funnel
//! through one connection with `BEGIN IMMEDIATE`, so in-process writers queue
//! instead of spinning on `SQLITE_BUSY`, and a transaction never has to upgrade
//! a read lock (which WAL cannot wait for). Other processes are waited for with
//! a busy timeout. Reads use their own pool and never block the writer.

mod activity_queue;
mod codec;
mod connect;
mod orchestrator_queue;
mod reads;
mod turn;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Transaction;
use sqlx::sqlite::{Sqlite, SqlitePool};
use tokio::sync::Notify;

use crate::history::{Event, OrchestratorMessage};
use crate::providers::{
    HistoryStore, InstanceRecord, LockedActivity, NewInstance, OrchestrationWork, StoreError,
    TurnCommit,
};

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
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    /// Durability of each commit; [`Durability::Full`] unless chosen otherwise.
    pub synchronous: Durability,
}

/// A [`HistoryStore`] in one SQLite database, shareable by several processes.
#[derive(Debug)]
pub struct SqliteHistoryStore {
    writer: SqlitePool,
    reader: SqlitePool,
    orchestrator_signal: Arc<Notify>,
    activity_signal: Arc<Notify>,
}

impl SqliteHistoryStore {
    /// Opens the database at `url` (`sqlite:./file.db`, `sqlite:///abs/file.db`
    /// or a bare path), creating and migrating it if needed, with durable commits.
    pub async fn new(url: &str) -> Result<Self, StoreError> {
        Self::with_options(url, SqliteOptions::default()).await
    }

    /// Opens the database at `url` like [`SqliteHistoryStore::new`], with explicit settings.
    pub async fn with_options(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        let pools = if connect::is_memory_url(url) {
            connect::open_memory().await?
        } else {
            connect::open_file(url, &options).await?
        };
        Ok(Self::from_pools(pools))
    }

    /// Opens a private in-memory database, gone when the store is dropped; for tests.
    pub async fn new_in_memory() -> Result<Self, StoreError> {
        Ok(Self::from_pools(connect::open_memory().await?))
    }

    /// Closes every connection, so the WAL is checkpointed and the file can be
    /// reopened or copied. Later calls on this store fail with a database error.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// Starts a write transaction holding the database write lock from the
    /// start, so it never fails halfway on a lock upgrade. Dropping it
    /// uncommitted (every early `return Err`) rolls it back.
    async fn begin_write(
        &self,
        context: &'static str,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(codec::db(context))
    }

    fn from_pools(pools: connect::Pools) -> Self {
        Self {
            writer: pools.writer,
            reader: pools.reader,
            orchestrator_signal: Arc::new(Notify::new()),
            activity_signal: Arc::new(Notify::new()),
        }
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
        orchestrator_queue::fetch(self, lock_for).await
    }

    async fn commit_turn(&self, commit: TurnCommit) -> Result<(), StoreError> {
        turn::commit_turn(self, commit).await
    }

    async fn release_orchestration_work(
        &self,
        instance_id: &str,
        lock_token: &str,
    ) -> Result<(), StoreError> {
        orchestrator_queue::release(self, instance_id, lock_token).await
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

    async fn release_activity_work(&self, locked: &LockedActivity) -> Result<(), StoreError> {
        activity_queue::release(self, locked).await
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
}
