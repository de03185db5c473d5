//! The write operations the store sends to its writer thread, and their results
//! held back until the batch they ran in has committed.
//!
//! An op is data (owned arguments plus the caller's reply channel) rather than
//! a boxed closure: no allocation beyond the arguments, and the writer can
//! fail an op it never ran with the right reply type.

use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use rusqlite::types::Value;

use super::activity_queue::{self, ActivityLock};
use super::artifacts::{self, ArtifactWrite};
use super::codec::{QueueRow, now_i64, plus};
use super::fair::Rotation;
use super::management;
use super::orchestrator_queue::{self, LockedRows};
use super::turn::{self, EncodedTurn, Locked};
use super::{settings, signal};
use crate::clock::Clock;
use crate::providers::query::PurgeOutcome;
use crate::providers::{NewInstance, SignalOutcome, StoreError};

/// Where an op's result goes: the caller awaiting it.
pub(super) type ReplyTo<T> = oneshot::Sender<Result<T, StoreError>>;

/// One write, with its owned arguments and the caller's reply channel.
pub(super) enum Op {
    /// [`orchestrator_queue::create_instance`].
    CreateInstance {
        new: NewInstance,
        reply: ReplyTo<()>,
    },
    /// [`orchestrator_queue::enqueue_message`], message already serialized.
    EnqueueMessage {
        instance_id: String,
        message: String,
        visible_at: i64,
        reply: ReplyTo<()>,
    },
    /// [`signal::signal_with_start`], event already serialized.
    SignalWithStart {
        new: NewInstance,
        event: String,
        reply: ReplyTo<SignalOutcome>,
    },
    /// [`settings::set_text_limits`], value already serialized.
    SetSetting {
        name: &'static str,
        value: String,
        reply: ReplyTo<()>,
    },
    /// [`orchestrator_queue::fetch`]; the lock token is made by the caller.
    FetchOrchestrations {
        max: usize,
        lock_for: Duration,
        lookahead: Duration,
        lock_token: String,
        /// The store's rotation through the tenants with work.
        rotation: Rotation,
        reply: ReplyTo<Vec<LockedRows>>,
    },
    /// [`turn::commit_turn`]. Boxed: a turn is large and would bloat every
    /// slot of the writer's channel.
    CommitTurn {
        turn: Box<EncodedTurn>,
        reply: ReplyTo<Locked>,
    },
    /// [`orchestrator_queue::release`].
    ReleaseOrchestration {
        instance_id: String,
        lock_token: String,
        reply: ReplyTo<()>,
    },
    /// [`activity_queue::fetch`]; the lock token is made by the caller.
    FetchActivities {
        limit: i64,
        lock_for: Duration,
        lock_token: String,
        reply: ReplyTo<Vec<QueueRow>>,
    },
    /// [`activity_queue::complete`], completion already serialized.
    CompleteActivity {
        lock: ActivityLock,
        completion: String,
        reply: ReplyTo<()>,
    },
    /// [`activity_queue::complete_and_lock`], completion already serialized;
    /// the lock token is made by the caller.
    CompleteActivityAndLock {
        lock: ActivityLock,
        completion: String,
        lock_for: Duration,
        lock_token: String,
        reply: ReplyTo<Option<Box<LockedRows>>>,
    },
    /// [`activity_queue::release`].
    ReleaseActivity {
        lock: ActivityLock,
        reply: ReplyTo<()>,
    },
    /// [`orchestrator_queue::defer`].
    DeferOrchestration {
        instance_id: String,
        lock_token: String,
        message_ids: Vec<i64>,
        unstarted: bool,
        until: i64,
        reply: ReplyTo<()>,
    },
    /// [`activity_queue::renew`].
    RenewActivity {
        lock: ActivityLock,
        lock_for: Duration,
        reply: ReplyTo<()>,
    },
    /// [`activity_queue::defer`].
    DeferActivity {
        lock: ActivityLock,
        until: i64,
        reply: ReplyTo<()>,
    },
    /// [`management::purge_instance`].
    PurgeInstance {
        instance_id: String,
        reply: ReplyTo<PurgeOutcome>,
    },
    /// [`management::purge_finished`]: the statement selecting the batch.
    PurgeFinished {
        query: String,
        params: Vec<Value>,
        reply: ReplyTo<u64>,
    },
    /// An artifact write (see [`artifacts::write_in`]): how many rows changed.
    Artifact {
        write: ArtifactWrite,
        reply: ReplyTo<u64>,
    },
}

