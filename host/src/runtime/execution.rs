//! A running orchestration execution: the guest's store and its call, a
//! future the turn that runs it polls. The guest stays parked inside `wait`
//! between turns (the execution cache), so a turn for a cached instance
//! costs only its new events.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use super::component::{Budgets, Component};
use super::linked_replay::{LinkedReplay, Mailbox};
use super::replay::{Replay, TurnOutput};
use crate::history::OrchestratorMessage;
pub(crate) use crate::sandbox::instance::SpentSandbox;
use crate::sandbox::instance::{orchestration_state, run_orchestration};
use crate::sandbox::reaper;
use crate::sandbox::state::GuestState;
use crate::sandbox::{MemoryBudget, SandboxLimits, SandboxMemory};

/// The messages of one turn.
pub(crate) struct TurnInput {
    /// When the turn began, ms since the Unix epoch: the orchestration's clock.
    pub(crate) now_ms: u64,
    /// Messages fetched for the instance.
    pub(crate) messages: Vec<OrchestratorMessage>,
}

/// How a turn ended.
pub(crate) enum TurnReport {
    /// The guest is waiting for more messages.
    Parked(TurnOutput),
    /// The execution ended (completed or failed); the output holds the terminal event.
    Finished(TurnOutput, SpentSandbox),
}

/// What an execution runs.
pub(crate) struct ExecutionSpec {
    pub(crate) component: Component,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) input: String,
    pub(crate) limits: SandboxLimits,
}

/// The guest's call, from instantiation to its end; `None` if it stopped
/// without an outcome to report. Its last turn's output is in the mailbox.
type GuestCall = Pin<Box<dyn Future<Output = Option<SpentSandbox>> + Send>>;

/// A running execution. The turn that owns it polls its guest in place: a
/// turn costs no task switch, and the guest cannot run outside a turn.
pub(crate) struct Execution {
    /// `None` once the call has ended.
    guest: Option<GuestCall>,
    mailbox: Arc<Mutex<Mailbox>>,
    /// Execution id within the instance.
    pub(crate) execution_id: u64,
    /// History length after the last committed turn; a cached execution is
    /// reused only if the store agrees.
    pub(crate) history_len: u64,
    /// The guest's linear memory.
    memory: Arc<SandboxMemory>,
    /// What the guest held, measured, when it last parked.
    parked_bytes: usize,
    /// What its component's sandboxes share: each turn takes one of its
    /// component's turn slots.
    budgets: Arc<Budgets>,
    /// Most history events it may hold (its component's policy).
    pub(crate) max_history_events: u64,
}

/// The execution's guest ended without reporting its turn.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecutionLost {
    /// A host bug or a panic.
    #[error("the execution ended without reporting its turn")]
    Lost,
    /// The guest gave its turn back: its component's other sandboxes held
    /// the memory it needed (the reason says so). It runs again later.
    #[error("the turn was given back: {0}")]
    GaveBack(String),
}

impl Execution {
    /// Start the guest over `replay` (history plus the first turn's events)
    /// and run it until it parks or ends.
    pub(crate) async fn start(
        spec: ExecutionSpec,
        mut replay: Replay,
        execution_id: u64,
    ) -> Result<(Execution, TurnReport), ExecutionLost> {
        if spec.component.shared.orchestrator.is_none() {
            return Err(ExecutionLost::Lost);
        }
        replay.set_limits(spec.limits.text_limits());
        let mailbox = Arc::new(Mutex::new(Mailbox::default()));
        let host = LinkedReplay::new(replay, mailbox.clone());
        let budgets = spec.component.budgets.clone();
        let max_history_events = spec.component.policy.max_history_events;
        let state = orchestration_state(Box::new(host), &spec.limits, Some(budgets.memory.clone()));
        let memory = state.limiter.memory.clone();
        let mut execution = Execution {
            guest: Some(Box::pin(run_guest(spec, state))),
            mailbox,
            execution_id,
            history_len: 0,
            memory,
            parked_bytes: 0,
            budgets,
            max_history_events,
        };
        let report = execution.run().await?;
        Ok((execution, report))
    }

    /// Linear memory the guest held, measured, when it last parked: what
    /// the execution cache counts it at.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.parked_bytes
    }

    /// The memory budget of its component, shared with its other sandboxes.
    pub(crate) fn memory_budget(&self) -> &Arc<MemoryBudget> {
        &self.budgets.memory
    }

    /// Hand the parked guest a new turn and run it until it parks or ends.
    pub(crate) async fn run_turn(&mut self, input: TurnInput) -> Result<TurnReport, ExecutionLost> {
        self.mailbox.lock().map_err(|_| ExecutionLost::Lost)?.input = Some(input);
        self.run().await
    }

    /// Poll the guest until it parks or its call ends, in one of its
    /// component's turn slots. While parked, its sandbox holds of its
    /// component's memory budget only what it measures.
    async fn run(&mut self) -> Result<TurnReport, ExecutionLost> {
        let budgets = self.budgets.clone();
        let _slot = budgets.turn().await.ok_or(ExecutionLost::Lost)?;
        self.memory.resume(&budgets.memory);
        let report = self.poll_guest().await;
        if let Ok(TurnReport::Parked(_)) = &report {
            let measured = self.memory.measured_for_park();
            self.parked_bytes = self.memory.park(&budgets.memory, measured);
        }
        report
    }

    /// Poll the guest until it parks or its call ends.
    async fn poll_guest(&mut self) -> Result<TurnReport, ExecutionLost> {
        poll_fn(|cx| {
            let Some(guest) = self.guest.as_mut() else {
                return Poll::Ready(Err(ExecutionLost::Lost));
            };
            if let Poll::Ready(end) = guest.as_mut().poll(cx) {
                self.guest = None;
                let gave_back = self
                    .mailbox
                    .lock()
                    .ok()
                    .and_then(|mut m| m.gave_back.take());
                if let Some(reason) = gave_back {
                    return Poll::Ready(Err(ExecutionLost::GaveBack(reason)));
                }
                let spent = end.ok_or(ExecutionLost::Lost)?;
                let output = match self.mailbox.lock() {
                    Ok(mut mailbox) => mailbox.parked.take(),
                    Err(_) => None,
                };
                return Poll::Ready(Ok(TurnReport::Finished(
                    output.ok_or(ExecutionLost::Lost)?,
                    spent,
                )));
            }
            match self.mailbox.lock() {
                Ok(mut mailbox) => mailbox.parked.take().map_or(Poll::Pending, |output| {
                    Poll::Ready(Ok(TurnReport::Parked(output)))
                }),
                Err(_) => Poll::Ready(Err(ExecutionLost::Lost)),
            }
        })
        .await
    }
}

impl Drop for Execution {
    /// A guest still parked is unwound and its sandbox freed on the reaper's
    /// thread: evicting an execution costs the turn that evicts it nothing.
    fn drop(&mut self) {
        if let Some(guest) = self.guest.take() {
            reaper::free(guest);
        }
    }
}

/// The guest's call: instantiate it in a sandbox, call its entry point and
/// report how it ended.
async fn run_guest(spec: ExecutionSpec, state: GuestState) -> Option<SpentSandbox> {
    run_orchestration(
        &spec.component,
        state,
        &spec.name,
        &spec.version,
        &spec.input,
    )
    .await
}
