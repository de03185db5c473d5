//! The activity queue: peek-locked work items and their atomic completion.

use std::time::Duration;

use rusqlite::Connection;

use super::SqliteHistoryStore;
use super::codec::{QueueRow, attempts, db, decode, encode, new_lock_token, plus, to_u64};
use super::ops::{Op, Signals};
use super::orchestrator_queue::{LockedRows, decode_work, insert_message, insert_message_and_lock};
use crate::history::OrchestratorMessage;
use crate::providers::{LockedActivity, OrchestrationWork, StoreError};

/// Whether any item is visible and free at `now`.
pub(super) fn any_available(conn: &Connection, now: i64) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "SELECT 1 FROM activity_queue
         WHERE visible_at <= ?1 AND (locked_until IS NULL OR locked_until <= ?1)",
    )
    .and_then(|mut stmt| stmt.exists([now]))
    .map_err(db("looking for activity work"))
}

/// Locks up to `max` visible, unlocked items, oldest first.
pub(super) async fn fetch(
    store: &SqliteHistoryStore,
    max: usize,
    lock_for: Duration,
) -> Result<Vec<LockedActivity>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(max).unwrap_or(i64::MAX);
    let lock_token = new_lock_token();
    let rows = store
        .write(|reply| Op::FetchActivities {
            limit,
            lock_for,
            lock_token: lock_token.clone(),
            reply,
        })
        .await?;

    // Decoded after the commit (and off the writer), so a corrupt item cannot
    // wedge the queue: the batch comes back when its lock expires.
    let mut locked = rows
        .into_iter()
        .map(|row| locked_activity(row, &lock_token))
        .collect::<Result<Vec<_>, _>>()?;
    locked.sort_by_key(|l| l.queue_id);
    Ok(locked)
}

/// Op body of [`fetch`], inside the writer's batch transaction.
pub(super) fn fetch_in(
    conn: &Connection,
    limit: i64,
    lock_for: Duration,
    lock_token: &str,
    now: i64,
) -> Result<Vec<QueueRow>, StoreError> {
    // `LIMIT ?2 + 0`, not `LIMIT ?2`: SQLite re-plans a statement whose
    // bare LIMIT parameter changes, which would cost a parse per fetch.
    let rows: Vec<QueueRow> = conn
        .prepare_cached(
            "SELECT id, message, attempts + 1, visible_at FROM activity_queue
             WHERE visible_at <= ?1 AND (locked_until IS NULL OR locked_until <= ?1)
             ORDER BY id LIMIT ?2 + 0",
        )
        .and_then(|mut stmt| stmt.query_map((now, limit), QueueRow::read)?.collect())
        .map_err(db("locking activity work"))?;
    let mut lock = conn
        .prepare_cached(
            "UPDATE activity_queue SET lock_token = ?2, locked_until = ?3, attempts = ?4
             WHERE id = ?1",
        )
        .map_err(db("locking activity work"))?;
    let locked_until = plus(now, lock_for);
    for row in &rows {
        lock.execute((row.id, lock_token, locked_until, row.attempts))
            .map_err(db("locking activity work"))?;
    }
    Ok(rows)
}

fn locked_activity(row: QueueRow, lock_token: &str) -> Result<LockedActivity, StoreError> {
    Ok(LockedActivity {
        queue_id: row.id,
        lock_token: lock_token.to_owned(),
        attempts: attempts(row.attempts)?,
        visible_at_ms: to_u64(row.visible_at, "visible_at")?,
        work: decode(&row.text, &format!("activity work {}", row.id))?,
    })
}

/// The parts of a [`LockedActivity`] its completion or release needs.
pub(super) struct ActivityLock {
    /// Queue row id.
    queue_id: i64,
    /// Proof of the lock.
    lock_token: String,
    /// The instance the completion goes to.
    instance: String,
    /// Activity name, for the lock-lost error.
    name: String,
}

impl ActivityLock {
    pub(super) fn of(locked: &LockedActivity) -> Self {
        Self {
            queue_id: locked.queue_id,
            lock_token: locked.lock_token.clone(),
            instance: locked.work.instance.clone(),
            name: locked.work.name.clone(),
        }
    }
}

/// Deletes the item and enqueues its completion, if the lock is still held.
pub(super) async fn complete(
    store: &SqliteHistoryStore,
    locked: &LockedActivity,
    completion: &OrchestratorMessage,
) -> Result<(), StoreError> {
    let completion = encode(completion, "activity completion")?;
    let lock = ActivityLock::of(locked);
    store
        .write(|reply| Op::CompleteActivity {
            lock,
            completion,
            reply,
        })
        .await
}

/// [`complete`], and lock the instance if nobody holds it, taking its
/// visible messages; the locked work comes back with the lock token, not yet
/// decoded (`Err` if it cannot be, see [`super::orchestrator_queue::fetch`]).
pub(super) async fn complete_and_lock(
    store: &SqliteHistoryStore,
    locked: &LockedActivity,
    completion: &OrchestratorMessage,
    lock_for: Duration,
) -> Result<Option<Result<OrchestrationWork, StoreError>>, StoreError> {
    let completion = encode(completion, "activity completion")?;
    let lock = ActivityLock::of(locked);
    let lock_token = new_lock_token();
    let rows = store
        .write(|reply| Op::CompleteActivityAndLock {
            lock,
            completion,
            lock_for,
            lock_token: lock_token.clone(),
            reply,
        })
        .await?;
    Ok(rows.map(|rows| decode_work(*rows, &lock_token)))
}

