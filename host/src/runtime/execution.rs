//! A running orchestration execution: a task that owns the guest's store. The
//! guest stays parked inside `wait` between turns (the execution cache), so a
//! turn for a cached instance costs only its new events.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

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

/// The guest's side of the channel pair: hands a finished turn to the
/// dispatcher and receives the next turn's messages.
pub(crate) struct TurnLink {
    inputs: mpsc::Receiver<TurnInput>,
    reports: mpsc::Sender<TurnReport>,
}

impl TurnLink {
    /// End the current turn and sleep until a turn brings something `replay`
    /// records. Fails with [`GuestFault::Evicted`] when the host drops the execution.
    pub(crate) async fn park(&mut self, replay: &mut Replay) -> Result<(), GuestFault> {
        loop {
            let output = replay.take_turn_output();
            self.reports
                .send(TurnReport::Parked(output))
                .await
                .map_err(|_| GuestFault::Evicted)?;
            let input = self.inputs.recv().await.ok_or(GuestFault::Evicted)?;
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

/// The dispatcher's handle on a running execution.
pub(crate) struct Execution {
    inputs: mpsc::Sender<TurnInput>,
    reports: mpsc::Receiver<TurnReport>,
    /// Execution id within the instance.
    pub(crate) execution_id: u64,
    /// History length after the last committed turn; a cached execution is
    /// reused only if the store agrees.
    pub(crate) history_len: u64,
    /// Linear memory the guest holds.
    memory_bytes: Arc<AtomicUsize>,
}

/// The execution task ended without reporting (a host bug or a panic).
#[derive(Debug, thiserror::Error)]
#[error("the execution task ended without reporting its turn")]
pub(crate) struct ExecutionLost;

impl Execution {
    /// Start the guest over `replay` (history plus the first turn's events)
    /// and run it until it parks or ends.
    pub(crate) async fn start(
        spec: ExecutionSpec,
        replay: Replay,
        execution_id: u64,
    ) -> Result<(Execution, TurnReport), ExecutionLost> {
        let (input_tx, input_rx) = mpsc::channel(1);
        let (report_tx, report_rx) = mpsc::channel(1);
        let link = TurnLink {
            inputs: input_rx,
            reports: report_tx.clone(),
        };
        if spec.component.shared.orchestrator.is_none() {
            return Err(ExecutionLost);
        }
        let state = orchestration_state(replay, link, &spec.limits);
        let memory_bytes = state.limiter.memory_bytes.clone();
        tokio::spawn(run_guest(spec, state, report_tx));
        let mut execution = Execution {
            inputs: input_tx,
            reports: report_rx,
            execution_id,
            history_len: 0,
            memory_bytes,
        };
        let report = execution.reports.recv().await.ok_or(ExecutionLost)?;
        Ok((execution, report))
    }

    /// Linear memory the guest holds now.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_bytes.load(Ordering::Relaxed)
    }

    /// Hand the parked guest a new turn and wait for it to park or end.
    pub(crate) async fn run_turn(&mut self, input: TurnInput) -> Result<TurnReport, ExecutionLost> {
        self.inputs.send(input).await.map_err(|_| ExecutionLost)?;
        self.reports.recv().await.ok_or(ExecutionLost)
    }
}

/// The execution task: instantiate the guest in a sandbox, call its entry
/// point and report how it ended.
async fn run_guest(spec: ExecutionSpec, state: GuestState, reports: mpsc::Sender<TurnReport>) {
    // Checked by `Execution::start`.
    let Some(shared) = &spec.component.shared.orchestrator else {
        return;
    };
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
            Some(GuestFault::Evicted) => return,
            // The execution ended by continuing as new: nothing failed.
            Some(GuestFault::ContinuedAsNew) => None,
            _ => Some(describe_failure(error, &state.output)),
        },
        Ok(_) => None,
    };
    let Some(replay) = state.orchestration.as_deref_mut() else {
        return;
    };
    let ended = match (result, reason) {
        (Ok(Ok(output)), _) => replay.complete(output),
        (Ok(Err(error)), _) => replay.fail(error, true),
        (Err(_), Some(reason)) => replay.fail(reason, false),
        (Err(_), None) => Ok(()),
    };
    if let Err(fault) = ended {
        // Ending diverged from history, or the output was too large.
        let _ = replay.fail(fault.to_string(), false);
    }
    let output = replay.take_turn_output();
    let _ = reports
        .send(TurnReport::Finished(output, SpentSandbox(store)))
        .await;
}
