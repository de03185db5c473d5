//! Instances and the orchestrator queue: creation, enqueue, signal-with-start,
//! the fetch that locks instances, release and deferral. The turn commit
//! that releases the lock lives in `turn.rs`.

use std::time::Duration;

use sqlx_core::query::query;
use sqlx_core::row::Row;
use sqlx_postgres::PgRow;
use sqlx_postgres::Postgres;

use super::PostgresHistoryStore;
use super::codec::{
    attempts, db, decode, encode, instance_from_json, new_lock_token, plus, to_i64, to_u64,
};
use super::notify::Work;
use crate::history::OrchestratorMessage;
use crate::providers::{
    InstanceStatus, NewInstance, OrchestrationWork, QueuedMessage, SignalOutcome, StoreError,
};
use crate::tenant::tenant_of_key;

/// The arguments of `duroxide_insert_instance` and
/// `duroxide_signal_with_start` that describe the new instance.
pub(super) struct EncodedInstance {
    pub(super) id: String,
    /// The tenant its key names.
    pub(super) tenant: String,
    pub(super) name: String,
    pub(super) parent: Option<String>,
    pub(super) parent_id: Option<i64>,
    pub(super) parent_execution: Option<i64>,
    pub(super) visible_at: i64,
    /// The start message, serialized.
    pub(super) start: String,
}

impl EncodedInstance {
    /// Range-checks and serializes `new`.
    pub(super) fn new(new: &NewInstance) -> Result<Self, StoreError> {
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
        Ok(Self {
            id: new.instance_id.clone(),
            tenant: tenant_of_key(&new.instance_id).to_owned(),
            name: new.orchestration_name.clone(),
            parent: new.parent_instance.clone(),
            parent_id: new.parent_id.map(|p| to_i64(p, "parent_id")).transpose()?,
            parent_execution: new
                .parent_execution_id
                .map(|p| to_i64(p, "parent_execution_id"))
                .transpose()?,
            visible_at: to_i64(new.visible_at_ms, "visible_at_ms")?,
            start,
        })
    }
}

/// Inserts the instance row and its start message together: one statement,
/// which also notifies the other processes.
pub(super) async fn create_instance(
    store: &PostgresHistoryStore,
    new: NewInstance,
) -> Result<(), StoreError> {
    let e = EncodedInstance::new(&new)?;
    let created: bool = sqlx_core::query_scalar::query_scalar(
        "SELECT duroxide_insert_instance($1, $9, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&e.id)
    .bind(&e.name)
    .bind(&e.parent)
    .bind(e.parent_id)
    .bind(e.parent_execution)
    .bind(e.visible_at)
    .bind(&e.start)
    .bind(store.now()?)
    .bind(&e.tenant)
    .fetch_one(&store.pool)
    .await
    .map_err(db("creating an instance"))?;
    if !created {
        return Err(StoreError::InstanceExists(new.instance_id));
    }
    store.made_fetchable(Work::Orchestrator);
    Ok(())
}

/// Enqueues a message if, and only if, its instance exists.
pub(super) async fn enqueue_message(
    store: &PostgresHistoryStore,
    instance_id: &str,
    message: &OrchestratorMessage,
    visible_at_ms: u64,
) -> Result<(), StoreError> {
    let visible_at = to_i64(visible_at_ms, "visible_at_ms")?;
    let message = encode(message, "orchestrator message")?;
    let queued: bool = sqlx_core::query_scalar::query_scalar("SELECT duroxide_enqueue($1, $2, $3)")
        .bind(instance_id)
        .bind(&message)
        .bind(visible_at)
        .fetch_one(&store.pool)
        .await
        .map_err(db("enqueueing an orchestrator message"))?;
    if !queued {
        return Err(StoreError::InstanceNotFound(instance_id.to_owned()));
    }
    store.made_fetchable(Work::Orchestrator);
    Ok(())
}

/// Creates the instance `new` names if its id is free, then queues `event`
/// for it, in one statement.
pub(super) async fn signal_with_start(
    store: &PostgresHistoryStore,
    new: NewInstance,
    event: &OrchestratorMessage,
) -> Result<SignalOutcome, StoreError> {
    let e = EncodedInstance::new(&new)?;
    let event = encode(event, "orchestrator message")?;
    let outcome: String = sqlx_core::query_scalar::query_scalar(
        "SELECT duroxide_signal_with_start($1, $10, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&e.id)
    .bind(&e.name)
    .bind(&e.parent)
    .bind(e.parent_id)
    .bind(e.parent_execution)
    .bind(e.visible_at)
    .bind(&e.start)
    .bind(store.now()?)
    .bind(&event)
    .bind(&e.tenant)
    .fetch_one(&store.pool)
    .await
    .map_err(db("signalling an instance"))?;
    let outcome = match outcome.as_str() {
        "started" => SignalOutcome::Started,
        "signalled" => SignalOutcome::Signalled,
        // Purged between the two steps of the function.
        "missing" => return Err(StoreError::InstanceNotFound(new.instance_id)),
        status => {
            let status = InstanceStatus::parse(status).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown instance status '{status}'"))
            })?;
            return Err(StoreError::InstanceFinished {
                instance: new.instance_id,
                status,
            });
        }
    };
    store.made_fetchable(Work::Orchestrator);
    Ok(outcome)
}

