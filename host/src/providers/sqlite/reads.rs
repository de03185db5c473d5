//! Read-only queries, served by a pool of reader connections on tokio's
//! blocking threads, so reads never wait behind the writer under WAL.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::Semaphore;

use super::codec::{READ_INSTANCE, db, instance_from_row, now_i64, to_i64, to_u64};
use super::connect::Location;
use super::fair;
use crate::history::Event;
use crate::providers::{InstanceRecord, QueueStats, StoreError};

/// Most reads running at once, and so most reader connections. A burst of
/// reads (every instance replaying after a restart) waits for a connection
/// instead of opening one per read on as many blocking threads.
const MAX_READERS: usize = 8;

/// Reader connections, opened on demand and reused.
#[derive(Debug)]
pub(super) struct ReadPool {
    pub(super) location: Location,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// A pool opening connections to `location`.
    pub(super) fn new(location: Location) -> Self {
        Self {
            location,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(MAX_READERS)),
        }
    }

    /// Runs `read` on a reader connection, on a blocking thread.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::database(format!("the reader pool is closed: {e}")))?;
        let idle = Arc::clone(&self.idle);
        let location = self.location.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let conn = match taken {
                Some(conn) => conn,
                None => location.open_reader()?,
            };
            let result = read(&conn);
            let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::database(format!("a read was abandoned: {e}")))?
    }

    /// Closes the idle connections; reads after this open new ones.
    pub(super) fn close(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The instance's row, if any.
pub(super) async fn instance(
    pool: &ReadPool,
    instance_id: &str,
) -> Result<Option<InstanceRecord>, StoreError> {
    let instance_id = instance_id.to_owned();
    pool.run(move |conn| {
        let mut stmt = conn
            .prepare_cached(READ_INSTANCE)
            .map_err(db("reading instance"))?;
        let mut rows = stmt.query([&instance_id]).map_err(db("reading instance"))?;
        match rows.next().map_err(db("reading instance"))? {
            Some(row) => instance_from_row(row).map(Some),
            None => Ok(None),
        }
    })
    .await
}

/// One execution's events in replay order. A row holds one turn's events as
/// a JSON array, keyed by the seq of its first event.
pub(super) async fn history(
    pool: &ReadPool,
    instance_id: &str,
    execution_id: u64,
) -> Result<Vec<Event>, StoreError> {
    let instance_id = instance_id.to_owned();
    let execution_id = to_i64(execution_id, "execution_id")?;
    pool.run(move |conn| {
        let mut stmt = conn
            .prepare_cached(
                "SELECT event FROM history WHERE instance_id = +?1 AND execution_id = +?2
                 ORDER BY seq",
            )
            .map_err(db("reading history"))?;
        let mut rows = stmt
            .query((&instance_id, execution_id))
            .map_err(db("reading history"))?;
        let mut events = Vec::new();
        // Names the first event the unreadable row holds, so the failure
        // says where the history broke.
        let corrupt = |position: usize, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!(
                "history of '{instance_id}' execution {execution_id}, event #{position}: {e}"
            ))
        };
        while let Some(row) = rows.next().map_err(db("reading history"))? {
            let text = row
                .get_ref(0)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(|e| corrupt(events.len(), &e))?;
            let turn: Vec<Event> =
                serde_json::from_str(text).map_err(|e| corrupt(events.len(), &e))?;
            events.extend(turn);
        }
        Ok(events)
    })
    .await
}

/// The earliest future moment at which a queued activity or a message of an
/// unlocked instance becomes visible, or a lock expires. (A locked instance's
/// later messages wait for its commit, which signals the dispatcher.) Each
/// branch is one indexed lookup, so an idle poll stays cheap however many
/// instances exist.
pub(super) async fn next_wake_at_ms(pool: &ReadPool) -> Result<Option<u64>, StoreError> {
    let now = now_i64(&*pool.location.clock)?;
    pool.run(move |conn| {
        // The instances' part tenant by tenant: their index begins with it.
        let message_at = fair::earliest_unlocked(conn, now, now)?;
        let at: Option<i64> = conn
            .prepare_cached(
                "SELECT MIN(t) FROM (
                     SELECT ?2 AS t
                     UNION ALL SELECT MIN(visible_at) FROM activity_queue WHERE visible_at > ?1
                     UNION ALL SELECT MIN(locked_until) FROM activity_queue WHERE locked_until > ?1
                     UNION ALL SELECT MIN(locked_until) FROM instances WHERE locked_until > ?1
                 )",
            )
            .and_then(|mut stmt| stmt.query_row((now, message_at), |r| r.get(0)).optional())
            .map_err(db("computing the next wake-up"))?
            .flatten();
        at.map(|t| to_u64(t, "wake-up time")).transpose()
    })
    .await
}

/// How much work waits in the queues now. Each count walks its queue,
/// which is small while the runtimes keep up; the metrics sample it
/// every few seconds.
pub(super) async fn queue_stats(pool: &ReadPool) -> Result<QueueStats, StoreError> {
    let now = now_i64(&*pool.location.clock)?;
    pool.run(move |conn| {
        let count = |sql: &str| -> Result<(u64, Option<u64>), StoreError> {
            let (depth, oldest): (i64, Option<i64>) = conn
                .prepare_cached(sql)
                .and_then(|mut stmt| stmt.query_row([now], |row| Ok((row.get(0)?, row.get(1)?))))
                .map_err(db("counting queued work"))?;
            Ok((
                to_u64(depth, "queue depth")?,
                oldest.map(|t| to_u64(t, "visible_at")).transpose()?,
            ))
        };
        let (orchestrator_depth, orchestrator_oldest_at_ms) = count(
            "SELECT COUNT(*), MIN(visible_at) FROM orchestrator_queue WHERE visible_at <= ?1",
        )?;
        let (activity_depth, activity_oldest_at_ms) = count(
            "SELECT COUNT(*), MIN(visible_at) FROM activity_queue
             WHERE visible_at <= ?1 AND (locked_until IS NULL OR locked_until <= ?1)",
        )?;
        Ok(QueueStats {
            orchestrator_depth,
            orchestrator_oldest_at_ms,
            activity_depth,
            activity_oldest_at_ms,
        })
    })
    .await
}
