//! The turn commit: everything one orchestration turn produced, written
//! atomically (inside the writer's batch transaction) together with the
//! release of the instance lock.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::SqliteHistoryStore;
use super::activity_queue::{ActivityLock, delete_locked};
use super::codec::{READ_INSTANCE, db, encode, instance_from_row, new_lock_token, plus, to_i64};
use super::ops::{Op, Signals};
use super::orchestrator_queue::{insert_instance, insert_message};
use crate::history::ActivityWork;
use crate::providers::{InstanceRecord, LockedActivity, LockedTurn, StoreError, TurnCommit};

/// The instance's status, if the turn's lock is still held: `?1` instance,
/// `?2` lock token, `?3` now. Checked first, so a turn that lost its lock
/// writes nothing (and cannot trip over rows a newer owner wrote); no other
/// writer can take the lock while the batch transaction holds the database's
/// write lock.
const LOCK_HELD: &str = "SELECT status FROM instances
     WHERE instance_id = ?1 AND lock_token = ?2 AND locked_until > ?3";

// The lists of a turn are written one row per statement execution: each
// statement is prepared once and runs on the writer's thread, so a row costs
// only SQLite's own work. (Expanding JSON arrays with `json_each` instead
// makes SQLite re-plan the statement on every new binding.)

/// `?1` instance, `?2` execution id, `?3` seq of the turn's first event, `?4`
/// the turn's events as one JSON array. A turn is one history row: a row per
/// event cost the writer a B-tree insert per event (see `reads::history`).
const APPEND_TURN: &str =
    "INSERT INTO history (instance_id, execution_id, seq, event) VALUES (?1, ?2, ?3, ?4)";

/// `?1` queue id, `?2` instance: the instance check keeps a bad id from
/// deleting another instance's message.
const DELETE_CONSUMED: &str = "DELETE FROM orchestrator_queue WHERE id = ?1 AND instance_id = +?2";

/// `?1` instance, `?2` serialized work, `?3` visible at.
const ENQUEUE_ACTIVITY: &str =
    "INSERT INTO activity_queue (instance_id, message, visible_at) VALUES (?1, ?2, ?3)";

/// [`ENQUEUE_ACTIVITY`] for work the committing runtime runs at once: locked
/// with token `?4` until `?5`, its first attempt counted as a fetch would.
const ENQUEUE_LOCKED_ACTIVITY: &str = "INSERT INTO activity_queue
     (instance_id, message, visible_at, lock_token, locked_until, attempts)
     VALUES (?1, ?2, ?3, ?4, ?5, 1)";

/// When the earliest message still queued for instance `?1` becomes visible
/// (arrived during the turn, sent to itself, or due later).
const NEXT_VISIBLE: &str = "SELECT MIN(visible_at) FROM orchestrator_queue WHERE instance_id = +?1";

/// The final update of a turn, setting `$status` (the status column, or
/// nothing) with the rest; see [`FINISH_TURN`].
macro_rules! finish_turn {
    ($status:literal) => {
        concat!(
            "UPDATE instances SET ",
            $status,
            "output = ?5,
                 orchestration_version = COALESCE(?6, orchestration_version),
                 component_digest = COALESCE(?13, component_digest),
                 execution_id = ?7, history_len = ?8, updated_at = ?3,
                 custom_status = CASE WHEN ?9 THEN ?10 ELSE custom_status END,
                 next_visible_at = ?11,
                 lock_token = CASE WHEN ?12 IS NULL THEN NULL ELSE lock_token END,
                 locked_until = ?12
             WHERE instance_id = ?1 AND lock_token = ?2 AND locked_until > ?3"
        )
    };
}

/// Updates the instance and releases its lock, last, so the lock guards every
/// earlier write; changes no row if the lock is lost. `?4` is the status,
/// `?11` the instance's next visible message time, `?12` the end of the
/// hold (the lock stays, with its token) or NULL (the lock goes). (Read by its own
/// statement: a correlated subquery here, or `RETURNING`, costs SQLite
/// several times as much.)
/// A terminal status stamps `finished_at`, which retention and the
/// management queries read.
const FINISH_TURN: &str = finish_turn!(
    "status = ?4, finished_at = CASE WHEN ?4 IN ('Completed', 'Failed', 'Cancelled')
         THEN ?3 ELSE NULL END, "
);

/// [`FINISH_TURN`] for a turn that leaves the status as it was (most turns),
/// which spares the status index an update. `?4` is bound but unused.
const FINISH_TURN_SAME_STATUS: &str = finish_turn!("");

