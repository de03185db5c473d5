//! Offline replay checks: run a recorded history through a fresh sandbox with
//! no cache and confirm the code makes exactly the recorded decisions and ends
//! the same way. Use it to test that a new build of a component still replays
//! the histories of running instances before deploying it.

use std::sync::Arc;

use super::component::Component;
use super::execution::{Execution, ExecutionSpec, TurnReport};
use super::replay::Replay;
use crate::history::Event;
use crate::sandbox::{ComponentPolicy, LoadedComponent, SandboxLimits, describe};

/// How a replay differed from its history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayMismatch {
    /// The history does not start with `OrchestrationStarted`.
    #[error("the history does not begin with OrchestrationStarted")]
    NoStart,
    /// The component does not provide the orchestration the history ran.
    #[error("the component has no orchestration '{name}' at version {version}")]
    Missing {
        /// Orchestration name.
        name: String,
        /// Version.
        version: String,
    },
    /// The code made decisions, or ended, where history differs.
    #[error("replay diverged: history ends with {expected}, the replay produced {actual}")]
    Diverged {
        /// What history holds after the last matched decision.
        expected: String,
        /// What the replay produced instead.
        actual: String,
    },
    /// The sandbox could not run the replay.
    #[error("the replay could not run: {0}")]
    Sandbox(String),
}

/// Replay execution `execution_id` of `instance_id` from `history` in a fresh
/// instance of `component`, with no new messages.
pub async fn verify_replay(
    component: &Arc<LoadedComponent>,
    instance_id: &str,
    execution_id: u64,
    history: Vec<Event>,
    limits: SandboxLimits,
) -> Result<(), ReplayMismatch> {
    let Some(Event::OrchestrationStarted {
        name,
        version,
        input,
        ..
    }) = history.first().cloned()
    else {
        return Err(ReplayMismatch::NoStart);
    };
    let provides = component
        .manifest
        .orchestrations
        .iter()
        .any(|(n, v)| *n == name && *v == version);
    if !provides {
        return Err(ReplayMismatch::Missing { name, version });
    }
    let recorded_end = history
        .last()
        .filter(|e| !e.is_decision() && e.is_terminal())
        .cloned();
    let replay = Replay::new(instance_id, execution_id, history, limits.max_payload_bytes);
    let policy = ComponentPolicy::with_limits(limits.clone());
    let spec = ExecutionSpec {
        component: Component::new(component.clone(), policy),
        name,
        version,
        input,
        limits,
    };
    let (_execution, report) = Execution::start(spec, replay, execution_id)
        .await
        .map_err(|e| ReplayMismatch::Sandbox(e.to_string()))?;
    let produced = match report {
        TurnReport::Parked(output) | TurnReport::Finished(output, _) => output.new_events,
    };
    // A failure or cancellation was recorded by the host, not decided by the
    // code: the replay must reach it again (failure) or stop before it.
    let expected: Vec<Event> = match &recorded_end {
        Some(end @ Event::OrchestrationFailed { .. }) => vec![end.clone()],
        _ => Vec::new(),
    };
    if produced == expected {
        return Ok(());
    }
    Err(ReplayMismatch::Diverged {
        expected: recorded_end
            .as_ref()
            .map_or("its last decision".into(), describe),
        actual: produced
            .iter()
            .map(|e| match e {
                Event::OrchestrationFailed { error } => format!("a failure: {error}"),
                other => describe(other),
            })
            .collect::<Vec<_>>()
            .join(", "),
    })
}
