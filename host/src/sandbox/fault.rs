//! Why a guest was stopped: faults raised inside host imports or by the
//! sandbox, carried through wasmtime as the trap's cause.

use super::error_code::ErrorCode;
use crate::history::Event;
use crate::limits::{DelayOutOfRange, TooLarge};

/// A guest-caused failure that ends an orchestration instance or an activity attempt.
///
/// The message of each failure starts with its [`ErrorCode`] in brackets.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFault {
    /// The code made a different decision than its history records.
    #[error(
        "[DX001] nondeterministic orchestration: decision #{decision} (history event #{position}): history holds {expected} but the code asked for {actual}"
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
    #[error("[DX002] the orchestration used task {0}, which it never created")]
    UnknownTask(u64),
    /// The guest called `wait` with no tasks: nothing could ever end it.
    #[error("[DX003] the orchestration waited on no tasks at all, so the wait could never end")]
    WaitOnNothing,
    /// The guest waited only on tasks that can never finish again: ones it
    /// cancelled, or whose completion it already received.
    #[error(
        "[DX003] the orchestration waited only on tasks that can never finish again ({tasks}), so the wait could never end"
    )]
    WaitNeverEnds {
        /// The tasks and why each cannot finish.
        tasks: String,
    },
    /// A text the guest handed over (a payload, a name, an instance id, an
    /// error) exceeded its limit.
    // Not marked as the source: the message already holds its text, which
    // an error chain would print twice.
    #[error("[DX004] {0}")]
    TooLarge(TooLarge),
    /// A delay the guest asked for is out of range.
    #[error("[DX005] {0}")]
    DelayOutOfRange(DelayOutOfRange),
    /// The guest used more than its CPU budget in one turn or attempt.
    #[error("[DX006] the guest used more than its CPU budget of {budget_ms} ms ({setting})")]
    BudgetExceeded {
        /// The budget, in milliseconds.
        budget_ms: u128,
        /// The setting that holds it.
        setting: &'static str,
    },
    /// The guest tried to grow its memory past the limit.
    #[error(
        "[DX007] the guest tried to grow its memory to {desired} bytes, more than the limit of {limit} bytes (max_memory_bytes)"
    )]
    MemoryLimit {
        /// The size it asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// The guest tried to grow its memory past what its component's
    /// sandboxes may hold together.
    #[error(
        "[DX012] the component's sandboxes hold {held} bytes and one asked for {asked} more, more than its memory budget of {limit} bytes (memory_budget_bytes)"
    )]
    MemoryBudget {
        /// What the component's sandboxes held.
        held: usize,
        /// What the guest's own sandbox held of it.
        own: usize,
        /// What the guest asked for on top.
        asked: usize,
        /// The budget.
        limit: usize,
    },
    /// The execution's history would grow past its limit.
    #[error(
        "[DX013] the execution would hold {events} history events, more than the limit of {limit} (max_history_events)"
    )]
    HistoryLimit {
        /// The events it would hold.
        events: u64,
        /// The limit.
        limit: u64,
    },
    /// The orchestration asked for a retry policy the host cannot follow.
    #[error("[DX014] invalid retry policy: {0}")]
    InvalidRetryPolicy(String),
    /// An activity called the orchestration context.
    #[error("[DX010] the orchestration context is not available to activities")]
    NoContext,
    /// An orchestration called the activity context.
    #[error("[DX011] the activity context is not available to orchestrations")]
    NoActivityContext,
    /// The orchestration continued as new: not a failure, the way the guest's
    /// current execution ends.
    #[error("the execution continued as new")]
    ContinuedAsNew,
    /// The activity's result was no longer wanted (its orchestration
    /// stopped waiting for it, or the runtime is stopping), so its sandbox
    /// was stopped: not the guest's failure.
    #[error("the activity was cancelled: its result is no longer wanted")]
    Cancelled,
    /// The mailbox between the guest and its turns is unusable (a panic
    /// while it was held).
    #[error("the execution lost its link to the dispatcher")]
    Unlinked,
}

impl From<TooLarge> for GuestFault {
    fn from(error: TooLarge) -> Self {
        GuestFault::TooLarge(error)
    }
}

