//! The policy one component runs under: the limits of its sandboxes, the
//! budgets of all its instances together, and what its activities may reach.

use super::SandboxLimits;
use super::grants::Grants;

/// The policy a component runs under, given when it is loaded or deployed.
/// The defaults suit untrusted code (the README's "Policies and limits"
/// says why each is what it is).
///
/// As a policy file (JSON or TOML) it has the fields below, `limits` a
/// table of [`SandboxLimits`]' fields; a field left out keeps its default,
/// and an unknown one is refused, so a misspelt limit is not silently
/// ignored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// What its activities may reach (see [`Grants`] for its shape).
    #[serde(skip_serializing_if = "Grants::is_empty")]
    pub grants: Grants,
}

/// Default memory budget of one component's instances together: 1 GiB,
/// four instances at the default per-instance limit.
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 1 << 30;

/// Default most executions of one component running a turn at once.
pub const DEFAULT_MAX_CONCURRENT_EXECUTIONS: usize = 1024;

/// Default most activities of one component running at once.
pub const DEFAULT_MAX_CONCURRENT_ACTIVITIES: usize = 256;

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
            max_concurrent_executions: DEFAULT_MAX_CONCURRENT_EXECUTIONS,
            max_concurrent_activities: DEFAULT_MAX_CONCURRENT_ACTIVITIES,
            grants: Grants::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sandbox::{DirMode, HttpGrant};

    #[test]
    fn a_policy_file_carries_grants() {
        let policy: ComponentPolicy = serde_json::from_str(
            r#"{"grants": {"dirs": [{"host": "/srv", "guest": "/srv"}],
                           "http": {"allow": ["https://api.example.com"]}}}"#,
        )
        .unwrap();
        let expected = Grants::none()
            .dir("/srv", "/srv", DirMode::ReadOnly)
            .http(HttpGrant::allow(["https://api.example.com"]));
        assert_eq!(policy.grants, expected);
        let text = serde_json::to_string(&policy).unwrap();
        assert_eq!(
            serde_json::from_str::<ComponentPolicy>(&text).unwrap(),
            policy
        );
        // A policy without grants writes none.
        let plain = serde_json::to_string(&ComponentPolicy::default()).unwrap();
        assert!(!plain.contains("grants"), "{plain}");
    }

    #[test]
    fn a_partial_policy_keeps_the_defaults_of_what_it_leaves_out() {
        let policy: ComponentPolicy = serde_json::from_str(
            r#"{"memory_budget_bytes": 1000, "limits": {"activity_cpu_budget_ms": 5}}"#,
        )
        .unwrap();
        assert_eq!(policy.memory_budget_bytes, 1000);
        assert_eq!(policy.limits.activity_cpu_budget, Duration::from_millis(5));
        let defaults = ComponentPolicy::default();
        assert_eq!(policy.max_history_events, defaults.max_history_events);
        assert_eq!(
            policy.limits.max_memory_bytes,
            defaults.limits.max_memory_bytes
        );
    }

    #[test]
    fn a_policy_round_trips_and_refuses_unknown_fields() {
        let policy = ComponentPolicy {
            max_concurrent_activities: 3,
            ..ComponentPolicy::default()
        };
        let text = serde_json::to_string(&policy).unwrap();
        assert_eq!(
            serde_json::from_str::<ComponentPolicy>(&text).unwrap(),
            policy
        );
        let err = serde_json::from_str::<ComponentPolicy>(r#"{"memory_budget": 1}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `memory_budget`"),
            "{err}"
        );
    }
}
