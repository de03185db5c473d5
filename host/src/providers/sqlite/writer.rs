//! Group commit: one thread owns the write connection and commits whatever
//! writes are queued together, in one transaction and one sync to disk.
//!
//! Callers send an [`Op`] and await its reply. The thread takes the first queued
//! op, drains whatever else is queued without waiting, runs `BEGIN IMMEDIATE`,
//! runs each op, commits once, and only then wakes dispatchers and replies.
//! An op that fails partway sends the batch round again with each op in its
//! own `SAVEPOINT`, so the failing op is undone alone. Under load, batches grow
//! by themselves: ops queue while the previous batch syncs.

use std::sync::Arc;
use std::vec;

use rusqlite::Connection;
use tokio::sync::{Notify, mpsc, oneshot};

use super::codec::sqlite_error;
use super::connect::Location;
use super::ops::{Done, Op, Output, Peek};
use crate::clock::Clock;
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
    /// Commit what is queued before this, close the connection, stop, then ack.
    Close(oneshot::Sender<()>),
}

/// The store's end of the writer thread. When every handle is dropped the
/// channel closes: the thread commits what is still queued, closes its
/// connection and ends.
#[derive(Debug)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Message>,
}

impl WriterHandle {
    /// Starts the writer thread, which owns `conn` (opened from `location`,
    /// which it reopens if the connection fails).
    pub(super) fn spawn(
        conn: Connection,
        location: Location,
        orchestrator_signal: Arc<Notify>,
        activity_signal: Arc<Notify>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            rx,
            conn: Some(conn),
            location,
            orchestrator_signal,
            activity_signal,
        };
        // A thread of its own rather than a task: SQLite calls block, and a
        // dedicated thread runs a whole batch without handing every statement
        // to another thread and back.
        std::thread::Builder::new()
            .name("duroxide-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::database(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Queues `op`; its reply channel carries the result once its batch
    /// has committed (or failed).
    pub(super) async fn send(&self, op: Op) -> Result<(), StoreError> {
        self.tx.send(Message::Write(op)).await.map_err(|_| closed())
    }

    /// Commits everything queued so far and stops the writer, closing its
    /// connection. Returns at once if the writer has already stopped.
    pub(super) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Message::Close(ack)).await.is_ok() {
            // An error means the thread is gone, which is what we wait for.
            let _ = done.await;
        }
    }
}

/// The error of a write the writer can no longer run.
pub(super) fn closed() -> StoreError {
    StoreError::database("the store is closed")
}

/// The writer thread's state.
struct Writer {
    rx: mpsc::Receiver<Message>,
    /// `None` once closed, or while a failed connection could not be reopened.
    conn: Option<Connection>,
    location: Location,
    orchestrator_signal: Arc<Notify>,
    activity_signal: Arc<Notify>,
}

impl Writer {
    /// Commits batches until the channel closes or a close is requested.
    fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = self.rx.blocking_recv() {
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
                self.commit_batch(std::mem::take(&mut batch));
            }
            if let Some(ack) = close {
                // Closed before acking, so the store's `close` returns with
                // the WAL checkpointed and the file free to copy or reopen.
                self.conn = None;
                let _ = ack.send(());
                return;
            }
        }
    }

    /// Runs `ops` in one transaction and delivers every result, counting
    /// the commit in the metrics.
    fn commit_batch(&mut self, ops: Vec<Op>) {
        let started = std::time::Instant::now();
        let count = ops.len();
        self.run_batch(ops);
        let m = crate::metrics::global();
        m.commit_seconds
            .observe(crate::metrics::seconds(started.elapsed()));
        m.commit_ops.observe(count as f64);
    }

    /// Runs `ops` in one transaction and delivers every result.
    fn run_batch(&mut self, ops: Vec<Op>) {
        let clock = self.location.clock.clone();
        let Some(conn) = self.connection() else {
            return unavailable(ops);
        };
        let ops: Vec<Op> = skip_idle_fetches(conn, ops, &*clock).collect();
        if ops.is_empty() {
            return;
        }
        match try_without_savepoints(conn, &ops, &*clock) {
            Ok(outputs) => {
                let done = ops.into_iter().zip(outputs).map(|(op, out)| op.finish(out));
                self.deliver(done.collect());
                return;
            }
            Err(Unfinished::Unclean) => {
                // An op failed partway: undo everything and run the batch
                // again, each op in a savepoint of its own.
                self.roll_back();
            }
            Err(Unfinished::Failed(error)) => {
                self.fail(ops.into_iter(), Vec::new(), &error);
                return;
            }
        }
        let Some(conn) = self.connection() else {
            return unavailable(ops);
        };
        let mut pending = ops.into_iter();
        let mut done = Vec::with_capacity(pending.len());
        match try_with_savepoints(conn, &mut pending, &mut done, &*clock) {
            Ok(()) => self.deliver(done),
            Err(error) => self.fail(pending, done, &error),
        }
    }

    /// The batch committed: wake dispatchers, then hand out the results.
    fn deliver(&self, done: Vec<Done>) {
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

    /// The batch failed as a whole: nothing it wrote exists.
    fn fail(&mut self, pending: vec::IntoIter<Op>, done: Vec<Done>, error: &StoreError) {
        self.roll_back();
        tracing::warn!(
            "a write batch of {} ops failed: {error}",
            done.len() + pending.len()
        );
        let error = || match error {
            StoreError::Database(e) => StoreError::Database(e.clone()),
            other => StoreError::database(other.to_string()),
        };
        done.into_iter().for_each(|d| d.fail(error()).deliver());
        pending.for_each(|op| op.failed(error()).deliver());
    }

    /// Ends a failed batch's transaction, if one is open.
    fn roll_back(&mut self) {
        let Some(conn) = &self.conn else { return };
        if conn.is_autocommit() {
            // No transaction is open (BEGIN failed, or SQLite rolled back).
            return;
        }
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            // The connection itself failed: close it (which rolls back) and
            // open a fresh one for the next batch.
            tracing::warn!("the write connection failed and is replaced: {e}");
            self.conn = None;
        }
    }

    /// The write connection, reopened if a failure closed it.
    fn connection(&mut self) -> Option<&Connection> {
        if self.conn.is_none() {
            match self.location.open_writer() {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => tracing::error!("reopening the write connection failed: {e}"),
            }
        }
        self.conn.as_ref()
    }
}

