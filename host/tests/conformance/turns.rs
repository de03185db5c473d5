//! Turn commits: atomic, refused whole when the lock is lost, a failing one
//! undone alone, and histories kept per execution.

use super::fixtures::*;

pub async fn commit_turn_writes_history_queues_and_instance(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(store, LONG_LOCK).await?;
    // Arrives during the turn, so the turn cannot have consumed it.
    store
        .enqueue_message("a", external_event("late"), now_ms())
        .await?;

    let fire_at = now_ms() + 60_000;
    let events = vec![
        started_event(),
        Event::ActivityScheduled {
            id: 1,
            name: "say_hello".to_owned(),
            input: "\"world\"".to_owned(),
        },
        Event::TimerCreated {
            id: 2,
            fire_at_ms: fire_at,
        },
    ];
    let mut commit = empty_commit(&fetched);
    commit.new_events = events.clone();
    commit.activities = vec![work("a", 1)];
    commit.messages = vec![OutgoingMessage {
        instance_id: "a".to_owned(),
        message: OrchestratorMessage::TimerFired {
            execution_id: 1,
            id: 2,
        },
        visible_at_ms: fire_at,
    }];
    store.commit_turn(commit).await?;

    assert_eq!(store.read_history("a", 1).await?, events);
    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(record.status, InstanceStatus::Running);
    assert_eq!(record.orchestration_version.as_deref(), Some("1.0.0"));
    assert_eq!(record.history_len, 3);

    // Unlocked by the commit; only the late event is visible, not the timer.
    let next = fetch(store, LONG_LOCK).await?;
    let messages: Vec<_> = next.messages.iter().map(|m| &m.message).collect();
    assert_eq!(messages, vec![&external_event("late")]);
    assert_eq!(next.instance.history_len, 3);

    let activities = store.fetch_activity_work(10, LONG_LOCK).await?;
    assert_eq!(activities.len(), 1);
    assert_eq!(activities[0].work, work("a", 1));

    // A second turn numbers its events after the first one's.
    let mut commit = empty_commit(&next);
    commit.new_events = vec![Event::EventRaised {
        name: "late".to_owned(),
        data: "{}".to_owned(),
    }];
    commit.orchestration_version = None;
    store.commit_turn(commit).await?;
    assert_eq!(store.read_history("a", 1).await?.len(), 4);
    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(record.orchestration_version.as_deref(), Some("1.0.0"));
    assert_eq!(record.history_len, 4);
    Ok(())
}

pub async fn commit_with_a_wrong_or_expired_token_is_lock_lost(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;
    let stale = fetch(store, SHORT_LOCK).await?;

    let mut wrong = empty_commit(&stale);
    wrong.lock_token = "forged".to_owned();
    wrong.new_events = vec![started_event()];
    wrong.activities = vec![work("a", 1)];
    let err = expect_err(store.commit_turn(wrong.clone()).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");

    // Expired, even though nobody has taken the instance since.
    poll(|| async { Ok(store.next_wake_at_ms().await?.is_none().then_some(())) }).await?;
    let mut expired = wrong.clone();
    expired.lock_token = stale.lock_token.clone();
    let err = expect_err(store.commit_turn(expired.clone()).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");

    // Taken over by another fetcher.
    let _current = fetch(store, LONG_LOCK).await?;
    let err = expect_err(store.commit_turn(expired).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");

    assert!(store.read_history("a", 1).await?.is_empty());
    let record = store.instance("a").await?.ok_or("instance missing")?;
    // Marked running by the fetches, with nothing committed: still to start.
    assert_eq!(
        (record.status, record.history_len),
        (InstanceStatus::Running, 0)
    );
    assert!(record.awaits_start());
    assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());
    Ok(())
}

pub async fn a_failing_write_fails_alone_in_its_batch(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;

    let (b, duplicate, event, ghost, c) = tokio::join!(
        store.create_instance(new_instance("b", now_ms())),
        store.create_instance(new_instance("a", now_ms())),
        store.enqueue_message("a", external_event("kept"), now_ms()),
        store.enqueue_message("ghost", external_event("lost"), now_ms()),
        store.create_instance(new_instance("c", now_ms())),
    );
    b?;
    event?;
    c?;
    let duplicate = expect_err(duplicate)?;
    assert!(
        matches!(&duplicate, StoreError::InstanceExists(id) if id == "a"),
        "{duplicate:?}"
    );
    let ghost = expect_err(ghost)?;
    assert!(
        matches!(ghost, StoreError::InstanceNotFound(_)),
        "{ghost:?}"
    );

    // The duplicate neither replaced "a" nor queued a second start message.
    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(record.status, InstanceStatus::Pending);
    let messages = queued_events(store, "a").await?;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1], external_event("kept"));
    assert!(store.instance("b").await?.is_some());
    assert!(store.instance("c").await?.is_some());
    Ok(())
}

