//! A running orchestration execution: the guest's store and its call, a
//! future the turn that runs it polls. The guest stays parked inside `wait`
//! between turns (the execution cache), so a turn for a cached instance
//! costs only its new events.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use super::fault::GuestFault;
use super::replay::{Replay, TurnOutput};
use crate::history::OrchestratorMessage;
use crate::sandbox::instance::{
    call_orchestration, describe_failure, orchestration_sandbox, orchestration_state,
};
use crate::sandbox::reaper;
use crate::sandbox::state::GuestState;
use crate::sandbox::{LoadedComponent, SandboxLimits};

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

/// The sandbox of an execution that ended. Freeing it costs more than a
/// cached turn, so the dispatcher hands it to the reaper after the turn
/// commits.
pub(crate) struct SpentSandbox(wasmtime::Store<GuestState>);

impl SpentSandbox {
    /// Frees the sandbox, on the reaper's thread.
    pub(crate) fn free(self) {
        reaper::free(self.0);
    }
}

/// What passes between a parked guest and the turn that runs it.
#[derive(Default)]
struct Mailbox {
    /// The next turn's messages, left by the turn before it polls the guest.
    input: Option<TurnInput>,
    /// The results of a turn the guest ended by parking.
    parked: Option<TurnOutput>,
}

/// The guest's side of the mailbox: hands a finished turn to the dispatcher
/// and takes the next turn's messages.
pub(crate) struct TurnLink(Arc<Mutex<Mailbox>>);

impl TurnLink {
    /// End the current turn and sleep until a turn brings something `replay`
    /// records.
    pub(crate) async fn park(&mut self, replay: &mut Replay) -> Result<(), GuestFault> {
        loop {
            let output = replay.take_turn_output();
            self.0.lock().map_err(|_| GuestFault::Unlinked)?.parked = Some(output);
            // No waker is kept: only a turn polls the guest, and it leaves
            // the input before it does.
            let input = poll_fn(|_| match self.0.lock() {
                Ok(mut mailbox) => mailbox
                    .input
                    .take()
                    .map_or(Poll::Pending, |i| Poll::Ready(Ok(i))),
                Err(_) => Poll::Ready(Err(GuestFault::Unlinked)),
            })
            .await?;
            if replay.begin_turn(input.now_ms, &input.messages) > 0 {
                return Ok(());
            }
        }
    }
}

/// What an execution runs.
pub(crate) struct ExecutionSpec {
    pub(crate) component: Arc<LoadedComponent>,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) input: String,
    pub(crate) limits: SandboxLimits,
}

/// The guest's call, from instantiation to its end; `None` if it stopped
/// without an outcome to report.
type GuestCall = Pin<Box<dyn Future<Output = Option<(TurnOutput, SpentSandbox)>> + Send>>;

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
    /// Linear memory the guest holds.
    memory_bytes: Arc<AtomicUsize>,
}

/// The execution's guest ended without reporting (a host bug or a panic).
#[derive(Debug, thiserror::Error)]
#[error("the execution ended without reporting its turn")]
pub(crate) struct ExecutionLost;

impl Execution {
    /// Start the guest over `replay` (history plus the first turn's events)
    /// and run it until it parks or ends.
    pub(crate) async fn start(
        spec: ExecutionSpec,
        mut replay: Replay,
        execution_id: u64,
    ) -> Result<(Execution, TurnReport), ExecutionLost> {
        if spec.component.shared.orchestrator.is_none() {
            return Err(ExecutionLost);
        }
        replay.set_limits(spec.limits.text_limits());
        let mailbox = Arc::new(Mutex::new(Mailbox::default()));
        let state = orchestration_state(replay, TurnLink(mailbox.clone()), &spec.limits);
        let memory_bytes = state.limiter.memory_bytes.clone();
        let mut execution = Execution {
            guest: Some(Box::pin(run_guest(spec, state))),
            mailbox,
            execution_id,
            history_len: 0,
            memory_bytes,
        };
        let report = execution.run().await?;
        Ok((execution, report))
    }

    /// Linear memory the guest holds now.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_bytes.load(Ordering::Relaxed)
    }

    /// Hand the parked guest a new turn and run it until it parks or ends.
    pub(crate) async fn run_turn(&mut self, input: TurnInput) -> Result<TurnReport, ExecutionLost> {
        self.mailbox.lock().map_err(|_| ExecutionLost)?.input = Some(input);
        self.run().await
    }

    /// Poll the guest until it parks or its call ends.
    async fn run(&mut self) -> Result<TurnReport, ExecutionLost> {
        poll_fn(|cx| {
            let Some(guest) = self.guest.as_mut() else {
                return Poll::Ready(Err(ExecutionLost));
            };
            if let Poll::Ready(end) = guest.as_mut().poll(cx) {
                self.guest = None;
                let (output, spent) = end.ok_or(ExecutionLost)?;
                return Poll::Ready(Ok(TurnReport::Finished(output, spent)));
            }
            match self.mailbox.lock() {
                Ok(mut mailbox) => mailbox.parked.take().map_or(Poll::Pending, |output| {
                    Poll::Ready(Ok(TurnReport::Parked(output)))
                }),
                Err(_) => Poll::Ready(Err(ExecutionLost)),
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
async fn run_guest(spec: ExecutionSpec, state: GuestState) -> Option<(TurnOutput, SpentSandbox)> {
    // Checked by `Execution::start`.
    let shared = spec.component.shared.orchestrator.as_ref()?;
    let (mut store, instantiated) = orchestration_sandbox(&spec.component, shared, state).await;
    let result = match instantiated {
        Ok((instance, indices)) => {
            call_orchestration(
                &mut store,
                &instance,
                indices,
                &spec.name,
                &spec.version,
                &spec.input,
            )
            .await
        }
        Err(error) => Err(error),
    };
    let state = store.data_mut();
    let reason = match &result {
        Err(error) => match error.downcast_ref::<GuestFault>() {
            Some(GuestFault::Unlinked) => return None,
            // The execution ended by continuing as new: nothing failed.
            Some(GuestFault::ContinuedAsNew) => None,
            _ => Some(describe_failure(error, &state.output)),
        },
        Ok(_) => None,
    };
    let replay = state.orchestration.as_deref_mut()?;
    let ended = match (result, reason) {
        (Ok(Ok(output)), _) => replay.complete(output),
        (Ok(Err(error)), _) => replay.fail(error, true),
        (Err(_), Some(reason)) => replay.fail(reason, false),
        (Err(_), None) => Ok(()),
    };
    if let Err(fault) = ended {
        // Ending diverged from history, or the output or error was too large.
        let _ = replay.fail(fault.to_string(), false);
    }
    let output = replay.take_turn_output();
    Some((output, SpentSandbox(store)))
}
