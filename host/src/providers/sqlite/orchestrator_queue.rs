//! Instances and the orchestrator queue: creation, enqueue and the instance
//! lock. The turn commit that releases the lock lives in `turn.rs`.

use std::time::Duration;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::SqliteHistoryStore;
use super::codec::{
    attempts, db, decode, encode, instance_columns, instance_from_row, is_unique_violation,
    lock_deadline, new_lock_token, now_i64, to_i64,
};
use super::ops::{Op, Signals};
use crate::history::OrchestratorMessage;
use crate::providers::{InstanceStatus, NewInstance, OrchestrationWork, QueuedMessage, StoreError};

/// The instance owning the oldest visible message, among instances nobody
/// holds a live lock on (`?1` is now). Walks `orchestrator_queue_by_visible`
/// in order and probes each instance by primary key.
macro_rules! find_candidate {
    () => {
        "SELECT q.instance_id FROM orchestrator_queue AS q
         JOIN instances AS i ON i.instance_id = q.instance_id
         WHERE q.visible_at <= ?1 AND (i.locked_until IS NULL OR i.locked_until <= ?1)
         ORDER BY q.visible_at, q.id LIMIT 1"
    };
}

/// `find_candidate!` alone, for the idle peek on the read pool.
const FIND_CANDIDATE: &str = find_candidate!();

/// Finds and locks the candidate in one statement (one round trip to the
/// writer connection): `?1` now, `?2` lock token, `?3` lock deadline.
const LOCK_CANDIDATE: &str = concat!(
    "UPDATE instances SET lock_token = ?2, locked_until = ?3 WHERE instance_id = (",
    find_candidate!(),
    ") RETURNING ",
    instance_columns!()
);

/// Appends one message to an instance's queue.
pub(super) async fn insert_message(
    conn: &mut SqliteConnection,
    instance_id: &str,
    message: &str,
    visible_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO orchestrator_queue (instance_id, message, visible_at) VALUES (?1, ?2, ?3)",
    )
    .bind(instance_id)
    .bind(message)
    .bind(visible_at)
    .execute(conn)
    .await
    .map_err(db("enqueueing an orchestrator message"))?;
    Ok(())
}

/// Inserts an instance row and its start message on `conn` (inside the
/// caller's transaction). Returns false, writing nothing, if the id is taken.
pub(super) async fn insert_instance(
    conn: &mut SqliteConnection,
    new: &NewInstance,
    now: i64,
) -> Result<bool, StoreError> {
    let visible_at = to_i64(new.visible_at_ms, "visible_at_ms")?;
    let parent_id = new.parent_id.map(|p| to_i64(p, "parent_id")).transpose()?;
    let parent_execution_id = new
        .parent_execution_id
        .map(|p| to_i64(p, "parent_execution_id"))
        .transpose()?;
    let start = encode(
        &OrchestratorMessage::StartOrchestration {
            name: new.orchestration_name.clone(),
            version: new.version.clone(),
            input: new.input.clone(),
            parent_instance: new.parent_instance.clone(),
            parent_id: new.parent_id,
            parent_execution_id: new.parent_execution_id,
        },
        "start message",
    )?;
    let inserted = sqlx::query(
        "INSERT INTO instances (instance_id, orchestration_name, status, execution_id,
             history_len, created_at, updated_at, parent_instance, parent_id, parent_execution_id)
         VALUES (?1, ?2, ?3, 1, 0, ?4, ?4, ?5, ?6, ?7)",
    )
    .bind(&new.instance_id)
    .bind(&new.orchestration_name)
    .bind(InstanceStatus::Pending.as_str())
    .bind(now)
    .bind(&new.parent_instance)
    .bind(parent_id)
    .bind(parent_execution_id)
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Ok(false),
        Err(e) => return Err(db("creating instance")(e)),
    }
    insert_message(conn, &new.instance_id, &start, visible_at).await?;
    Ok(true)
}

/// Inserts the instance row and its start message together.
pub(super) async fn create_instance(
    store: &SqliteHistoryStore,
    new: NewInstance,
) -> Result<(), StoreError> {
    store.write(|reply| Op::CreateInstance { new, reply }).await
}

/// Op body of [`create_instance`], inside the writer's batch transaction.
pub(super) async fn create_instance_in(
    conn: &mut SqliteConnection,
    new: &NewInstance,
    now: i64,
) -> Result<Signals, StoreError> {
    if !insert_instance(conn, new, now).await? {
        return Err(StoreError::InstanceExists(new.instance_id.clone()));
    }
    Ok(Signals::ORCHESTRATOR)
}

/// Enqueues a message if, and only if, its instance exists.
pub(super) async fn enqueue_message(
    store: &SqliteHistoryStore,
    instance_id: &str,
    message: &OrchestratorMessage,
    visible_at_ms: u64,
) -> Result<(), StoreError> {
    // Encoded by the caller, keeping the shared writer's critical section short.
    let visible_at = to_i64(visible_at_ms, "visible_at_ms")?;
    let message = encode(message, "orchestrator message")?;
    let instance_id = instance_id.to_owned();
    store
        .write(|reply| Op::EnqueueMessage {
            instance_id,
            message,
            visible_at,
            reply,
        })
        .await
}

