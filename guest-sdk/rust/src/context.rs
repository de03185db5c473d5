//! The orchestration context and the futures it hands out.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bindings::duroxide::orchestration::context as host;
use crate::bindings::duroxide::orchestration::types::{LogLevel as WitLogLevel, Outcome};

/// Severity of a replay-safe log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Fine-grained tracing.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the orchestration handled.
    Warn,
    /// Something that went wrong.
    Error,
}

/// Results the host handed back that no future has taken yet, and the tasks
/// the orchestration is waiting on.
#[derive(Default)]
pub(crate) struct TaskTable {
    results: HashMap<u64, Outcome>,
    /// Tasks a future found pending and still waits on: kept until the task
    /// resolves or is dropped, so a future needs polling again only when its
    /// task resolves. The host keeps the same set (`watch`).
    interest: BTreeSet<u64>,
    /// Tasks added to `interest` that the host has not been told to watch.
    to_watch: Vec<u64>,
    /// What to wake when each pending task resolves.
    wakers: HashMap<u64, Waker>,
    /// Set once the orchestration has its result: tasks dropped from then on
    /// are not cancelled (the execution is ending anyway).
    pub(crate) finishing: bool,
}

impl TaskTable {
    /// Whether any pending future waits on a task.
    pub(crate) fn waits(&self) -> bool {
        !self.interest.is_empty()
    }

    /// The tasks the host must start watching before the next wait: each
    /// task is named once, so a wait costs the same however many are open.
    pub(crate) fn take_to_watch(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.to_watch)
    }

    /// Record the result of a finished task. Returns the waker of the future
    /// waiting on it, to wake once the table is no longer borrowed.
    pub(crate) fn resolve(&mut self, task: u64, outcome: Outcome) -> Option<Waker> {
        self.results.insert(task, outcome);
        self.interest.remove(&task);
        self.wakers.remove(&task)
    }

    fn poll_task(&mut self, task: u64, waker: &Waker) -> Poll<Outcome> {
        match self.results.remove(&task) {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                if self.interest.insert(task) {
                    self.to_watch.push(task);
                }
                match self.wakers.get_mut(&task) {
                    Some(known) if known.will_wake(waker) => {}
                    Some(known) => known.clone_from(waker),
                    None => {
                        self.wakers.insert(task, waker.clone());
                    }
                }
                Poll::Pending
            }
        }
    }
}

/// The handle an orchestration uses to schedule work and read deterministic
/// time and ids. Cheap to clone.
#[derive(Clone, Default)]
pub struct OrchestrationContext {
    pub(crate) tasks: Rc<RefCell<TaskTable>>,
}

impl OrchestrationContext {
    /// Schedule activity `name` with `input`; await the returned task for its output.
    pub fn schedule_activity(&self, name: &str, input: &str) -> ActivityTask {
        ActivityTask(self.task(host::schedule_activity(name, input)))
    }

    /// Start orchestration `name` as a child and await its output; the child's
    /// instance id is derived from this instance.
    pub fn schedule_sub_orchestration(&self, name: &str, input: &str) -> SubOrchestrationTask {
        self.schedule_sub_orchestration_with(name, None, None, input)
    }

    /// Start a child at a given `version` (the latest when `None`) and with a
    /// given `instance_id` (derived when `None`).
    pub fn schedule_sub_orchestration_with(
        &self,
        name: &str,
        version: Option<&str>,
        instance_id: Option<&str>,
        input: &str,
    ) -> SubOrchestrationTask {
        SubOrchestrationTask(self.task(host::schedule_sub_orchestration(
            name,
            version,
            instance_id,
            input,
        )))
    }

    /// Start orchestration `name` as independent instance `instance_id`, not
    /// waited for (fire and forget).
    pub fn start_orchestration(&self, name: &str, instance_id: &str, input: &str) {
        host::start_orchestration(name, None, instance_id, input);
    }

    /// End this execution and start the instance afresh with `input`, on the
    /// latest version. Never returns.
    pub fn continue_as_new(&self, input: &str) -> ! {
        self.continue_as_new_versioned(input, None)
    }

    /// End this execution and start the instance afresh with `input` on
    /// `version` (the latest when `None`). Never returns.
    pub fn continue_as_new_versioned(&self, input: &str, version: Option<&str>) -> ! {
        host::continue_as_new(input, version);
        unreachable!("the host ends the execution on continue-as-new")
    }

