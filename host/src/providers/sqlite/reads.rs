//! Read-only queries, served by the read pool.

use sqlx::Row;
use sqlx::sqlite::SqlitePool;

use super::codec::{INSTANCE_COLUMNS, db, decode, instance_from_row, now_i64, to_i64, to_u64};
use crate::history::Event;
use crate::providers::{InstanceRecord, StoreError};

/// The instance's row, if any.
pub(super) async fn instance(
    pool: &SqlitePool,
    instance_id: &str,
) -> Result<Option<InstanceRecord>, StoreError> {
    let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?1");
    let row = sqlx::query(&sql)
        .bind(instance_id)
        .fetch_optional(pool)
        .await
        .map_err(db("reading instance"))?;
    row.as_ref().map(instance_from_row).transpose()
}

/// One execution's events in replay order.
pub(super) async fn history(
    pool: &SqlitePool,
    instance_id: &str,
    execution_id: u64,
) -> Result<Vec<Event>, StoreError> {
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT event FROM history WHERE instance_id = ?1 AND execution_id = ?2 ORDER BY seq",
    )
    .bind(instance_id)
    .bind(to_i64(execution_id, "execution_id")?)
    .fetch_all(pool)
    .await
    .map_err(db("reading history"))?;
    texts
        .iter()
        .map(|t| decode(t, &format!("history event of '{instance_id}'")))
        .collect()
}

/// The earliest future moment at which a queued item becomes visible or a lock
/// expires. Each branch is an indexed MIN, so an idle poll stays cheap however
/// many instances exist.
pub(super) async fn next_wake_at_ms(pool: &SqlitePool) -> Result<Option<u64>, StoreError> {
    let row = sqlx::query(
        "SELECT MIN(t) AS t FROM (
             SELECT MIN(visible_at) AS t FROM orchestrator_queue WHERE visible_at > ?1
             UNION ALL SELECT MIN(visible_at) FROM activity_queue WHERE visible_at > ?1
             UNION ALL SELECT MIN(locked_until) FROM activity_queue WHERE locked_until > ?1
             UNION ALL SELECT MIN(locked_until) FROM instances WHERE locked_until > ?1
         )",
    )
    .bind(now_i64()?)
    .fetch_one(pool)
    .await
    .map_err(db("computing the next wake-up"))?;
    let at: Option<i64> = row
        .try_get("t")
        .map_err(|e| StoreError::Corrupt(format!("next wake-up: {e}")))?;
    at.map(|t| to_u64(t, "wake-up time")).transpose()
}
