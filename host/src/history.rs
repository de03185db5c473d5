//! History events and queue messages: the vocabulary the client, the runtime
//! and the store share.

use serde::{Deserialize, Serialize};

/// One entry of an execution's history. The runtime appends events; it never
/// changes or removes them, and replay reads them back in order.
///
/// Decisions (what the orchestration asked for) and completions (what came
/// back) are interleaved in the order they were committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Event {
    /// The execution began. Always the first event of an execution.
    OrchestrationStarted {
        /// Orchestration name.
        name: String,
        /// Orchestration version the execution runs, for its whole life.
        version: String,
        /// Input the execution started with.
        input: String,
        /// Instance that started this one as a child, if any.
        parent_instance: Option<String>,
        /// The parent's task id for this child, if any.
        parent_id: Option<u64>,
        /// When the execution began, in milliseconds since the Unix epoch.
        started_at_ms: u64,
    },
    /// Decision: the orchestration started a child orchestration and awaits it.
    SubOrchestrationScheduled {
        /// Task id of the child.
        id: u64,
        /// Orchestration name of the child.
        name: String,
        /// Requested version; the latest when absent.
        version: Option<String>,
        /// Instance id of the child.
        instance_id: String,
        /// Input of the child.
        input: String,
    },
    /// Completion: a child orchestration completed.
    SubOrchestrationCompleted {
        /// Task id of the child.
        id: u64,
        /// The child's output.
        output: String,
    },
    /// Completion: a child orchestration failed or was cancelled.
    SubOrchestrationFailed {
        /// Task id of the child.
        id: u64,
        /// Why.
        error: String,
    },
    /// Decision: the orchestration started an independent (detached) orchestration.
    OrchestrationStartedDetached {
        /// Ordinal of the decision.
        id: u64,
        /// Orchestration name.
        name: String,
        /// Requested version; the latest when absent.
        version: Option<String>,
        /// Instance id of the new orchestration.
        instance_id: String,
        /// Its input.
        input: String,
    },
    /// Decision: the execution ended and a new one of the same instance starts.
    ContinuedAsNew {
        /// Input of the next execution.
        input: String,
        /// Version of the next execution; the latest when absent.
        version: Option<String>,
    },
    /// A later turn began. Replay reads the orchestration's clock from it.
    TurnStarted {
        /// When the turn began, in milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Decision: the orchestration scheduled an activity.
    ActivityScheduled {
        /// Task id of the activity.
        id: u64,
        /// Activity name.
        name: String,
        /// Activity input.
        input: String,
    },
    /// Completion: an activity returned its output.
    ActivityCompleted {
        /// Task id of the activity.
        id: u64,
        /// The activity's output.
        output: String,
    },
    /// Completion: an activity failed.
    ActivityFailed {
        /// Task id of the activity.
        id: u64,
        /// The activity's error text.
        error: String,
    },
    /// Decision: the orchestration started a durable timer.
    TimerCreated {
        /// Task id of the timer.
        id: u64,
        /// When it fires, in milliseconds since the Unix epoch.
        fire_at_ms: u64,
    },
    /// Completion: a timer fired.
    TimerFired {
        /// Task id of the timer.
        id: u64,
    },
    /// Decision: the orchestration subscribed to an external event.
    EventSubscribed {
        /// Task id of the subscription.
        id: u64,
        /// Event name.
        name: String,
    },
    /// An external event reached the instance. Buffered until a subscription takes it.
    EventRaised {
        /// Event name.
        name: String,
        /// Event data.
        data: String,
    },
    /// Decision: the orchestration stopped waiting for a task.
    TaskCancelled {
        /// Task id.
        id: u64,
    },
    /// Decision: the orchestration returned its output.
    OrchestrationCompleted {
        /// The output.
        output: String,
    },
    /// The orchestration failed: it returned an error, trapped, or diverged from its history.
    OrchestrationFailed {
        /// Why it failed.
        error: String,
    },
    /// The instance was cancelled from outside.
    OrchestrationCancelled {
        /// The reason given with the cancellation.
        reason: String,
    },
}

impl Event {
    /// Whether the orchestration code itself produced this event, so replay must
    /// produce it again in the same position.
    pub fn is_decision(&self) -> bool {
        matches!(
            self,
            Event::ActivityScheduled { .. }
                | Event::TimerCreated { .. }
                | Event::EventSubscribed { .. }
                | Event::SubOrchestrationScheduled { .. }
                | Event::OrchestrationStartedDetached { .. }
                | Event::ContinuedAsNew { .. }
                | Event::TaskCancelled { .. }
                | Event::OrchestrationCompleted { .. }
        )
    }

    /// Whether this event ends the execution.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Event::OrchestrationCompleted { .. }
                | Event::OrchestrationFailed { .. }
                | Event::OrchestrationCancelled { .. }
        )
    }
}

/// A message on the orchestrator queue, addressed to one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum OrchestratorMessage {
    /// Start the instance (its row was created with it).
    StartOrchestration {
        /// Orchestration name.
        name: String,
        /// Requested version; the latest registered one when absent.
        version: Option<String>,
        /// Input.
        input: String,
        /// Parent instance, for children.
        parent_instance: Option<String>,
        /// The parent's task id for this child.
        parent_id: Option<u64>,
        /// The parent's execution that awaits this child.
        parent_execution_id: Option<u64>,
    },
    /// A child orchestration completed (sent to its parent).
    SubOrchestrationCompleted {
        /// Parent execution that started the child.
        execution_id: u64,
        /// The parent's task id for the child.
        id: u64,
        /// The child's output.
        output: String,
    },
    /// A child orchestration failed or was cancelled (sent to its parent).
    SubOrchestrationFailed {
        /// Parent execution that started the child.
        execution_id: u64,
        /// The parent's task id for the child.
        id: u64,
        /// Why.
        error: String,
    },
    /// Start the next execution of an instance that continued as new.
    ContinueAsNew {
        /// The execution that ended.
        from_execution_id: u64,
        /// Input of the next execution.
        input: String,
        /// Version of the next execution; the latest when absent.
        version: Option<String>,
        /// External events the ended execution received but did not consume,
        /// as (name, data), in arrival order.
        carried_events: Vec<(String, String)>,
    },
    /// An activity finished successfully.
    ActivityCompleted {
        /// Execution that scheduled it.
        execution_id: u64,
        /// Task id.
        id: u64,
        /// Output.
        output: String,
    },
    /// An activity failed.
    ActivityFailed {
        /// Execution that scheduled it.
        execution_id: u64,
        /// Task id.
        id: u64,
        /// Error text.
        error: String,
    },
    /// A timer came due. Enqueued invisible until its fire time.
    TimerFired {
        /// Execution that created it.
        execution_id: u64,
        /// Task id.
        id: u64,
    },
    /// An external event raised by a client.
    ExternalEvent {
        /// Event name.
        name: String,
        /// Event data.
        data: String,
    },
    /// Cancel the instance.
    CancelOrchestration {
        /// Reason recorded with the cancellation.
        reason: String,
    },
}

/// A unit of activity work on the activity queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityWork {
    /// Instance that scheduled the activity.
    pub instance: String,
    /// Execution that scheduled it.
    pub execution_id: u64,
    /// Task id within that execution.
    pub id: u64,
    /// Activity name.
    pub name: String,
    /// Activity input.
    pub input: String,
}
