//! Reads (an instance, a history, the wake-up time, queue depths) and the
//! shared settings.

use sqlx_core::query_as::query_as;
use sqlx_core::query_scalar::query_scalar;
use sqlx_postgres::Postgres;

use super::PostgresHistoryStore;
use super::codec::{READ_INSTANCE, db, instance_from_json, to_i64, to_u64};
use crate::history::Event;
use crate::limits::TextLimits;
use crate::providers::{InstanceRecord, QueueStats, StoreError};

/// The settings row holding the text limits.
const TEXT_LIMITS: &str = "text_limits";

/// The instance's row, if any.
pub(super) async fn instance(
    store: &PostgresHistoryStore,
    instance_id: &str,
) -> Result<Option<InstanceRecord>, StoreError> {
    let row: Option<String> = query_scalar::<Postgres, String>(READ_INSTANCE)
        .bind(instance_id)
        .fetch_optional(&store.pool)
        .await
        .map_err(db("reading instance"))?;
    row.as_deref().map(instance_from_json).transpose()
}

/// One execution's events in replay order. A row holds one turn's events as
/// a JSON array, keyed by the seq of its first event.
pub(super) async fn history(
    store: &PostgresHistoryStore,
    instance_id: &str,
    execution_id: u64,
) -> Result<Vec<Event>, StoreError> {
    let execution = to_i64(execution_id, "execution_id")?;
    let rows: Vec<String> = query_scalar::<Postgres, String>(
        "SELECT event FROM history WHERE instance_id = $1 AND execution_id = $2 ORDER BY seq",
    )
    .bind(instance_id)
    .bind(execution)
    .fetch_all(&store.pool)
    .await
    .map_err(db("reading history"))?;
    let mut events = Vec::new();
    for text in rows {
        // Names the first event the unreadable row holds, so the failure
        // says where the history broke.
        let turn: Vec<Event> = serde_json::from_str(&text).map_err(|e| {
            StoreError::Corrupt(format!(
                "history of '{instance_id}' execution {execution}, event #{}: {e}",
                events.len()
            ))
        })?;
        events.extend(turn);
    }
    Ok(events)
}

/// The earliest future moment at which a queued activity or a message of an
/// unlocked instance becomes visible, or a lock expires. (A locked
/// instance's later messages wait for its commit, which signals.) Each
/// branch is one indexed lookup; `LEAST` skips the empty ones.
pub(super) async fn next_wake_at_ms(
    store: &PostgresHistoryStore,
) -> Result<Option<u64>, StoreError> {
    let at: Option<i64> = query_scalar::<Postgres, Option<i64>>(
        "SELECT LEAST(
             (SELECT next_visible_at FROM instances
              WHERE next_visible_at > $1 AND (locked_until IS NULL OR locked_until <= $1)
              ORDER BY next_visible_at LIMIT 1),
             (SELECT MIN(visible_at) FROM activity_queue WHERE visible_at > $1),
             (SELECT MIN(locked_until) FROM activity_queue WHERE locked_until > $1),
             (SELECT MIN(locked_until) FROM instances WHERE locked_until > $1))",
    )
    .bind(store.now()?)
    .fetch_one(&store.pool)
    .await
    .map_err(db("computing the next wake-up"))?;
    at.map(|t| to_u64(t, "wake-up time")).transpose()
}

/// How much work waits in the queues now, in one statement.
pub(super) async fn queue_stats(store: &PostgresHistoryStore) -> Result<QueueStats, StoreError> {
    let (o_depth, o_oldest, a_depth, a_oldest): (i64, Option<i64>, i64, Option<i64>) = query_as(
        "SELECT o.depth, o.oldest, a.depth, a.oldest FROM
             (SELECT COUNT(*) AS depth, MIN(visible_at) AS oldest
              FROM orchestrator_queue WHERE visible_at <= $1) o,
             (SELECT COUNT(*) AS depth, MIN(visible_at) AS oldest FROM activity_queue
              WHERE visible_at <= $1 AND (locked_until IS NULL OR locked_until <= $1)) a",
    )
    .bind(store.now()?)
    .fetch_one(&store.pool)
    .await
    .map_err(db("counting queued work"))?;
    let oldest = |t: Option<i64>| t.map(|t| to_u64(t, "visible_at")).transpose();
    Ok(QueueStats {
        orchestrator_depth: to_u64(o_depth, "queue depth")?,
        orchestrator_oldest_at_ms: oldest(o_oldest)?,
        activity_depth: to_u64(a_depth, "queue depth")?,
        activity_oldest_at_ms: oldest(a_oldest)?,
    })
}

/// The stored text limits, if any.
pub(super) async fn text_limits(
    store: &PostgresHistoryStore,
) -> Result<Option<TextLimits>, StoreError> {
    let value: Option<String> =
        query_scalar::<Postgres, String>("SELECT value FROM settings WHERE name = $1")
            .bind(TEXT_LIMITS)
            .fetch_optional(&store.pool)
            .await
            .map_err(db("reading the text limits"))?;
    value
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("stored text limits: {e}")))
        })
        .transpose()
}

/// Stores `limits`, replacing those stored.
pub(super) async fn set_text_limits(
    store: &PostgresHistoryStore,
    limits: TextLimits,
) -> Result<(), StoreError> {
    let value = serde_json::to_string(&limits)
        .map_err(|e| StoreError::database(format!("encoding the text limits: {e}")))?;
    sqlx_core::query::query::<Postgres>(
        "INSERT INTO settings (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(TEXT_LIMITS)
    .bind(value)
    .execute(&store.pool)
    .await
    .map_err(db("storing a setting"))?;
    Ok(())
}
