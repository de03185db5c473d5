//! The turn commit: everything one orchestration turn produced, written
//! atomically (one savepoint of the writer's batch transaction) together with
//! the release of the instance lock.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::SqliteHistoryStore;
use super::codec::{db, encode, to_i64};
use super::ops::{Op, Signals};
use super::orchestrator_queue::{insert_instance, insert_message};
use crate::providers::{StoreError, TurnCommit};

/// The turn's lock is still held: `?1` instance, `?2` lock token, `?3` now.
/// The turn's list writes are guarded by it, so a turn that lost its lock
/// writes no history or queue rows (and cannot trip over rows a newer owner
/// wrote) before its savepoint is even rolled back.
macro_rules! lock_held {
    () => {
        "EXISTS (SELECT 1 FROM instances
                 WHERE instance_id = ?1 AND lock_token = ?2 AND locked_until > ?3)"
    };
}

// The lists of a turn are bound as JSON arrays and expanded with `json_each`,
// one statement per list whatever its length: every statement is a round trip
// to the connection's thread, which costs more than the statement itself.
// `ORDER BY key` keeps list order, so queue ids follow it as before.

/// `?4` execution id, `?5` first seq, `?6` JSON array of serialized events.
const APPEND_HISTORY: &str = concat!(
    "INSERT INTO history (instance_id, execution_id, seq, event)
     SELECT ?1, ?4, ?5 + key, value FROM json_each(?6) WHERE ",
    lock_held!(),
    " ORDER BY key"
);

/// `?4` JSON array of consumed queue ids. The instance check keeps a bad id
/// from deleting another instance's message.
const DELETE_CONSUMED: &str = concat!(
    "DELETE FROM orchestrator_queue
     WHERE instance_id = ?1 AND id IN (SELECT value FROM json_each(?4)) AND ",
    lock_held!()
);

/// `?4` JSON array of `[instance, serialized work]`, visible at once.
const ENQUEUE_ACTIVITIES: &str = concat!(
    "INSERT INTO activity_queue (instance_id, message, visible_at)
     SELECT value ->> 0, value ->> 1, ?3 FROM json_each(?4) WHERE ",
    lock_held!(),
    " ORDER BY key"
);

/// `?4` JSON array of `[instance, serialized message, visible at]`.
const ENQUEUE_MESSAGES: &str = concat!(
    "INSERT INTO orchestrator_queue (instance_id, message, visible_at)
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?4) WHERE ",
    lock_held!(),
    " ORDER BY key"
);

/// Updates the instance and releases its lock, last, so the lock guards every
/// earlier write. Returns a row only if the lock was held, telling whether
/// messages the turn did not consume (arrived during it, or sent to itself)
/// are visible now.
const FINISH_TURN: &str = "UPDATE instances SET status = ?4, output = ?5,
         orchestration_version = COALESCE(?6, orchestration_version),
         execution_id = ?7, history_len = ?8, updated_at = ?3,
         custom_status = CASE WHEN ?9 THEN ?10 ELSE custom_status END,
         lock_token = NULL, locked_until = NULL
     WHERE instance_id = ?1 AND lock_token = ?2 AND locked_until > ?3
     RETURNING EXISTS (SELECT 1 FROM orchestrator_queue
                       WHERE instance_id = ?1 AND visible_at <= ?3) AS leftover";

/// A turn with its lists already serialized, so the shared writer spends its
/// time on SQL only.
pub(super) struct EncodedTurn {
    /// The commit; its `new_events`, `activities` and `messages` have been
    /// moved into the encoded fields below.
    commit: TurnCommit,
    /// JSON array of serialized events, or `None` if there are none.
    events: Option<String>,
    /// JSON array of consumed queue ids, or `None`.
    consumed: Option<String>,
    /// JSON array of `[instance, serialized work]`, or `None`.
    activities: Option<String>,
    /// JSON array of `[instance, serialized message, visible at]`, or `None`.
    messages: Option<String>,
    execution_id: i64,
    first_seq: i64,
    /// History length after the turn.
    new_len: i64,
}

