//! The activity queue: peek-locked work items and their atomic completion.

use std::time::Duration;

use sqlx_core::query::query;
use sqlx_core::row::Row;
use sqlx_postgres::Postgres;

use super::PostgresHistoryStore;
use super::codec::{attempts, db, decode, encode, new_lock_token, plus, to_i64, to_u64};
use super::notify::Work;
use super::orchestrator_queue::LockedRows;
use crate::history::OrchestratorMessage;
use crate::providers::{LockedActivity, OrchestrationWork, StoreError};

/// Locks up to `$2` items visible and free at `$1`, oldest first, with
/// token `$3` until `$4`, counting the attempt. `SKIP LOCKED`: concurrent
/// fetchers split the queue instead of waiting for each other.
const FETCH: &str = "
UPDATE activity_queue a SET lock_token = $3, locked_until = $4, attempts = a.attempts + 1
FROM (SELECT id FROM activity_queue
      WHERE visible_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)
      ORDER BY id LIMIT $2
      FOR NO KEY UPDATE SKIP LOCKED) c
WHERE a.id = c.id
RETURNING a.id, a.message, a.attempts, a.visible_at";

/// Locks up to `max` visible, unlocked items, oldest first: one statement.
pub(super) async fn fetch(
    store: &PostgresHistoryStore,
    max: usize,
    lock_for: Duration,
) -> Result<Vec<LockedActivity>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let now = store.now()?;
    let lock_token = new_lock_token();
    let rows = query::<Postgres>(FETCH)
        .bind(now)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .bind(&lock_token)
        .bind(plus(now, lock_for))
        .fetch_all(&store.pool)
        .await
        .map_err(db("locking activity work"))?;
    // Decoded after the commit, so a corrupt item cannot wedge the queue:
    // the batch comes back when its lock expires.
    let mut locked = rows
        .iter()
        .map(|row| {
            let read = |e| db("reading activity work")(e);
            let id: i64 = row.try_get(0).map_err(read)?;
            let text: String = row.try_get(1).map_err(read)?;
            Ok(LockedActivity {
                queue_id: id,
                lock_token: lock_token.clone(),
                attempts: attempts(row.try_get(2).map_err(read)?)?,
                visible_at_ms: to_u64(row.try_get(3).map_err(read)?, "visible_at")?,
                work: decode(&text, &format!("activity work {id}"))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    locked.sort_by_key(|l| l.queue_id);
    Ok(locked)
}

/// The error of a completion, renewal or release whose lock is gone.
fn lock_lost(locked: &LockedActivity) -> StoreError {
    StoreError::LockLost(format!(
        "activity work {} ({} of '{}')",
        locked.queue_id, locked.work.name, locked.work.instance
    ))
}

/// Deletes the item and enqueues its completion, if the lock is still held,
/// in one call of `duroxide_complete_activity`. With `lock_for`, also locks
/// the instance if nobody holds it and returns its work, not yet decoded
/// into `Ok` (`Err` if it cannot be, see [`LockedRows::decode`]).
pub(super) async fn complete(
    store: &PostgresHistoryStore,
    locked: &LockedActivity,
    completion: &OrchestratorMessage,
    lock_for: Option<Duration>,
) -> Result<Option<Result<OrchestrationWork, StoreError>>, StoreError> {
    let now = store.now()?;
    let completion = encode(completion, "activity completion")?;
    let lock_token = lock_for.map(|_| new_lock_token());
    let row = query::<Postgres>(
        "SELECT code, instance_row, $3::bigint, message_ids, messages, attempts, visible_at
         FROM duroxide_complete_activity($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(locked.queue_id)
    .bind(&locked.lock_token)
    .bind(now)
    .bind(&locked.work.instance)
    .bind(&completion)
    .bind(lock_token.as_deref())
    .bind(lock_for.map(|l| plus(now, l)))
    .fetch_one(&store.pool)
    .await
    .map_err(db("completing activity work"))?;
    let code: String = row.try_get(0).map_err(db("reading a completion"))?;
    match (code.as_str(), lock_token) {
        ("lock_lost", _) => Err(lock_lost(locked)),
        ("queued", _) => {
            store.made_fetchable(Work::Orchestrator);
            Ok(None)
        }
        ("locked", Some(token)) => {
            let rows = LockedRows {
                row: row.try_get(1).map_err(db("reading a completion"))?,
                ready_at: now,
                ids: opt_vec(&row, 3)?,
                messages: opt_vec(&row, 4)?,
                attempts: opt_vec(&row, 5)?,
                visible_at: opt_vec(&row, 6)?,
            };
            Ok(Some(rows.decode(&token)))
        }
        (other, _) => Err(StoreError::database(format!(
            "unknown completion result '{other}'"
        ))),
    }
}

/// An array column that may be NULL (no rows aggregated), as a list.
fn opt_vec<T>(row: &sqlx_postgres::PgRow, index: usize) -> Result<Vec<T>, StoreError>
where
    T: for<'r> sqlx_core::decode::Decode<'r, Postgres> + sqlx_core::types::Type<Postgres>,
    Vec<T>: for<'r> sqlx_core::decode::Decode<'r, Postgres> + sqlx_core::types::Type<Postgres>,
{
    row.try_get::<Option<Vec<T>>, _>(index)
        .map(Option::unwrap_or_default)
        .map_err(db("reading a completion"))
}

/// Unlocks the item for an immediate retry; a stale token changes nothing.
pub(super) async fn release(
    store: &PostgresHistoryStore,
    locked: &LockedActivity,
) -> Result<(), StoreError> {
    let released = query::<Postgres>(
        "UPDATE activity_queue SET lock_token = NULL, locked_until = NULL
         WHERE id = $1 AND lock_token = $2",
    )
    .bind(locked.queue_id)
    .bind(&locked.lock_token)
    .execute(&store.pool)
    .await
    .map_err(db("releasing activity work"))?;
    // Only a real release makes work fetchable again.
    if released.rows_affected() > 0 {
        store.made_fetchable(Work::Activity);
    }
    Ok(())
}

/// Extends the item's lock to `lock_for` from now, if it is still held.
pub(super) async fn renew(
    store: &PostgresHistoryStore,
    locked: &LockedActivity,
    lock_for: Duration,
) -> Result<(), StoreError> {
    let now = store.now()?;
    let renewed = query::<Postgres>(
        "UPDATE activity_queue SET locked_until = $3
         WHERE id = $1 AND lock_token = $2 AND locked_until > $4",
    )
    .bind(locked.queue_id)
    .bind(&locked.lock_token)
    .bind(plus(now, lock_for))
    .bind(now)
    .execute(&store.pool)
    .await
    .map_err(db("renewing an activity lock"))?;
    if renewed.rows_affected() == 0 {
        return Err(lock_lost(locked));
    }
    Ok(())
}

/// Unlocks the item without counting the fetch, fetchable again from
/// `until_ms`; a stale token changes nothing.
pub(super) async fn defer(
    store: &PostgresHistoryStore,
    locked: &LockedActivity,
    until_ms: u64,
) -> Result<(), StoreError> {
    // The lock passes to nobody until then: fetches skip the item and idle
    // dispatchers wake when it ends.
    query::<Postgres>(
        "UPDATE activity_queue
         SET lock_token = NULL, locked_until = $3, attempts = GREATEST(attempts - 1, 0)
         WHERE id = $1 AND lock_token = $2",
    )
    .bind(locked.queue_id)
    .bind(&locked.lock_token)
    .bind(to_i64(until_ms, "deferral time")?)
    .execute(&store.pool)
    .await
    .map_err(db("deferring activity work"))?;
    Ok(())
}
