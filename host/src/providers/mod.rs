//! The `HistoryStore` contract: the only channel between the client and the
//! runtime. Providers (SQLite, and PostgreSQL with the `postgres` feature)
//! implement it; the client and the runtime depend on it, never on a
//! provider. [`open`] picks the provider a URL names.

pub mod artifacts;
pub mod notices;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod query;
pub mod retention;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::history::{ActivityWork, Event, OrchestratorMessage};
use crate::limits::TextLimits;
use artifacts::{Artifact, ArtifactSummary, NewArtifact, RemoveOutcome};
use notices::FinishNotices;
use query::{CountsQuery, InstanceCounts, InstanceFilter, InstancePage, PurgeFilter, PurgeOutcome};

/// Opens the store `url` names, creating and migrating it if needed:
/// `postgres://…` or `postgresql://…` a PostgreSQL database (with the
/// `postgres` feature), anything else an SQLite file (`sqlite:./file.db`,
/// `sqlite:///abs/file.db`, `sqlite::memory:` or a bare path).
pub async fn open(url: &str) -> Result<Arc<dyn HistoryStore>, StoreError> {
    if is_postgres_url(url) {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(postgres::PostgresHistoryStore::new(url).await?));
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::database(format!(
            "'{}' names a PostgreSQL store, and this build has no PostgreSQL support: \
             build duroxide with the `postgres` feature",
            url.split('@').next_back().unwrap_or(url)
        )));
    }
    Ok(Arc::new(sqlite::SqliteHistoryStore::new(url).await?))
}

/// Whether `url` names a PostgreSQL database (`postgres://` or
/// `postgresql://`) rather than an SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Errors a store reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An instance with this id already exists.
    #[error("instance '{0}' already exists")]
    InstanceExists(String),
    /// No instance has this id.
    #[error("instance '{0}' not found")]
    InstanceNotFound(String),
    /// The instance has already finished; nothing was written.
    #[error("instance '{instance}' has already finished ({})", status.as_str())]
    InstanceFinished {
        /// The instance.
        instance: String,
        /// How it finished.
        status: InstanceStatus,
    },
    /// The lock this caller held expired and someone else may have the work now;
    /// nothing was written.
    #[error("lock on {0} was lost; nothing was committed")]
    LockLost(String),
    /// Stored data could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database was written by a newer build, whose schema this one
    /// does not know; nothing was changed.
    #[error(
        "the database has schema version {found}, newer than this build's {known}: it was written by a newer duroxide"
    )]
    SchemaTooNew {
        /// The schema version the database has.
        found: i64,
        /// The newest schema version this build knows.
        known: usize,
    },
    /// The database (an SQLite file, a PostgreSQL schema: named in the
    /// message) belongs to another application: it has tables but no
    /// duroxide schema version. Nothing was changed.
    #[error("{0} belongs to another application, not a duroxide store")]
    Foreign(String),
    /// The database failed; [`DatabaseError::is_retryable`] says whether
    /// trying again can help.
    #[error(transparent)]
    Database(DatabaseError),
}

impl StoreError {
    /// A database failure that trying again will not mend, described by
    /// `context` alone.
    pub fn database(context: impl Into<String>) -> Self {
        StoreError::Database(DatabaseError::new(context))
    }

    /// Whether trying the same call again can succeed: a busy or locked
    /// database, a failed disk write. A lost lock, a corrupt row, a refused
    /// write or a closed store will fail again the same way.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database(e) if e.is_retryable())
    }
}

/// A failure of the database under a store: what the store was doing, the
/// database's own error (the [`source`](std::error::Error::source)), and
/// whether trying again can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("database error: {context}")]
pub struct DatabaseError {
    context: String,
    retryable: bool,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl DatabaseError {
    /// A failure described by `context` alone, not retryable.
    pub fn new(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            retryable: false,
            source: None,
        }
    }

    /// A failure while doing `context`, caused by `source`.
    pub fn caused_by(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
        retryable: bool,
    ) -> Self {
        Self {
            context: context.into(),
            retryable,
            source: Some(Arc::new(source)),
        }
    }

    /// What the store was doing.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Whether trying again can help.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// Lifecycle state of an instance, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    /// Created (by a client, or by a parent's turn); no runtime has taken
    /// its first turn yet: its start is not due, or no runtime has fetched
    /// it, or the runtime that did lacked its code and gave it back.
    Pending,
    /// A runtime took its first turn (the fetch that locks a pending
    /// instance marks it running), and it has not finished.
    Running,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled from outside.
    Cancelled,
}

