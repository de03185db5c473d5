//! The operator's API through the real runtime: listing, details with
//! pending work, bulk status, health, purge and retention, and
//! wait_for_completion's in-process wake-up.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use duroxide::clock::system_now_ms as now_ms;
use duroxide::providers::InstanceStatus;
use duroxide::{
    Client, ClientError, ExecutionStatus, InstanceFilter, OrchestrationStatus, PurgeFilter,
    Retention,
};
use duroxide_tests::{Harness, WAIT_MS, completed, eventually, guests, history_reaches, options};

const WAIT: Duration = Duration::from_millis(WAIT_MS);

/// Starts `name` and waits until its history satisfies `ready`.
async fn start_until(
    h: &Harness,
    id: &str,
    name: &str,
    input: &str,
    ready: impl Fn(&[duroxide::history::Event]) -> bool,
) -> anyhow::Result<()> {
    h.client.start_orchestration(id, name, input, None).await?;
    history_reaches(&h.client, id, ready).await?;
    Ok(())
}

fn subscriptions(history: &[duroxide::history::Event]) -> usize {
    history
        .iter()
        .filter(|e| matches!(e, duroxide::history::Event::EventSubscribed { .. }))
        .count()
}

duroxide_tests::scenario!(operator_view, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS, guests::MODEL]).await?;
    let c = &h.client;
    let before = now_ms();
    // Finished: completed, failed, cancelled, and completed after two
    // continue-as-new executions.
    completed(h.run("done", "Sequence", "x").await?)?;
    assert!(h.run("err", "ReturnsError", "no").await?.is_terminal());
    start_until(&h, "cancel-me", "TwoEvents", "", |hist| {
        subscriptions(hist) == 1
    })
    .await?;
    c.cancel_orchestration("cancel-me").await?;
    c.wait_for_completion("cancel-me", Some(WAIT_MS)).await?;
    assert_eq!(
        completed(h.run("counter", "Counter", "1").await?)?,
        "done at 3"
    );
    // Running: a timer, an event wait, an activity nobody serves, a child.
    start_until(&h, "timer", "TimerThenActivity", "600000", |hist| {
        hist.iter()
            .any(|e| matches!(e, duroxide::history::Event::TimerCreated { .. }))
    })
    .await?;
    start_until(&h, "events", "TwoEvents", "", |hist| {
        subscriptions(hist) == 1
    })
    .await?;
    c.raise_event("events", "approval", "first").await?;
    history_reaches(c, "events", |hist| subscriptions(hist) == 2).await?;
    start_until(&h, "missing", "CallMissing", "in", |hist| {
        hist.iter()
            .any(|e| matches!(e, duroxide::history::Event::ActivityScheduled { .. }))
    })
    .await?;
    start_until(&h, "parent", "WaitsOnChild", "w", |hist| {
        hist.iter().any(|e| {
            matches!(
                e,
                duroxide::history::Event::SubOrchestrationScheduled { .. }
            )
        })
    })
    .await?;
    let children = c
        .list_instances(Some(InstanceFilter {
            parent_instance: Some("parent".into()),
            ..InstanceFilter::default()
        }))
        .await?
        .instances;
    assert_eq!(children.len(), 1);
    let child = children[0].clone();
    assert_eq!(child.orchestration_name, "Waiter");
    eventually(WAIT, || async {
        let status = c.get_orchestration_status(&child.instance_id).await?;
        Ok((status == OrchestrationStatus::Running).then_some(()))
    })
    .await?;

    // Listing.
    let running: BTreeSet<String> = c
        .find_running_instances()
        .await?
        .into_iter()
        .map(|s| s.instance_id)
        .collect();
    let expected: BTreeSet<String> = ["timer", "events", "missing", "parent", &child.instance_id]
        .map(String::from)
        .into();
    assert_eq!(running, expected);
    let all = c.list_instances(None).await?.instances;
    assert_eq!(all.len(), 9);
    assert!(
        all.windows(2)
            .all(|w| (w[0].created_at_ms, &w[0].instance_id)
                >= (w[1].created_at_ms, &w[1].instance_id)),
        "newest first"
    );
    let sequences = c.find_instances_by_orchestration("Sequence").await?;
    assert_eq!(sequences.len(), 1);
    let done = &sequences[0];
    assert_eq!(done.instance_id, "done");
    assert_eq!(done.status, InstanceStatus::Completed);
    assert_eq!(done.orchestration_version.as_deref(), Some("1.0.0"));
    assert_eq!(done.execution_count, 1);
    assert!(done.created_at_ms >= before);
    assert!(done.finished_at_ms.is_some_and(|f| f >= done.created_at_ms));
    assert_eq!(done.parent_instance, None);
    let failed = c.find_failed_instances(Some(before)).await?;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].instance_id, "err");
    assert!(
        c.find_failed_instances(Some(now_ms() + 60_000))
            .await?
            .is_empty()
    );

    // Details.
    let details = c
        .get_instance_details("timer")
        .await?
        .expect("timer exists");
    let current = details.current_execution.expect("timer runs");
    assert_eq!(current.pending_timers.len(), 1);
    let timer = &current.pending_timers[0];
    assert!(timer.fire_at_ms >= timer.created_at_ms + 600_000);
    assert!(timer.created_at_ms >= details.summary.created_at_ms);
    assert!(current.pending_activities.is_empty() && current.pending_events.is_empty());
    assert_eq!(details.executions.len(), 1);
    assert_eq!(details.executions[0].status, ExecutionStatus::Running);

    let events = c.get_instance_details("events").await?.expect("exists");
    let pending = events.current_execution.expect("runs").pending_events;
    assert_eq!(pending.len(), 1, "the first wait took the first event");
    assert_eq!(pending[0].name, "approval");

    let missing = c.get_instance_details("missing").await?.expect("exists");
    let activities = missing.current_execution.expect("runs").pending_activities;
    assert_eq!(activities.len(), 1);
    assert_eq!(
        (activities[0].name.as_str(), activities[0].input.as_str()),
        ("NoSuchActivity", "in")
    );

    let parent = c.get_instance_details("parent").await?.expect("exists");
    let subs = parent
        .current_execution
        .expect("runs")
        .pending_sub_orchestrations;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].instance_id, child.instance_id);
    assert_eq!(child.parent_id, Some(subs[0].id));

    let counter = c.get_instance_details("counter").await?.expect("exists");
    assert_eq!(counter.summary.execution_count, 3);
    let statuses: Vec<ExecutionStatus> = counter.executions.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        vec![
            ExecutionStatus::ContinuedAsNew,
            ExecutionStatus::ContinuedAsNew,
            ExecutionStatus::Completed
        ]
    );
    for (i, e) in counter.executions.iter().enumerate() {
        assert_eq!(e.execution_id, i as u64 + 1);
        let end = e.completed_at_ms.expect("ended");
        assert_eq!(e.duration_ms, Some(end - e.started_at_ms));
        let history = c
            .get_execution_history("counter", Some(e.execution_id))
            .await?;
        assert_eq!(e.event_count, history.len() as u64);
    }
    assert!(
        counter.executions[1].started_at_ms >= counter.executions[0].completed_at_ms.unwrap_or(0)
    );
    assert_eq!(
        counter.executions[2].completed_at_ms,
        counter.summary.finished_at_ms
    );
    assert_eq!(counter.current_execution, None, "finished");
    assert!(matches!(
        counter.status,
        OrchestrationStatus::Completed { .. }
    ));

    let cancelled = c.get_instance_details("cancel-me").await?.expect("exists");
    assert_eq!(cancelled.executions[0].status, ExecutionStatus::Cancelled);
    assert_eq!(
        cancelled.executions[0].completed_at_ms,
        cancelled.summary.finished_at_ms
    );
    assert_eq!(c.get_instance_details("nope").await?, None);

    // Bulk status and health.
    let ids = ["done", "err", "nope", "timer"].map(String::from);
    let bulk = c.get_bulk_status(&ids).await?;
    assert_eq!(bulk[0].0, "done");
    assert!(matches!(bulk[0].1, OrchestrationStatus::Completed { .. }));
    assert!(matches!(&bulk[1].1, OrchestrationStatus::Failed { error } if error.contains("no")));
    assert_eq!(bulk[2].1, OrchestrationStatus::NotFound);
    assert_eq!(bulk[3].1, OrchestrationStatus::Running);
    let health = c.get_system_health().await?;
    assert_eq!(
        (
            health.total_instances,
            health.running_instances,
            health.completed_instances,
            health.failed_instances,
            health.cancelled_instances,
            health.pending_instances,
        ),
        (9, 5, 2, 1, 1, 0)
    );
    assert_eq!(
        (health.long_running_instances, health.recent_failures),
        (0, 1)
    );
    // (2 - 1) of 9, in percent.
    assert_eq!(health.health_score, 11);

    // Purge.
    match c.purge_instance("timer").await {
        Err(ClientError::InstanceNotFinished { instance, status }) => {
            assert_eq!(
                (instance.as_str(), status),
                ("timer", InstanceStatus::Running)
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        c.purge_instance("nope").await,
        Err(ClientError::InstanceNotFound(_))
    ));
    c.purge_instance("done").await?;
    assert_eq!(
        c.get_orchestration_status("done").await?,
        OrchestrationStatus::NotFound
    );
    assert!(h.store.read_history("done", 1).await?.is_empty());
    c.purge_instance_forced("events", WAIT).await?;
    assert_eq!(
        c.get_orchestration_status("events").await?,
        OrchestrationStatus::NotFound
    );
    let purged = c
        .purge_finished(PurgeFilter {
            tenant: None,
            finished_before_ms: now_ms() + 1,
            orchestration_name: None,
            status: None,
        })
        .await?;
    assert_eq!(purged, 3, "err, counter and cancel-me");
    let left: BTreeSet<String> = c
        .list_instances(None)
        .await?
        .instances
        .into_iter()
        .map(|s| s.instance_id)
        .collect();
    let expected: BTreeSet<String> = ["timer", "missing", "parent", &child.instance_id]
        .map(String::from)
        .into();
    assert_eq!(left, expected);
    let mut h = h;
    h.runtime.stop().await;
    Ok(())
});