/// Fails every op of a batch that has no connection to run on.
fn unavailable(ops: Vec<Op>) {
    let error = || StoreError::database("the write connection is unavailable");
    ops.into_iter().for_each(|op| op.failed(error()).deliver());
}

/// Answers, without a transaction, the fetches of a batch made only of
/// fetches when their queue has nothing to take: idle polls then never take
/// the write lock that other processes would wait for. Returns the ops left.
fn skip_idle_fetches(conn: &Connection, ops: Vec<Op>, clock: &dyn Clock) -> vec::IntoIter<Op> {
    if !ops.iter().all(Op::is_fetch) {
        return ops.into_iter();
    }
    let peek = match Peek::take(conn, clock) {
        Ok(peek) => peek,
        // The transaction will meet the same failure and report it.
        Err(_) => return ops.into_iter(),
    };
    let (idle, busy): (Vec<Op>, Vec<Op>) = ops.into_iter().partition(|op| peek.finds_nothing(op));
    idle.into_iter().for_each(|op| op.nothing().deliver());
    busy.into_iter()
}

/// Why a batch run without savepoints did not commit.
enum Unfinished {
    /// An op failed in a way that may have left some of its writes behind.
    Unclean,
    /// The transaction itself failed (begin or commit).
    Failed(StoreError),
}

/// Begins, runs every op, and commits: the common case, where every op
/// either succeeds or is refused before it writes anything (see
/// [`Output::is_clean`]), needs no savepoints. Their bookkeeping, and the
/// copy of every page an op touches that a savepoint keeps, cost a large share
/// of a batch. On error the transaction may be open.
fn try_without_savepoints(
    conn: &Connection,
    ops: &[Op],
    clock: &dyn Clock,
) -> Result<Vec<Output>, Unfinished> {
    // IMMEDIATE takes the write lock up front (waiting out other processes
    // for the busy timeout), so no op fails halfway on a lock upgrade, which
    // WAL cannot wait for.
    step(conn, "BEGIN IMMEDIATE").map_err(Unfinished::Failed)?;
    let mut outputs = Vec::with_capacity(ops.len());
    for op in ops {
        let output = op.run(conn, clock);
        if !output.is_clean() {
            return Err(Unfinished::Unclean);
        }
        outputs.push(output);
    }
    step(conn, "COMMIT").map_err(Unfinished::Failed)?;
    Ok(outputs)
}

/// Begins, runs every op of `pending` into `done`, each in its own
/// savepoint so a failing op is undone alone, and commits. On error the
/// transaction may be open; ops not yet run stay in `pending`.
fn try_with_savepoints(
    conn: &Connection,
    pending: &mut vec::IntoIter<Op>,
    done: &mut Vec<Done>,
    clock: &dyn Clock,
) -> Result<(), StoreError> {
    step(conn, "BEGIN IMMEDIATE")?;
    while pending.len() > 0 {
        // Run before the op is taken from `pending`, so an op is either
        // run or still pending when this fails.
        step(conn, "SAVEPOINT op")?;
        let Some(op) = pending.next() else { break };
        let d = op.execute(conn, clock);
        let failed = !d.is_ok();
        done.push(d);
        if failed {
            // If SQLite already rolled the whole transaction back (a full
            // disk, an I/O error), this fails and so does the batch, before
            // any later op could run outside the transaction.
            step(conn, "ROLLBACK TO op")?;
        }
        step(conn, "RELEASE op")?;
    }
    step(conn, "COMMIT")
}

/// Runs one statement of the batch protocol.
fn step(conn: &Connection, sql: &'static str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(|e| sqlite_error(sql, e))
}