    /// Start a durable timer; the returned task completes after `delay`.
    pub fn schedule_timer(&self, delay: Duration) -> TimerTask {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        TimerTask(self.task(host::schedule_timer(ms)))
    }

    /// Wait for the next external event called `name`; the task yields its data.
    /// Events are buffered, so one raised before this call is not lost.
    pub fn wait_for_external_event(&self, name: &str) -> EventTask {
        EventTask(self.task(host::wait_for_event(name)))
    }

    /// The orchestration's current time: when the current turn began. The same on replay.
    pub fn utc_now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(host::now_ms())
    }

    /// A new UUID string, the same on replay.
    pub fn new_guid(&self) -> String {
        host::new_guid()
    }

    /// A random number, the same on replay.
    pub fn random_u64(&self) -> u64 {
        host::random_u64()
    }

    /// Publish a status text clients can read while the orchestration runs;
    /// `None` clears it.
    pub fn set_custom_status(&self, status: Option<&str>) {
        host::set_custom_status(status);
    }

    /// Whether the orchestration is replaying decisions it made before.
    pub fn is_replaying(&self) -> bool {
        host::is_replaying()
    }

    /// Write a log line once: lines written during replay are dropped.
    pub fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Trace => WitLogLevel::Trace,
            LogLevel::Debug => WitLogLevel::Debug,
            LogLevel::Info => WitLogLevel::Info,
            LogLevel::Warn => WitLogLevel::Warn,
            LogLevel::Error => WitLogLevel::Error,
        };
        host::log(level, message);
    }

    /// Shorthand for [`log`](Self::log) at [`LogLevel::Info`].
    pub fn log_info(&self, message: &str) {
        self.log(LogLevel::Info, message);
    }

    /// The future of activity task `id`, which the host handed out.
    pub(crate) fn activity_task(&self, id: u64) -> ActivityTask {
        ActivityTask(self.task(id))
    }

    fn task(&self, id: u64) -> Task {
        Task {
            id,
            tasks: self.tasks.clone(),
            done: Cell::new(false),
        }
    }
}

/// A task the host tracks, resolved by the executor when `wait` returns it.
struct Task {
    id: u64,
    tasks: Rc<RefCell<TaskTable>>,
    done: Cell<bool>,
}

impl Task {
    fn poll_outcome(&self, cx: &Context<'_>) -> Poll<Outcome> {
        let outcome = self.tasks.borrow_mut().poll_task(self.id, cx.waker());
        if outcome.is_ready() {
            self.done.set(true);
        }
        outcome
    }
}

impl Drop for Task {
    /// A task dropped before it finished (the loser of a race) is cancelled
    /// on the host, at the same point on every replay.
    fn drop(&mut self) {
        if self.done.get() {
            return;
        }
        let Ok(mut table) = self.tasks.try_borrow_mut() else {
            return;
        };
        table.interest.remove(&self.id);
        table.to_watch.retain(|t| *t != self.id);
        table.results.remove(&self.id);
        table.wakers.remove(&self.id);
        if !table.finishing {
            drop(table);
            host::cancel_task(self.id);
        }
    }
}

/// A scheduled activity. Resolves to its output, or its error text.
pub struct ActivityTask(Task);

impl Future for ActivityTask {
    type Output = Result<String, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_outcome(cx).map(|outcome| match outcome {
            Outcome::Ok(output) => Ok(output),
            Outcome::Err(error) => Err(error),
        })
    }
}

/// A child orchestration. Resolves to its output, or its error.
pub struct SubOrchestrationTask(Task);

impl Future for SubOrchestrationTask {
    type Output = Result<String, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_outcome(cx).map(|outcome| match outcome {
            Outcome::Ok(output) => Ok(output),
            Outcome::Err(error) => Err(error),
        })
    }
}

/// A durable timer. Resolves when it fires.
pub struct TimerTask(Task);

impl Future for TimerTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_outcome(cx).map(|_| ())
    }
}

/// A subscription to an external event. Resolves to the event's data.
pub struct EventTask(Task);

impl Future for EventTask {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        self.0.poll_outcome(cx).map(|outcome| match outcome {
            Outcome::Ok(data) | Outcome::Err(data) => data,
        })
    }
}
