//! Why a guest was stopped: faults raised inside host imports or by the
//! sandbox, carried through wasmtime as the trap's cause.

use crate::history::Event;
use crate::limits::{DelayOutOfRange, TooLarge};

/// A guest-caused failure that ends an orchestration instance or an activity attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFault {
    /// The code made a different decision than its history records.
    #[error(
        "nondeterministic orchestration: decision #{decision} (history event #{position}): history holds {expected} but the code asked for {actual}"
    )]
    Nondeterminism {
        /// Ordinal of the decision, from 1.
        decision: usize,
        /// Position of the recorded decision in the execution's history, from 0.
        position: usize,
        /// What history holds.
        expected: String,
        /// What the code asked for.
        actual: String,
    },
    /// The guest waited on, or cancelled, a task id it never created.
    #[error("the orchestration used task {0}, which it never created")]
    UnknownTask(u64),
    /// The guest called `wait` with no tasks: nothing could ever end it.
    #[error("the orchestration waited on no tasks at all, so the wait could never end")]
    WaitOnNothing,
    /// The guest waited only on tasks that can never finish again: ones it
    /// cancelled, or whose completion it already received.
    #[error(
        "the orchestration waited only on tasks that can never finish again ({tasks}), so the wait could never end"
    )]
    WaitNeverEnds {
        /// The tasks and why each cannot finish.
        tasks: String,
    },
    /// A text the guest handed over (a payload, a name, an instance id, an
    /// error) exceeded its limit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// A delay the guest asked for is out of range.
    #[error(transparent)]
    DelayOutOfRange(#[from] DelayOutOfRange),
    /// The guest ran longer than its CPU budget without yielding.
    #[error("the guest ran longer than its budget of {0} ms")]
    BudgetExceeded(u128),
    /// The guest tried to grow its memory past the limit.
    #[error(
        "the guest tried to grow its memory to {desired} bytes, more than the limit of {limit} bytes"
    )]
    MemoryLimit {
        /// The size it asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// An activity called the orchestration context.
    #[error("the orchestration context is not available to activities")]
    NoContext,
    /// The orchestration continued as new: not a failure, the way the guest's
    /// current execution ends.
    #[error("the execution continued as new")]
    ContinuedAsNew,
    /// The mailbox between the guest and its turns is unusable (a panic
    /// while it was held).
    #[error("the execution lost its link to the dispatcher")]
    Unlinked,
}

impl GuestFault {
    /// A nondeterminism fault for decision ordinal `k` (from 0).
    pub(crate) fn nondeterminism(
        k: usize,
        position: usize,
        expected: &Event,
        actual: &Event,
    ) -> Self {
        GuestFault::Nondeterminism {
            decision: k + 1,
            position,
            expected: describe(expected),
            actual: describe(actual),
        }
    }
}

/// A short human description of a decision, for error messages.
pub(crate) fn describe(event: &Event) -> String {
    match event {
        Event::ActivityScheduled { name, input, .. } => {
            format!(
                "ActivityScheduled(name: {name:?}, input: {:?})",
                clip(input)
            )
        }
        Event::TimerCreated { fire_at_ms, .. } => format!("TimerCreated(fire_at_ms: {fire_at_ms})"),
        Event::EventSubscribed { name, .. } => format!("EventSubscribed(name: {name:?})"),
        Event::OrchestrationCompleted { output } => {
            format!("OrchestrationCompleted(output: {:?})", clip(output))
        }
        Event::OrchestrationFailed { error } => {
            format!("OrchestrationFailed(error: {:?})", clip(error))
        }
        other => format!("{other:?}"),
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 120;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
