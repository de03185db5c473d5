//! Integration tests of the SQLite history store alone, on real database files.

use std::error::Error;
use std::fmt::Debug;
use std::time::Duration;

use duroxide::history::{ActivityWork, Event, OrchestratorMessage};
use duroxide::providers::sqlite::{Durability, SqliteHistoryStore, SqliteOptions};
use duroxide::providers::{
    HistoryStore, InstanceRecord, InstanceStatus, LockedActivity, NewInstance, OrchestrationWork,
    OutgoingMessage, QueuedMessage, StoreError, TurnCommit, now_ms,
};
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn Error>>;

/// Long enough that a lock never expires during a test that does not want it to.
const LONG_LOCK: Duration = Duration::from_secs(30);
/// Short enough to watch a lock expire within a fast test.
const SHORT_LOCK: Duration = Duration::from_millis(100);

async fn open(dir: &TempDir) -> Result<SqliteHistoryStore, StoreError> {
    let path = dir.path().join("store.db");
    SqliteHistoryStore::new(&format!("sqlite:{}", path.display())).await
}

fn new_instance(id: &str, visible_at_ms: u64) -> NewInstance {
    NewInstance {
        instance_id: id.to_owned(),
        orchestration_name: "greet".to_owned(),
        version: None,
        input: "\"world\"".to_owned(),
        parent_instance: None,
        parent_id: None,
        parent_execution_id: None,
        visible_at_ms,
    }
}

fn external_event(name: &str) -> OrchestratorMessage {
    OrchestratorMessage::ExternalEvent {
        name: name.to_owned(),
        data: "{}".to_owned(),
    }
}

fn work(instance: &str, id: u64) -> ActivityWork {
    ActivityWork {
        instance: instance.to_owned(),
        execution_id: 1,
        id,
        name: "say_hello".to_owned(),
        input: "\"world\"".to_owned(),
    }
}

/// A turn that consumes everything fetched and writes nothing else.
fn empty_commit(work: &OrchestrationWork) -> TurnCommit {
    TurnCommit {
        instance_id: work.instance.instance_id.clone(),
        lock_token: work.lock_token.clone(),
        execution_id: work.instance.execution_id,
        history_len_before: work.instance.history_len,
        new_events: Vec::new(),
        consumed_messages: work.messages.iter().map(|m| m.id).collect(),
        activities: Vec::new(),
        messages: Vec::new(),
        status: InstanceStatus::Running,
        output: None,
        orchestration_version: Some("1.0.0".to_owned()),
        custom_status: None,
        new_instances: Vec::new(),
        completed_activity: None,
    }
}

fn started_event() -> Event {
    Event::OrchestrationStarted {
        name: "greet".to_owned(),
        version: "1.0.0".to_owned(),
        input: "\"world\"".to_owned(),
        parent_instance: None,
        parent_id: None,
        started_at_ms: 1,
    }
}

fn expect_err<T: Debug>(result: Result<T, StoreError>) -> Result<StoreError, Box<dyn Error>> {
    match result {
        Ok(value) => Err(format!("expected an error, got {value:?}").into()),
        Err(e) => Ok(e),
    }
}

async fn fetch(
    store: &SqliteHistoryStore,
    lock_for: Duration,
) -> Result<OrchestrationWork, Box<dyn Error>> {
    Ok(store
        .fetch_orchestration_work(lock_for)
        .await?
        .ok_or("expected orchestration work")?)
}

/// Polls `probe` every few milliseconds until it yields a value or two seconds pass.
async fn poll<T, F, Fut>(mut probe: F) -> Result<T, Box<dyn Error>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            return Err("condition not reached before the deadline".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A store holding instance "a", locked by a fetch of its start message.
async fn started(dir: &TempDir) -> Result<(SqliteHistoryStore, OrchestrationWork), Box<dyn Error>> {
    let store = open(dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(&store, LONG_LOCK).await?;
    Ok((store, fetched))
}

/// A store holding instance "a", whose first turn scheduled activities `ids`.
async fn with_activities(dir: &TempDir, ids: &[u64]) -> Result<SqliteHistoryStore, Box<dyn Error>> {
    let (store, fetched) = started(dir).await?;
    let mut commit = empty_commit(&fetched);
    commit.activities = ids.iter().map(|&id| work("a", id)).collect();
    store.commit_turn(commit).await?;
    Ok(store)
}

#[tokio::test]
async fn create_then_duplicate_is_instance_exists() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
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

#[tokio::test]
async fn enqueue_to_unknown_instance_is_not_found() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
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

#[tokio::test]
async fn fetch_locks_the_instance_until_the_lock_expires() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;

    let first = fetch(&store, SHORT_LOCK).await?;
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

#[tokio::test]
async fn release_makes_the_instance_fetchable_at_once() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let first = fetch(&store, LONG_LOCK).await?;
    store
        .release_orchestration_work("a", "not-the-token")
        .await?;
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());

    store
        .release_orchestration_work("a", &first.lock_token)
        .await?;
    let again = fetch(&store, LONG_LOCK).await?;
    assert_eq!(again.messages[0].attempts, 2);
    Ok(())
}