pub async fn a_turn_that_lost_its_lock_writes_nothing_beside_one_that_commits(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;
    store.create_instance(new_instance("b", now_ms())).await?;
    let first = fetch(store, LONG_LOCK).await?;
    let second = fetch(store, LONG_LOCK).await?;

    let mut lost = empty_commit(&first);
    lost.lock_token = "forged".to_owned();
    lost.new_events = vec![started_event()];
    lost.activities = vec![work_for(&first.instance.instance_id)];
    lost.messages = vec![OutgoingMessage {
        instance_id: second.instance.instance_id.clone(),
        message: external_event("from the lost turn"),
        visible_at_ms: now_ms(),
    }];
    let mut kept = empty_commit(&second);
    kept.new_events = vec![started_event()];
    kept.activities = vec![work_for(&second.instance.instance_id)];

    let (lost, kept) = tokio::join!(store.commit_turn(lost), store.commit_turn(kept));
    kept?;
    let lost = expect_err(lost)?;
    assert!(matches!(lost, StoreError::LockLost(_)), "{lost:?}");

    let (lost_id, kept_id) = (&first.instance.instance_id, &second.instance.instance_id);
    assert!(store.read_history(lost_id, 1).await?.is_empty());
    assert_eq!(store.read_history(kept_id, 1).await?, vec![started_event()]);
    let activities = store.fetch_activity_work(10, LONG_LOCK).await?;
    assert_eq!(activities.len(), 1);
    assert_eq!(&activities[0].work.instance, kept_id);
    // The lost turn consumed nothing and sent nothing; its instance is still locked.
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

pub async fn a_write_failing_partway_is_undone_alone(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    store.create_instance(new_instance("a", now_ms())).await?;
    let first = fetch(store, LONG_LOCK).await?;
    let mut commit = empty_commit(&first);
    commit.new_events = vec![started_event()];
    store.commit_turn(commit).await?;
    store
        .enqueue_message("a", external_event("go"), now_ms())
        .await?;
    let second = fetch(store, LONG_LOCK).await?;

    // A stale history length makes the append collide with the stored
    // event: on SQLite an error inside the op, not a refusal before it
    // writes. (PostgreSQL checks the length first and refuses the turn,
    // writing nothing; its own tests inject a failure partway instead.)
    let mut stale = empty_commit(&second);
    stale.history_len_before = 0;
    stale.new_events = vec![started_event(), started_event()];
    let (stale, b) = tokio::join!(
        store.commit_turn(stale),
        store.create_instance(new_instance("b", now_ms())),
    );
    b?;
    let stale = expect_err(stale)?;
    assert!(
        matches!(stale, StoreError::Database(_) | StoreError::LockLost(_)),
        "{stale:?}"
    );

    assert!(
        store.instance("b").await?.is_some(),
        "the other write stands"
    );
    assert_eq!(store.read_history("a", 1).await?.len(), 1);
    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(record.history_len, 1);
    // The lock is still held: the failed commit did not release it.
    let others = store
        .fetch_orchestration_batch(10, LONG_LOCK, Duration::ZERO)
        .await?;
    assert!(others.iter().all(|w| w.instance.instance_id != "a"));
    // And the message is still there for a correct commit to consume.
    let mut retry = empty_commit(&second);
    retry.new_events = vec![started_event()];
    store.commit_turn(retry).await?;
    assert_eq!(store.read_history("a", 1).await?.len(), 2);
    Ok(())
}

/// Continue-as-new: the next execution's history starts empty, numbered
/// from 0, and each execution's history reads back alone.
pub async fn each_execution_keeps_its_own_history(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    let fetched = started(store).await?;
    let first = vec![
        started_event(),
        Event::ContinuedAsNew {
            input: "\"again\"".to_owned(),
            version: None,
        },
    ];
    let mut commit = empty_commit(&fetched);
    commit.new_events = first.clone();
    commit.messages = vec![OutgoingMessage {
        instance_id: "a".to_owned(),
        message: OrchestratorMessage::ContinueAsNew {
            from_execution_id: 1,
            input: "\"again\"".to_owned(),
            version: None,
            carried_events: Vec::new(),
        },
        visible_at_ms: now_ms(),
    }];
    store.commit_turn(commit).await?;

    let next = fetch(store, LONG_LOCK).await?;
    assert_eq!(
        (next.instance.execution_id, next.instance.history_len),
        (1, 2)
    );
    assert!(matches!(
        next.messages.as_slice(),
        [QueuedMessage {
            message: OrchestratorMessage::ContinueAsNew {
                from_execution_id: 1,
                ..
            },
            ..
        }]
    ));
    let second = vec![started_event(), Event::TurnStarted { at_ms: 2 }];
    let mut commit = empty_commit(&next);
    commit.execution_id = 2;
    commit.history_len_before = 0;
    commit.new_events = second.clone();
    store.commit_turn(commit).await?;

    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!((record.execution_id, record.history_len), (2, 2));
    assert_eq!(store.read_history("a", 1).await?, first);
    assert_eq!(store.read_history("a", 2).await?, second);
    assert!(store.read_history("a", 3).await?.is_empty());

    // A later turn of execution 2 appends after its own events.
    store
        .enqueue_message("a", external_event("go"), now_ms())
        .await?;
    let third = fetch(store, LONG_LOCK).await?;
    assert_eq!(
        (third.instance.execution_id, third.instance.history_len),
        (2, 2)
    );
    let mut commit = empty_commit(&third);
    commit.execution_id = 2;
    commit.new_events = vec![Event::EventRaised {
        name: "go".to_owned(),
        data: "{}".to_owned(),
    }];
    store.commit_turn(commit).await?;
    assert_eq!(store.read_history("a", 2).await?.len(), 3);
    assert_eq!(store.read_history("a", 1).await?, first);
    Ok(())
}
