//! PostgreSQL provider of the [`HistoryStore`] contract (feature `postgres`),
//! for runtimes and clients in many processes on one database.
//!
//! It keeps the tables and semantics of the SQLite store. What differs is
//! how writes reach the database: every hot write (create, enqueue, fetch,
//! turn commit, activity completion) is ONE statement, a PL/pgSQL function
//! of the schema or a statement of data-modifying CTEs, so it costs one
//! round trip and is its own transaction. A turn that fails partway (a
//! constraint, a lost connection) is rolled back whole by the server.
//!
//! Instance locks are leases, as in SQLite: `lock_token` and
//! `locked_until` on the instance row, so a crashed worker's instance comes
//! back when the lease expires. Fetchers find candidates with `FOR NO KEY
//! UPDATE SKIP LOCKED`: concurrent fetchers in any process never wait on,
//! or hand out, the same row, because each skips the rows another fetch or
//! commit has locked for its statement. No advisory locks: they belong to a
//! session, so a lock would be lost or stuck with the pooled connection
//! that took it, while a lease survives any connection and expires by itself.
//!
//! Group commit: each write is its own transaction on its own pooled
//! connection, so concurrent writers commit in parallel and the server's
//! WAL flush serves every commit waiting at that moment (PostgreSQL's own
//! group commit); an application-side batch would serialize them on one
//! connection instead. For the same reason no write notifies inside its
//! transaction: after a write that makes work fetchable commits, the
//! store's notifier sends the notice on its own (see `notify.rs`), so
//! dispatchers in other processes wake at once.

mod activity_queue;
mod artifacts;
mod codec;
mod connect;
mod management;
mod notify;
mod orchestrator_queue;
mod reads;
mod turn;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use sqlx_postgres::PgPool;
use tokio::sync::Notify;

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

/// Settings for [`PostgresHistoryStore::with_options`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The clock every stored time is read from: the wall clock unless a
    /// test drives one of its own. Every process sharing the database should
    /// have clocks that agree: lock deadlines and visibility compare them.
    pub clock: SharedClock,
    /// The schema holding the store's tables, created if missing; `None`
    /// uses the first schema of the connection's search path (`public`
    /// unless the URL says otherwise, e.g. `?options[search_path]=mine`).
    /// The URL parameter `?schema=mine` sets it too, and wins.
    pub schema: Option<String>,
    /// Most connections the pool opens (the notice listener takes one more).
    pub max_connections: u32,
    /// How long a call waits for a connection (when the server does not
    /// answer, or every connection is busy) before it fails with a
    /// retryable error. Opening fails at once on a refused connection.
    /// The URL parameter `?connect_timeout=SECONDS` sets it too, and wins.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            clock: clock::system(),
            schema: None,
            max_connections: 16,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// A [`HistoryStore`] in a PostgreSQL database, shared by any number of
/// processes.
#[derive(Debug)]
pub struct PostgresHistoryStore {
    pool: PgPool,
    clock: SharedClock,
    /// Tells other processes what this store's writes made fetchable.
    notifier: notify::Notifier,
    orchestrator_signal: Arc<Notify>,
    activity_signal: Arc<Notify>,
    finished: Arc<FinishNotices>,
    /// The tenant this store object's last fetch served last.
    rotation: Rotation,
    /// Wakes the signals on other processes' notices; stops when dropped.
    _listener: notify::Listener,
}

impl PostgresHistoryStore {
    /// Opens the database at `url` (`postgres://user@host:port/db`),
    /// migrating it if needed. Besides the driver's parameters, the URL may
    /// carry `schema=NAME` and `connect_timeout=SECONDS` (see
    /// [`PostgresOptions`]). A server that refuses the connection fails at
    /// once, with a retryable error naming the URL and the cause.
    pub async fn new(url: &str) -> Result<Self, StoreError> {
        Self::with_options(url, PostgresOptions::default()).await
    }

