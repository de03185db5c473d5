//! The turn commit: one call of `duroxide_commit_turn`, so one round trip
//! and one transaction, whatever the turn holds.

use std::time::Duration;

use sqlx_core::row::Row;
use sqlx_postgres::Postgres;

use super::PostgresHistoryStore;
use super::codec::{db, encode, instance_from_json, new_lock_token, plus, to_i64};
use super::notify::Work;
use super::orchestrator_queue::EncodedInstance;
use crate::history::ActivityWork;
use crate::providers::{LockedActivity, LockedTurn, StoreError, TurnCommit};

/// One created instance in the JSON list `duroxide_commit_turn` reads.
#[derive(serde::Serialize)]
struct NewInstanceArg {
    instance_id: String,
    tenant: String,
    orchestration_name: String,
    parent_instance: Option<String>,
    parent_id: Option<i64>,
    parent_execution_id: Option<i64>,
    visible_at: i64,
    start: String,
    fallback_instance: Option<String>,
    fallback_message: Option<String>,
    fallback_visible_at: Option<i64>,
}

/// The new instances of a turn as the JSON list the commit function reads.
fn new_instances(commit: &TurnCommit) -> Result<Option<String>, StoreError> {
    if commit.new_instances.is_empty() {
        return Ok(None);
    }
    let args = commit
        .new_instances
        .iter()
        .map(|start| {
            let e = EncodedInstance::new(&start.instance)?;
            let fallback = start
                .if_exists
                .as_ref()
                .map(|m| {
                    Ok::<_, StoreError>((
                        m.instance_id.clone(),
                        encode(&m.message, "orchestrator message")?,
                        to_i64(m.visible_at_ms, "visible_at_ms")?,
                    ))
                })
                .transpose()?;
            let (fallback_instance, fallback_message, fallback_visible_at) = match fallback {
                Some((i, m, v)) => (Some(i), Some(m), Some(v)),
                None => (None, None, None),
            };
            Ok(NewInstanceArg {
                instance_id: e.id,
                tenant: e.tenant,
                orchestration_name: e.name,
                parent_instance: e.parent,
                parent_id: e.parent_id,
                parent_execution_id: e.parent_execution,
                visible_at: e.visible_at,
                start: e.start,
                fallback_instance,
                fallback_message,
                fallback_visible_at,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    encode(&args, "new instances").map(Some)
}

/// Writes a whole turn and releases (or, with `eager` asking for a hold
/// and nothing queued, keeps) the instance lock, or writes nothing. `eager`:
/// how many of the turn's activities to lock for the caller, for how long,
/// and the hold.
pub(super) async fn commit(
    store: &PostgresHistoryStore,
    commit: TurnCommit,
    eager: Option<(usize, Duration, Option<Duration>)>,
) -> Result<LockedTurn, StoreError> {
    let now = store.now()?;
    let (max, lock_for, hold) = eager.unwrap_or((0, Duration::ZERO, None));
    let eager_count = commit.activities.len().min(max);
    let eager_works: Vec<ActivityWork> = commit.activities[..eager_count].to_vec();
    let eager_token = new_lock_token();

    let events = if commit.new_events.is_empty() {
        None
    } else {
        Some(encode(&commit.new_events, "history events")?)
    };
    let new_len = u64::try_from(commit.new_events.len())
        .ok()
        .and_then(|n| commit.history_len_before.checked_add(n))
        .ok_or_else(|| StoreError::database("history length overflows"))?;
    let (activity_instances, activity_works): (Vec<String>, Vec<String>) = commit
        .activities
        .iter()
        .map(|a| Ok((a.instance.clone(), encode(a, "activity work")?)))
        .collect::<Result<Vec<_>, StoreError>>()?
        .into_iter()
        .unzip();
    let mut message_instances = Vec::with_capacity(commit.messages.len());
    let mut messages = Vec::with_capacity(commit.messages.len());
    let mut message_visible = Vec::with_capacity(commit.messages.len());
    for m in &commit.messages {
        message_instances.push(m.instance_id.clone());
        messages.push(encode(&m.message, "orchestrator message")?);
        message_visible.push(to_i64(m.visible_at_ms, "visible_at_ms")?);
    }
    let completed = commit.completed_activity.as_ref();

    let row = sqlx_core::query::query::<Postgres>(
        "SELECT code, activity_ids, held_row, wake_orchestrator, wake_activity
         FROM duroxide_commit_turn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
             $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)",
    )
    .bind(&commit.instance_id)
    .bind(&commit.lock_token)
    .bind(now)
    .bind(to_i64(commit.execution_id, "execution_id")?)
    .bind(to_i64(commit.history_len_before, "history_len_before")?)
    .bind(to_i64(new_len, "history length")?)
    .bind(events)
    .bind(&commit.consumed_messages)
    .bind(&activity_instances)
    .bind(&activity_works)
    .bind(i32::try_from(eager_count).unwrap_or(i32::MAX))
    .bind(&eager_token)
    .bind(plus(now, lock_for))
    .bind(hold.map(|h| plus(now, h)))
    .bind(&message_instances)
    .bind(&messages)
    .bind(&message_visible)
    .bind(new_instances(&commit)?)
    .bind(commit.status.as_str())
    .bind(&commit.output)
    .bind(&commit.orchestration_version)
    .bind(&commit.component_digest)
    .bind(commit.custom_status.is_some())
    .bind(commit.custom_status.as_ref().and_then(Option::as_deref))
    .bind(completed.map(|c| c.queue_id))
    .bind(completed.map(|c| c.lock_token.as_str()))
    .fetch_one(&store.pool)
    .await
    .map_err(db("committing a turn"))?;
    let read = |e| db("reading the committed turn")(e);
    let code: String = row.try_get(0).map_err(read)?;
    match code.as_str() {
        "ok" => {}
        "lock_lost" => {
            return Err(StoreError::LockLost(format!(
                "instance '{}'",
                commit.instance_id
            )));
        }
        "stale" => {
            return Err(StoreError::LockLost(format!(
                "instance '{}' (its history no longer ends where the turn began, \
                 execution {} at event {})",
                commit.instance_id, commit.execution_id, commit.history_len_before
            )));
        }
        "activity_lock_lost" => {
            let (id, name) = completed
                .map(|c| (c.queue_id, c.work.name.as_str()))
                .unwrap_or_default();
            return Err(StoreError::LockLost(format!(
                "activity work {id} ({name} of '{}')",
                commit.instance_id
            )));
        }
        other => {
            return Err(StoreError::database(format!(
                "unknown commit result '{other}'"
            )));
        }
    }
    let ids: Option<Vec<i64>> = row.try_get(1).map_err(read)?;
    let held: Option<String> = row.try_get(2).map_err(read)?;
    let wake_orchestrator: bool = row.try_get(3).map_err(read)?;
    let wake_activity: bool = row.try_get(4).map_err(read)?;
    if wake_orchestrator {
        store.made_fetchable(Work::Orchestrator);
    }
    if wake_activity {
        store.made_fetchable(Work::Activity);
    }
    if commit.status.is_terminal() {
        store.finished.notify(&commit.instance_id);
    }
    let visible_at_ms = store.clock.now_ms();
    let activities = ids
        .unwrap_or_default()
        .into_iter()
        .zip(eager_works)
        .map(|(queue_id, work)| LockedActivity {
            queue_id,
            lock_token: eager_token.clone(),
            attempts: 1,
            visible_at_ms,
            work,
        })
        .collect();
    Ok(LockedTurn {
        activities,
        held: held.as_deref().map(instance_from_json).transpose()?,
    })
}
