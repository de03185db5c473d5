//! Instances and the orchestrator queue: creation, enqueue and the instance
//! lock. The turn commit that releases the lock lives in `turn.rs`.

use std::time::Duration;

use rusqlite::{CachedStatement, Connection};

use super::SqliteHistoryStore;
use super::codec::{
    QueueRow, READ_INSTANCE, attempts, db, decode, encode, instance_from_row, is_unique_violation,
    new_lock_token, plus, to_i64, to_u64,
};
use super::fair::{self, Rotation};
use super::ops::{Op, Signals};
use crate::history::OrchestratorMessage;
use crate::providers::{
    InstanceRecord, InstanceStatus, NewInstance, OrchestrationWork, QueuedMessage, StoreError,
};
use crate::tenant::tenant_of_key;

/// Locks one instance: `?1` instance, `?2` lock token, `?3` lock deadline.
/// (The row is read by its own statement: `RETURNING` costs SQLite more.)
/// The status is left alone: a statement that sets it rewrites every index
/// holding it, even to the same value, so only a pending instance's fetch
/// marks it running, by [`MARK_RUNNING`].
const LOCK_INSTANCE: &str =
    "UPDATE instances SET lock_token = ?2, locked_until = ?3 WHERE instance_id = ?1";

/// Marks pending instance `?1` running as the fetch of its first turn locks
/// it: the turn has begun, and clients read so from now on, however long it
/// takes to commit. (`InstanceRecord::awaits_start` still tells the turn
/// to start it.)
const MARK_RUNNING: &str =
    "UPDATE instances SET status = 'Running' WHERE instance_id = ?1 AND status = 'Pending'";

/// Takes an instance's messages visible by its turn's start: `?1` instance,
/// `?2` that time.
const TAKE_MESSAGES: &str = "SELECT id, message, attempts + 1, visible_at FROM orchestrator_queue
     WHERE instance_id = +?1 AND visible_at <= ?2";

/// Counts the attempt on the messages [`TAKE_MESSAGES`] read.
const COUNT_ATTEMPT: &str = "UPDATE orchestrator_queue SET attempts = attempts + 1
     WHERE instance_id = +?1 AND visible_at <= ?2";

/// Locks an instance nobody holds at `?4` (now), noting that a message
/// became visible at `?4` as [`insert_message`] would: `?1` instance, `?2`
/// lock token, `?3` lock deadline.
const LOCK_IF_FREE: &str = "UPDATE instances
     SET lock_token = ?2, locked_until = ?3,
         next_visible_at = MIN(COALESCE(next_visible_at, ?4), ?4)
     WHERE instance_id = ?1 AND (locked_until IS NULL OR locked_until <= ?4)";

/// Appends one message to an instance's queue.
pub(super) fn insert_message(
    conn: &Connection,
    instance_id: &str,
    message: &str,
    visible_at: i64,
) -> Result<(), StoreError> {
    append_message(conn, instance_id, message, visible_at)?;
    note_visible(conn, instance_id, visible_at)
}

/// Appends a message visible at `now` to the queue of an instance and locks
/// the instance, if nobody holds it, taking its visible messages as a fetch
/// would. `None` (the message queued as by [`insert_message`]) if the
/// instance is locked.
pub(super) fn insert_message_and_lock(
    conn: &Connection,
    instance_id: &str,
    message: &str,
    lock_for: Duration,
    lock_token: &str,
    now: i64,
) -> Result<Option<LockedRows>, StoreError> {
    append_message(conn, instance_id, message, now)?;
    let locked = conn
        .prepare_cached(LOCK_IF_FREE)
        .and_then(|mut stmt| stmt.execute((instance_id, lock_token, plus(now, lock_for), now)))
        .map_err(db("locking an instance"))?;
    if locked == 0 {
        note_visible(conn, instance_id, now)?;
        return Ok(None);
    }
    TakeWork::prepare(conn)?.take(instance_id, now).map(Some)
}

/// Notes on the instance row that one of its messages becomes visible at
/// `visible_at`.
fn note_visible(conn: &Connection, instance_id: &str, visible_at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE instances SET next_visible_at = MIN(COALESCE(next_visible_at, ?2), ?2)
         WHERE instance_id = ?1",
    )
    .and_then(|mut stmt| stmt.execute((instance_id, visible_at)))
    .map_err(db("noting when a message becomes visible"))?;
    Ok(())
}

/// The queue row alone; the instance's `next_visible_at` is the caller's.
fn append_message(
    conn: &Connection,
    instance_id: &str,
    message: &str,
    visible_at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO orchestrator_queue (instance_id, message, visible_at) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut stmt| stmt.execute((instance_id, message, visible_at)))
    .map_err(db("enqueueing an orchestrator message"))?;
    Ok(())
}