#[tokio::test]
async fn commit_turn_writes_history_queues_and_instance() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(&store, LONG_LOCK).await?;
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
    let next = fetch(&store, LONG_LOCK).await?;
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

#[tokio::test]
async fn commit_with_a_wrong_or_expired_token_is_lock_lost() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let stale = fetch(&store, SHORT_LOCK).await?;

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
    let _current = fetch(&store, LONG_LOCK).await?;
    let err = expect_err(store.commit_turn(expired).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");

    assert!(store.read_history("a", 1).await?.is_empty());
    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(
        (record.status, record.history_len),
        (InstanceStatus::Pending, 0)
    );
    assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn activity_round_trip_enqueues_the_completion() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1, 2]).await?;

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

    let next = fetch(&store, LONG_LOCK).await?;
    assert_eq!(next.messages.len(), 1);
    assert_eq!(next.messages[0].message, completion);

    // Released work is fetched again at once, its attempt counted.
    store.release_activity_work(&rest[0]).await?;
    let again = store.fetch_activity_work(10, LONG_LOCK).await?;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].work.id, again[0].attempts), (2, 2));
    Ok(())
}

#[tokio::test]
async fn complete_after_lock_loss_is_lock_lost() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1]).await?;

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
    assert_eq!(fetch(&store, LONG_LOCK).await?.messages.len(), 1);
    Ok(())
}

fn completed(id: u64) -> OrchestratorMessage {
    OrchestratorMessage::ActivityCompleted {
        execution_id: 1,
        id,
        output: "\"hello\"".to_owned(),
    }
}

