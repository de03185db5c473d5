//! Queue semantics: creating, enqueuing, fetching with peek-locks, expiry,
//! release, delayed visibility, batch and lookahead fetches, attempt counts
//! and deferral of an instance.

use super::fixtures::*;

pub async fn create_then_duplicate_is_instance_exists(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;

    let err = expect_err(store.create_instance(new_instance("a", now_ms())).await)?;
    assert!(
        matches!(&err, StoreError::InstanceExists(id) if id == "a"),
        "{err:?}"
    );

    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(record.status, InstanceStatus::Pending);
    assert_eq!((record.execution_id, record.history_len), (1, 0));
    assert_eq!(record.orchestration_version, None);
    assert_eq!(store.instance("b").await?, None);
    Ok(())
}

pub async fn enqueue_to_unknown_instance_is_not_found(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    let err = expect_err(
        store
            .enqueue_message("ghost", external_event("e"), now_ms())
            .await,
    )?;
    assert!(
        matches!(&err, StoreError::InstanceNotFound(id) if id == "ghost"),
        "{err:?}"
    );
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

pub async fn fetch_locks_the_instance_until_the_lock_expires(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;

    let first = fetch(store, SHORT_LOCK).await?;
    assert_eq!(first.instance.instance_id, "a");
    assert_eq!(first.messages.len(), 1);
    assert!(matches!(
        first.messages[0].message,
        OrchestratorMessage::StartOrchestration { .. }
    ));
    assert_eq!(first.messages[0].attempts, 1);
    assert!(store.fetch_orchestration_work(SHORT_LOCK).await?.is_none());

    let second = poll(|| store.fetch_orchestration_work(LONG_LOCK)).await?;
    assert_eq!(second.messages.len(), 1);
    assert_eq!(second.messages[0].id, first.messages[0].id);
    assert_eq!(second.messages[0].attempts, 2);
    assert_ne!(second.lock_token, first.lock_token);
    Ok(())
}

pub async fn release_makes_the_instance_fetchable_at_once(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;
    let first = fetch(store, LONG_LOCK).await?;
    store
        .release_orchestration_work("a", "not-the-token")
        .await?;
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());

    store
        .release_orchestration_work("a", &first.lock_token)
        .await?;
    let again = fetch(store, LONG_LOCK).await?;
    assert_eq!(again.messages[0].attempts, 2);
    Ok(())
}

pub async fn delayed_start_is_invisible_until_due(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    let due = now_ms() + 200;
    store.create_instance(new_instance("later", due)).await?;

    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    assert_eq!(store.next_wake_at_ms().await?, Some(due));
    let work = poll(|| store.fetch_orchestration_work(LONG_LOCK)).await?;
    assert!(now_ms() >= due);
    assert_eq!(work.instance.instance_id, "later");
    Ok(())
}

pub async fn next_wake_reports_a_future_timer(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    assert_eq!(store.next_wake_at_ms().await?, None);
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(store, LONG_LOCK).await?;
    let lock_expiry = store.next_wake_at_ms().await?.ok_or("lock not reported")?;
    assert!(lock_expiry >= now_ms() + 29_000, "{lock_expiry}");

    let fire_at = now_ms() + 5_000;
    let mut commit = empty_commit(&fetched);
    commit.messages = vec![OutgoingMessage {
        instance_id: "a".to_owned(),
        message: OrchestratorMessage::TimerFired {
            execution_id: 1,
            id: 1,
        },
        visible_at_ms: fire_at,
    }];
    store.commit_turn(commit).await?;
    assert_eq!(store.next_wake_at_ms().await?, Some(fire_at));
    Ok(())
}

