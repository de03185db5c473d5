//! What a batch of messages asks of an instance, decided before any guest runs.

use std::collections::HashSet;

use super::Shared;
use crate::history::{Event, OrchestratorMessage};
use crate::providers::{InstanceStatus, OrchestrationWork};

/// How to handle one fetched batch.
pub(crate) enum Plan {
    /// The instance already ended: drop the messages.
    Discard,
    /// End the instance now with this status and reason, appending `event`.
    End {
        status: InstanceStatus,
        reason: String,
        event: Option<Event>,
    },
    /// Start a new execution.
    Start(StartSpec),
    /// Run a turn of the current execution.
    Resume,
}

/// A new execution: the first one, or the next after continue-as-new.
pub(crate) struct StartSpec {
    pub(crate) execution_id: u64,
    pub(crate) name: String,
    pub(crate) version: Option<String>,
    pub(crate) input: String,
    pub(crate) parent_instance: Option<String>,
    pub(crate) parent_id: Option<u64>,
    /// Messages for the new execution's first turn (carried events first).
    pub(crate) messages: Vec<OrchestratorMessage>,
}

pub(crate) fn plan(shared: &Shared, work: &OrchestrationWork) -> Plan {
    let instance = &work.instance;
    if instance.status.is_terminal() {
        return Plan::Discard;
    }
    let max_attempts = shared.options.max_message_attempts;
    if let Some(poison) = work.messages.iter().find(|m| m.attempts > max_attempts) {
        let reason = format!(
            "poison message: processing {} failed {} times",
            kind(&poison.message),
            poison.attempts - 1
        );
        let event = Event::OrchestrationFailed {
            error: reason.clone(),
        };
        return Plan::End {
            status: InstanceStatus::Failed,
            reason,
            event: Some(event),
        };
    }
    let messages = || work.messages.iter().map(|m| &m.message);
    if let Some(reason) = messages().find_map(|m| match m {
        OrchestratorMessage::CancelOrchestration { reason } => Some(reason.clone()),
        _ => None,
    }) {
        let event = (!instance.awaits_start()).then(|| Event::OrchestrationCancelled {
            reason: reason.clone(),
        });
        return Plan::End {
            status: InstanceStatus::Cancelled,
            reason,
            event,
        };
    }
    let others = |skip: &OrchestratorMessage| -> Vec<OrchestratorMessage> {
        messages()
            .filter(|m| !std::ptr::eq(*m, skip))
            .cloned()
            .collect()
    };
    for message in messages() {
        match message {
            OrchestratorMessage::StartOrchestration {
                name,
                version,
                input,
                parent_instance,
                parent_id,
                ..
            } if instance.awaits_start() => {
                return Plan::Start(StartSpec {
                    execution_id: instance.execution_id,
                    name: name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    parent_instance: parent_instance.clone(),
                    parent_id: *parent_id,
                    messages: others(message),
                });
            }
            OrchestratorMessage::ContinueAsNew {
                from_execution_id,
                input,
                version,
                carried_events,
            } if *from_execution_id == instance.execution_id => {
                let carried =
                    carried_events
                        .iter()
                        .map(|(name, data)| OrchestratorMessage::ExternalEvent {
                            name: name.clone(),
                            data: data.clone(),
                        });
                return Plan::Start(StartSpec {
                    execution_id: instance.execution_id + 1,
                    name: instance.orchestration_name.clone(),
                    version: version.clone(),
                    input: input.clone(),
                    parent_instance: instance.parent_instance.clone(),
                    parent_id: instance.parent_id,
                    messages: carried.chain(others(message)).collect(),
                });
            }
            _ => {}
        }
    }
    Plan::Resume
}

/// Instance ids of the children `history` started that have not reported back.
pub(crate) fn running_children(history: &[Event]) -> Vec<String> {
    let finished: HashSet<u64> = history
        .iter()
        .filter_map(|e| match e {
            Event::SubOrchestrationCompleted { id, .. }
            | Event::SubOrchestrationFailed { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    history
        .iter()
        .filter_map(|e| match e {
            Event::SubOrchestrationScheduled {
                id, instance_id, ..
            } if !finished.contains(id) => Some(instance_id.clone()),
            _ => None,
        })
        .collect()
}

fn kind(message: &OrchestratorMessage) -> &'static str {
    match message {
        OrchestratorMessage::StartOrchestration { .. } => "StartOrchestration",
        OrchestratorMessage::SubOrchestrationCompleted { .. } => "SubOrchestrationCompleted",
        OrchestratorMessage::SubOrchestrationFailed { .. } => "SubOrchestrationFailed",
        OrchestratorMessage::ContinueAsNew { .. } => "ContinueAsNew",
        OrchestratorMessage::ActivityCompleted { .. } => "ActivityCompleted",
        OrchestratorMessage::ActivityFailed { .. } => "ActivityFailed",
        OrchestratorMessage::TimerFired { .. } => "TimerFired",
        OrchestratorMessage::ExternalEvent { .. } => "ExternalEvent",
        OrchestratorMessage::CancelOrchestration { .. } => "CancelOrchestration",
    }
}