/// Locks up to `$3` unlocked instances (at `$1`, now) whose earliest
/// message is visible by `$2` (now plus the lookahead), with token `$4`
/// until `$5` ms past each turn's ready time; marks a pending one running;
/// counts an attempt on, and returns, the messages visible at each turn's
/// ready time.
///
/// Fair between tenants: the tenants with ready instances take turns, one
/// instance from each (its earliest), then a second from each, ..., the
/// round starting with the first tenant after `$6`, the one the store's
/// last fetch served last. The rows come back in that order, with their
/// tenant. `SKIP LOCKED`: rows another fetcher or a committing turn holds
/// are passed over, never waited for. (The ranking reads every ready
/// instance; SQLite's fetch seeks tenant by tenant instead. Fine while
/// ready work is what the dispatchers are about to take anyway.)
///
/// The statement reads the queue as of its start, but locks each instance
/// row as it is when reached: a row written since the start (a turn
/// committed, a message queued: every write that queues a message also
/// writes its instance's row) is passed over, as `xmin` tells, for the next
/// fetch to take with its messages. Taken, it would come with the messages
/// of the statement's start only, without those the later write queued
/// (a continue-as-new's own message, say, leaving an event it should carry
/// to be applied to the execution that had ended).
const FETCH: &str = "
WITH ready AS (
    SELECT instance_id, tenant, xmin AS version,
           row_number() OVER (PARTITION BY tenant ORDER BY next_visible_at, instance_id)
               AS round
    FROM instances
    WHERE next_visible_at <= $2 AND (locked_until IS NULL OR locked_until <= $1)),
candidates AS (
    SELECT i.instance_id, GREATEST(i.next_visible_at, $1) AS ready_at, r.tenant, r.round,
           r.tenant <= $6 AS wrapped
    FROM ready r JOIN instances i ON i.instance_id = r.instance_id
    WHERE i.next_visible_at <= $2 AND (i.locked_until IS NULL OR i.locked_until <= $1)
      AND i.xmin = r.version
    ORDER BY r.round, r.tenant <= $6, r.tenant
    LIMIT $3
    FOR NO KEY UPDATE OF i SKIP LOCKED),
locked AS (
    UPDATE instances i SET lock_token = $4, locked_until = c.ready_at + $5,
        status = CASE WHEN i.status = 'Pending' THEN 'Running' ELSE i.status END
    FROM candidates c WHERE i.instance_id = c.instance_id
    RETURNING i.instance_id, row_to_json(i.*)::text AS row, c.ready_at, c.tenant, c.round,
        c.wrapped),
taken AS (
    UPDATE orchestrator_queue q SET attempts = q.attempts + 1
    FROM locked l WHERE q.instance_id = l.instance_id AND q.visible_at <= l.ready_at
    RETURNING q.instance_id, q.id, q.message, q.attempts, q.visible_at)
SELECT l.row, l.ready_at, m.ids, m.messages, m.attempts, m.visible_at, l.tenant
FROM locked l LEFT JOIN LATERAL (
    SELECT array_agg(t.id ORDER BY t.id) AS ids,
           array_agg(t.message ORDER BY t.id) AS messages,
           array_agg(t.attempts ORDER BY t.id) AS attempts,
           array_agg(t.visible_at ORDER BY t.id) AS visible_at
    FROM taken t WHERE t.instance_id = l.instance_id) m ON TRUE
ORDER BY l.round, l.wrapped, l.tenant";

/// An instance locked for a turn, as the database returned it: the row as
/// JSON, when the turn may start, and its messages as parallel arrays.
pub(super) struct LockedRows {
    pub(super) row: String,
    pub(super) ready_at: i64,
    pub(super) ids: Vec<i64>,
    pub(super) messages: Vec<String>,
    pub(super) attempts: Vec<i64>,
    pub(super) visible_at: Vec<i64>,
}

impl LockedRows {
    /// Reads a row of [`FETCH`] (or its like): the columns in its order.
    fn read(row: &PgRow) -> Result<Self, sqlx_core::Error> {
        Ok(Self {
            row: row.try_get(0)?,
            ready_at: row.try_get(1)?,
            ids: row.try_get::<Option<Vec<i64>>, _>(2)?.unwrap_or_default(),
            messages: row
                .try_get::<Option<Vec<String>>, _>(3)?
                .unwrap_or_default(),
            attempts: row.try_get::<Option<Vec<i64>>, _>(4)?.unwrap_or_default(),
            visible_at: row.try_get::<Option<Vec<i64>>, _>(5)?.unwrap_or_default(),
        })
    }