pub async fn a_batch_fetch_locks_distinct_instances_oldest_first(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let now = now_ms();
    for (id, at) in [("a", now - 30), ("b", now - 20), ("c", now - 10)] {
        store.create_instance(new_instance(id, at)).await?;
    }
    store
        .create_instance(new_instance("later", now + 60_000))
        .await?;
    store
        .enqueue_message("a", external_event("go"), now - 5)
        .await?;

    let first = store
        .fetch_orchestration_batch(2, LONG_LOCK, Duration::ZERO)
        .await?;
    let ids: Vec<&str> = first
        .iter()
        .map(|w| w.instance.instance_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(first[0].messages.len(), 2, "every visible message of 'a'");
    assert!(first[0].messages[0].id < first[0].messages[1].id);

    let rest = store
        .fetch_orchestration_batch(10, LONG_LOCK, Duration::ZERO)
        .await?;
    let ids: Vec<&str> = rest
        .iter()
        .map(|w| w.instance.instance_id.as_str())
        .collect();
    assert_eq!(ids, ["c"], "locked and future instances are skipped");
    assert!(
        store
            .fetch_orchestration_batch(10, LONG_LOCK, Duration::ZERO)
            .await?
            .is_empty()
    );

    store.commit_turn(empty_commit(&first[0])).await?;
    assert!(
        store
            .fetch_orchestration_batch(10, LONG_LOCK, Duration::ZERO)
            .await?
            .is_empty(),
        "a committed turn consumed its messages"
    );
    Ok(())
}

pub async fn a_fetch_with_lookahead_locks_work_due_soon_until_past_its_time(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let soon = now_ms() + 2_000;
    let later = now_ms() + 20_000;
    store.create_instance(new_instance("soon", soon)).await?;
    store.create_instance(new_instance("later", later)).await?;
    let lookahead = Duration::from_secs(10);

    assert!(
        store
            .fetch_orchestration_batch(10, LONG_LOCK, Duration::ZERO)
            .await?
            .is_empty(),
        "nothing is visible yet"
    );
    assert_eq!(store.next_wake_at_ms().await?, Some(soon));
    let works = store
        .fetch_orchestration_batch(10, LONG_LOCK, lookahead)
        .await?;
    let [work] = works.as_slice() else {
        return Err(format!("expected only 'soon', got {works:?}").into());
    };
    assert_eq!(work.instance.instance_id, "soon");
    assert_eq!(work.ready_at_ms, soon);
    assert!(matches!(
        work.messages.as_slice(),
        [QueuedMessage {
            message: OrchestratorMessage::StartOrchestration { .. },
            ..
        }]
    ));

    // Locked from its ready time on, not from the fetch: an idle dispatcher
    // next wakes for 'later', not for 'soon' again.
    assert!(
        store
            .fetch_orchestration_batch(10, LONG_LOCK, lookahead)
            .await?
            .is_empty()
    );
    assert_eq!(store.next_wake_at_ms().await?, Some(later));
    let lock_lasts = soon + LONG_LOCK.as_millis() as u64;
    store
        .commit_turn(empty_commit(work))
        .await
        .map_err(|e| format!("the lock must hold until {lock_lasts}: {e}"))?;
    Ok(())
}

pub async fn a_lookahead_fetch_takes_only_messages_due_by_the_turn(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(store, LONG_LOCK).await?;
    let first = now_ms() + 1_000;
    let second = first + 2_000;
    let mut commit = empty_commit(&fetched);
    commit.messages = [(1, first), (2, second)]
        .into_iter()
        .map(|(id, visible_at_ms)| OutgoingMessage {
            instance_id: "a".to_owned(),
            message: OrchestratorMessage::TimerFired {
                execution_id: 1,
                id,
            },
            visible_at_ms,
        })
        .collect();
    store.commit_turn(commit).await?;

    let works = store
        .fetch_orchestration_batch(10, LONG_LOCK, Duration::from_secs(10))
        .await?;
    let [work] = works.as_slice() else {
        return Err(format!("expected instance 'a', got {works:?}").into());
    };
    assert_eq!(work.ready_at_ms, first);
    assert!(matches!(
        work.messages.as_slice(),
        [QueuedMessage {
            message: OrchestratorMessage::TimerFired { id: 1, .. },
            ..
        }]
    ));
    Ok(())
}

/// Every fetch of a message counts an attempt (the runtime fails an
/// instance whose message has failed too often), until a commit consumes it;
/// a message that arrives later counts its own. Activity work counts the same.
pub async fn attempts_count_every_fetch_until_the_work_is_done(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;
    for expected in 1..=3 {
        let fetched = fetch(store, LONG_LOCK).await?;
        assert_eq!(fetched.messages[0].attempts, expected);
        store
            .release_orchestration_work("a", &fetched.lock_token)
            .await?;
    }
    store
        .enqueue_message("a", external_event("late"), now_ms())
        .await?;
    let fetched = fetch(store, LONG_LOCK).await?;
    let attempts: Vec<u32> = fetched.messages.iter().map(|m| m.attempts).collect();
    assert_eq!(attempts, [4, 1]);

    let mut commit = empty_commit(&fetched);
    commit.activities = vec![work("a", 1)];
    store.commit_turn(commit).await?;
    for expected in 1..=3 {
        let locked = store.fetch_activity_work(10, LONG_LOCK).await?;
        let [locked] = locked.as_slice() else {
            return Err(format!("expected one item, got {locked:?}").into());
        };
        assert_eq!(locked.attempts, expected);
        store.release_activity_work(locked).await?;
    }
    // The consumed messages are gone with their counts.
    store
        .enqueue_message("a", external_event("next"), now_ms())
        .await?;
    let next = fetch(store, LONG_LOCK).await?;
    let attempts: Vec<u32> = next.messages.iter().map(|m| m.attempts).collect();
    assert_eq!(attempts, [1]);
    Ok(())
}

pub async fn a_deferred_instance_comes_back_later_without_an_attempt_counted(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    assert_eq!(fetched.messages[0].attempts, 1);
    let until = now_ms() + 200;
    store.defer_orchestration_work(&fetched, until).await?;
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    let again = poll(|| store.fetch_orchestration_work(LONG_LOCK)).await?;
    assert!(now_ms() >= until);
    assert_eq!(again.messages.len(), 1);
    assert_eq!(again.messages[0].attempts, 1);
    // A stale token defers nothing.
    store
        .defer_orchestration_work(&fetched, now_ms() + 60_000)
        .await?;
    store.commit_turn(empty_commit(&again)).await?;
    Ok(())
}