/// Which in-process dispatchers an op's commit should wake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Signals {
    /// Orchestrator messages became fetchable (or nearer in time).
    pub(super) orchestrator: bool,
    /// Activity work became fetchable.
    pub(super) activity: bool,
}

impl Signals {
    /// Wake nobody.
    pub(super) const NONE: Self = Self {
        orchestrator: false,
        activity: false,
    };
    /// Wake an orchestrator dispatcher.
    pub(super) const ORCHESTRATOR: Self = Self {
        orchestrator: true,
        activity: false,
    };
    /// Wake the activity dispatcher.
    pub(super) const ACTIVITY: Self = Self {
        orchestrator: false,
        activity: true,
    };
}

/// An executed op: what it produced and the caller's reply channel, held
/// until the batch it ran in has committed.
pub(super) struct Done {
    reply: Reply,
    output: Output,
}

impl Done {
    /// Whether the op succeeded (a savepoint run keeps its writes).
    pub(super) fn is_ok(&self) -> bool {
        self.output.error().is_none()
    }

    /// The signals to fire after the commit; none for a failed op.
    pub(super) fn signals(&self) -> Signals {
        match &self.output {
            Output::Unit(Ok(signals))
            | Output::Committed(Ok((signals, _)))
            | Output::Signalled(Ok((signals, _))) => *signals,
            // A completion that locked its instance wakes nobody (its caller
            // runs the turn); one that did not queued a message to fetch.
            Output::Continued(Ok(None)) => Signals::ORCHESTRATOR,
            _ => Signals::NONE,
        }
    }

    /// Replaces the result with `error`: the batch did not commit, so
    /// nothing this op wrote exists.
    pub(super) fn fail(self, error: StoreError) -> Self {
        let output = self.reply.error(error);
        Self {
            reply: self.reply,
            output,
        }
    }

    /// Hands the result to the caller.
    pub(super) fn deliver(self) {
        self.reply.send(self.output);
    }
}

impl Op {
    /// Whether the op only takes work from a queue.
    pub(super) fn is_fetch(&self) -> bool {
        matches!(
            self,
            Op::FetchOrchestrations { .. } | Op::FetchActivities { .. }
        )
    }

    /// The fetch's answer when its queue has nothing to take.
    pub(super) fn nothing(self) -> Done {
        let reply = self.into_reply();
        let output = match reply {
            Reply::Orchestrations(_) => Output::Orchestrations(Ok(Vec::new())),
            Reply::Activities(_) => Output::Activities(Ok(Vec::new())),
            Reply::Unit(_)
            | Reply::Continued(_)
            | Reply::Committed(_)
            | Reply::Purged(_)
            | Reply::Count(_)
            | Reply::Signalled(_) => Output::Unit(Err(StoreError::database("not a fetch"))),
        };
        Done { reply, output }
    }

    /// Runs the op's body on `conn`, inside the batch transaction, leaving
    /// the op (and its reply channel) in place, so a batch can be run again.
    pub(super) fn run(&self, conn: &Connection, clock: &dyn Clock) -> Output {
        // Taken per op, not per batch: a lock deadline or a turn's timestamps
        // must not lag behind the clock by however long the batch has run.
        let now = match now_i64(clock) {
            Ok(now) => now,
            Err(e) => return Output::Unit(Err(e)),
        };
        match self {
            Op::CreateInstance { new, .. } => {
                Output::Unit(orchestrator_queue::create_instance_in(conn, new, now))
            }
            Op::EnqueueMessage {
                instance_id,
                message,
                visible_at,
                ..
            } => Output::Unit(orchestrator_queue::enqueue_message_in(
                conn,
                instance_id,
                message,
                *visible_at,
            )),
            Op::SignalWithStart { new, event, .. } => {
                Output::Signalled(signal::signal_with_start_in(conn, new, event, now))
            }
            Op::SetSetting { name, value, .. } => {
                Output::Unit(settings::set_setting_in(conn, name, value))
            }
            Op::FetchOrchestrations {
                max,
                lock_for,
                lookahead,
                lock_token,
                rotation,
                ..
            } => Output::Orchestrations(orchestrator_queue::fetch_in(
                conn, rotation, *max, *lock_for, *lookahead, lock_token, now,
            )),
            Op::CommitTurn { turn, .. } => Output::Committed(turn::commit_turn_in(conn, turn, now)),
            Op::ReleaseOrchestration {
                instance_id,
                lock_token,
                ..
            } => Output::Unit(orchestrator_queue::release_in(
                conn,
                instance_id,
                lock_token,
            )),
            Op::FetchActivities {
                limit,
                lock_for,
                lock_token,
                ..
            } => Output::Activities(activity_queue::fetch_in(
                conn, *limit, *lock_for, lock_token, now,
            )),
            Op::CompleteActivity {
                lock, completion, ..
            } => Output::Unit(activity_queue::complete_in(conn, lock, completion, now)),
            Op::CompleteActivityAndLock {
                lock,
                completion,
                lock_for,
                lock_token,
                ..
            } => Output::Continued(activity_queue::complete_and_lock_in(
                conn, lock, completion, *lock_for, lock_token, now,
            )),
            Op::ReleaseActivity { lock, .. } => {
                Output::Unit(activity_queue::release_in(conn, lock))
            }
            Op::DeferOrchestration {
                instance_id,
                lock_token,
                message_ids,
                unstarted,
                until,
                ..
            } => Output::Unit(orchestrator_queue::defer_in(
                conn,
                instance_id,
                lock_token,
                message_ids,
                *unstarted,
                *until,
            )),
            Op::RenewActivity { lock, lock_for, .. } => {
                Output::Unit(activity_queue::renew_in(conn, lock, *lock_for, now))
            }
            Op::DeferActivity { lock, until, .. } => {
                Output::Unit(activity_queue::defer_in(conn, lock, *until))
            }
            Op::PurgeInstance { instance_id, .. } => {
                Output::Purged(management::purge_instance_in(conn, instance_id))
            }
            Op::PurgeFinished { query, params, .. } => {
                Output::Count(management::purge_finished_in(conn, query, params))
            }
            Op::Artifact { write, .. } => Output::Count(artifacts::write_in(conn, write, now)),
        }
    }

