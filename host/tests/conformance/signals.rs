//! Signal-with-start, the shared text limits, and the status a fetch gives
//! an instance whose first turn it takes.

use duroxide::limits::TextLimits;
use duroxide::providers::SignalOutcome;

use super::fixtures::*;

pub async fn signal_with_start_creates_once_then_queues_and_refuses_a_finished_instance(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let first = store
        .signal_with_start(new_instance("s", now_ms()), external_event("one"))
        .await?;
    assert_eq!(first, SignalOutcome::Started);
    let second = store
        .signal_with_start(new_instance("s", now_ms()), external_event("two"))
        .await?;
    assert_eq!(second, SignalOutcome::Signalled);
    let fetched = fetch(store, LONG_LOCK).await?;
    let kinds: Vec<String> = fetched
        .messages
        .iter()
        .map(|m| match &m.message {
            OrchestratorMessage::StartOrchestration { .. } => "start".to_owned(),
            OrchestratorMessage::ExternalEvent { name, .. } => name.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["start", "one", "two"]);
    let mut commit = empty_commit(&fetched);
    commit.new_events = vec![started_event()];
    commit.status = InstanceStatus::Completed;
    commit.output = Some("done".to_owned());
    store.commit_turn(commit).await?;

    let err = expect_err(
        store
            .signal_with_start(new_instance("s", now_ms()), external_event("late"))
            .await,
    )?;
    assert!(
        matches!(&err, StoreError::InstanceFinished { instance, status: InstanceStatus::Completed } if instance == "s"),
        "{err:?}"
    );
    // Nothing was queued for the finished instance.
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

pub async fn a_signal_with_start_event_waits_for_a_delayed_start(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let due = now_ms() + 300;
    store
        .signal_with_start(new_instance("later", due), external_event("e"))
        .await?;
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    let fetched = poll(|| store.fetch_orchestration_work(LONG_LOCK)).await?;
    assert!(now_ms() >= due);
    assert_eq!(fetched.messages.len(), 2);
    Ok(())
}

pub async fn concurrent_signals_with_start_create_one_instance_and_queue_every_event(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let calls = (0..16).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .signal_with_start(
                    new_instance("one", now_ms()),
                    external_event(&format!("e{i}")),
                )
                .await
        })
    });
    let mut started = 0;
    for call in calls.collect::<Vec<_>>() {
        if call.await?? == SignalOutcome::Started {
            started += 1;
        }
    }
    assert_eq!(started, 1);
    let fetched = fetch(&*store, LONG_LOCK).await?;
    let starts = fetched
        .messages
        .iter()
        .filter(|m| matches!(m.message, OrchestratorMessage::StartOrchestration { .. }))
        .count();
    let events: HashSet<String> = fetched
        .messages
        .iter()
        .filter_map(|m| match &m.message {
            OrchestratorMessage::ExternalEvent { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(starts, 1);
    assert_eq!(events.len(), 16);
    // The start message comes first.
    assert!(matches!(
        fetched.messages[0].message,
        OrchestratorMessage::StartOrchestration { .. }
    ));
    Ok(())
}

pub async fn text_limits_are_stored_once_for_everyone_and_replaced(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    assert_eq!(store.text_limits().await?, None);
    let small = TextLimits {
        max_payload_bytes: 100,
        ..TextLimits::default()
    };
    store.set_text_limits(small).await?;
    assert_eq!(store.text_limits().await?, Some(small));
    let other = TextLimits {
        max_name_bytes: 7,
        ..small
    };
    store.set_text_limits(other).await?;
    assert_eq!(store.text_limits().await?, Some(other));
    Ok(())
}

pub async fn the_fetch_of_a_first_turn_marks_the_instance_running(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    // The row reads Running at once; the turn still knows to start it.
    assert_eq!(fetched.instance.status, InstanceStatus::Running);
    assert!(fetched.instance.awaits_start());
    let row = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(row.status, InstanceStatus::Running);
    // Given back by a runtime that lacks its code: pending again.
    store.defer_orchestration_work(&fetched, now_ms()).await?;
    let row = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(row.status, InstanceStatus::Pending);
    // A first turn whose lock expired is fetched again, still to start.
    let again = fetch(store, SHORT_LOCK).await?;
    assert!(again.instance.awaits_start());
    let retried = poll(|| store.fetch_orchestration_work(LONG_LOCK)).await?;
    assert_eq!(retried.instance.status, InstanceStatus::Running);
    assert!(retried.instance.awaits_start());
    let mut commit = empty_commit(&retried);
    commit.new_events = vec![started_event()];
    store.commit_turn(commit).await?;
    let row = store.instance("a").await?.ok_or("instance missing")?;
    assert!(!row.awaits_start());
    Ok(())
}
