//! The policy one component runs under: the limits of its sandboxes, the
//! budgets of all its instances together, and what its activities may reach.

use super::SandboxLimits;

/// What the outside world an activity component's sandboxes may reach. None
/// by default; orchestration components never get any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grants {}

impl Grants {
    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        true
    }
}

/// The policy a component runs under, given when it is loaded or deployed.
/// The defaults suit untrusted code.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ComponentPolicy {
    /// The limits of each of its sandboxes (memory, CPU, text sizes).
    pub limits: SandboxLimits,
    /// Linear memory all its running and parked instances may hold together.
    pub memory_budget_bytes: usize,
    /// Most history events one execution of its orchestrations may hold.
    pub max_history_events: u64,
    /// Most executions of its orchestrations running a turn at once.
    pub max_concurrent_executions: usize,
    /// Most of its activities running at once.
    pub max_concurrent_activities: usize,
    /// What its activities may reach.
    pub grants: Grants,
}

/// Default memory budget of one component's instances together.
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 1 << 30;

/// Default most history events of one execution.
pub const DEFAULT_MAX_HISTORY_EVENTS: u64 = 100_000;

impl Default for ComponentPolicy {
    fn default() -> Self {
        Self::with_limits(SandboxLimits::default())
    }
}

impl ComponentPolicy {
    /// The default policy with these sandbox limits.
    pub fn with_limits(limits: SandboxLimits) -> Self {
        Self {
            limits,
            memory_budget_bytes: DEFAULT_MEMORY_BUDGET_BYTES,
            max_history_events: DEFAULT_MAX_HISTORY_EVENTS,
            max_concurrent_executions: 1024,
            max_concurrent_activities: 256,
            grants: Grants::default(),
        }
    }
}
