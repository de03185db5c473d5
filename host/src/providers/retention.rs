//! Retention: deleting finished instances once they are old enough, in
//! bounded batches, on a schedule a runtime keeps (see
//! `RuntimeOptions::retention`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::query::PurgeFilter;
use super::{HistoryStore, StoreError};

/// Instances one purge transaction deletes at most: large enough that a
/// batch amortizes its commit, small enough that it holds the store's
/// writer for milliseconds, not seconds, so turns keep committing.
pub const PURGE_BATCH: u32 = 500;

/// How long finished instances are kept, and how often they are swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// A finished instance is deleted once it has been finished this long.
    pub keep_finished_for: Duration,
    /// How often to look for such instances.
    pub every: Duration,
}

/// Deletes every instance `filter` selects, [`PURGE_BATCH`] at a time,
/// each batch its own transaction; returns how many.
pub async fn purge_all(store: &dyn HistoryStore, filter: &PurgeFilter) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let purged = store.purge_finished(filter, PURGE_BATCH).await?;
        total += purged;
        if purged < u64::from(PURGE_BATCH) {
            return Ok(total);
        }
        // Other writers' ops queue behind a batch; let them in between.
        tokio::task::yield_now().await;
    }
}

/// The instances a sweep at `now_ms` deletes.
pub fn due(retention: &Retention, now_ms: u64) -> PurgeFilter {
    let keep = u64::try_from(retention.keep_finished_for.as_millis()).unwrap_or(u64::MAX);
    PurgeFilter {
        tenant: None,
        finished_before_ms: now_ms.saturating_sub(keep),
        orchestration_name: None,
        status: None,
    }
}

/// Sweeps every `retention.every` until `shutdown` turns true. A failed
/// sweep is logged and tried again at the next tick.
pub async fn run(
    store: Arc<dyn HistoryStore>,
    retention: Retention,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = retention.every.max(Duration::from_millis(1));
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = store.clock().now_ms();
        match purge_all(store.as_ref(), &due(&retention, now)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "retention deleted finished instances"),
            Err(e) => tracing::warn!("retention sweep failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_takes_what_finished_before_the_kept_span() {
        let retention = Retention {
            keep_finished_for: Duration::from_secs(60),
            every: Duration::from_secs(1),
        };
        assert_eq!(due(&retention, 100_000).finished_before_ms, 40_000);
        assert_eq!(due(&retention, 10).finished_before_ms, 0, "saturates");
    }
}