impl InstanceStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Pending => "Pending",
            InstanceStatus::Running => "Running",
            InstanceStatus::Completed => "Completed",
            InstanceStatus::Failed => "Failed",
            InstanceStatus::Cancelled => "Cancelled",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Pending" => InstanceStatus::Pending,
            "Running" => InstanceStatus::Running,
            "Completed" => InstanceStatus::Completed,
            "Failed" => InstanceStatus::Failed,
            "Cancelled" => InstanceStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether the instance has finished for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            InstanceStatus::Completed | InstanceStatus::Failed | InstanceStatus::Cancelled
        )
    }
}

/// The stored row of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// Instance id.
    pub instance_id: String,
    /// Orchestration name.
    pub orchestration_name: String,
    /// Version the instance runs; `None` until the runtime has started it.
    pub orchestration_version: Option<String>,
    /// Lifecycle state.
    pub status: InstanceStatus,
    /// The output (Completed), error (Failed) or reason (Cancelled).
    pub output: Option<String>,
    /// Current execution id, starting at 1.
    pub execution_id: u64,
    /// Number of history events of the current execution.
    pub history_len: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// Parent instance, for children.
    pub parent_instance: Option<String>,
    /// The parent's task id for this child.
    pub parent_id: Option<u64>,
    /// The parent's execution that awaits this child.
    pub parent_execution_id: Option<u64>,
    /// The status text the orchestration last published.
    pub custom_status: Option<String>,
    /// When it finished, ms since the Unix epoch; `None` while it runs.
    pub finished_at_ms: Option<u64>,
    /// Digest of the component its current execution started on (set by
    /// the execution's first turn); it replays on that component.
    pub component_digest: Option<String>,
}

impl InstanceRecord {
    /// Whether the instance's first execution has not started yet: it is
    /// pending, or a fetch marked it running but no turn has committed (the
    /// first turn is under way, or its lock expired before it committed).
    /// Its next turn starts it.
    pub fn awaits_start(&self) -> bool {
        match self.status {
            InstanceStatus::Pending => true,
            InstanceStatus::Running => self.history_len == 0,
            _ => false,
        }
    }
}

/// A new instance, created together with its start message.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Instance id; must not exist yet.
    pub instance_id: String,
    /// Orchestration name.
    pub orchestration_name: String,
    /// Requested version, or the latest when absent.
    pub version: Option<String>,
    /// Input.
    pub input: String,
    /// Parent instance, for children.
    pub parent_instance: Option<String>,
    /// The parent's task id for this child.
    pub parent_id: Option<u64>,
    /// The parent's execution that awaits this child.
    pub parent_execution_id: Option<u64>,
    /// When the start message becomes visible (delayed starts), ms since the Unix epoch.
    pub visible_at_ms: u64,
}

/// What [`HistoryStore::signal_with_start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalOutcome {
    /// No instance had the id: it was created, and the event queued after
    /// its start message.
    Started,
    /// The instance existed and had not finished: the event was queued.
    Signalled,
}

/// A message taken from the orchestrator queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Queue row id, used to delete the message when the turn commits.
    pub id: i64,
    /// The message.
    pub message: OrchestratorMessage,
    /// How many times it has been fetched, this time included.
    pub attempts: u32,
    /// When it became visible (enqueued, or due), ms since the Unix epoch.
    pub visible_at_ms: u64,
}

/// One instance locked for a turn, with every message visible for it.
#[derive(Debug, Clone)]
pub struct OrchestrationWork {
    /// The instance's row as it was when locked.
    pub instance: InstanceRecord,
    /// Proof of the lock; the commit must present it.
    pub lock_token: String,
    /// The messages the turn takes, in arrival order: every message visible
    /// at `ready_at_ms`.
    pub messages: Vec<QueuedMessage>,
    /// When the turn may start, ms since the Unix epoch: the fetch time, or
    /// later for work locked ahead of its time (see
    /// [`HistoryStore::fetch_orchestration_batch`]).
    pub ready_at_ms: u64,
}

/// A message for some instance's orchestrator queue, produced by a turn.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Target instance.
    pub instance_id: String,
    /// The message.
    pub message: OrchestratorMessage,
    /// When it becomes visible, ms since the Unix epoch.
    pub visible_at_ms: u64,
}

