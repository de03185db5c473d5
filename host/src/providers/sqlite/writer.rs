//! Group commit: one task owns the write connection and commits whatever
//! writes are queued together, in one transaction and one sync to disk.
//!
//! Callers send an [`Op`] and await its reply. The task takes the first queued
//! op, drains whatever else is queued without waiting, runs `BEGIN IMMEDIATE`,
//! runs each op inside its own `SAVEPOINT` (a failing op is rolled back alone),
//! commits once, and only then wakes dispatchers and replies. Under load,
//! batches grow by themselves: ops queue while the previous batch syncs.

use std::sync::Arc;
use std::vec;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Executor, Sqlite};
use tokio::sync::{Notify, mpsc, oneshot};

use super::ops::{Done, Op};
use crate::providers::StoreError;

/// Most ops committed in one transaction: bounds how long one batch holds the
/// database write lock that other processes may be waiting for.
const MAX_BATCH: usize = 512;

/// Ops that may wait for the writer before senders are held back.
const QUEUE_DEPTH: usize = 4096;

/// What the store sends its writer.
enum Message {
    /// Run this op in the next batch.
    Write(Op),
    /// Commit what is queued before this, release the connection, stop, then ack.
    Close(oneshot::Sender<()>),
}

/// The store's end of the writer task. When every handle is dropped the
/// channel closes: the task commits what is still queued, releases its
/// connection and ends.
#[derive(Debug)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Message>,
}

/// How the writer gets its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Keep one connection for the task's whole life (a file database, whose
    /// writer pool serves nobody else).
    ForLife,
    /// Take the connection for each batch and give it back after (an
    /// in-memory database, whose single connection also serves reads).
    PerBatch,
}

impl WriterHandle {
    /// Spawns the writer task on the current tokio runtime.
    pub(super) fn spawn(
        pool: SqlitePool,
        hold: Hold,
        orchestrator_signal: Arc<Notify>,
        activity_signal: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Database("the SQLite store must be opened inside a tokio runtime".into())
        })?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            rx,
            pool,
            hold,
            lease: None,
            orchestrator_signal,
            activity_signal,
        };
        // Detached on purpose: the task ends when the channel closes, and a
        // runtime shutting down drops it, closing its connection (which rolls
        // back any batch in flight).
        drop(runtime.spawn(writer.run()));
        Ok(Self { tx })
    }

    /// Queues `op`; its reply channel carries the result once its batch
    /// has committed (or failed).
    pub(super) async fn send(&self, op: Op) -> Result<(), StoreError> {
        self.tx.send(Message::Write(op)).await.map_err(|_| closed())
    }

    /// Commits everything queued so far and stops the writer, releasing its
    /// connection. Returns at once if the writer has already stopped.
    pub(super) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Close(ack)).await.is_ok() {
            // An error means the task is gone, which is what we wait for.
            let _ = done.await;
        }
    }
}

/// The error of a write the writer can no longer run.
pub(super) fn closed() -> StoreError {
    StoreError::Database("the store is closed".into())
}

/// The writer connection, checked out of the writer pool.
struct Lease {
    conn: PoolConnection<Sqlite>,
    /// False while a transaction may be open on the connection. A lease
    /// dropped unclean (the task cancelled mid-batch, or a failed rollback)
    /// closes the connection, which rolls back, instead of returning it to
    /// the pool with a transaction and the write lock still held.
    clean: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.clean {
            self.conn.close_on_drop();
        }
    }
}

/// The writer task's state.
struct Writer {
    rx: mpsc::Receiver<Message>,
    pool: SqlitePool,
    hold: Hold,
    lease: Option<Lease>,
    orchestrator_signal: Arc<Notify>,
    activity_signal: Arc<Notify>,
}