impl EncodedTurn {
    /// Serializes and range-checks everything the commit writes.
    fn new(mut commit: TurnCommit) -> Result<Self, StoreError> {
        let events = std::mem::take(&mut commit.new_events)
            .iter()
            .map(|e| encode(e, "history event"))
            .collect::<Result<Vec<_>, _>>()?;
        let activities = std::mem::take(&mut commit.activities)
            .into_iter()
            .map(|a| {
                let work = encode(&a, "activity work")?;
                Ok((a.instance, work))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let messages = std::mem::take(&mut commit.messages)
            .into_iter()
            .map(|m| {
                let visible_at = to_i64(m.visible_at_ms, "visible_at_ms")?;
                let message = encode(&m.message, "orchestrator message")?;
                Ok((m.instance_id, message, visible_at))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let execution_id = to_i64(commit.execution_id, "execution_id")?;
        let first_seq = to_i64(commit.history_len_before, "history_len_before")?;
        let new_len = u64::try_from(events.len())
            .ok()
            .and_then(|n| commit.history_len_before.checked_add(n))
            .ok_or_else(|| StoreError::Database("history length overflows".into()))?;
        let new_len = to_i64(new_len, "history length")?;
        Ok(Self {
            events: json_list(&events, "history events")?,
            consumed: json_list(&commit.consumed_messages, "consumed message ids")?,
            activities: json_list(&activities, "activity work")?,
            messages: json_list(&messages, "orchestrator messages")?,
            commit,
            execution_id,
            first_seq,
            new_len,
        })
    }
}

/// A list as a JSON array for `json_each`, or `None` when it is empty (its
/// statement is then skipped).
fn json_list<T: Serialize>(items: &[T], what: &str) -> Result<Option<String>, StoreError> {
    if items.is_empty() {
        return Ok(None);
    }
    encode(&items, what).map(Some)
}

/// Writes a whole turn and releases the instance lock, or writes nothing.
pub(super) async fn commit_turn(
    store: &SqliteHistoryStore,
    commit: TurnCommit,
) -> Result<(), StoreError> {
    // Encode before queuing, keeping the shared writer's critical section short.
    let turn = Box::new(EncodedTurn::new(commit)?);
    store.write(|reply| Op::CommitTurn { turn, reply }).await
}

/// Op body of [`commit_turn`], inside the writer's batch transaction.
pub(super) async fn commit_turn_in(
    conn: &mut SqliteConnection,
    t: &EncodedTurn,
    now: i64,
) -> Result<Signals, StoreError> {
    let c = &t.commit;
    // The guarded list statements sharing one parameter layout.
    let lists = [
        (DELETE_CONSUMED, &t.consumed, "deleting consumed messages"),
        (
            ENQUEUE_ACTIVITIES,
            &t.activities,
            "enqueueing activity work",
        ),
        (
            ENQUEUE_MESSAGES,
            &t.messages,
            "enqueueing orchestrator messages",
        ),
    ];
    if let Some(events) = &t.events {
        sqlx::query(APPEND_HISTORY)
            .bind(&c.instance_id)
            .bind(&c.lock_token)
            .bind(now)
            .bind(t.execution_id)
            .bind(t.first_seq)
            .bind(events)
            .execute(&mut *conn)
            .await
            .map_err(db("appending history"))?;
    }
    for (sql, list, context) in lists {
        if let Some(list) = list {
            sqlx::query(sql)
                .bind(&c.instance_id)
                .bind(&c.lock_token)
                .bind(now)
                .bind(list)
                .execute(&mut *conn)
                .await
                .map_err(db(context))?;
        }
    }
    // Rare (children and detached starts): one instance at a time. Not
    // guarded by the lock; a lost lock's savepoint rollback undoes them.
    for start in &c.new_instances {
        if !insert_instance(conn, &start.instance, now).await?
            && let Some(fallback) = &start.if_exists
        {
            let message = encode(&fallback.message, "orchestrator message")?;
            let visible_at = to_i64(fallback.visible_at_ms, "visible_at_ms")?;
            insert_message(conn, &fallback.instance_id, &message, visible_at).await?;
        }
    }
    let finished = sqlx::query(FINISH_TURN)
        .bind(&c.instance_id)
        .bind(&c.lock_token)
        .bind(now)
        .bind(c.status.as_str())
        .bind(&c.output)
        .bind(&c.orchestration_version)
        .bind(t.execution_id)
        .bind(t.new_len)
        .bind(c.custom_status.is_some())
        .bind(c.custom_status.clone().flatten())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("updating the instance"))?;
    let Some(finished) = finished else {
        return Err(StoreError::LockLost(format!(
            "instance '{}'",
            c.instance_id
        )));
    };
    // Messages that arrived during the turn become fetchable as the lock goes;
    // a dispatcher that found the instance locked must hear about them.
    let leftover: bool = finished
        .try_get("leftover")
        .map_err(|e| StoreError::Corrupt(format!("pending message check: {e}")))?;

    // Future messages wake dispatchers too, so they shorten their sleep.
    Ok(Signals {
        orchestrator: leftover || t.messages.is_some() || !c.new_instances.is_empty(),
        activity: t.activities.is_some(),
    })
}
