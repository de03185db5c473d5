//! The activity queue: completion, lock loss, renewal and deferral.

use super::fixtures::*;

pub async fn activity_round_trip_enqueues_the_completion(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    with_activities(store, &[1, 2]).await?;

    let locked = store.fetch_activity_work(1, LONG_LOCK).await?;
    assert_eq!(locked.len(), 1);
    assert_eq!((locked[0].work.id, locked[0].attempts), (1, 1));
    let rest = store.fetch_activity_work(10, LONG_LOCK).await?;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].work.id, 2);
    assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());

    let signal = store.orchestrator_signal();
    let _ = tokio::time::timeout(Duration::from_millis(1), signal.notified()).await;
    let completion = OrchestratorMessage::ActivityCompleted {
        execution_id: 1,
        id: 1,
        output: "\"hello\"".to_owned(),
    };
    store
        .complete_activity(&locked[0], completion.clone())
        .await?;
    tokio::time::timeout(Duration::from_secs(1), signal.notified()).await?;

    let next = fetch(store, LONG_LOCK).await?;
    assert_eq!(next.messages.len(), 1);
    assert_eq!(next.messages[0].message, completion);

    // Released work is fetched again at once, its attempt counted.
    store.release_activity_work(&rest[0]).await?;
    let again = store.fetch_activity_work(10, LONG_LOCK).await?;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].work.id, again[0].attempts), (2, 2));
    Ok(())
}

pub async fn complete_after_lock_loss_is_lock_lost(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    with_activities(store, &[1]).await?;

    let first = store.fetch_activity_work(10, SHORT_LOCK).await?;
    assert_eq!(first.len(), 1);
    let second = poll(|| async {
        let locked = store.fetch_activity_work(10, LONG_LOCK).await?;
        Ok(locked.into_iter().next())
    })
    .await?;
    assert_eq!((second.queue_id, second.attempts), (first[0].queue_id, 2));

    let completion = OrchestratorMessage::ActivityFailed {
        execution_id: 1,
        id: 1,
        error: "boom".to_owned(),
    };
    let err = expect_err(store.complete_activity(&first[0], completion.clone()).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());

    store.complete_activity(&second, completion).await?;
    assert_eq!(fetch(store, LONG_LOCK).await?.messages.len(), 1);
    Ok(())
}

pub async fn a_renewed_activity_lock_outlasts_its_first_length(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    // Long enough that a renewal a quarter of the way in is never late, even
    // on a loaded machine.
    let lock = SHORT_LOCK * 4;
    with_activities(store, &[1]).await?;
    let [locked] = <[LockedActivity; 1]>::try_from(store.fetch_activity_work(10, lock).await?)
        .map_err(|v| format!("expected one item, got {v:?}"))?;
    // Renewed every quarter lock, for one and a half lock lengths: nobody
    // else takes it, and it still completes.
    for _ in 0..6 {
        tokio::time::sleep(lock / 4).await;
        store.renew_activity_lock(&locked, lock).await?;
        assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());
    }
    store.complete_activity(&locked, completed(1)).await?;
    Ok(())
}

pub async fn an_expired_activity_lock_cannot_be_renewed(
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
    let err = expect_err(store.renew_activity_lock(&first[0], LONG_LOCK).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    store.renew_activity_lock(&second, LONG_LOCK).await?;
    Ok(())
}

pub async fn deferred_activity_work_comes_back_later_without_an_attempt_counted(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    with_activities(store, &[1]).await?;
    let first = store.fetch_activity_work(10, LONG_LOCK).await?;
    assert_eq!(first[0].attempts, 1);
    let until = now_ms() + 200;
    store.defer_activity_work(&first[0], until).await?;
    assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());
    assert!(store.next_wake_at_ms().await?.is_some_and(|at| at <= until));
    let again = poll(|| async {
        let locked = store.fetch_activity_work(10, LONG_LOCK).await?;
        Ok(locked.into_iter().next())
    })
    .await?;
    assert!(now_ms() >= until);
    assert_eq!((again.queue_id, again.attempts), (first[0].queue_id, 1));
    assert!(again.visible_at_ms <= first[0].visible_at_ms);
    Ok(())
}
