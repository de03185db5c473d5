//! What an orchestration's sandbox asks of the host: the narrow interface its
//! `context` imports, its `wait` and the end of its call need. The sandbox
//! defines it and never learns what implements it; the runtime hands it one
//! backed by the replay engine and the turn hand-off.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll};

use super::fault::GuestFault;
use super::policy::TurnClock;
use super::wasi_random::SeededRandom;
use crate::limits::TextLimits;

/// How a task the guest waited on finished, as the host hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    /// The task that finished.
    pub(crate) task: u64,
    /// How it finished.
    pub(crate) outcome: Outcome,
}

/// A task's result: an output (an empty one for a timer) or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The task succeeded with this output or event data.
    Ok(String),
    /// The task failed with this error.
    Err(String),
}

/// How the host retries a failing activity, as the guest asked for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included; 0 counts as 1.
    pub(crate) max_attempts: u32,
    /// Wait after the first failed attempt, in ms.
    pub(crate) initial_backoff_ms: u64,
    /// Factor each further wait grows by.
    pub(crate) backoff_coefficient: f64,
    /// Longest wait between attempts, in ms.
    pub(crate) max_backoff_ms: u64,
    /// How long one attempt may take, in ms.
    pub(crate) attempt_timeout_ms: Option<u64>,
    /// How long after the first attempt started a further attempt may start, in ms.
    pub(crate) total_timeout_ms: Option<u64>,
}

/// The host behind one orchestration execution's sandbox.
///
/// Each decision the guest makes (scheduling, subscribing, cancelling,
/// continuing as new, returning) is checked against history by the host;
/// a decision the guest may not make comes back as the [`GuestFault`] that
/// ends it.
pub(crate) trait OrchestrationHost: Send {
    /// The instance the execution belongs to, for logs.
    fn instance_id(&self) -> &str;

    /// The limits the guest's texts are held to (log lines are cut to it).
    fn limits(&self) -> &TextLimits;

    /// The clock the guest's WASI clocks read; read once, when the sandbox
    /// is built.
    fn clock(&self) -> TurnClock;

    /// The flag the guest's output streams read to drop replayed lines;
    /// read once, when the sandbox is built.
    fn replaying_flag(&self) -> Arc<AtomicBool>;

    /// The generators behind the guest's WASI randomness; taken once, when
    /// the sandbox is built.
    fn wasi_random(&self) -> SeededRandom;

    /// The guest schedules activity `name` with `input`; returns its task id.
    fn schedule_activity(&mut self, name: String, input: String) -> Result<u64, GuestFault>;

    /// The guest schedules activity `name` with `input`, retried by the host
    /// as `policy` says; returns the task id that stands for every attempt.
    fn schedule_activity_with_retry(
        &mut self,
        name: String,
        input: String,
        policy: RetryPolicy,
    ) -> Result<u64, GuestFault>;

    /// The guest starts a timer of `delay_ms`; returns its task id.
    fn schedule_timer(&mut self, delay_ms: u64) -> Result<u64, GuestFault>;

    /// The guest starts a child orchestration and will wait for it; returns
    /// its task id.
    fn schedule_sub_orchestration(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: Option<String>,
        input: String,
    ) -> Result<u64, GuestFault>;

    /// The guest starts an orchestration it does not wait for.
    fn start_detached(
        &mut self,
        name: String,
        version: Option<String>,
        instance_id: String,
        input: String,
    ) -> Result<(), GuestFault>;

    /// The guest ends its execution and asks for a new one. Always ends the
    /// guest: the fault returned is what unwinds it.
    fn continue_as_new(&mut self, input: String, version: Option<String>) -> GuestFault;

    /// The guest subscribes to external event `name`; returns its task id.
    fn wait_for_event(&mut self, name: String) -> Result<u64, GuestFault>;

    /// The guest stops waiting for `task`.
    fn cancel_task(&mut self, task: u64) -> Result<(), GuestFault>;

    /// The earliest completion among `tasks` the guest has not received, or
    /// `None` when nothing recorded answers and the guest must park.
    fn poll_wait(&mut self, tasks: &[u64]) -> Result<Option<Completion>, GuestFault>;

    /// The guest waits on `tasks` through [`Self::poll_wait_any`] from now on.
    fn watch(&mut self, tasks: &[u64]) -> Result<(), GuestFault>;

    /// The earliest completion among the watched tasks, or `None` when the
    /// guest must park.
    fn poll_wait_any(&mut self) -> Result<Option<Completion>, GuestFault>;

    /// End the current turn: hand what it produced to the turn that runs
    /// the guest. The guest then parks in [`Self::poll_next_turn`].
    fn end_turn(&mut self) -> Result<(), GuestFault>;

    /// Ready once a later turn has brought something the execution records;
    /// a turn that brings nothing of use ends at once, the guest still
    /// parked. Only a turn polls the guest, so no waker is kept.
    fn poll_next_turn(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GuestFault>>;

    /// The guest's `run` returned `output`.
    fn complete(&mut self, output: String) -> Result<(), GuestFault>;

    /// The guest's `run` returned `error` (`returned_by_code`), or the guest
    /// was stopped with the reason `error`.
    fn fail(&mut self, error: String, returned_by_code: bool) -> Result<(), GuestFault>;

    /// Deterministic time: when the turn the guest has reached began, in ms
    /// since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// A deterministic UUID.
    fn new_guid(&mut self) -> String;

    /// A deterministic random number.
    fn random_u64(&mut self) -> u64;

    /// The guest publishes (or clears) its custom status.
    fn set_custom_status(&mut self, status: Option<String>) -> Result<(), GuestFault>;

    /// Whether the guest is re-executing code that ran in an earlier turn.
    fn is_replaying(&self) -> bool;

    /// The turn could not run for want of memory its component's other
    /// sandboxes hold (`reason` says so): give it back, to run again once
    /// there is room.
    fn give_back(&mut self, reason: String);
}
