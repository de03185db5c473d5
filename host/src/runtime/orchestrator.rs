//! The orchestrator dispatcher: locks an instance with its messages, runs one
//! turn of its execution (from the cache, or replayed from history), and
//! commits the turn atomically.

use std::sync::Arc;

use tracing::Instrument;

use super::Shared;
use super::execution::{Execution, ExecutionSpec, TurnInput, TurnReport};
use super::idle::Idle;
use super::replay::{Replay, TurnOutput};
use crate::history::{Event, OrchestratorMessage};
use crate::providers::{
    InstanceRecord, InstanceStatus, OrchestrationWork, StoreError, TurnCommit, now_ms,
};

/// One orchestrator worker loop; several run side by side.
pub(crate) async fn run(shared: Arc<Shared>) {
    let signal = shared.store.orchestrator_signal();
    let mut shutdown = shared.shutdown.clone();
    let mut idle = Idle::new(shared.options.max_poll_interval);
    while !*shutdown.borrow() {
        match shared
            .store
            .fetch_orchestration_work(shared.options.orchestration_lock)
            .await
        {
            Ok(Some(work)) => {
                idle.reset();
                let span = tracing::info_span!("turn", instance = %work.instance.instance_id);
                process(&shared, work).instrument(span).await;
            }
            Ok(None) => idle.wait(&*shared.store, &signal, &mut shutdown).await,
            Err(e) => {
                tracing::error!("fetching orchestration work failed: {e}");
                idle.wait(&*shared.store, &signal, &mut shutdown).await;
            }
        }
    }
}

/// What a batch of messages asks for.
enum Plan {
    /// The instance already ended: drop the messages.
    Discard,
    /// End the instance now with this status, reason and event.
    End(InstanceStatus, String, Option<Event>),
    /// Start the first execution.
    Start {
        name: String,
        version: Option<String>,
        input: String,
        parent_instance: Option<String>,
        parent_id: Option<u64>,
    },
    /// Run a turn of the current execution.
    Resume,
}

fn plan(shared: &Shared, work: &OrchestrationWork) -> Plan {
    let instance = &work.instance;
    if instance.status.is_terminal() {
        return Plan::Discard;
    }
    let max_attempts = shared.options.max_message_attempts;
    if let Some(poison) = work.messages.iter().find(|m| m.attempts > max_attempts) {
        let reason = format!(
            "poison message: processing {:?} failed {} times",
            kind(&poison.message),
            poison.attempts - 1
        );
        return Plan::End(
            InstanceStatus::Failed,
            reason.clone(),
            Some(Event::OrchestrationFailed { error: reason }),
        );
    }
    if let Some(reason) = work.messages.iter().find_map(|m| match &m.message {
        OrchestratorMessage::CancelOrchestration { reason } => Some(reason.clone()),
        _ => None,
    }) {
        let event =
            (instance.status != InstanceStatus::Pending).then(|| Event::OrchestrationCancelled {
                reason: reason.clone(),
            });
        return Plan::End(InstanceStatus::Cancelled, reason, event);
    }
    if instance.status == InstanceStatus::Pending {
        for m in &work.messages {
            if let OrchestratorMessage::StartOrchestration {
                name,
                version,
                input,
                parent_instance,
                parent_id,
            } = &m.message
            {
                return Plan::Start {
                    name: name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    parent_instance: parent_instance.clone(),
                    parent_id: *parent_id,
                };
            }
        }
    }
    Plan::Resume
}

fn kind(message: &OrchestratorMessage) -> &'static str {
    match message {
        OrchestratorMessage::StartOrchestration { .. } => "StartOrchestration",
        OrchestratorMessage::ActivityCompleted { .. } => "ActivityCompleted",
        OrchestratorMessage::ActivityFailed { .. } => "ActivityFailed",
        OrchestratorMessage::TimerFired { .. } => "TimerFired",
        OrchestratorMessage::ExternalEvent { .. } => "ExternalEvent",
        OrchestratorMessage::CancelOrchestration { .. } => "CancelOrchestration",
    }
}

async fn process(shared: &Shared, work: OrchestrationWork) {
    let instance_id = work.instance.instance_id.clone();
    let now = now_ms();
    let messages: Vec<OrchestratorMessage> =
        work.messages.iter().map(|m| m.message.clone()).collect();
    let (output, version, execution) = match plan(shared, &work) {
        Plan::Discard => (TurnOutput::default(), None, None),
        Plan::End(status, reason, event) => {
            shared.cache.take(&instance_id);
            let output = TurnOutput {
                new_events: event.into_iter().collect(),
                status: Some((status, reason)),
                ..TurnOutput::default()
            };
            (output, None, None)
        }
        Plan::Start {
            name,
            version,
            input,
            parent_instance,
            parent_id,
        } => {
            let started = start(
                shared,
                &work.instance,
                now,
                &messages,
                name,
                version,
                input,
                parent_instance,
                parent_id,
            )
            .await;
            match started {
                Ok((output, version, execution)) => (output, Some(version), execution),
                Err(output) => (output, None, None),
            }
        }
        Plan::Resume => match resume(shared, &work.instance, now, messages).await {
            Ok((output, execution)) => (output, None, execution),
            Err(e) => {
                tracing::error!("turn failed: {e}");
                release(shared, &work).await;
                return;
            }
        },
    };
    commit(shared, work, output, version, execution).await;
}