    /// Decodes the locked work. An unreadable row or message fails only its
    /// instance, which stays locked until the lease expires instead of being
    /// fetched again and again.
    pub(super) fn decode(self, lock_token: &str) -> Result<OrchestrationWork, StoreError> {
        let instance = instance_from_json(&self.row)?;
        let what = format!("queued message of '{}'", instance.instance_id);
        if [
            self.messages.len(),
            self.attempts.len(),
            self.visible_at.len(),
        ]
        .iter()
        .any(|&n| n != self.ids.len())
        {
            return Err(StoreError::Corrupt(format!("{what}: uneven columns")));
        }
        let messages = self
            .ids
            .iter()
            .zip(&self.messages)
            .zip(self.attempts.iter().zip(&self.visible_at))
            .map(|((&id, text), (&count, &visible_at))| {
                Ok(QueuedMessage {
                    id,
                    message: decode(text, &what)?,
                    attempts: attempts(count)?,
                    visible_at_ms: to_u64(visible_at, "visible_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(OrchestrationWork {
            instance,
            lock_token: lock_token.to_owned(),
            messages,
            ready_at_ms: to_u64(self.ready_at, "ready time")?,
        })
    }
}

/// Locks up to `max` instances whose messages become visible earliest,
/// within `lookahead`, and takes the messages visible when each turn may
/// start: one statement.
pub(super) async fn fetch(
    store: &PostgresHistoryStore,
    max: usize,
    lock_for: Duration,
    lookahead: Duration,
) -> Result<Vec<Result<OrchestrationWork, StoreError>>, StoreError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let now = store.now()?;
    let lock_token = new_lock_token();
    let rows = query::<Postgres>(FETCH)
        .bind(now)
        .bind(plus(now, lookahead))
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .bind(&lock_token)
        .bind(plus(0, lock_for))
        .bind(store.rotation.last())
        .fetch_all(&store.pool)
        .await
        .map_err(db("locking orchestration work"))?;
    // The next fetch starts its round after the tenant served last.
    if let Some(last) = rows.last() {
        let tenant: String = last.try_get(6).map_err(db("reading orchestration work"))?;
        store.rotation.set(tenant);
    }
    rows.iter()
        .map(|row| {
            let rows = LockedRows::read(row).map_err(db("reading orchestration work"))?;
            Ok(rows.decode(&lock_token))
        })
        .collect()
}

/// Gives the instance back without committing; a stale token changes nothing.
pub(super) async fn release(
    store: &PostgresHistoryStore,
    instance_id: &str,
    lock_token: &str,
) -> Result<(), StoreError> {
    let released = query::<Postgres>(
        "UPDATE instances SET lock_token = NULL, locked_until = NULL
         WHERE instance_id = $1 AND lock_token = $2",
    )
    .bind(instance_id)
    .bind(lock_token)
    .execute(&store.pool)
    .await
    .map_err(db("releasing an instance"))?;
    // Only a real release makes messages fetchable again.
    if released.rows_affected() > 0 {
        store.made_fetchable(Work::Orchestrator);
    }
    Ok(())
}

/// Gives the instance back without counting the fetch against its
/// messages, fetchable again from `until_ms`; a stale token changes nothing.
pub(super) async fn defer(
    store: &PostgresHistoryStore,
    work: &OrchestrationWork,
    until_ms: u64,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = work.messages.iter().map(|m| m.id).collect();
    // The lock passes to nobody until `until`: fetches skip the instance and
    // idle dispatchers wake when it ends. An instance whose first turn this
    // was goes back to Pending, undoing the mark of the fetch.
    query::<Postgres>(
        "WITH deferred AS (
             UPDATE instances SET lock_token = NULL, locked_until = $3,
                 status = CASE WHEN $4 AND status = 'Running' THEN 'Pending' ELSE status END
             WHERE instance_id = $1 AND lock_token = $2 RETURNING instance_id)
         UPDATE orchestrator_queue SET attempts = GREATEST(attempts - 1, 0)
         WHERE id = ANY ($5) AND instance_id IN (SELECT instance_id FROM deferred)",
    )
    .bind(&work.instance.instance_id)
    .bind(&work.lock_token)
    .bind(to_i64(until_ms, "deferral time")?)
    .bind(work.instance.awaits_start())
    .bind(&ids)
    .execute(&store.pool)
    .await
    .map_err(db("deferring an instance"))?;
    Ok(())
}