/// An instance a turn creates (a child or a detached orchestration).
#[derive(Debug, Clone)]
pub struct InstanceStart {
    /// The instance to create with its start message.
    pub instance: NewInstance,
    /// Enqueued instead when the instance id is already taken.
    pub if_exists: Option<OutgoingMessage>,
}

/// Everything one turn writes, committed in one transaction.
#[derive(Debug, Clone)]
pub struct TurnCommit {
    /// Instance the turn ran for.
    pub instance_id: String,
    /// The lock token from [`OrchestrationWork`].
    pub lock_token: String,
    /// Execution the events belong to.
    pub execution_id: u64,
    /// History length before this turn; new events are numbered from here.
    pub history_len_before: u64,
    /// Events to append.
    pub new_events: Vec<Event>,
    /// Queue ids of the messages the turn consumed.
    pub consumed_messages: Vec<i64>,
    /// Activities to enqueue.
    pub activities: Vec<ActivityWork>,
    /// Orchestrator messages to enqueue (timers, messages to other instances).
    pub messages: Vec<OutgoingMessage>,
    /// Instances to create.
    pub new_instances: Vec<InstanceStart>,
    /// New lifecycle state of the instance.
    pub status: InstanceStatus,
    /// Output, error or reason for a terminal status.
    pub output: Option<String>,
    /// Version the instance runs, set by its first turn.
    pub orchestration_version: Option<String>,
    /// Digest of the component the execution runs on, set by its first
    /// turn (`None` leaves the recorded one).
    pub component_digest: Option<String>,
    /// New custom status, when the turn set one (`Some(None)` clears it).
    pub custom_status: Option<Option<String>>,
    /// Activity work the caller locked and ran while it held the instance
    /// (see [`HistoryStore::commit_turn_and_lock_activities`]), whose
    /// completion is among `new_events` rather than in the queue: deleted
    /// in the same transaction. The commit fails with
    /// [`StoreError::LockLost`], writing nothing, if its lock expired.
    pub completed_activity: Option<LockedActivity>,
}

/// A locked activity work item.
#[derive(Debug, Clone)]
pub struct LockedActivity {
    /// Queue row id.
    pub queue_id: i64,
    /// Proof of the lock.
    pub lock_token: String,
    /// How many times it has been fetched, this time included.
    pub attempts: u32,
    /// When it became visible (was scheduled), ms since the Unix epoch.
    pub visible_at_ms: u64,
    /// The work.
    pub work: ActivityWork,
}

/// What [`HistoryStore::commit_turn_and_lock_activities`] locked.
#[derive(Debug, Clone, Default)]
pub struct LockedTurn {
    /// The activities locked for the caller, in the turn's order.
    pub activities: Vec<LockedActivity>,
    /// The instance's row as committed, if the instance is still locked by
    /// the caller (held): its next turn starts from it.
    pub held: Option<InstanceRecord>,
}

/// How much work waits in the queues, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Orchestrator messages visible now.
    pub orchestrator_depth: u64,
    /// When the oldest of them became visible, ms since the Unix epoch.
    pub orchestrator_oldest_at_ms: Option<u64>,
    /// Activity work items visible and unlocked now.
    pub activity_depth: u64,
    /// When the oldest of them became visible, ms since the Unix epoch.
    pub activity_oldest_at_ms: Option<u64>,
}