/// Start the instance's first execution.
#[allow(clippy::too_many_arguments, reason = "the fields of one start message")]
async fn start(
    shared: &Shared,
    instance: &InstanceRecord,
    now: u64,
    messages: &[OrchestratorMessage],
    name: String,
    version: Option<String>,
    input: String,
    parent_instance: Option<String>,
    parent_id: Option<u64>,
) -> Result<(TurnOutput, String, Option<Execution>), TurnOutput> {
    let found = shared
        .registry
        .read()
        .map_err(|_| "registry lock poisoned".to_string())
        .and_then(|r| r.orchestration(&name, version.as_deref()));
    let started = |version: String| Event::OrchestrationStarted {
        name: name.clone(),
        version,
        input: input.clone(),
        parent_instance: parent_instance.clone(),
        parent_id,
        started_at_ms: now,
    };
    let (version, component) = match found {
        Ok(found) => found,
        Err(error) => {
            let version = version.clone().unwrap_or_default();
            return Err(TurnOutput {
                new_events: vec![
                    started(version),
                    Event::OrchestrationFailed {
                        error: error.clone(),
                    },
                ],
                status: Some((InstanceStatus::Failed, error)),
                ..TurnOutput::default()
            });
        }
    };
    let mut replay = Replay::new(
        &instance.instance_id,
        instance.execution_id,
        Vec::new(),
        shared.options.limits.max_payload_bytes,
    );
    replay.append(started(version.clone()));
    replay.begin_turn(now, messages);
    let spec = ExecutionSpec {
        component,
        name,
        version: version.clone(),
        input,
        limits: shared.options.limits.clone(),
    };
    match Execution::start(spec, replay, instance.execution_id).await {
        Ok((execution, report)) => {
            let (output, execution) = settle(report, execution);
            Ok((output, version, execution))
        }
        Err(e) => Err(TurnOutput {
            status: Some((InstanceStatus::Failed, e.to_string())),
            new_events: vec![Event::OrchestrationFailed {
                error: e.to_string(),
            }],
            ..TurnOutput::default()
        }),
    }
}

/// Run a turn of a started execution: on its parked guest if cached and
/// current, else on a guest replayed from history.
async fn resume(
    shared: &Shared,
    instance: &InstanceRecord,
    now: u64,
    messages: Vec<OrchestratorMessage>,
) -> Result<(TurnOutput, Option<Execution>), String> {
    let cached = shared.cache.take(&instance.instance_id).filter(|e| {
        e.execution_id == instance.execution_id && e.history_len == instance.history_len
    });
    if let Some(mut execution) = cached {
        let report = execution
            .run_turn(TurnInput {
                now_ms: now,
                messages,
            })
            .await
            .map_err(|e| e.to_string())?;
        return Ok(settle(report, execution));
    }
    let history = shared
        .store
        .read_history(&instance.instance_id, instance.execution_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(Event::OrchestrationStarted {
        name,
        version,
        input,
        ..
    }) = history.first().cloned()
    else {
        return Err(format!(
            "history of '{}' does not begin with OrchestrationStarted",
            instance.instance_id
        ));
    };
    let found = shared
        .registry
        .read()
        .map_err(|_| "registry lock poisoned".to_string())
        .and_then(|r| r.orchestration(&name, Some(&version)));
    let component = match found {
        Ok((_, component)) => component,
        Err(error) => {
            let output = TurnOutput {
                new_events: vec![Event::OrchestrationFailed {
                    error: error.clone(),
                }],
                status: Some((InstanceStatus::Failed, error)),
                ..TurnOutput::default()
            };
            return Ok((output, None));
        }
    };
    let mut replay = Replay::new(
        &instance.instance_id,
        instance.execution_id,
        history,
        shared.options.limits.max_payload_bytes,
    );
    replay.begin_turn(now, &messages);
    let spec = ExecutionSpec {
        component,
        name,
        version,
        input,
        limits: shared.options.limits.clone(),
    };
    let (execution, report) = Execution::start(spec, replay, instance.execution_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(settle(report, execution))
}

/// The turn's output, and the execution if it is parked and may be cached.
fn settle(report: TurnReport, execution: Execution) -> (TurnOutput, Option<Execution>) {
    match report {
        TurnReport::Parked(output) => (output, Some(execution)),
        TurnReport::Finished(output) => (output, None),
    }
}

async fn commit(
    shared: &Shared,
    work: OrchestrationWork,
    output: TurnOutput,
    version: Option<String>,
    execution: Option<Execution>,
) {
    let instance = work.instance;
    let (status, result) = match output.status {
        Some((status, text)) => (status, Some(text)),
        None if instance.status.is_terminal() => (instance.status, instance.output.clone()),
        None => (InstanceStatus::Running, None),
    };
    let new_len = instance.history_len + output.new_events.len() as u64;
    let commit = TurnCommit {
        instance_id: instance.instance_id.clone(),
        lock_token: work.lock_token,
        execution_id: instance.execution_id,
        history_len_before: instance.history_len,
        new_events: output.new_events,
        consumed_messages: work.messages.iter().map(|m| m.id).collect(),
        activities: output.activities,
        messages: output.messages,
        status,
        output: result,
        orchestration_version: version,
        custom_status: output.custom_status,
    };
    match shared.store.commit_turn(commit).await {
        Ok(()) => {
            if let Some(mut execution) = execution
                && shared.options.execution_cache
            {
                execution.history_len = new_len;
                shared.cache.put(instance.instance_id, execution);
            }
        }
        Err(StoreError::LockLost(_)) => {
            tracing::warn!(
                "the instance lock expired before the turn committed; the turn will be retried"
            );
        }
        Err(e) => tracing::error!("committing the turn failed: {e}"),
    }
}

async fn release(shared: &Shared, work: &OrchestrationWork) {
    if let Err(e) = shared
        .store
        .release_orchestration_work(&work.instance.instance_id, &work.lock_token)
        .await
    {
        tracing::warn!("releasing the instance lock failed: {e}");
    }
}