duroxide_tests::scenario!(
    a_wait_in_the_runtimes_process_wakes_on_the_commit,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::MODEL]).await?;
        start_until(&h, "tick", "Ticker", "0", |hist| subscriptions(hist) == 1).await?;
        // Polls so rarely that only the store's notice can end the wait in time.
        let client = h
            .client
            .clone()
            .with_max_poll_interval(Duration::from_secs(3600));
        let notices = h
            .store
            .finish_notices()
            .expect("the store announces finishes");
        let waiter = tokio::spawn(async move {
            let status = client.wait_for_completion("tick", Some(WAIT_MS)).await;
            (status, Instant::now())
        });
        eventually(WAIT, || async {
            Ok((notices.watched() == 1).then_some(()))
        })
        .await?;
        // Let the poll backoff pass two seconds: a poll is then seconds away.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        h.client.raise_event("tick", "tick", "a").await?;
        h.client.raise_event("tick", "tick", "b").await?;
        let (status, woke) = waiter.await?;
        let output = completed(status?)?;
        assert_eq!(output, "second execution got b");
        let info = h.client.get_instance_info("tick").await?.expect("exists");
        let finished = info.updated_at_ms;
        let woke_ms = now_ms() - u64::try_from(woke.elapsed().as_millis())?;
        assert!(
            woke_ms < finished + 1_000,
            "the wait ended {} ms after the commit",
            woke_ms.saturating_sub(finished)
        );
        assert_eq!(notices.watched(), 0, "the wait unsubscribed");
        h.runtime.stop().await;
        Ok(())
    }
);

