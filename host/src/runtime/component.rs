//! A component as a runtime runs it: its compiled code, the policy it runs
//! under, and the budgets all its sandboxes share (memory, concurrent turns,
//! concurrent activities).

use std::ops::Deref;
use std::sync::Arc;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::limits::TextLimits;
use crate::sandbox::{
    ComponentPolicy, LoadedComponent, MemoryBudget, SandboxLimits, WarmActivities,
};

/// A registered component: the code, shared by every runtime in the process
/// that loads the same bytes, and the policy this registration gave it.
#[derive(Clone, Debug)]
pub(crate) struct Component {
    /// The compiled, checked code.
    pub(crate) loaded: Arc<LoadedComponent>,
    /// The policy its sandboxes run under.
    pub(crate) policy: Arc<ComponentPolicy>,
    /// Whether the policy was given; if not, its sizes of texts are the
    /// store's (whatever the runtime was configured with).
    given: bool,
    /// What all its sandboxes share.
    pub(crate) budgets: Arc<Budgets>,
}

/// The budgets one registered component's sandboxes share.
#[derive(Debug)]
pub(crate) struct Budgets {
    /// Linear memory of its running and parked sandboxes together.
    pub(crate) memory: Arc<MemoryBudget>,
    /// Turns of its executions running at once.
    turns: Semaphore,
    /// Its activities running at once.
    activities: Semaphore,
    /// Its activity sandboxes idle between calls, by tenant.
    pub(crate) warm: WarmActivities,
}

impl Component {
    /// `loaded` under `policy`, given on purpose.
    pub(crate) fn new(loaded: Arc<LoadedComponent>, policy: ComponentPolicy) -> Self {
        Self::registered(loaded, policy, true)
    }

    /// `loaded` under `policy`: given on purpose, or (`given` false) the
    /// runtime's defaults, whose sizes of texts follow the store's.
    pub(crate) fn registered(
        loaded: Arc<LoadedComponent>,
        policy: ComponentPolicy,
        given: bool,
    ) -> Self {
        let budgets = Budgets {
            memory: Arc::new(MemoryBudget::new(policy.memory_budget_bytes)),
            turns: Semaphore::new(policy.max_concurrent_executions.max(1)),
            activities: Semaphore::new(policy.max_concurrent_activities.max(1)),
            warm: WarmActivities::default(),
        };
        Self {
            loaded,
            policy: Arc::new(policy),
            given,
            budgets: Arc::new(budgets),
        }
    }

    /// The limits its sandboxes run under in a store whose text limits are
    /// `store`: its own, with sizes of texts no looser than the store's.
    pub(crate) fn limits(&self, store: &TextLimits) -> SandboxLimits {
        effective(&self.policy.limits, self.given, store)
    }
}

impl Budgets {
    /// A turn slot of the component: waits while
    /// `max_concurrent_executions` of its turns run.
    pub(crate) async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        self.turns.acquire().await.ok()
    }

    /// An activity slot of the component: waits while
    /// `max_concurrent_activities` of its activities run.
    pub(crate) async fn activity(&self) -> Option<SemaphorePermit<'_>> {
        self.activities.acquire().await.ok()
    }
}

/// The limits a component's sandboxes run under, `own` being its policy's
/// (`given` on purpose or not), in a store whose text limits are `store`:
/// a given policy's sizes of texts only where stricter than the store's,
/// else the store's.
fn effective(own: &SandboxLimits, given: bool, store: &TextLimits) -> SandboxLimits {
    if given {
        own.within(store)
    } else {
        own.with_text_limits(store)
    }
}

impl Deref for Component {
    type Target = LoadedComponent;

    fn deref(&self) -> &LoadedComponent {
        &self.loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_policy_keeps_its_stricter_sizes_and_a_default_one_follows_the_store() {
        let store = TextLimits {
            max_payload_bytes: 1000,
            ..TextLimits::default()
        };
        let mut own = SandboxLimits {
            max_payload_bytes: 10,
            max_memory_bytes: 5,
            ..SandboxLimits::default()
        };
        assert_eq!(effective(&own, true, &store).max_payload_bytes, 10);
        let followed = effective(&own, false, &store);
        assert_eq!(followed.max_payload_bytes, 1000);
        assert_eq!(followed.max_memory_bytes, 5);
        // A given policy looser than the store is held to the store's.
        own.max_payload_bytes = 1 << 30;
        assert_eq!(effective(&own, true, &store).max_payload_bytes, 1000);
    }
}
