//! The system health an operator sees: instance counts from the store and
//! the score derived from them.

use std::time::Duration;

use crate::providers::query::{CountsQuery, InstanceCounts};

/// A running instance older than this counts as long-running.
pub const LONG_RUNNING_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A failure this recent counts as recent.
pub const RECENT_FAILURE_WINDOW: Duration = Duration::from_secs(3600);

/// Instance counts and a health score, from aggregate queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemHealth {
    /// Every instance.
    pub total_instances: u64,
    /// Created, not yet started.
    pub pending_instances: u64,
    /// Started, not finished.
    pub running_instances: u64,
    /// Finished with an output.
    pub completed_instances: u64,
    /// Finished with an error.
    pub failed_instances: u64,
    /// Cancelled.
    pub cancelled_instances: u64,
    /// Running for longer than [`LONG_RUNNING_AFTER`].
    pub long_running_instances: u64,
    /// Failed within [`RECENT_FAILURE_WINDOW`].
    pub recent_failures: u64,
    /// 0–100: the share of instances that completed minus the share that
    /// failed, in percent, never below 0; 100 for an empty store.
    pub health_score: u32,
}

/// The thresholds of a health reading taken at `now_ms`.
pub(super) fn counts_query(now_ms: u64, tenant: &str) -> CountsQuery {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    CountsQuery {
        tenant: Some(tenant.to_owned()),
        long_running_before_ms: now_ms.saturating_sub(ms(LONG_RUNNING_AFTER)),
        recent_since_ms: now_ms.saturating_sub(ms(RECENT_FAILURE_WINDOW)),
    }
}

impl SystemHealth {
    /// The health the counts show.
    pub fn from_counts(counts: &InstanceCounts) -> Self {
        Self {
            total_instances: counts.total(),
            pending_instances: counts.pending,
            running_instances: counts.running,
            completed_instances: counts.completed,
            failed_instances: counts.failed,
            cancelled_instances: counts.cancelled,
            long_running_instances: counts.long_running,
            recent_failures: counts.recent_failures,
            health_score: health_score(counts),
        }
    }
}

/// The share of completed instances minus the share of failed ones, in
/// percent, at least 0 (the original design's score); 100 with no instances.
pub fn health_score(counts: &InstanceCounts) -> u32 {
    let total = counts.total();
    if total == 0 {
        return 100;
    }
    let completed = u128::from(counts.completed) * 100;
    let failed = u128::from(counts.failed) * 100;
    let score = completed.saturating_sub(failed) / u128::from(total);
    u32::try_from(score).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_completed_share_minus_failed_share() {
        let counts = InstanceCounts {
            completed: 70,
            failed: 10,
            running: 20,
            ..InstanceCounts::default()
        };
        assert_eq!(health_score(&counts), 60);
        let worse = InstanceCounts {
            completed: 1,
            failed: 3,
            ..InstanceCounts::default()
        };
        assert_eq!(health_score(&worse), 0, "never below zero");
        assert_eq!(health_score(&InstanceCounts::default()), 100);
    }

    #[test]
    fn thresholds_count_back_from_now() {
        let q = counts_query(100 * 3600 * 1000, "default");
        assert_eq!(q.long_running_before_ms, 76 * 3600 * 1000);
        assert_eq!(q.recent_since_ms, 99 * 3600 * 1000);
        assert_eq!(counts_query(5, "default").recent_since_ms, 0);
    }

    #[test]
    fn health_carries_every_count() {
        let counts = InstanceCounts {
            pending: 1,
            running: 2,
            completed: 3,
            failed: 4,
            cancelled: 5,
            long_running: 6,
            recent_failures: 7,
        };
        let h = SystemHealth::from_counts(&counts);
        assert_eq!(
            (h.total_instances, h.pending_instances, h.running_instances),
            (15, 1, 2)
        );
        assert_eq!(
            (
                h.completed_instances,
                h.failed_instances,
                h.cancelled_instances
            ),
            (3, 4, 5)
        );
        assert_eq!((h.long_running_instances, h.recent_failures), (6, 7));
        assert_eq!(h.health_score, 0);
    }
}
