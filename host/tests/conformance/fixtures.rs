//! Shared inputs and steps of the scenarios, and the imports they all use.

pub use std::collections::{HashMap, HashSet};
pub use std::error::Error;
pub use std::fmt::Debug;
pub use std::sync::{Arc, Mutex, PoisonError};
pub use std::time::Duration;

pub use duroxide::history::{ActivityWork, Event, OrchestratorMessage};
pub use duroxide::providers::{
    HistoryStore, InstanceRecord, InstanceStatus, LockedActivity, NewInstance, OrchestrationWork,
    OutgoingMessage, QueuedMessage, StoreError, TurnCommit,
};

pub use super::{LONG_LOCK, SHORT_LOCK, TestResult};

/// The wall clock's time: the suite's stores read the wall clock.
pub fn now_ms() -> u64 {
    duroxide::clock::system_now_ms()
}

/// A new instance of "greet" whose start message becomes visible at `visible_at_ms`.
pub fn new_instance(id: &str, visible_at_ms: u64) -> NewInstance {
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

/// An external event named `name`.
pub fn external_event(name: &str) -> OrchestratorMessage {
    OrchestratorMessage::ExternalEvent {
        name: name.to_owned(),
        data: "{}".to_owned(),
    }
}

/// Activity work `id` of `instance`, execution 1.
pub fn work(instance: &str, id: u64) -> ActivityWork {
    ActivityWork {
        instance: instance.to_owned(),
        execution_id: 1,
        id,
        name: "say_hello".to_owned(),
        input: "\"world\"".to_owned(),
    }
}

/// A turn that consumes everything fetched and writes nothing else.
pub fn empty_commit(work: &OrchestrationWork) -> TurnCommit {
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
        component_digest: None,
        custom_status: None,
        new_instances: Vec::new(),
        completed_activity: None,
    }
}

/// The first event of an execution of "greet".
pub fn started_event() -> Event {
    Event::OrchestrationStarted {
        name: "greet".to_owned(),
        version: "1.0.0".to_owned(),
        input: "\"world\"".to_owned(),
        parent_instance: None,
        parent_id: None,
        started_at_ms: 1,
    }
}

/// The error of `result`, or a test failure if it succeeded.
pub fn expect_err<T: Debug>(result: Result<T, StoreError>) -> Result<StoreError, Box<dyn Error>> {
    match result {
        Ok(value) => Err(format!("expected an error, got {value:?}").into()),
        Err(e) => Ok(e),
    }
}

/// Polls `probe` every few milliseconds until it yields a value or two seconds pass.
pub async fn poll<T, F, Fut>(mut probe: F) -> Result<T, Box<dyn Error>>
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

/// The completion of activity `id`, execution 1.
pub fn completed(id: u64) -> OrchestratorMessage {
    OrchestratorMessage::ActivityCompleted {
        execution_id: 1,
        id,
        output: "\"hello\"".to_owned(),
    }
}

/// The turn after a hold, reporting activity 1's completion from memory.
pub fn held_commit(fetched: &OrchestrationWork, activity: &LockedActivity) -> TurnCommit {
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

/// Activity 1 of `instance`.
pub fn work_for(instance: &str) -> ActivityWork {
    work(instance, 1)
}

/// Fetches one instance, failing when none is ready.
pub async fn fetch(
    store: &dyn HistoryStore,
    lock_for: Duration,
) -> Result<OrchestrationWork, Box<dyn Error>> {
    Ok(store
        .fetch_orchestration_work(lock_for)
        .await?
        .ok_or("expected orchestration work")?)
}

/// Creates instance "a" and locks it by a fetch of its start message.
pub async fn started(store: &dyn HistoryStore) -> Result<OrchestrationWork, Box<dyn Error>> {
    store.create_instance(new_instance("a", now_ms())).await?;
    fetch(store, LONG_LOCK).await
}

/// Creates instance "a", whose first turn scheduled activities `ids`.
pub async fn with_activities(store: &dyn HistoryStore, ids: &[u64]) -> TestResult {
    let fetched = started(store).await?;
    let mut commit = empty_commit(&fetched);
    commit.activities = ids.iter().map(|&id| work("a", id)).collect();
    store.commit_turn(commit).await?;
    Ok(())
}

/// Commits `fetched`'s turn scheduling activity 1 and asks to hold the instance.
pub async fn commit_and_hold(
    store: &dyn HistoryStore,
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

/// Every message queued for `instance`, fetched under a long lock.
pub async fn queued_events(
    store: &dyn HistoryStore,
    instance: &str,
) -> Result<Vec<OrchestratorMessage>, Box<dyn Error>> {
    let work = fetch(store, LONG_LOCK).await?;
    assert_eq!(work.instance.instance_id, instance);
    Ok(work.messages.into_iter().map(|m| m.message).collect())
}