/// Inserts an instance row and its start message on `conn` (inside the
/// caller's transaction). Returns false, writing nothing, if the id is taken.
pub(super) fn insert_instance(
    conn: &Connection,
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
    let inserted = conn
        .prepare_cached(
            "INSERT INTO instances (instance_id, orchestration_name, status, execution_id,
                 history_len, created_at, updated_at, parent_instance, parent_id,
                 parent_execution_id, tenant)
             VALUES (?1, ?2, ?3, 1, 0, ?4, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut stmt| {
            stmt.execute((
                &new.instance_id,
                &new.orchestration_name,
                InstanceStatus::Pending.as_str(),
                now,
                &new.parent_instance,
                parent_id,
                parent_execution_id,
                tenant_of_key(&new.instance_id),
            ))
        });
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Ok(false),
        Err(e) => return Err(db("creating instance")(e)),
    }
    insert_message(conn, &new.instance_id, &start, visible_at)?;
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
pub(super) fn create_instance_in(
    conn: &Connection,
    new: &NewInstance,
    now: i64,
) -> Result<Signals, StoreError> {
    if !insert_instance(conn, new, now)? {
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
pub(super) fn enqueue_message_in(
    conn: &Connection,
    instance_id: &str,
    message: &str,
    visible_at: i64,
) -> Result<Signals, StoreError> {
    // A message for an instance that has not started yet (a delayed start)
    // becomes visible no earlier than the start message, queued first.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO orchestrator_queue (instance_id, message, visible_at)
             SELECT ?1, ?2, MAX(?3, COALESCE((
                 SELECT q.visible_at FROM orchestrator_queue q
                 WHERE q.instance_id = +?1 AND i.status = 'Pending'
                 ORDER BY q.id LIMIT 1), ?3))
             FROM instances i WHERE i.instance_id = ?1",
        )
        .and_then(|mut stmt| stmt.execute((instance_id, message, visible_at)))
        .map_err(db("enqueueing an orchestrator message"))?;
    if inserted == 0 {
        return Err(StoreError::InstanceNotFound(instance_id.to_owned()));
    }
    conn.prepare_cached(
        "UPDATE instances SET next_visible_at = (
             SELECT MIN(q.visible_at) FROM orchestrator_queue q
             WHERE q.instance_id = instances.instance_id)
         WHERE instance_id = ?1",
    )
    .and_then(|mut stmt| stmt.execute([instance_id]))
    .map_err(db("noting when a message becomes visible"))?;
    Ok(Signals::ORCHESTRATOR)
}

/// When the earliest message of an unlocked instance (at `now`) becomes
/// visible, if any instance has one.
pub(super) fn earliest_ready(conn: &Connection, now: i64) -> Result<Option<i64>, StoreError> {
    fair::earliest_unlocked(conn, now, i64::MIN)
}

/// An instance locked by a fetch, with its messages not yet decoded.
pub(super) struct LockedRows {
    /// The instance row, read as the lock was taken. An unreadable row still
    /// takes the lock, so the instance fails alone until the lock expires
    /// instead of being fetched again and again.
    instance: Result<InstanceRecord, StoreError>,
    /// Every message of the instance visible at `ready_at`.
    messages: Vec<QueueRow>,
    /// When the turn may start.
    ready_at: i64,
}

/// Locks up to `max` unlocked instances whose messages become visible
/// earliest, within `lookahead`, the tenants with such work taking turns
/// (see `fair`), and takes the messages visible when each
/// turn may start. Each is decoded after the commit (and off the writer): a
/// corrupt row then fails only its instance, which stays locked until
/// expiry, instead of blocking every fetch.
pub(super) async fn fetch(
    store: &SqliteHistoryStore,
    max: usize,
    lock_for: Duration,
    lookahead: Duration,
) -> Result<Vec<Result<OrchestrationWork, StoreError>>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let lock_token = new_lock_token();
    let locked = store
        .write(|reply| Op::FetchOrchestrations {
            max,
            lock_for,
            lookahead,
            lock_token: lock_token.clone(),
            rotation: store.rotation.clone(),
            reply,
        })
        .await?;
    Ok(locked
        .into_iter()
        .map(|rows| decode_work(rows, &lock_token))
        .collect())
}