    /// Pairs what [`Op::run`] produced with the caller's reply channel.
    pub(super) fn finish(self, output: Output) -> Done {
        Done {
            reply: self.into_reply(),
            output,
        }
    }

    /// Runs the op and pairs the result with its reply channel.
    pub(super) fn execute(self, conn: &Connection, clock: &dyn Clock) -> Done {
        let output = self.run(conn, clock);
        self.finish(output)
    }

    /// The op, not run, failed with `error` (its batch could not start or
    /// was abandoned before reaching it).
    pub(super) fn failed(self, error: StoreError) -> Done {
        let reply = self.into_reply();
        let output = reply.error(error);
        Done { reply, output }
    }

    fn into_reply(self) -> Reply {
        match self {
            Op::CreateInstance { reply, .. }
            | Op::EnqueueMessage { reply, .. }
            | Op::ReleaseOrchestration { reply, .. }
            | Op::CompleteActivity { reply, .. }
            | Op::ReleaseActivity { reply, .. }
            | Op::DeferOrchestration { reply, .. }
            | Op::RenewActivity { reply, .. }
            | Op::DeferActivity { reply, .. }
            | Op::SetSetting { reply, .. } => Reply::Unit(reply),
            Op::SignalWithStart { reply, .. } => Reply::Signalled(reply),
            Op::FetchOrchestrations { reply, .. } => Reply::Orchestrations(reply),
            Op::FetchActivities { reply, .. } => Reply::Activities(reply),
            Op::CompleteActivityAndLock { reply, .. } => Reply::Continued(reply),
            Op::CommitTurn { reply, .. } => Reply::Committed(reply),
            Op::PurgeInstance { reply, .. } => Reply::Purged(reply),
            Op::PurgeFinished { reply, .. } | Op::Artifact { reply, .. } => Reply::Count(reply),
        }
    }
}

/// An op's reply channel, by the type its caller awaits.
enum Reply {
    Unit(ReplyTo<()>),
    Orchestrations(ReplyTo<Vec<LockedRows>>),
    Activities(ReplyTo<Vec<QueueRow>>),
    Continued(ReplyTo<Option<Box<LockedRows>>>),
    Committed(ReplyTo<Locked>),
    Purged(ReplyTo<PurgeOutcome>),
    Count(ReplyTo<u64>),
    Signalled(ReplyTo<SignalOutcome>),
}

impl Reply {
    /// An output of this channel's type, carrying `error`.
    fn error(&self, error: StoreError) -> Output {
        match self {
            Reply::Unit(_) => Output::Unit(Err(error)),
            Reply::Orchestrations(_) => Output::Orchestrations(Err(error)),
            Reply::Activities(_) => Output::Activities(Err(error)),
            Reply::Continued(_) => Output::Continued(Err(error)),
            Reply::Committed(_) => Output::Committed(Err(error)),
            Reply::Purged(_) => Output::Purged(Err(error)),
            Reply::Count(_) => Output::Count(Err(error)),
            Reply::Signalled(_) => Output::Signalled(Err(error)),
        }
    }

