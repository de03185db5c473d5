//! The turn commit: everything one orchestration turn produced, written in
//! one transaction together with the release of the instance lock.

use super::SqliteHistoryStore;
use super::codec::{db, encode, now_i64, to_i64};
use super::orchestrator_queue::{insert_instance, insert_message};
use crate::providers::{StoreError, TurnCommit};

/// Writes a whole turn and releases the instance lock, or writes nothing.
pub(super) async fn commit_turn(
    store: &SqliteHistoryStore,
    c: TurnCommit,
) -> Result<(), StoreError> {
    // Encode before taking the write lock, keeping the writer's critical section short.
    let events = c
        .new_events
        .iter()
        .map(|e| encode(e, "history event"))
        .collect::<Result<Vec<_>, _>>()?;
    let activities = c
        .activities
        .iter()
        .map(|a| Ok((a.instance.as_str(), encode(a, "activity work")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let messages = c
        .messages
        .iter()
        .map(|m| {
            let visible_at = to_i64(m.visible_at_ms, "visible_at_ms")?;
            Ok((
                m.instance_id.as_str(),
                encode(&m.message, "orchestrator message")?,
                visible_at,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let execution_id = to_i64(c.execution_id, "execution_id")?;
    let first_seq = to_i64(c.history_len_before, "history_len_before")?;
    let new_len = u64::try_from(events.len())
        .ok()
        .and_then(|n| c.history_len_before.checked_add(n))
        .ok_or_else(|| StoreError::Database("history length overflows".into()))?;
    let new_len = to_i64(new_len, "history length")?;

    let mut tx = store.begin_write("beginning a turn commit").await?;
    let now = now_i64()?;
    let updated = sqlx::query(
        "UPDATE instances SET status = ?1, output = ?2,
             orchestration_version = COALESCE(?3, orchestration_version),
             execution_id = ?4, history_len = ?5, updated_at = ?6,
             custom_status = CASE WHEN ?9 THEN ?10 ELSE custom_status END,
             lock_token = NULL, locked_until = NULL
         WHERE instance_id = ?7 AND lock_token = ?8 AND locked_until > ?6",
    )
    .bind(c.status.as_str())
    .bind(&c.output)
    .bind(&c.orchestration_version)
    .bind(execution_id)
    .bind(new_len)
    .bind(now)
    .bind(&c.instance_id)
    .bind(&c.lock_token)
    .bind(c.custom_status.is_some())
    .bind(c.custom_status.clone().flatten())
    .execute(&mut *tx)
    .await
    .map_err(db("updating the instance"))?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::LockLost(format!(
            "instance '{}'",
            c.instance_id
        )));
    }

    for (seq, event) in (first_seq..new_len).zip(&events) {
        sqlx::query(
            "INSERT INTO history (instance_id, execution_id, seq, event) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(&c.instance_id)
        .bind(execution_id)
        .bind(seq)
        .bind(event)
        .execute(&mut *tx)
        .await
        .map_err(db("appending history"))?;
    }
    for id in &c.consumed_messages {
        // The instance check keeps a bad id from deleting another instance's message.
        sqlx::query("DELETE FROM orchestrator_queue WHERE id = ?1 AND instance_id = ?2")
            .bind(id)
            .bind(&c.instance_id)
            .execute(&mut *tx)
            .await
            .map_err(db("deleting consumed messages"))?;
    }
    for (instance_id, work) in &activities {
        sqlx::query(
            "INSERT INTO activity_queue (instance_id, message, visible_at) VALUES (?1, ?2, ?3)",
        )
        .bind(instance_id)
        .bind(work)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db("enqueueing activity work"))?;
    }
    for (instance_id, message, visible_at) in &messages {
        insert_message(&mut tx, instance_id, message, *visible_at).await?;
    }
    for start in &c.new_instances {
        if !insert_instance(&mut tx, &start.instance, now).await?
            && let Some(fallback) = &start.if_exists
        {
            let message = encode(&fallback.message, "orchestrator message")?;
            let visible_at = to_i64(fallback.visible_at_ms, "visible_at_ms")?;
            insert_message(&mut tx, &fallback.instance_id, &message, visible_at).await?;
        }
    }
    // Messages that arrived during the turn become fetchable as the lock goes;
    // a dispatcher that found the instance locked must hear about them.
    let leftover: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM orchestrator_queue WHERE instance_id = ?1 AND visible_at <= ?2)",
    )
    .bind(&c.instance_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(db("checking for pending messages"))?;
    tx.commit().await.map_err(db("committing a turn"))?;

    // Future messages wake dispatchers too, so they shorten their sleep.
    if leftover || !messages.is_empty() || !c.new_instances.is_empty() {
        store.orchestrator_signal.notify_one();
    }
    if !activities.is_empty() {
        store.activity_signal.notify_one();
    }
    Ok(())
}