/// Op body of [`enqueue_message`], inside the writer's batch transaction.
pub(super) async fn enqueue_message_in(
    conn: &mut SqliteConnection,
    instance_id: &str,
    message: &str,
    visible_at: i64,
) -> Result<Signals, StoreError> {
    // A message for an instance that has not started yet (a delayed start)
    // becomes visible no earlier than the start message, queued first.
    let inserted = sqlx::query(
        "INSERT INTO orchestrator_queue (instance_id, message, visible_at)
         SELECT ?1, ?2, MAX(?3, COALESCE((
             SELECT q.visible_at FROM orchestrator_queue q
             WHERE q.instance_id = ?1 AND i.status = 'Pending'
             ORDER BY q.id LIMIT 1), ?3))
         FROM instances i WHERE i.instance_id = ?1",
    )
    .bind(instance_id)
    .bind(message)
    .bind(visible_at)
    .execute(conn)
    .await
    .map_err(db("enqueueing an orchestrator message"))?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::InstanceNotFound(instance_id.to_owned()));
    }
    Ok(Signals::ORCHESTRATOR)
}

/// An instance locked by a fetch, with its rows not yet decoded.
pub(super) struct LockedRows {
    /// The locked instance.
    instance_id: String,
    /// The instance row, read as the lock was taken.
    instance: SqliteRow,
    /// Every visible message of the instance.
    messages: Vec<SqliteRow>,
}

/// Locks the instance owning the oldest visible message and takes all its
/// visible messages.
pub(super) async fn fetch(
    store: &SqliteHistoryStore,
    lock_for: Duration,
) -> Result<Option<OrchestrationWork>, StoreError> {
    // Peek on the read pool first: idle polls, the common case, then never
    // queue a write that other processes or this store's callers would wait for.
    let peek: Option<String> = sqlx::query_scalar(FIND_CANDIDATE)
        .bind(now_i64()?)
        .fetch_optional(&store.reader)
        .await
        .map_err(db("looking for orchestration work"))?;
    if peek.is_none() {
        return Ok(None);
    }

    let lock_token = new_lock_token();
    let locked = store
        .write(|reply| Op::FetchOrchestration {
            lock_for,
            lock_token: lock_token.clone(),
            reply,
        })
        .await?;
    let Some(locked) = locked else {
        return Ok(None);
    };

    // Decoded after the commit (and off the writer): a corrupt row then fails
    // only this instance, which stays locked until expiry, instead of
    // blocking every fetch.
    let instance = instance_from_row(&locked.instance)?;
    let mut messages = locked
        .messages
        .iter()
        .map(|row| queued_message(row, &locked.instance_id))
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING does not promise an order; the contract promises arrival order.
    messages.sort_by_key(|m| m.id);
    Ok(Some(OrchestrationWork {
        instance,
        lock_token,
        messages,
    }))
}

/// Op body of [`fetch`], inside the writer's batch transaction.
pub(super) async fn fetch_in(
    conn: &mut SqliteConnection,
    lock_for: Duration,
    lock_token: &str,
    now: i64,
) -> Result<Option<LockedRows>, StoreError> {
    let instance = sqlx::query(LOCK_CANDIDATE)
        .bind(now)
        .bind(lock_token)
        .bind(lock_deadline(now, lock_for))
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("locking an instance"))?;
    let Some(instance) = instance else {
        return Ok(None);
    };
    // Read now only to select its messages; a corrupt row is reported by the
    // caller's full decode, after the commit.
    let instance_id: String = instance
        .try_get("instance_id")
        .map_err(|e| StoreError::Corrupt(format!("locked instance row: {e}")))?;
    let messages = sqlx::query(
        "UPDATE orchestrator_queue SET attempts = attempts + 1
         WHERE instance_id = ?1 AND visible_at <= ?2 RETURNING id, message, attempts",
    )
    .bind(&instance_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("taking orchestrator messages"))?;
    Ok(Some(LockedRows {
        instance_id,
        instance,
        messages,
    }))
}

fn queued_message(row: &SqliteRow, instance_id: &str) -> Result<QueuedMessage, StoreError> {
    let col = |e: sqlx::Error| StoreError::Corrupt(format!("queue row of '{instance_id}': {e}"));
    let text: String = row.try_get("message").map_err(col)?;
    Ok(QueuedMessage {
        id: row.try_get("id").map_err(col)?,
        message: decode(&text, &format!("queued message of '{instance_id}'"))?,
        attempts: attempts(row.try_get("attempts").map_err(col)?)?,
    })
}

/// Gives the instance back without committing; a stale token changes nothing.
pub(super) async fn release(
    store: &SqliteHistoryStore,
    instance_id: &str,
    lock_token: &str,
) -> Result<(), StoreError> {
    let instance_id = instance_id.to_owned();
    let lock_token = lock_token.to_owned();
    store
        .write(|reply| Op::ReleaseOrchestration {
            instance_id,
            lock_token,
            reply,
        })
        .await
}

/// Op body of [`release`], inside the writer's batch transaction.
pub(super) async fn release_in(
    conn: &mut SqliteConnection,
    instance_id: &str,
    lock_token: &str,
) -> Result<Signals, StoreError> {
    let released = sqlx::query(
        "UPDATE instances SET lock_token = NULL, locked_until = NULL
         WHERE instance_id = ?1 AND lock_token = ?2",
    )
    .bind(instance_id)
    .bind(lock_token)
    .execute(conn)
    .await
    .map_err(db("releasing an instance"))?;
    // Only a real release makes messages fetchable again.
    Ok(if released.rows_affected() > 0 {
        Signals::ORCHESTRATOR
    } else {
        Signals::NONE
    })
}