duroxide_tests::each_store!(a_wait_from_another_store_object_polls, async move {
    let mut h = Harness::start(true, &[guests::MODEL]).await?;
    // Another process's view: a store object of its own on the same database.
    let other = duroxide::providers::open(&h.url).await?;
    let client = Client::new(other).with_max_poll_interval(Duration::from_millis(20));
    start_until(&h, "tick", "Ticker", "0", |hist| subscriptions(hist) == 1).await?;
    let waiter =
        tokio::spawn(async move { client.wait_for_completion("tick", Some(WAIT_MS)).await });
    h.client.raise_event("tick", "tick", "a").await?;
    h.client.raise_event("tick", "tick", "b").await?;
    assert_eq!(completed(waiter.await??)?, "second execution got b");
    h.runtime.stop().await;
    Ok(())
});

/// Writes `n` completed instances straight into the database: what 10,000
/// runs leave behind, in a second instead of minutes. The same SQL on
/// either store.
async fn fill_finished(h: &Harness, n: usize) -> anyhow::Result<()> {
    let numbers = format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {})",
        n.saturating_sub(1)
    );
    let events = serde_json::to_string(&vec![
        duroxide::history::Event::OrchestrationStarted {
            name: "Sequence".into(),
            version: "1.0.0".into(),
            input: "old".into(),
            parent_instance: None,
            parent_id: None,
            started_at_ms: 1,
        },
        duroxide::history::Event::OrchestrationCompleted {
            output: "old".into(),
        },
    ])?
    .replace('\'', "''");
    let instances =
        h.db.execute(&format!(
            "{numbers} INSERT INTO instances (instance_id, orchestration_name,
                 orchestration_version, status, output, execution_id, history_len,
                 created_at, updated_at, finished_at)
             SELECT 'old-' || i, 'Sequence', '1.0.0', 'Completed', 'old', 1, 2, 1, 2, 2 FROM n"
        ))
        .await?;
    let histories =
        h.db.execute(&format!(
            "{numbers} INSERT INTO history (instance_id, execution_id, seq, event)
             SELECT 'old-' || i, 1, 0, '{events}' FROM n"
        ))
        .await?;
    anyhow::ensure!(
        (instances, histories) == (n as u64, n as u64),
        "wrote {instances} instances and {histories} histories of {n}"
    );
    Ok(())
}

