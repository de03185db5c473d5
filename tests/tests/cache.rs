//! The execution cache stays within its bounds, and evicted executions
//! resume correctly by replay.

use duroxide::history::Event;
use duroxide_tests::{Harness, WAIT_MS, completed, each_store, guests, history_reaches, options};

async fn bounded(capacity: usize, max_bytes: usize, expected_max: usize) -> anyhow::Result<()> {
    let mut h = Harness::start(true, &[]).await?;
    let mut opts = options(true);
    opts.cache_capacity = capacity;
    opts.cache_max_bytes = max_bytes;
    h.restart(opts, &[guests::SCENARIOS]).await?;
    let ids: Vec<String> = (0..6).map(|i| format!("parked-{i}")).collect();
    for id in &ids {
        h.client
            .start_orchestration(id, "TwoEvents", "", None)
            .await?;
    }
    for id in &ids {
        history_reaches(&h.client, id, |h| {
            h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
        })
        .await?;
    }
    let parked = h.runtime.cached_executions();
    assert!(parked >= 1 && parked <= expected_max, "{parked} parked");
    for id in &ids {
        h.client.raise_event(id, "approval", "a").await?;
        h.client.raise_event(id, "approval", "b").await?;
    }
    for id in &ids {
        assert_eq!(
            completed(h.client.wait_for_completion(id, Some(WAIT_MS)).await?)?,
            "a+b"
        );
    }
    Ok(())
}

each_store!(cache_is_bounded_by_count, async move {
    bounded(2, usize::MAX, 2).await
});

each_store!(cache_is_bounded_by_memory, async move {
    // Every guest holds more than one byte: only the newest stays parked.
    bounded(100, 1, 1).await
});