#[tokio::test]
async fn a_turn_can_lock_the_first_activities_it_schedules_for_its_caller() -> TestResult {
    let dir = TempDir::new()?;
    let (store, fetched) = started(&dir).await?;
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

#[tokio::test]
async fn a_turn_that_lost_its_lock_locks_no_activities() -> TestResult {
    let dir = TempDir::new()?;
    let (store, fetched) = started(&dir).await?;
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

/// Commits `fetched`'s turn scheduling activity 1 and asks to hold the instance.
async fn commit_and_hold(
    store: &SqliteHistoryStore,
    fetched: &OrchestrationWork,
) -> Result<(LockedActivity, Option<InstanceRecord>), Box<dyn Error>> {
    let mut commit = empty_commit(fetched);
    commit.new_events = vec![started_event()];
    commit.activities = vec![work("a", 1)];
    let locked = store
        .commit_turn_and_lock_activities(commit, 1, LONG_LOCK, Some(LONG_LOCK))
        .await?;
    let activity = locked.activities.into_iter().next().ok_or("no activity")?;
    Ok((activity, locked.held))
}

/// The turn after a hold, reporting activity 1's completion from memory.
fn held_commit(fetched: &OrchestrationWork, activity: &LockedActivity) -> TurnCommit {
    let mut commit = empty_commit(fetched);
    commit.consumed_messages = Vec::new();
    commit.history_len_before = 1;
    commit.new_events = vec![Event::ActivityCompleted {
        id: 1,
        output: "\"hello\"".to_owned(),
    }];
    commit.completed_activity = Some(activity.clone());
    commit
}

#[tokio::test]
async fn a_turn_can_hold_its_instance_and_commit_the_completion_with_the_next_turn() -> TestResult {
    let dir = TempDir::new()?;
    let (store, fetched) = started(&dir).await?;
    let (activity, held) = commit_and_hold(&store, &fetched).await?;
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
    let next = fetch(&store, LONG_LOCK).await?;
    let messages: Vec<_> = next.messages.iter().map(|m| &m.message).collect();
    assert!(
        matches!(messages[..], [OrchestratorMessage::ExternalEvent { .. }]),
        "{messages:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_turn_with_a_message_queued_does_not_hold_its_instance() -> TestResult {
    let dir = TempDir::new()?;
    let (store, fetched) = started(&dir).await?;
    // A timer due later counts as much as a message due now.
    let timer = OrchestratorMessage::TimerFired {
        execution_id: 1,
        id: 2,
    };
    store.enqueue_message("a", timer, now_ms() + 60_000).await?;
    let (_, held) = commit_and_hold(&store, &fetched).await?;
    assert!(held.is_none());
    let instance = store.instance("a").await?.ok_or("instance gone")?;
    assert_eq!(instance.history_len, 1);
    store
        .enqueue_message("a", external_event("ping"), now_ms())
        .await?;
    fetch(&store, LONG_LOCK).await?;
    Ok(())
}

#[tokio::test]
async fn a_held_turn_whose_activity_lost_its_lock_writes_nothing() -> TestResult {
    let dir = TempDir::new()?;
    let (store, fetched) = started(&dir).await?;
    let (mut activity, held) = commit_and_hold(&store, &fetched).await?;
    assert!(held.is_some());
    activity.lock_token = "stale".to_owned();
    let err = expect_err(store.commit_turn(held_commit(&fetched, &activity)).await)?;
    assert!(matches!(err, StoreError::LockLost(_)), "{err:?}");
    assert_eq!(store.read_history("a", 1).await?.len(), 1);
    // The instance is still held, so the caller can queue the completion.
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn a_completion_locks_a_free_instance_and_hands_over_its_turn() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1]).await?;
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

#[tokio::test]
async fn a_completion_for_a_locked_instance_waits_in_its_queue() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1]).await?;
    store
        .enqueue_message("a", external_event("ping"), now_ms())
        .await?;
    let holder = fetch(&store, LONG_LOCK).await?;

    let locked = store.fetch_activity_work(10, LONG_LOCK).await?;
    let handed = store
        .complete_activity_and_lock(&locked[0], completed(1), LONG_LOCK)
        .await?;
    assert!(handed.is_none(), "{handed:?}");
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());

    // Once the holder lets go, a fetch takes the completion.
    store.commit_turn(empty_commit(&holder)).await?;
    let next = fetch(&store, LONG_LOCK).await?;
    let messages: Vec<_> = next.messages.iter().map(|m| &m.message).collect();
    assert_eq!(messages, [&completed(1)]);
    Ok(())
}

#[tokio::test]
async fn a_completion_and_lock_after_lock_loss_writes_nothing() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1]).await?;

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

#[tokio::test]
async fn delayed_start_is_invisible_until_due() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    let due = now_ms() + 200;
    store.create_instance(new_instance("later", due)).await?;

    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    assert_eq!(store.next_wake_at_ms().await?, Some(due));
    let work = poll(|| store.fetch_orchestration_work(LONG_LOCK)).await?;
    assert!(now_ms() >= due);
    assert_eq!(work.instance.instance_id, "later");
    Ok(())
}

#[tokio::test]
async fn next_wake_reports_a_future_timer() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    assert_eq!(store.next_wake_at_ms().await?, None);
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(&store, LONG_LOCK).await?;
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

#[tokio::test]
async fn data_survives_reopening_the_file() -> TestResult {
    let dir = TempDir::new()?;
    let events = vec![started_event()];
    {
        let store = open(&dir).await?;
        store.create_instance(new_instance("a", now_ms())).await?;
        let fetched = fetch(&store, LONG_LOCK).await?;
        let mut commit = empty_commit(&fetched);
        commit.new_events = events.clone();
        commit.activities = vec![work("a", 1)];
        store.commit_turn(commit).await?;
        store.close().await;
    }

    let store = open(&dir).await?;
    assert_eq!(store.read_history("a", 1).await?, events);
    let record = store.instance("a").await?.ok_or("instance missing")?;
    assert_eq!(
        (record.status, record.history_len),
        (InstanceStatus::Running, 1)
    );
    assert_eq!(
        store.fetch_activity_work(10, LONG_LOCK).await?[0].work,
        work("a", 1)
    );
    Ok(())
}

