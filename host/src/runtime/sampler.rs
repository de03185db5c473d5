//! Samples what the metrics cannot count as it happens: the queues' depth
//! and the age of their oldest work, and the sandbox pool's use, every few
//! seconds.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::metrics::{self, Queue};
use crate::providers::QueueStats;

/// How often the queues are sampled.
const EVERY: Duration = Duration::from_secs(5);

/// Samples until the runtime stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    while !*shutdown.borrow() {
        match shared.store.queue_stats().await {
            Ok(stats) => record(&stats, shared.now_ms()),
            Err(e) => tracing::debug!("sampling the queues failed: {e}"),
        }
        if let Some(in_use) = crate::sandbox::pooled_sandboxes_in_use() {
            let in_use = i64::try_from(in_use).unwrap_or(i64::MAX);
            metrics::global().pooled_sandboxes.set(in_use);
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Sets the queue gauges from `stats`, taken at `now_ms`.
fn record(stats: &QueueStats, now_ms: u64) {
    let m = metrics::global();
    let queues = [
        (
            "orchestrator",
            stats.orchestrator_depth,
            stats.orchestrator_oldest_at_ms,
        ),
        (
            "activity",
            stats.activity_depth,
            stats.activity_oldest_at_ms,
        ),
    ];
    for (queue, depth, oldest) in queues {
        let label = Queue { queue };
        let age = oldest.map_or(0, |at| now_ms.saturating_sub(at));
        m.queue_depth
            .get_or_create(&label)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        m.queue_oldest_ms
            .get_or_create(&label)
            .set(i64::try_from(age).unwrap_or(i64::MAX));
    }
}