/// A turn with its lists already serialized, so the shared writer spends its
/// time on SQL only.
pub(super) struct EncodedTurn {
    /// The commit; its `new_events`, `activities` and `messages` have been
    /// moved into the encoded fields below.
    commit: TurnCommit,
    /// The turn's events as one JSON array; `None` if it has none.
    events: Option<String>,
    /// `(instance, serialized work)`.
    activities: Vec<(String, String)>,
    /// `(instance, serialized message, visible at)`.
    messages: Vec<(String, String, i64)>,
    execution_id: i64,
    first_seq: i64,
    /// History length after the turn.
    new_len: i64,
    /// How many of `activities`, from the first, to lock for the caller.
    eager: Option<EagerLock>,
    /// The activity work the turn's completion came from, to delete.
    completed: Option<ActivityLock>,
}

/// The lock on the activities a turn's runtime runs at once.
struct EagerLock {
    count: usize,
    lock_for: Duration,
    lock_token: String,
    /// How long to hold the instance, if nothing is queued for it.
    hold: Option<Duration>,
}

/// What a committed turn locked for its caller.
pub(super) struct Locked {
    /// Queue ids of the activities locked, in the turn's order.
    pub(super) activity_ids: Vec<i64>,
    /// The instance's row after the commit, if it is still locked (boxed:
    /// it would widen every op's output).
    pub(super) held: Option<Box<InstanceRecord>>,
}

impl EncodedTurn {
    /// Serializes and range-checks everything the commit writes.
    fn new(mut commit: TurnCommit, eager: Option<EagerLock>) -> Result<Self, StoreError> {
        let new_events = std::mem::take(&mut commit.new_events);
        let events = if new_events.is_empty() {
            None
        } else {
            Some(encode(&new_events, "history events")?)
        };
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
        let new_len = u64::try_from(new_events.len())
            .ok()
            .and_then(|n| commit.history_len_before.checked_add(n))
            .ok_or_else(|| StoreError::database("history length overflows"))?;
        let new_len = to_i64(new_len, "history length")?;
        let completed = commit.completed_activity.as_ref().map(ActivityLock::of);
        Ok(Self {
            completed,
            events,
            activities,
            messages,
            commit,
            execution_id,
            first_seq,
            new_len,
            eager,
        })
    }
}

/// Writes a whole turn and releases the instance lock, or writes nothing.
pub(super) async fn commit_turn(
    store: &SqliteHistoryStore,
    commit: TurnCommit,
) -> Result<(), StoreError> {
    // Encode before queuing, keeping the shared writer's critical section short.
    let finished = finishing(&commit);
    let turn = Box::new(EncodedTurn::new(commit, None)?);
    store.write(|reply| Op::CommitTurn { turn, reply }).await?;
    announce(store, finished);
    Ok(())
}

/// The instance a commit makes terminal, if it does.
fn finishing(commit: &TurnCommit) -> Option<String> {
    commit
        .status
        .is_terminal()
        .then(|| commit.instance_id.clone())
}

/// Tells this store object's waiters that a committed turn finished the
/// instance (once the commit is durable, so a waiter reads the end).
fn announce(store: &SqliteHistoryStore, finished: Option<String>) {
    if let Some(instance_id) = finished {
        store.finished.notify(&instance_id);
    }
}

/// [`commit_turn`], locking the first `max` activities the turn schedules
/// for `lock_for`, and holding the instance for `hold` if nothing is queued
/// for it.
pub(super) async fn commit_turn_and_lock(
    store: &SqliteHistoryStore,
    commit: TurnCommit,
    max: usize,
    lock_for: Duration,
    hold: Option<Duration>,
) -> Result<LockedTurn, StoreError> {
    let works: Vec<ActivityWork> = commit.activities.iter().take(max).cloned().collect();
    let lock_token = new_lock_token();
    let eager = EagerLock {
        count: works.len(),
        lock_for,
        lock_token: lock_token.clone(),
        hold,
    };
    let finished = finishing(&commit);
    let turn = Box::new(EncodedTurn::new(commit, Some(eager))?);
    let locked = store.write(|reply| Op::CommitTurn { turn, reply }).await?;
    announce(store, finished);
    let activities = locked
        .activity_ids
        .into_iter()
        .zip(works)
        .map(|(queue_id, work)| LockedActivity {
            queue_id,
            lock_token: lock_token.clone(),
            attempts: 1,
            visible_at_ms: store.reader.location.clock.now_ms(),
            work,
        })
        .collect();
    Ok(LockedTurn {
        activities,
        held: locked.held.map(|row| *row),
    })
}