impl From<DelayOutOfRange> for GuestFault {
    fn from(error: DelayOutOfRange) -> Self {
        GuestFault::DelayOutOfRange(error)
    }
}

impl GuestFault {
    /// The code at the start of the fault's message; `None` for the ways an
    /// execution ends that are no guest's failure (continue-as-new, a lost
    /// link to the dispatcher).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            GuestFault::Nondeterminism { .. } => Some(ErrorCode::Nondeterminism),
            GuestFault::UnknownTask(_) => Some(ErrorCode::UnknownTask),
            GuestFault::WaitOnNothing | GuestFault::WaitNeverEnds { .. } => {
                Some(ErrorCode::WaitNeverEnds)
            }
            GuestFault::TooLarge(_) => Some(ErrorCode::TooLarge),
            GuestFault::DelayOutOfRange(_) => Some(ErrorCode::DelayOutOfRange),
            GuestFault::BudgetExceeded { .. } => Some(ErrorCode::BudgetExceeded),
            GuestFault::MemoryLimit { .. } => Some(ErrorCode::MemoryLimit),
            GuestFault::MemoryBudget { .. } => Some(ErrorCode::MemoryBudget),
            GuestFault::HistoryLimit { .. } => Some(ErrorCode::HistoryLimit),
            GuestFault::InvalidRetryPolicy(_) => Some(ErrorCode::InvalidRetryPolicy),
            GuestFault::NoContext => Some(ErrorCode::NoContext),
            GuestFault::NoActivityContext => Some(ErrorCode::NoActivityContext),
            GuestFault::ContinuedAsNew | GuestFault::Unlinked | GuestFault::Cancelled => None,
        }
    }

    /// Whether the fault is no failure of the guest's own but a shortage
    /// its component's other sandboxes cause: it ran out of its component's
    /// memory budget while it would fit the budget alone. An orchestration
    /// turn that meets it is given back, to run again once there is room;
    /// a guest that alone would hold more than the budget fails.
    pub fn waits_for_room(&self) -> bool {
        match self {
            GuestFault::MemoryBudget {
                own, asked, limit, ..
            } => own.saturating_add(*asked) <= *limit,
            _ => false,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{TextKind, TextLimits, check_delay};

    #[test]
    fn each_failure_starts_with_its_code() {
        let too_large = TextLimits::default()
            .check(TextKind::Name, "activity name", &"n".repeat(300))
            .err()
            .map(GuestFault::from);
        let delay = check_delay("timer delay", u64::MAX)
            .err()
            .map(GuestFault::from);
        let faults = [
            Some(GuestFault::nondeterminism(
                0,
                1,
                &Event::TimerFired { id: 1 },
                &Event::TimerFired { id: 2 },
            )),
            Some(GuestFault::UnknownTask(3)),
            Some(GuestFault::WaitOnNothing),
            Some(GuestFault::WaitNeverEnds {
                tasks: "task 1 was cancelled".into(),
            }),
            too_large,
            delay,
            Some(GuestFault::BudgetExceeded {
                budget_ms: 10,
                setting: "activity_cpu_budget",
            }),
            Some(GuestFault::MemoryLimit {
                desired: 2,
                limit: 1,
            }),
            Some(GuestFault::MemoryBudget {
                held: 1,
                own: 1,
                asked: 2,
                limit: 2,
            }),
            Some(GuestFault::HistoryLimit {
                events: 3,
                limit: 2,
            }),
            Some(GuestFault::NoContext),
        ];
        for fault in faults {
            let fault = fault.unwrap_or_else(|| panic!("a limit let an oversized value through"));
            let code = fault
                .code()
                .unwrap_or_else(|| panic!("{fault:?} has no code"));
            let text = fault.to_string();
            assert!(text.starts_with(&format!("[{code}] ")), "{text}");
            assert_eq!(text.matches(code.as_str()).count(), 1, "{text}");
        }
        assert_eq!(GuestFault::ContinuedAsNew.code(), None);
        assert_eq!(GuestFault::Unlinked.code(), None);
    }
}