#[tokio::test]
async fn opens_bare_paths_absolute_urls_and_memory() -> TestResult {
    let dir = TempDir::new()?;
    let bare = dir.path().join("bare.db");
    let absolute = dir.path().canonicalize()?.join("absolute.db");
    let stores = [
        SqliteHistoryStore::new(&bare.display().to_string()).await?,
        SqliteHistoryStore::with_options(
            &format!("sqlite://{}", absolute.display()),
            SqliteOptions {
                synchronous: Durability::Normal,
            },
        )
        .await?,
        SqliteHistoryStore::new_in_memory().await?,
    ];
    for store in &stores {
        store.create_instance(new_instance("a", now_ms())).await?;
        assert_eq!(fetch(store, LONG_LOCK).await?.messages.len(), 1);
    }
    assert!(bare.exists() && absolute.exists());
    Ok(())
}

#[tokio::test]
async fn two_stores_on_one_file_never_hand_out_the_same_instance() -> TestResult {
    let dir = TempDir::new()?;
    let first = std::sync::Arc::new(open(&dir).await?);
    let second = std::sync::Arc::new(open(&dir).await?);
    for i in 0..20 {
        first
            .create_instance(new_instance(&format!("i{i}"), now_ms()))
            .await?;
    }

    let drain = |store: std::sync::Arc<SqliteHistoryStore>| {
        tokio::spawn(async move {
            let mut taken = Vec::new();
            while let Some(work) = store.fetch_orchestration_work(LONG_LOCK).await? {
                taken.push(work.instance.instance_id);
            }
            Ok::<_, StoreError>(taken)
        })
    };
    let (a, b) = tokio::join!(drain(first), drain(second));
    let mut taken = a??;
    taken.extend(b??);
    taken.sort();
    let before = taken.len();
    taken.dedup();
    assert_eq!((before, taken.len()), (20, 20));
    Ok(())
}

// Group commit: the store's writer commits concurrent writes together, in one
// transaction; a write that fails partway is undone alone.