/// Op body of [`commit_turn`], inside the writer's batch transaction.
pub(super) fn commit_turn_in(
    conn: &Connection,
    t: &EncodedTurn,
    now: i64,
) -> Result<(Signals, Locked), StoreError> {
    let c = &t.commit;
    let status: Option<String> = conn
        .prepare_cached(LOCK_HELD)
        .and_then(|mut stmt| {
            stmt.query_row((&c.instance_id, &c.lock_token, now), |row| row.get(0))
                .optional()
        })
        .map_err(db("checking the instance lock"))?;
    let Some(status) = status else {
        return Err(StoreError::LockLost(format!(
            "instance '{}'",
            c.instance_id
        )));
    };
    // The first write: refused cleanly, like the instance lock above.
    if let Some(completed) = &t.completed {
        delete_locked(conn, completed, now)?;
    }
    if let Some(events) = &t.events {
        conn.prepare_cached(APPEND_TURN)
            .and_then(|mut stmt| {
                stmt.execute((&c.instance_id, t.execution_id, t.first_seq, events))
            })
            .map_err(db("appending history"))?;
    }
    if !c.consumed_messages.is_empty() {
        let mut stmt = conn
            .prepare_cached(DELETE_CONSUMED)
            .map_err(db("deleting consumed messages"))?;
        for id in &c.consumed_messages {
            stmt.execute((id, &c.instance_id))
                .map_err(db("deleting consumed messages"))?;
        }
    }
    let eager = t.eager.as_ref().map_or(0, |e| e.count);
    let mut locked = Vec::with_capacity(eager);
    if let Some(lock) = &t.eager {
        let mut stmt = conn
            .prepare_cached(ENQUEUE_LOCKED_ACTIVITY)
            .map_err(db("enqueueing activity work"))?;
        let locked_until = plus(now, lock.lock_for);
        for (instance, work) in t.activities.iter().take(eager) {
            stmt.execute((instance, work, now, &lock.lock_token, locked_until))
                .map_err(db("enqueueing activity work"))?;
            locked.push(conn.last_insert_rowid());
        }
    }
    if t.activities.len() > eager {
        let mut stmt = conn
            .prepare_cached(ENQUEUE_ACTIVITY)
            .map_err(db("enqueueing activity work"))?;
        for (instance, work) in &t.activities[eager..] {
            stmt.execute((instance, work, now))
                .map_err(db("enqueueing activity work"))?;
        }
    }
    for (instance, message, visible_at) in &t.messages {
        insert_message(conn, instance, message, *visible_at)?;
    }
    // Rare (children and detached starts): one instance at a time. Not
    // guarded by the lock; a lost lock's savepoint rollback undoes them.
    for start in &c.new_instances {
        if !insert_instance(conn, &start.instance, now)?
            && let Some(fallback) = &start.if_exists
        {
            let message = encode(&fallback.message, "orchestrator message")?;
            let visible_at = to_i64(fallback.visible_at_ms, "visible_at_ms")?;
            insert_message(conn, &fallback.instance_id, &message, visible_at)?;
        }
    }
    let custom_status = c.custom_status.as_ref().and_then(Option::as_deref);
    let next_visible: Option<i64> = conn
        .prepare_cached(NEXT_VISIBLE)
        .and_then(|mut stmt| stmt.query_row([&c.instance_id], |row| row.get(0)))
        .map_err(db("reading the instance's queue"))?;
    let hold = t.eager.as_ref().and_then(|e| e.hold);
    let held_until = hold
        .filter(|_| next_visible.is_none())
        .map(|h| plus(now, h));
    let updated = conn
        .prepare_cached(if status == c.status.as_str() {
            FINISH_TURN_SAME_STATUS
        } else {
            FINISH_TURN
        })
        .and_then(|mut stmt| {
            stmt.execute(rusqlite::params![
                &c.instance_id,
                &c.lock_token,
                now,
                c.status.as_str(),
                &c.output,
                &c.orchestration_version,
                t.execution_id,
                t.new_len,
                c.custom_status.is_some(),
                custom_status,
                next_visible,
                held_until,
                &c.component_digest,
            ])
        })
        .map_err(db("updating the instance"))?;
    // The lock was checked first and nobody else writes during the batch, so
    // this cannot happen; if it does, it is not a clean refusal, since the
    // turn's rows are written already.
    if updated == 0 {
        return Err(StoreError::database(format!(
            "the lock on instance '{}' vanished during its commit",
            c.instance_id
        )));
    }
    let pending = next_visible.is_some();

    // Messages left behind become fetchable as the lock goes; an idle
    // dispatcher did not count them while the instance was locked (see
    // `next_wake_at_ms`) and must hear about them, future ones included, so
    // it shortens its sleep.
    let signals = Signals {
        orchestrator: pending || !t.messages.is_empty() || !c.new_instances.is_empty(),
        activity: t.activities.len() > locked.len(),
    };
    // A held instance's next turn runs from the row as committed.
    let held = match held_until {
        Some(_) => conn
            .prepare_cached(READ_INSTANCE)
            .and_then(|mut stmt| stmt.query_row([&c.instance_id], |row| Ok(instance_from_row(row))))
            .map_err(db("reading the held instance"))?
            .map(|row| Some(Box::new(row)))?,
        None => None,
    };
    let locked = Locked {
        activity_ids: locked,
        held,
    };
    Ok((signals, locked))
}
