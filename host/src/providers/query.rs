//! Requests and answers of the management queries on the [`HistoryStore`]
//! (list, bulk status, health, retention). A store answers each from its
//! instance rows, kept current by every turn commit, through indexes: never by
//! reading histories.
//!
//! [`HistoryStore`]: super::HistoryStore

use super::InstanceStatus;

/// Which instances [`HistoryStore::list_instances`] returns, and in which
/// order. Every field narrows the result; the default lists every instance,
/// newest first.
///
/// [`HistoryStore::list_instances`]: super::HistoryStore::list_instances
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    /// Only instances of this tenant; every tenant's when `None` (a
    /// [`crate::Client`] always sets its own). The store's listing indexes
    /// begin with the tenant, so a listing of every tenant is not indexed.
    pub tenant: Option<String>,
    /// Only instances in one of these states; `None` (or empty) for any.
    pub status: Option<Vec<InstanceStatus>>,
    /// Only instances of this orchestration.
    pub orchestration_name: Option<String>,
    /// Only instances created at or after this time, ms since the Unix epoch.
    pub created_after_ms: Option<u64>,
    /// Only instances created before this time, ms since the Unix epoch.
    pub created_before_ms: Option<u64>,
    /// Only instances that finished at or after this time, ms since the
    /// Unix epoch (so only finished ones).
    pub finished_after_ms: Option<u64>,
    /// Only children of this instance.
    pub parent_instance: Option<String>,
    /// Newest or oldest first (by creation time, then instance id).
    pub order: ListOrder,
    /// Start after this row: the cursor of the previous page. Unlike
    /// `offset`, a cursor costs the same however deep the page is.
    pub after: Option<ListCursor>,
    /// At most this many instances; all when `None`.
    pub limit: Option<u32>,
    /// Skip this many matching instances first (after the cursor, if any).
    pub offset: Option<u32>,
}

/// The order of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// The most recently created first.
    #[default]
    NewestFirst,
    /// The earliest created first.
    OldestFirst,
}

/// Where a page of a listing ended: the last row's creation time and id.
/// Passed as [`InstanceFilter::after`], the next page starts after that row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListCursor {
    /// Creation time of the last row, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Instance id of the last row (ties on creation time are ordered by id).
    pub instance_id: String,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstancePage {
    /// The instances, in the requested order.
    pub instances: Vec<InstanceSummary>,
    /// The cursor for the next page; `None` when this page was the last
    /// (it held fewer rows than the limit, or there was no limit).
    pub next: Option<ListCursor>,
}

/// An instance as a listing shows it: its row without output or custom
/// status, so a page stays small whatever the instances returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSummary {
    /// Instance id.
    pub instance_id: String,
    /// Orchestration name.
    pub orchestration_name: String,
    /// Version it runs; `None` until a runtime has started it.
    pub orchestration_version: Option<String>,
    /// Lifecycle state.
    pub status: InstanceStatus,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// When it finished, ms since the Unix epoch; `None` while it runs.
    pub finished_at_ms: Option<u64>,
    /// How many executions it has had (continue-as-new starts another), from 1.
    pub execution_count: u64,
    /// The parent instance, for a child orchestration.
    pub parent_instance: Option<String>,
    /// The parent's task id for this child.
    pub parent_id: Option<u64>,
}

impl InstanceSummary {
    /// The cursor that lists the rows after this one.
    pub fn cursor(&self) -> ListCursor {
        ListCursor {
            created_at_ms: self.created_at_ms,
            instance_id: self.instance_id.clone(),
        }
    }
}

/// The thresholds of [`HistoryStore::instance_counts`].
///
/// [`HistoryStore::instance_counts`]: super::HistoryStore::instance_counts
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountsQuery {
    /// Count only this tenant's instances; every tenant's when `None`.
    pub tenant: Option<String>,
    /// A running instance created before this time counts as long-running.
    pub long_running_before_ms: u64,
    /// A failure at or after this time counts as recent.
    pub recent_since_ms: u64,
}

/// How many instances are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceCounts {
    /// Created, not yet started.
    pub pending: u64,
    /// Started, not finished.
    pub running: u64,
    /// Finished with an output.
    pub completed: u64,
    /// Finished with an error.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Running and created before [`CountsQuery::long_running_before_ms`].
    pub long_running: u64,
    /// Failed at or after [`CountsQuery::recent_since_ms`].
    pub recent_failures: u64,
}

impl InstanceCounts {
    /// Every instance.
    pub fn total(&self) -> u64 {
        self.pending + self.running + self.completed + self.failed + self.cancelled
    }
}

/// Which finished instances [`HistoryStore::purge_finished`] deletes.
///
/// [`HistoryStore::purge_finished`]: super::HistoryStore::purge_finished
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeFilter {
    /// Only instances of this tenant; every tenant's when `None` (the
    /// runtime's retention).
    pub tenant: Option<String>,
    /// Only instances that finished before this time, ms since the Unix epoch.
    pub finished_before_ms: u64,
    /// Only instances of this orchestration.
    pub orchestration_name: Option<String>,
    /// Only instances that ended in one of these states; every terminal one
    /// when `None`. A state that is not terminal matches nothing.
    pub status: Option<Vec<InstanceStatus>>,
}

/// What [`HistoryStore::purge_instance`] did.
///
/// [`HistoryStore::purge_instance`]: super::HistoryStore::purge_instance
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeOutcome {
    /// The instance and everything stored for it are gone.
    Purged,
    /// No instance has this id.
    NotFound,
    /// The instance has not finished; nothing was deleted.
    NotFinished(InstanceStatus),
}