/// The storage contract shared by [`crate::Client`] and [`crate::DuroxideRuntime`].
///
/// Writes are atomic: a turn commit or an activity completion either happens
/// whole or not at all.
///
/// Tenants: an instance's key names its tenant ([`crate::tenant`]: bare ids
/// are the default tenant's, `@{tenant}/{id}` another's), and a store
/// records the tenant [`crate::tenant::tenant_of_key`] gives when it creates
/// the instance. Management queries filter by it when asked
/// ([`InstanceFilter::tenant`] and the like), artifacts belong to one, and
/// the orchestrator fetches share their slots fairly between the tenants
/// with ready work (see
/// [`fetch_orchestration_batch`](Self::fetch_orchestration_batch)). Fetches peek-lock: fetched work stays in the store,
/// invisible to other fetchers until its lock expires.
///
/// Some methods are scheduling hints, optional for a provider: the lookahead
/// of [`fetch_orchestration_batch`](Self::fetch_orchestration_batch), the
/// locks and hold of
/// [`commit_turn_and_lock_activities`](Self::commit_turn_and_lock_activities)
/// and the lock of
/// [`complete_activity_and_lock`](Self::complete_activity_and_lock). Their
/// defaults decline them, and the runtime then goes through the queues; the
/// conformance suite checks them separately, for a provider that implements
/// them.
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Create an instance and enqueue its start message in one transaction.
    /// Fails with [`StoreError::InstanceExists`] if the id is taken.
    async fn create_instance(&self, new: NewInstance) -> Result<(), StoreError>;

    /// Enqueue a message for an existing instance.
    /// Fails with [`StoreError::InstanceNotFound`] if there is none.
    async fn enqueue_message(
        &self,
        instance_id: &str,
        message: OrchestratorMessage,
        visible_at_ms: u64,
    ) -> Result<(), StoreError>;

    /// Enqueue `event` for the instance `new` names, first creating the
    /// instance with its start message (as
    /// [`create_instance`](Self::create_instance) does) if no instance has
    /// that id: one transaction, so concurrent callers create one instance
    /// and every event is queued. Fails with
    /// [`StoreError::InstanceFinished`], writing nothing, if the instance
    /// exists and has finished.
    async fn signal_with_start(
        &self,
        new: NewInstance,
        event: OrchestratorMessage,
    ) -> Result<SignalOutcome, StoreError>;

    /// The text limits stored for every client and runtime of this store
    /// (see [`crate::limits::settle`]); `None` while none were stored.
    async fn text_limits(&self) -> Result<Option<TextLimits>, StoreError>;

    /// Store `limits` for every client and runtime of this store, replacing
    /// those stored. Clients apply them from their next call, runtimes when
    /// they next start.
    async fn set_text_limits(&self, limits: TextLimits) -> Result<(), StoreError>;

    /// The instance's row, if it exists.
    async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, StoreError>;

    /// The history of one execution, in order.
    async fn read_history(
        &self,
        instance_id: &str,
        execution_id: u64,
    ) -> Result<Vec<Event>, StoreError>;

    /// Lock one instance that has visible messages, and return them all.
    /// The lock lasts `lock_for` unless the turn commits or releases it first.
    /// A `Pending` instance is marked `Running` by the same write (its first
    /// turn has begun), and returned so; [`InstanceRecord::awaits_start`]
    /// still tells the turn to start it.
    /// [`defer_orchestration_work`](Self::defer_orchestration_work) makes it
    /// `Pending` again.
    async fn fetch_orchestration_work(
        &self,
        lock_for: Duration,
    ) -> Result<Option<OrchestrationWork>, StoreError>;

    /// Lock up to `max` instances that have visible messages, each with all
    /// its visible messages, as [`HistoryStore::fetch_orchestration_work`]
    /// does for one. A dispatcher running many turns at once fills its free
    /// slots with one call.
    ///
    /// Fair between tenants: the tenants with ready instances take turns
    /// (one instance from each, then a second from each, ...), each giving
    /// its oldest work first, and successive fetches start the round with
    /// the tenant after the one served last. So a tenant's single instance
    /// waits a few fetches behind another tenant's backlog, however long.
    ///
    /// A store may also lock instances whose earliest message becomes visible
    /// within `lookahead` (a timer about to fire), so a burst of them is
    /// fetched before it is due and each turn starts on time. Such work has
    /// `ready_at_ms` in the future and takes the messages visible by then;
    /// its lock lasts `lock_for` past that time. The default locks only
    /// visible work.
    async fn fetch_orchestration_batch(
        &self,
        max: usize,
        lock_for: Duration,
        lookahead: Duration,
    ) -> Result<Vec<OrchestrationWork>, StoreError> {
        let _ = lookahead;
        if max == 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .fetch_orchestration_work(lock_for)
            .await?
            .into_iter()
            .collect())
    }

    /// Commit a turn and release the instance lock, in one transaction.
    /// Fails with [`StoreError::LockLost`] (writing nothing) if the lock expired.
    async fn commit_turn(&self, commit: TurnCommit) -> Result<(), StoreError>;

    /// [`commit_turn`](Self::commit_turn), and in the same transaction lock
    /// the first `max` activities the turn schedules for `lock_for`, for the
    /// caller to run at once instead of leaving them to a fetch.
    ///
    /// With `hold` given, the instance may stay locked (same token) for that
    /// long instead of being released: the caller means to run the next turn
    /// itself, with the activity's completion in hand, and commit it with
    /// [`TurnCommit::completed_activity`]. A store holds only an instance
    /// with no message queued, due now or later, so no timer or message
    /// waits behind the hold. The default locks and holds nothing.
    async fn commit_turn_and_lock_activities(
        &self,
        commit: TurnCommit,
        max: usize,
        lock_for: Duration,
        hold: Option<Duration>,
    ) -> Result<LockedTurn, StoreError> {
        let _ = (max, lock_for, hold);
        self.commit_turn(commit).await?;
        Ok(LockedTurn::default())
    }

    /// Release an instance lock without committing; its messages become
    /// fetchable again at once.
    async fn release_orchestration_work(
        &self,
        instance_id: &str,
        lock_token: &str,
    ) -> Result<(), StoreError>;

    /// Give back an instance the caller cannot run (it lacks the code of
    /// its orchestration): release the lock, uncount the fetch from the
    /// attempts of `work`'s messages, and keep the instance from every fetch
    /// until `until_ms`, so runtimes without the code do not spin on it
    /// while one with the code takes it after that. An instance whose
    /// first turn this was ([`InstanceRecord::awaits_start`]) becomes
    /// `Pending` again. A stale lock token changes nothing.
    async fn defer_orchestration_work(
        &self,
        work: &OrchestrationWork,
        until_ms: u64,
    ) -> Result<(), StoreError>;

    /// Lock up to `max` visible activity work items for `lock_for`.
    async fn fetch_activity_work(
        &self,
        max: usize,
        lock_for: Duration,
    ) -> Result<Vec<LockedActivity>, StoreError>;

    /// Delete a finished work item and enqueue its completion for the
    /// orchestration, in one transaction. Fails with [`StoreError::LockLost`]
    /// (writing nothing) if the lock expired.
    async fn complete_activity(
        &self,
        locked: &LockedActivity,
        completion: OrchestratorMessage,
    ) -> Result<(), StoreError>;

    /// [`complete_activity`](Self::complete_activity), and in the same
    /// transaction lock the instance for `lock_for` if nobody holds it,
    /// taking its visible messages (the completion among them) as a fetch
    /// would: the caller runs the turn at once, without a fetch. `None` if the
    /// instance is locked or gone (the completion waits in its queue) or the
    /// store cannot lock in the same transaction, which is the default.
    async fn complete_activity_and_lock(
        &self,
        locked: &LockedActivity,
        completion: OrchestratorMessage,
        lock_for: Duration,
    ) -> Result<Option<OrchestrationWork>, StoreError> {
        let _ = lock_for;
        self.complete_activity(locked, completion).await?;
        Ok(None)
    }

    /// Release an activity lock so the work is fetched again at once.
    async fn release_activity_work(&self, locked: &LockedActivity) -> Result<(), StoreError>;

    /// Extend the lock of running activity work to `lock_for` from now, so
    /// an attempt that runs longer than one lock keeps its work. Fails with
    /// [`StoreError::LockLost`] if the lock expired already (another runtime
    /// may be running the work).
    async fn renew_activity_lock(
        &self,
        locked: &LockedActivity,
        lock_for: Duration,
    ) -> Result<(), StoreError>;

    /// Give back activity work the caller cannot run (it lacks the
    /// activity): release the lock, uncount the fetch from its attempts, and
    /// keep it from every fetch until `until_ms`, as
    /// [`defer_orchestration_work`](Self::defer_orchestration_work) does for
    /// instances. A stale lock token changes nothing.
    async fn defer_activity_work(
        &self,
        locked: &LockedActivity,
        until_ms: u64,
    ) -> Result<(), StoreError>;

    /// How much work waits in the queues now.
    async fn queue_stats(&self) -> Result<QueueStats, StoreError>;

    /// The clock this store reads every time from. Its client and runtimes
    /// take time from it too, so one clock rules stored times, timers and
    /// locks (and a test can drive it).
    fn clock(&self) -> SharedClock;

    /// The earliest time, after now, at which queued work becomes visible or a
    /// lock expires; dispatchers sleep until then when idle.
    async fn next_wake_at_ms(&self) -> Result<Option<u64>, StoreError>;

    /// Notified (`notify_one`) whenever this store object enqueues orchestrator
    /// messages, so dispatchers in the same process wake at once instead of polling.
    fn orchestrator_signal(&self) -> Arc<Notify>;

    /// Notified (`notify_one`) whenever this store object enqueues activity work.
    fn activity_signal(&self) -> Arc<Notify>;

    /// The waiters this store object tells when one of its commits makes an
    /// instance terminal, so a client sharing it with a runtime learns of the
    /// end at once. Commits made through other store objects (other
    /// processes) are not announced: waiters poll for those. `None` (the
    /// default): this store announces nothing.
    fn finish_notices(&self) -> Option<Arc<FinishNotices>> {
        None
    }

    /// One page of the instances `filter` selects, in its order, answered
    /// from the instance rows by one query.
    async fn list_instances(&self, filter: &InstanceFilter) -> Result<InstancePage, StoreError>;

    /// The rows of those of `ids` that exist, in the order of `ids`.
    async fn instances_by_id(&self, ids: &[String]) -> Result<Vec<InstanceRecord>, StoreError>;

    /// How many instances are in each state, by aggregate queries over the
    /// instance rows.
    async fn instance_counts(&self, query: CountsQuery) -> Result<InstanceCounts, StoreError>;

    /// Delete a finished instance with every execution's history and all
    /// its queued messages and activity work, in one transaction. An
    /// instance that has not finished is left alone
    /// ([`PurgeOutcome::NotFinished`]).
    async fn purge_instance(&self, instance_id: &str) -> Result<PurgeOutcome, StoreError>;

    /// Delete up to `limit` finished instances that `filter` selects, as
    /// [`purge_instance`](Self::purge_instance) does, in one transaction;
    /// returns how many. Callers loop until a batch comes back short, so no
    /// transaction holds the store long.
    async fn purge_finished(&self, filter: &PurgeFilter, limit: u32) -> Result<u64, StoreError>;

    /// Store a component for its tenant ([`NewArtifact::tenant`]). Storing
    /// bytes the tenant stored already changes nothing (the label and deploy
    /// time stay the first ones); either way returns the stored summary and
    /// whether this call stored it. Each tenant has its own artifacts: the
    /// same bytes deployed by two tenants are two artifacts.
    async fn put_artifact(
        &self,
        artifact: NewArtifact,
    ) -> Result<(ArtifactSummary, bool), StoreError>;

    /// The stored components of `tenant`, or of every tenant when `None`
    /// (runtimes load them all), oldest deployment first, without bytes.
    async fn list_artifacts(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<ArtifactSummary>, StoreError>;

    /// `tenant`'s component with this digest, with its bytes.
    async fn artifact(&self, tenant: &str, digest: &str) -> Result<Option<Artifact>, StoreError>;

    /// Delete `tenant`'s component with this digest, unless an unfinished
    /// instance of the tenant is pinned to it (checked in the same
    /// transaction).
    async fn remove_artifact(
        &self,
        tenant: &str,
        digest: &str,
    ) -> Result<RemoveOutcome, StoreError>;

    /// Unfinished instances of `tenant` pinned to `digest`, oldest first, up
    /// to `limit`.
    async fn pinned_instances(
        &self,
        tenant: &str,
        digest: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Move an unfinished instance pinned to `from` onto `to`, which must be
    /// an artifact of the instance's own tenant. Returns whether it moved
    /// (false: it finished, is pinned elsewhere, or its tenant has no `to`).
    async fn repin_instance(
        &self,
        instance_id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: InstanceStatus, history_len: u64) -> InstanceRecord {
        InstanceRecord {
            instance_id: "i".into(),
            orchestration_name: "o".into(),
            orchestration_version: None,
            status,
            output: None,
            execution_id: 1,
            history_len,
            created_at_ms: 0,
            updated_at_ms: 0,
            parent_instance: None,
            parent_id: None,
            parent_execution_id: None,
            custom_status: None,
            finished_at_ms: None,
            component_digest: None,
        }
    }

    #[test]
    fn an_instance_awaits_its_start_until_a_turn_commits_history() {
        assert!(record(InstanceStatus::Pending, 0).awaits_start());
        // Marked running by the fetch of its first turn, nothing committed.
        assert!(record(InstanceStatus::Running, 0).awaits_start());
        assert!(!record(InstanceStatus::Running, 1).awaits_start());
        // Cancelled before it started: finished, not waiting.
        assert!(!record(InstanceStatus::Cancelled, 0).awaits_start());
        assert!(!record(InstanceStatus::Completed, 3).awaits_start());
    }
}