duroxide_tests::each_store!(
    purging_under_load_loses_nothing_of_the_running_instances,
    async move {
        let mut h = Harness::start(true, &[guests::SCENARIOS]).await?;
        fill_finished(&h, 10_000).await?;
        let ids: Vec<String> = (0..200).map(|i| format!("live-{i}")).collect();
        for id in &ids {
            h.client
                .start_orchestration(id, "Sequence", id, None)
                .await?;
        }
        let purged = h
            .client
            .purge_finished(PurgeFilter {
                tenant: None,
                finished_before_ms: 1_000,
                orchestration_name: Some("Sequence".into()),
                status: None,
            })
            .await?;
        assert_eq!(
            purged, 10_000,
            "every old instance, and none of the live ones"
        );
        for id in &ids {
            let output = completed(h.client.wait_for_completion(id, Some(WAIT_MS)).await?)?;
            assert_eq!(output, format!("{}:A!:B!", id.to_uppercase()));
            let history = h.history(id).await?;
            assert!(
                matches!(
                    history.last(),
                    Some(duroxide::history::Event::OrchestrationCompleted { .. })
                ),
                "{id}'s history is whole"
            );
        }
        let health = h.client.get_system_health().await?;
        assert_eq!(
            (health.total_instances, health.completed_instances),
            (200, 200)
        );
        h.runtime.stop().await;
        Ok(())
    }
);

duroxide_tests::each_store!(
    retention_deletes_finished_instances_and_keeps_running_ones,
    async move {
        let mut h = Harness::start(true, &[]).await?;
        let mut options = options(true);
        options.retention = Some(Retention {
            keep_finished_for: Duration::from_millis(200),
            every: Duration::from_millis(50),
        });
        h.restart(options, &[guests::SCENARIOS]).await?;
        completed(h.run("short-lived", "Sequence", "x").await?)?;
        start_until(&h, "waiting", "TwoEvents", "", |hist| {
            subscriptions(hist) == 1
        })
        .await?;
        eventually(WAIT, || async {
            let status = h.client.get_orchestration_status("short-lived").await?;
            Ok((status == OrchestrationStatus::NotFound).then_some(()))
        })
        .await?;
        assert_eq!(
            h.client.get_orchestration_status("waiting").await?,
            OrchestrationStatus::Running
        );
        // Stopping ends the sweep with the dispatchers.
        h.runtime.stop().await;
        assert!(!h.runtime.is_running());
        Ok(())
    }
);