/// Decodes what a lock took, off the writer.
pub(super) fn decode_work(
    rows: LockedRows,
    lock_token: &str,
) -> Result<OrchestrationWork, StoreError> {
    let instance = rows.instance?;
    let what = format!("queued message of '{}'", instance.instance_id);
    let mut messages = rows
        .messages
        .into_iter()
        .map(|row| {
            Ok(QueuedMessage {
                id: row.id,
                message: decode(&row.text, &what)?,
                attempts: attempts(row.attempts)?,
                visible_at_ms: to_u64(row.visible_at, "visible_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // RETURNING does not promise an order; the contract promises arrival order.
    messages.sort_by_key(|m| m.id);
    Ok(OrchestrationWork {
        instance,
        lock_token: lock_token.to_owned(),
        messages,
        ready_at_ms: to_u64(rows.ready_at, "ready time")?,
    })
}

/// Op body of [`fetch`], inside the writer's batch transaction.
pub(super) fn fetch_in(
    conn: &Connection,
    rotation: &Rotation,
    max: usize,
    lock_for: Duration,
    lookahead: Duration,
    lock_token: &str,
    now: i64,
) -> Result<Vec<LockedRows>, StoreError> {
    let candidates = fair::candidates(conn, rotation, max, now, plus(now, lookahead))?;
    let mut lock = conn
        .prepare_cached(LOCK_INSTANCE)
        .map_err(db("locking an instance"))?;
    let mut take = TakeWork::prepare(conn)?;
    let mut locked = Vec::with_capacity(candidates.len());
    for (id, next_visible) in candidates {
        let ready_at = next_visible.max(now);
        lock.execute((&id, lock_token, plus(ready_at, lock_for)))
            .map_err(db("locking an instance"))?;
        locked.push(take.take(&id, ready_at)?);
    }
    Ok(locked)
}

/// The statements that read a just-locked instance and take its messages.
struct TakeWork<'c> {
    read: CachedStatement<'c>,
    mark: CachedStatement<'c>,
    take: CachedStatement<'c>,
    count: CachedStatement<'c>,
}

impl<'c> TakeWork<'c> {
    fn prepare(conn: &'c Connection) -> Result<Self, StoreError> {
        let prepare = |sql| {
            conn.prepare_cached(sql)
                .map_err(db("taking orchestrator messages"))
        };
        Ok(Self {
            read: prepare(READ_INSTANCE)?,
            mark: prepare(MARK_RUNNING)?,
            take: prepare(TAKE_MESSAGES)?,
            count: prepare(COUNT_ATTEMPT)?,
        })
    }

    /// Reads the instance row and takes the messages visible at `ready_at`,
    /// counting an attempt on each.
    fn take(&mut self, id: &str, ready_at: i64) -> Result<LockedRows, StoreError> {
        let mut instance = self
            .read
            .query_row([id], |row| Ok(instance_from_row(row)))
            .map_err(db("locking an instance"))?;
        if let Ok(record) = &mut instance
            && record.status == InstanceStatus::Pending
        {
            self.mark.execute([id]).map_err(db("locking an instance"))?;
            record.status = InstanceStatus::Running;
        }
        let messages = self
            .take
            .query_map((id, ready_at), QueueRow::read)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db("taking orchestrator messages"))?;
        self.count
            .execute((id, ready_at))
            .map_err(db("taking orchestrator messages"))?;
        Ok(LockedRows {
            instance,
            messages,
            ready_at,
        })
    }
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
pub(super) fn release_in(
    conn: &Connection,
    instance_id: &str,
    lock_token: &str,
) -> Result<Signals, StoreError> {
    let released = conn
        .prepare_cached(
            "UPDATE instances SET lock_token = NULL, locked_until = NULL
             WHERE instance_id = ?1 AND lock_token = ?2",
        )
        .and_then(|mut stmt| stmt.execute((instance_id, lock_token)))
        .map_err(db("releasing an instance"))?;
    // Only a real release makes messages fetchable again.
    Ok(if released > 0 {
        Signals::ORCHESTRATOR
    } else {
        Signals::NONE
    })
}

/// Gives the instance back without counting the fetch against its
/// messages (`message_ids`), fetchable again from `until`; a stale token
/// changes nothing.
pub(super) async fn defer(
    store: &SqliteHistoryStore,
    work: &OrchestrationWork,
    until: i64,
) -> Result<(), StoreError> {
    let instance_id = work.instance.instance_id.clone();
    let lock_token = work.lock_token.clone();
    let message_ids = work.messages.iter().map(|m| m.id).collect();
    // An instance whose first turn never ran is pending again.
    let unstarted = work.instance.awaits_start();
    store
        .write(|reply| Op::DeferOrchestration {
            instance_id,
            lock_token,
            message_ids,
            unstarted,
            until,
            reply,
        })
        .await
}

/// Op body of [`defer`], inside the writer's batch transaction.
pub(super) fn defer_in(
    conn: &Connection,
    instance_id: &str,
    lock_token: &str,
    message_ids: &[i64],
    unstarted: bool,
    until: i64,
) -> Result<Signals, StoreError> {
    // The lock passes to nobody until `until`: fetches skip the instance and
    // idle dispatchers wake when it ends. An instance that has not started
    // goes back to Pending, undoing the mark of the fetch.
    let deferred = conn
        .prepare_cached(
            "UPDATE instances SET lock_token = NULL, locked_until = ?3,
                 status = CASE WHEN ?4 AND status = 'Running' THEN 'Pending' ELSE status END
             WHERE instance_id = ?1 AND lock_token = ?2",
        )
        .and_then(|mut stmt| stmt.execute((instance_id, lock_token, until, unstarted)))
        .map_err(db("deferring an instance"))?;
    if deferred == 0 {
        return Ok(Signals::NONE);
    }
    let mut uncount = conn
        .prepare_cached(
            "UPDATE orchestrator_queue SET attempts = MAX(attempts - 1, 0) WHERE id = ?1",
        )
        .map_err(db("deferring an instance"))?;
    for id in message_ids {
        uncount.execute([id]).map_err(db("deferring an instance"))?;
    }
    Ok(Signals::NONE)
}