impl Writer {
    /// Commits batches until the channel closes or a close is requested.
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = self.rx.recv().await {
            let mut close = None;
            match first {
                Message::Write(op) => batch.push(op),
                Message::Close(ack) => close = Some(ack),
            }
            // Everything already queued joins this batch: those callers have
            // been waiting on the previous commit, and share the next one.
            while close.is_none() && batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(Message::Write(op)) => batch.push(op),
                    Ok(Message::Close(ack)) => close = Some(ack),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit_batch(std::mem::take(&mut batch)).await;
            }
            if self.hold == Hold::PerBatch {
                self.lease = None;
            }
            if let Some(ack) = close {
                // Give the connection back before acking, so the store's
                // `close` finds the writer pool idle and can close it.
                self.lease = None;
                let _ = ack.send(());
                return;
            }
        }
    }

    /// Runs `ops` in one transaction and delivers every result.
    async fn commit_batch(&mut self, ops: Vec<Op>) {
        let mut done = Vec::with_capacity(ops.len());
        let mut pending = ops.into_iter();
        match self.try_batch(&mut pending, &mut done).await {
            Ok(()) => {
                // Durable now: wake dispatchers, then hand out the results.
                for d in &done {
                    let signals = d.signals();
                    if signals.orchestrator {
                        self.orchestrator_signal.notify_one();
                    }
                    if signals.activity {
                        self.activity_signal.notify_one();
                    }
                }
                done.into_iter().for_each(Done::deliver);
            }
            Err(reason) => {
                self.roll_back().await;
                tracing::warn!(
                    "a write batch of {} ops failed: {reason}",
                    done.len() + pending.len()
                );
                let error = || StoreError::Database(reason.clone());
                done.into_iter().for_each(|d| d.fail(error()).deliver());
                pending.for_each(|op| op.failed(error()).deliver());
            }
        }
    }

    /// Begins, runs every op of `pending` into `done`, and commits. On error
    /// the transaction may be open; ops not yet run stay in `pending`.
    async fn try_batch(
        &mut self,
        pending: &mut vec::IntoIter<Op>,
        done: &mut Vec<Done>,
    ) -> Result<(), String> {
        let lease = self.lease().await?;
        lease.clean = false;
        let conn: &mut SqliteConnection = &mut lease.conn;
        // Each round trip to the connection's thread costs about as much as
        // a small statement, so the savepoint bookkeeping between two ops is
        // one script: close the previous op's savepoint (keeping or undoing
        // its writes) and open the next one.
        //
        // IMMEDIATE takes the write lock up front (waiting out other
        // processes for the busy timeout), so no op fails halfway on a lock
        // upgrade, which WAL cannot wait for.
        let mut boundary = BEGIN;
        let mut last_ok = true;
        while pending.len() > 0 {
            // Run before the op is taken from `pending`, so an op is either
            // run or still pending when this fails.
            script(conn, boundary).await?;
            let Some(op) = pending.next() else { break };
            let d = op.execute(conn).await;
            last_ok = d.is_ok();
            done.push(d);
            boundary = if last_ok { NEXT } else { UNDO_THEN_NEXT };
        }
        script(conn, if last_ok { COMMIT } else { UNDO_THEN_COMMIT }).await?;
        lease.clean = true;
        Ok(())
    }

    /// Ends a failed batch's transaction, if one is open.
    async fn roll_back(&mut self) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        match sqlx::query("ROLLBACK").execute(&mut *lease.conn).await {
            // An SQLite error here is "no transaction is active" (BEGIN
            // failed, or SQLite rolled back already): the connection is fine.
            Ok(_) | Err(sqlx::Error::Database(_)) => lease.clean = true,
            Err(e) => {
                // The connection itself failed: drop it (closing it, which
                // rolls back) and take a fresh one for the next batch.
                tracing::warn!("the write connection failed and is replaced: {e}");
                self.lease = None;
            }
        }
    }

    /// The writer connection, taken from the pool if not held already.
    async fn lease(&mut self) -> Result<&mut Lease, String> {
        let lease = match self.lease.take() {
            Some(lease) => lease,
            None => Lease {
                conn: self
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| format!("acquiring the write connection: {e}"))?,
                clean: true,
            },
        };
        Ok(self.lease.insert(lease))
    }
}

/// Starts the batch and the first op's savepoint.
const BEGIN: &str = "BEGIN IMMEDIATE; SAVEPOINT op";
/// Keeps the previous op's writes and opens the next op's savepoint.
const NEXT: &str = "RELEASE op; SAVEPOINT op";
/// Undoes the failed previous op's writes, and only those, and opens the
/// next op's savepoint. If SQLite already rolled the whole transaction back
/// (a full disk, an I/O error), `ROLLBACK TO` fails and so does the batch,
/// before any later op could run outside the transaction.
const UNDO_THEN_NEXT: &str = "ROLLBACK TO op; RELEASE op; SAVEPOINT op";
/// Commits the batch; `COMMIT` releases the open savepoint.
const COMMIT: &str = "COMMIT";
/// Undoes the failed last op, then commits the rest.
const UNDO_THEN_COMMIT: &str = "ROLLBACK TO op; COMMIT";

/// Runs a script of the batch protocol in one round trip; the first failing
/// statement stops it.
async fn script(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), String> {
    conn.execute(sqlx::raw_sql(sql))
        .await
        .map(|_| ())
        .map_err(|e| format!("{sql}: {e}"))
}
