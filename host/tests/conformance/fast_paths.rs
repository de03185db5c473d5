//! The fast paths: activities locked by their turn's commit, held
//! instances, and a completion that hands its instance's turn over.

use super::fixtures::*;

pub async fn a_turn_can_lock_the_first_activities_it_schedules_for_its_caller(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    let mut commit = empty_commit(&fetched);
    commit.activities = vec![work("a", 1), work("a", 2), work("a", 3)];
    let locked = store
        .commit_turn_and_lock_activities(commit, 2, SHORT_LOCK, None)
        .await?;
    assert!(locked.held.is_none());
    let locked = locked.activities;
    let ids: Vec<_> = locked.iter().map(|l| (l.work.id, l.attempts)).collect();
    assert_eq!(ids, [(1, 1), (2, 1)]);

    // The rest is left to fetches; the locked ones come back only once their
    // lock expires, with that attempt counted.
    let rest = store.fetch_activity_work(10, LONG_LOCK).await?;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].work.id, 3);
    store.complete_activity(&locked[0], completed(1)).await?;
    let expired = poll(|| async {
        let again = store.fetch_activity_work(10, LONG_LOCK).await?;
        Ok(again.into_iter().next())
    })
    .await?;
    assert_eq!((expired.work.id, expired.attempts), (2, 2));
    let err = expect_err(store.complete_activity(&locked[1], completed(2)).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    Ok(())
}

pub async fn a_turn_that_lost_its_lock_locks_no_activities(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    let mut commit = empty_commit(&fetched);
    commit.lock_token = "stale".to_owned();
    commit.activities = vec![work("a", 1)];
    let err = expect_err(
        store
            .commit_turn_and_lock_activities(commit, 1, LONG_LOCK, Some(LONG_LOCK))
            .await,
    )?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());
    Ok(())
}

pub async fn a_turn_can_hold_its_instance_and_commit_the_completion_with_the_next_turn(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    let (activity, held) = commit_and_hold(store, &fetched).await?;
    // The row as committed comes back with the hold, for the next turn.
    let held = held.ok_or("the instance was not held")?;
    assert_eq!(Some(&held), store.instance("a").await?.as_ref());
    assert_eq!(
        (held.history_len, held.status),
        (1, InstanceStatus::Running)
    );
    // A message that arrives meanwhile waits for the hold to end.
    store
        .enqueue_message("a", external_event("ping"), now_ms())
        .await?;
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());

    store.commit_turn(held_commit(&fetched, &activity)).await?;
    let history = store.read_history("a", 1).await?;
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(matches!(history[1], Event::ActivityCompleted { id: 1, .. }));
    // The work item went with the commit: completing it again finds nothing,
    // and no completion message was queued, only the event.
    let err = expect_err(store.complete_activity(&activity, completed(1)).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    let next = fetch(store, LONG_LOCK).await?;
    let messages: Vec<_> = next.messages.iter().map(|m| &m.message).collect();
    assert!(
        matches!(messages[..], [OrchestratorMessage::ExternalEvent { .. }]),
        "{messages:?}"
    );
    Ok(())
}

pub async fn a_turn_with_a_message_queued_does_not_hold_its_instance(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    // A timer due later counts as much as a message due now.
    let timer = OrchestratorMessage::TimerFired {
        execution_id: 1,
        id: 2,
    };
    store.enqueue_message("a", timer, now_ms() + 60_000).await?;
    let (_, held) = commit_and_hold(store, &fetched).await?;
    assert!(held.is_none());
    let instance = store.instance("a").await?.ok_or("instance gone")?;
    assert_eq!(instance.history_len, 1);
    store
        .enqueue_message("a", external_event("ping"), now_ms())
        .await?;
    fetch(store, LONG_LOCK).await?;
    Ok(())
}

pub async fn a_held_turn_whose_activity_lost_its_lock_writes_nothing(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    let (mut activity, held) = commit_and_hold(store, &fetched).await?;
    assert!(held.is_some());
    activity.lock_token = "stale".to_owned();
    let err = expect_err(store.commit_turn(held_commit(&fetched, &activity)).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    assert_eq!(store.read_history("a", 1).await?.len(), 1);
    // The instance is still held, so the caller can queue the completion.
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

pub async fn a_completion_locks_a_free_instance_and_hands_over_its_turn(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    with_activities(store, &[1]).await?;
    // An event that arrived meanwhile is taken with the completion.
    store
        .enqueue_message("a", external_event("ping"), now_ms())
        .await?;

    let locked = store.fetch_activity_work(10, LONG_LOCK).await?;
    let work = store
        .complete_activity_and_lock(&locked[0], completed(1), LONG_LOCK)
        .await?
        .ok_or("expected the instance to be locked for the caller")?;
    assert_eq!(work.instance.instance_id, "a");
    let messages: Vec<_> = work.messages.iter().map(|m| &m.message).collect();
    assert_eq!(messages, [&external_event("ping"), &completed(1)]);
    assert!(work.messages.iter().all(|m| m.attempts == 1));
    assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());

    // The instance is the caller's: no fetch takes it, and its turn commits.
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    store.commit_turn(empty_commit(&work)).await?;
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

pub async fn a_completion_for_a_locked_instance_waits_in_its_queue(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    with_activities(store, &[1]).await?;
    store
        .enqueue_message("a", external_event("ping"), now_ms())
        .await?;
    let holder = fetch(store, LONG_LOCK).await?;

    let locked = store.fetch_activity_work(10, LONG_LOCK).await?;
    let handed = store
        .complete_activity_and_lock(&locked[0], completed(1), LONG_LOCK)
        .await?;
    assert!(handed.is_none(), "{handed:?}");
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());

    // Once the holder lets go, a fetch takes the completion.
    store.commit_turn(empty_commit(&holder)).await?;
    let next = fetch(store, LONG_LOCK).await?;
    let messages: Vec<_> = next.messages.iter().map(|m| &m.message).collect();
    assert_eq!(messages, [&completed(1)]);
    Ok(())
}

pub async fn a_completion_and_lock_after_lock_loss_writes_nothing(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    with_activities(store, &[1]).await?;

    let first = store.fetch_activity_work(10, SHORT_LOCK).await?;
    let second = poll(|| async {
        let locked = store.fetch_activity_work(10, LONG_LOCK).await?;
        Ok(locked.into_iter().next())
    })
    .await?;
    let err = expect_err(
        store
            .complete_activity_and_lock(&first[0], completed(1), LONG_LOCK)
            .await,
    )?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    // Neither a message nor a lock was left behind.
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    let work = store
        .complete_activity_and_lock(&second, completed(1), LONG_LOCK)
        .await?
        .ok_or("expected the instance to be free")?;
    assert_eq!(work.messages.len(), 1);
    Ok(())
}