    /// Sends `output`. The caller may have stopped waiting; the write stands
    /// regardless.
    fn send(self, output: Output) {
        match (self, output) {
            (Reply::Unit(reply), Output::Unit(result)) => {
                let _ = reply.send(result.map(|_| ()));
            }
            (Reply::Orchestrations(reply), Output::Orchestrations(result)) => {
                let _ = reply.send(result);
            }
            (Reply::Activities(reply), Output::Activities(result)) => {
                let _ = reply.send(result);
            }
            (Reply::Continued(reply), Output::Continued(result)) => {
                let _ = reply.send(result);
            }
            (Reply::Committed(reply), Output::Committed(result)) => {
                let _ = reply.send(result.map(|(_, locked)| locked));
            }
            (Reply::Purged(reply), Output::Purged(result)) => {
                let _ = reply.send(result.map(|(_, outcome)| outcome));
            }
            (Reply::Count(reply), Output::Count(result)) => {
                let _ = reply.send(result.map(|(_, count)| count));
            }
            (Reply::Signalled(reply), Output::Signalled(result)) => {
                let _ = reply.send(result.map(|(_, outcome)| outcome));
            }
            (reply, _) => {
                let mismatch = reply.error(StoreError::database(
                    "an op produced a result of the wrong kind",
                ));
                reply.send(mismatch);
            }
        }
    }
}

/// What running an op produced, before it is paired with its reply channel.
pub(super) enum Output {
    /// The result of an op whose caller awaits nothing but success, with the
    /// dispatchers its commit should wake.
    Unit(Result<Signals, StoreError>),
    /// Instances a fetch locked.
    Orchestrations(Result<Vec<LockedRows>, StoreError>),
    /// Activity work a fetch locked.
    Activities(Result<Vec<QueueRow>, StoreError>),
    /// The instance a completion locked, if it did (boxed: it is large, and
    /// would widen every output of a batch).
    Continued(Result<Option<Box<LockedRows>>, StoreError>),
    /// A committed turn, with what it locked for its caller.
    Committed(Result<(Signals, Locked), StoreError>),
    /// What a purge of one instance did.
    Purged(Result<(Signals, PurgeOutcome), StoreError>),
    /// How many instances a purge batch deleted.
    Count(Result<(Signals, u64), StoreError>),
    /// What a signal-with-start did.
    Signalled(Result<(Signals, SignalOutcome), StoreError>),
}

impl Output {
    fn error(&self) -> Option<&StoreError> {
        match self {
            Output::Unit(r) => r.as_ref().err(),
            Output::Orchestrations(r) => r.as_ref().err(),
            Output::Activities(r) => r.as_ref().err(),
            Output::Continued(r) => r.as_ref().err(),
            Output::Committed(r) => r.as_ref().err(),
            Output::Purged(r) => r.as_ref().err(),
            Output::Count(r) => r.as_ref().err(),
            Output::Signalled(r) => r.as_ref().err(),
        }
    }

    /// Whether the op either succeeded or failed before writing anything, so
    /// the batch may go on without undoing it. Only the contract's expected
    /// refusals are checked before any write; any other error may have come
    /// halfway through the op.
    pub(super) fn is_clean(&self) -> bool {
        matches!(
            self.error(),
            None | Some(
                StoreError::InstanceExists(_)
                    | StoreError::InstanceNotFound(_)
                    | StoreError::InstanceFinished { .. }
                    | StoreError::LockLost(_)
            )
        )
    }
}

/// Which queues have work a fetch could take, read outside any
/// transaction.
pub(super) struct Peek {
    now: i64,
    /// When the earliest message of an unlocked instance becomes visible.
    orchestrations: Option<i64>,
    activities: bool,
}

impl Peek {
    /// Looks at both queues.
    pub(super) fn take(conn: &Connection, clock: &dyn Clock) -> Result<Self, StoreError> {
        let now = now_i64(clock)?;
        Ok(Self {
            now,
            orchestrations: orchestrator_queue::earliest_ready(conn, now)?,
            activities: activity_queue::any_available(conn, now)?,
        })
    }

    /// Whether `op` is a fetch that would find nothing.
    pub(super) fn finds_nothing(&self, op: &Op) -> bool {
        match op {
            Op::FetchOrchestrations { lookahead, .. } => self
                .orchestrations
                .is_none_or(|at| at > plus(self.now, *lookahead)),
            Op::FetchActivities { .. } => !self.activities,
            _ => false,
        }
    }
}