/// Every message queued for `instance`, fetched under a long lock.
async fn queued_events(
    store: &SqliteHistoryStore,
    instance: &str,
) -> Result<Vec<OrchestratorMessage>, Box<dyn Error>> {
    let work = fetch(store, LONG_LOCK).await?;
    assert_eq!(work.instance.instance_id, instance);
    Ok(work.messages.into_iter().map(|m| m.message).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_from_many_tasks_all_land() -> TestResult {
    let dir = TempDir::new()?;
    let store = std::sync::Arc::new(open(&dir).await?);
    store.create_instance(new_instance("a", now_ms())).await?;

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .enqueue_message("a", external_event(&format!("e{i}")), now_ms())
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    let messages = queued_events(&store, "a").await?;
    assert_eq!(messages.len(), 201, "the start message and 200 events");
    let mut names: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            OrchestratorMessage::ExternalEvent { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_turns_of_many_instances_all_commit() -> TestResult {
    let dir = TempDir::new()?;
    let store = std::sync::Arc::new(open(&dir).await?);
    for i in 0..50 {
        store
            .create_instance(new_instance(&format!("i{i}"), now_ms()))
            .await?;
    }
    let mut fetched = Vec::new();
    for _ in 0..50 {
        fetched.push(fetch(&store, LONG_LOCK).await?);
    }

    let tasks: Vec<_> = fetched
        .iter()
        .map(|work| {
            let store = store.clone();
            let mut commit = empty_commit(work);
            commit.new_events = vec![started_event()];
            commit.activities = vec![work_for(&work.instance.instance_id)];
            tokio::spawn(async move { store.commit_turn(commit).await })
        })
        .collect();
    for task in tasks {
        task.await??;
    }

    for i in 0..50 {
        let id = format!("i{i}");
        assert_eq!(store.read_history(&id, 1).await?, vec![started_event()]);
        let record = store.instance(&id).await?.ok_or("instance missing")?;
        assert_eq!(
            (record.status, record.history_len),
            (InstanceStatus::Running, 1)
        );
    }
    assert_eq!(store.fetch_activity_work(100, LONG_LOCK).await?.len(), 50);
    assert!(store.fetch_orchestration_work(LONG_LOCK).await?.is_none());
    Ok(())
}

fn work_for(instance: &str) -> ActivityWork {
    work(instance, 1)
}

// On a current-thread runtime `join!` polls every future, each queuing its
// write, before the writer task runs once: the writes share one batch.

#[tokio::test]
async fn a_failing_write_fails_alone_in_its_batch() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
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
    let messages = queued_events(&store, "a").await?;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1], external_event("kept"));
    assert!(store.instance("b").await?.is_some());
    assert!(store.instance("c").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn a_turn_that_lost_its_lock_writes_nothing_beside_one_that_commits() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    store.create_instance(new_instance("b", now_ms())).await?;
    let first = fetch(&store, LONG_LOCK).await?;
    let second = fetch(&store, LONG_LOCK).await?;

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

#[tokio::test]
async fn close_commits_queued_writes_then_refuses_new_ones() -> TestResult {
    let dir = TempDir::new()?;
    {
        let store = open(&dir).await?;
        store.create_instance(new_instance("a", now_ms())).await?;
        // Queued before the close request, so committed before the writer stops.
        let (first, second, ()) = tokio::join!(
            store.enqueue_message("a", external_event("first"), now_ms()),
            store.enqueue_message("a", external_event("second"), now_ms()),
            store.close(),
        );
        first?;
        second?;
        let err = expect_err(
            store
                .enqueue_message("a", external_event("late"), now_ms())
                .await,
        )?;
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        let err = expect_err(store.create_instance(new_instance("b", now_ms())).await)?;
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    }

    let store = open(&dir).await?;
    let messages = queued_events(&store, "a").await?;
    assert_eq!(
        &messages[1..],
        &[external_event("first"), external_event("second")]
    );
    assert_eq!(store.instance("b").await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_dropping_the_store_without_close() -> TestResult {
    let dir = TempDir::new()?;
    {
        let store = std::sync::Arc::new(open(&dir).await?);
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .create_instance(new_instance(&format!("i{i}"), now_ms()))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        // Dropped here: the writer's channel closes and the task ends.
    }

    let store = open(&dir).await?;
    for i in 0..100 {
        let record = store
            .instance(&format!("i{i}"))
            .await?
            .ok_or("instance missing after reopening")?;
        assert_eq!(record.status, InstanceStatus::Pending);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_takes_concurrent_writes_and_reads() -> TestResult {
    // One connection serves both the writer and the reads here.
    let store = std::sync::Arc::new(SqliteHistoryStore::new_in_memory().await?);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("i{i}");
                store.create_instance(new_instance(&id, now_ms())).await?;
                store.instance(&id).await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await??.is_some());
    }
    let mut taken = 0;
    while store.fetch_orchestration_work(LONG_LOCK).await?.is_some() {
        taken += 1;
    }
    assert_eq!(taken, 50);
    Ok(())
}

#[tokio::test]
async fn a_batch_fetch_locks_distinct_instances_oldest_first() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
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

#[tokio::test]
async fn a_write_failing_partway_is_undone_alone() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let first = fetch(&store, LONG_LOCK).await?;
    let mut commit = empty_commit(&first);
    commit.new_events = vec![started_event()];
    store.commit_turn(commit).await?;
    store
        .enqueue_message("a", external_event("go"), now_ms())
        .await?;
    let second = fetch(&store, LONG_LOCK).await?;

    // A stale history length makes the append collide with the stored
    // event: an SQLite error inside the op, not a refusal before it writes.
    let mut stale = empty_commit(&second);
    stale.history_len_before = 0;
    stale.new_events = vec![started_event(), started_event()];
    let (stale, b) = tokio::join!(
        store.commit_turn(stale),
        store.create_instance(new_instance("b", now_ms())),
    );
    b?;
    let stale = expect_err(stale)?;
    assert!(matches!(stale, StoreError::Database(_)), "{stale:?}");

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

#[tokio::test]
async fn a_fetch_with_lookahead_locks_work_due_soon_until_past_its_time() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
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

#[tokio::test]
async fn a_lookahead_fetch_takes_only_messages_due_by_the_turn() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(&store, LONG_LOCK).await?;
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

#[tokio::test]
async fn a_file_from_a_newer_build_is_refused_and_its_schema_left_alone() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 999;")?;
    }
    let error = expect_err(SqliteHistoryStore::new(&format!("sqlite:{}", path.display())).await)?;
    let message = error.to_string();
    assert!(
        message.contains("newer duroxide")
            && message.contains("schema version 999")
            && message.contains("this build's 1"),
        "the refusal names both versions: {message}"
    );
    let conn = rusqlite::Connection::open(&path)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
    assert_eq!((version, tables), (999, 1), "the schema was changed");
    Ok(())
}

#[tokio::test]
async fn a_renewed_activity_lock_outlasts_its_first_length() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1]).await?;
    let [locked] =
        <[LockedActivity; 1]>::try_from(store.fetch_activity_work(10, SHORT_LOCK).await?)
            .map_err(|v| format!("expected one item, got {v:?}"))?;
    // Renewed twice across three lock lengths: nobody else takes it, and it
    // still completes.
    for _ in 0..3 {
        tokio::time::sleep(SHORT_LOCK / 2).await;
        store.renew_activity_lock(&locked, SHORT_LOCK).await?;
        assert!(store.fetch_activity_work(10, LONG_LOCK).await?.is_empty());
    }
    store.complete_activity(&locked, completed(1)).await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_activity_lock_cannot_be_renewed() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1]).await?;
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