/// Op body of [`complete`], inside the writer's batch transaction.
pub(super) fn complete_in(
    conn: &Connection,
    lock: &ActivityLock,
    completion: &str,
    now: i64,
) -> Result<Signals, StoreError> {
    delete_locked(conn, lock, now)?;
    insert_message(conn, &lock.instance, completion, now)?;
    Ok(Signals::ORCHESTRATOR)
}

/// Op body of [`complete_and_lock`], inside the writer's batch transaction.
pub(super) fn complete_and_lock_in(
    conn: &Connection,
    lock: &ActivityLock,
    completion: &str,
    lock_for: Duration,
    lock_token: &str,
    now: i64,
) -> Result<Option<Box<LockedRows>>, StoreError> {
    delete_locked(conn, lock, now)?;
    let locked =
        insert_message_and_lock(conn, &lock.instance, completion, lock_for, lock_token, now)?;
    Ok(locked.map(Box::new))
}

/// Deletes the completed item, if its lock is still held.
pub(super) fn delete_locked(
    conn: &Connection,
    lock: &ActivityLock,
    now: i64,
) -> Result<(), StoreError> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM activity_queue WHERE id = ?1 AND lock_token = ?2 AND locked_until > ?3",
        )
        .and_then(|mut stmt| stmt.execute((lock.queue_id, &lock.lock_token, now)))
        .map_err(db("deleting completed activity work"))?;
    if deleted == 0 {
        return Err(StoreError::LockLost(format!(
            "activity work {} ({} of '{}')",
            lock.queue_id, lock.name, lock.instance
        )));
    }
    Ok(())
}

/// Unlocks the item for an immediate retry; a stale token changes nothing.
pub(super) async fn release(
    store: &SqliteHistoryStore,
    locked: &LockedActivity,
) -> Result<(), StoreError> {
    let lock = ActivityLock::of(locked);
    store
        .write(|reply| Op::ReleaseActivity { lock, reply })
        .await
}

/// Op body of [`release`], inside the writer's batch transaction.
pub(super) fn release_in(conn: &Connection, lock: &ActivityLock) -> Result<Signals, StoreError> {
    let released = conn
        .prepare_cached(
            "UPDATE activity_queue SET lock_token = NULL, locked_until = NULL
             WHERE id = ?1 AND lock_token = ?2",
        )
        .and_then(|mut stmt| stmt.execute((lock.queue_id, &lock.lock_token)))
        .map_err(db("releasing activity work"))?;
    // Only a real release makes work fetchable again.
    Ok(if released > 0 {
        Signals::ACTIVITY
    } else {
        Signals::NONE
    })
}

/// Extends the item's lock to `lock_for` from now, if it is still held.
pub(super) async fn renew(
    store: &SqliteHistoryStore,
    locked: &LockedActivity,
    lock_for: Duration,
) -> Result<(), StoreError> {
    let lock = ActivityLock::of(locked);
    store
        .write(|reply| Op::RenewActivity {
            lock,
            lock_for,
            reply,
        })
        .await
}

/// Op body of [`renew`], inside the writer's batch transaction.
pub(super) fn renew_in(
    conn: &Connection,
    lock: &ActivityLock,
    lock_for: Duration,
    now: i64,
) -> Result<Signals, StoreError> {
    let renewed = conn
        .prepare_cached(
            "UPDATE activity_queue SET locked_until = ?3
             WHERE id = ?1 AND lock_token = ?2 AND locked_until > ?4",
        )
        .and_then(|mut stmt| {
            stmt.execute((lock.queue_id, &lock.lock_token, plus(now, lock_for), now))
        })
        .map_err(db("renewing an activity lock"))?;
    if renewed == 0 {
        return Err(StoreError::LockLost(format!(
            "activity work {} ({} of '{}')",
            lock.queue_id, lock.name, lock.instance
        )));
    }
    Ok(Signals::NONE)
}

/// Unlocks the item without counting the fetch, fetchable again from
/// `until`; a stale token changes nothing.
pub(super) async fn defer(
    store: &SqliteHistoryStore,
    locked: &LockedActivity,
    until: i64,
) -> Result<(), StoreError> {
    let lock = ActivityLock::of(locked);
    store
        .write(|reply| Op::DeferActivity { lock, until, reply })
        .await
}

/// Op body of [`defer`], inside the writer's batch transaction.
pub(super) fn defer_in(
    conn: &Connection,
    lock: &ActivityLock,
    until: i64,
) -> Result<Signals, StoreError> {
    // The lock passes to nobody until `until`: fetches skip the item and
    // idle dispatchers wake when it ends.
    conn.prepare_cached(
        "UPDATE activity_queue
         SET lock_token = NULL, locked_until = ?3, attempts = MAX(attempts - 1, 0)
         WHERE id = ?1 AND lock_token = ?2",
    )
    .and_then(|mut stmt| stmt.execute((lock.queue_id, &lock.lock_token, until)))
    .map_err(db("deferring activity work"))?;
    Ok(Signals::NONE)
}