    /// Opens the database at `url` like [`PostgresHistoryStore::new`], with
    /// explicit settings.
    pub async fn with_options(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let opened = connect::open(url, &options).await?;
        let channel = notify::channel(&opened.schema);
        let tag = notify::new_tag();
        let orchestrator_signal = Arc::new(Notify::new());
        let activity_signal = Arc::new(Notify::new());
        let listener = notify::Listener::start(
            &opened.pool,
            &channel,
            tag.clone(),
            Arc::clone(&orchestrator_signal),
            Arc::clone(&activity_signal),
        )
        .await?;
        let notifier = notify::Notifier::start(opened.pool.clone(), channel, tag);
        Ok(Self {
            pool: opened.pool,
            clock: options.clock,
            notifier,
            orchestrator_signal,
            activity_signal,
            finished: Arc::default(),
            rotation: Rotation::default(),
            _listener: listener,
        })
    }

    /// Closes every connection, waiting for those in use to be returned.
    /// Later calls on this store fail with a database error.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// After a write that made `work` fetchable committed: wakes this
    /// store's dispatchers, and those of other processes through a notice.
    fn made_fetchable(&self, work: notify::Work) {
        match work {
            notify::Work::Orchestrator => self.orchestrator_signal.notify_one(),
            notify::Work::Activity => self.activity_signal.notify_one(),
        }
        self.notifier.announce(work);
    }

    /// The current time of the store's clock, as stored.
    fn now(&self) -> Result<i64, StoreError> {
        codec::now_i64(&*self.clock)
    }
}

/// The tenant whose work a store's last fetch took last: the next fetch
/// starts its round with the tenant after it. Kept per store object, so
/// each runtime rotates on its own.
#[derive(Debug, Default)]
struct Rotation(Mutex<String>);

impl Rotation {
    fn last(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, tenant: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = tenant;
    }
}

#[async_trait]
impl HistoryStore for PostgresHistoryStore {
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
        orchestrator_queue::signal_with_start(self, new, &event).await
    }

    async fn text_limits(&self) -> Result<Option<TextLimits>, StoreError> {
        reads::text_limits(self).await
    }

    async fn set_text_limits(&self, limits: TextLimits) -> Result<(), StoreError> {
        reads::set_text_limits(self, limits).await
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        reads::instance(self, instance_id).await
    }

    async fn read_history(
        &self,
        instance_id: &str,
        execution_id: u64,
    ) -> Result<Vec<Event>, StoreError> {
        reads::history(self, instance_id, execution_id).await
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
        turn::commit(self, commit, None).await.map(|_| ())
    }

    async fn commit_turn_and_lock_activities(
        &self,
        commit: TurnCommit,
        max: usize,
        lock_for: Duration,
        hold: Option<Duration>,
    ) -> Result<LockedTurn, StoreError> {
        turn::commit(self, commit, Some((max, lock_for, hold))).await
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
        orchestrator_queue::defer(self, work, until_ms).await
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
        activity_queue::complete(self, locked, &completion, None)
            .await
            .map(|_| ())
    }

    async fn complete_activity_and_lock(
        &self,
        locked: &LockedActivity,
        completion: OrchestratorMessage,
        lock_for: Duration,
    ) -> Result<Option<OrchestrationWork>, StoreError> {
        let locked = activity_queue::complete(self, locked, &completion, Some(lock_for)).await?;
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
        activity_queue::defer(self, locked, until_ms).await
    }

    async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        reads::queue_stats(self).await
    }

    fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    async fn next_wake_at_ms(&self) -> Result<Option<u64>, StoreError> {
        reads::next_wake_at_ms(self).await
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
        management::list_instances(self, filter).await
    }

    async fn instances_by_id(&self, ids: &[String]) -> Result<Vec<InstanceRecord>, StoreError> {
        management::instances_by_id(self, ids).await
    }

    async fn instance_counts(&self, query: CountsQuery) -> Result<InstanceCounts, StoreError> {
        management::instance_counts(self, query).await
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
        artifacts::list(self, tenant).await
    }

    async fn artifact(&self, tenant: &str, digest: &str) -> Result<Option<Artifact>, StoreError> {
        artifacts::get(self, tenant, digest).await
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
        artifacts::pinned(self, tenant, digest, limit).await
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