#[tokio::test]
async fn deferred_activity_work_comes_back_later_without_an_attempt_counted() -> TestResult {
    let dir = TempDir::new()?;
    let store = with_activities(&dir, &[1]).await?;
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

#[tokio::test]
async fn a_deferred_instance_comes_back_later_without_an_attempt_counted() -> TestResult {
    let dir = TempDir::new()?;
    let (store, fetched) = started(&dir).await?;
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

/// Every table with its columns, and every index with its table, columns
/// and whether it is partial, as `sqlite_master` and the pragmas list them.
fn schema_of(conn: &rusqlite::Connection) -> Result<Vec<String>, Box<dyn Error>> {
    let mut stmt = conn.prepare(
        "SELECT m.type, m.name, m.tbl_name, m.sql LIKE '%WHERE%',
                (SELECT group_concat(name, ' ') FROM (
                     SELECT name FROM pragma_table_info(m.name) WHERE m.type = 'table'
                     UNION ALL
                     SELECT name FROM pragma_index_info(m.name) WHERE m.type = 'index'))
         FROM sqlite_master AS m
         WHERE m.name NOT LIKE 'sqlite_%'
         ORDER BY m.type, m.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{} {} on {}{}: {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            if r.get::<_, bool>(3)? {
                " (partial)"
            } else {
                ""
            },
            r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn a_new_file_gets_the_whole_schema_in_one_migration() -> TestResult {
    let dir = TempDir::new()?;
    open(&dir).await?.close().await;
    let conn = rusqlite::Connection::open(dir.path().join("store.db"))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(version, 1);
    let expected = [
        "index activity_queue_by_locked_until on activity_queue (partial): locked_until",
        "index activity_queue_by_visible on activity_queue: visible_at id",
        "index instances_by_locked_until on instances (partial): locked_until",
        "index instances_by_name on instances: orchestration_name",
        "index instances_by_next_visible on instances (partial): next_visible_at locked_until",
        "index instances_by_status on instances: status",
        "index orchestrator_queue_by_instance on orchestrator_queue: instance_id id",
        "table activity_queue on activity_queue: \
         id instance_id message visible_at lock_token locked_until attempts",
        "table history on history: instance_id execution_id seq event",
        "table instances on instances: instance_id orchestration_name orchestration_version \
         status output execution_id history_len created_at updated_at parent_instance \
         parent_id lock_token locked_until custom_status parent_execution_id next_visible_at",
        "table orchestrator_queue on orchestrator_queue: id instance_id message visible_at attempts",
    ];
    // No trigger (writers keep `next_visible_at` current) and no index on
    // the orchestrator queue's visibility (fetches go through the instances).
    assert_eq!(schema_of(&conn)?, expected);
    Ok(())
}

#[tokio::test]
async fn a_history_row_that_is_not_a_list_of_events_is_corrupt() -> TestResult {
    let dir = TempDir::new()?;
    let store = open(&dir).await?;
    store.create_instance(new_instance("a", now_ms())).await?;
    let fetched = fetch(&store, LONG_LOCK).await?;
    let mut commit = empty_commit(&fetched);
    commit.new_events = vec![started_event()];
    store.commit_turn(commit).await?;
    {
        // One event on its own, as no build writes any more.
        let conn = rusqlite::Connection::open(dir.path().join("store.db"))?;
        conn.execute(
            "INSERT INTO history (instance_id, execution_id, seq, event) VALUES ('a', 1, 1, ?1)",
            [serde_json::to_string(&started_event())?],
        )?;
    }
    let err = expect_err(store.read_history("a", 1).await)?;
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("event #1")),
        "{err:?}"
    );
    Ok(())
}
