//! Resource limits every guest runs under.

use std::time::Duration;

pub use crate::limits::DEFAULT_MAX_PAYLOAD_BYTES;
use crate::limits::TextLimits;

/// Table elements one guest instance may grow its tables to: generous, but
/// bounded. Growing past it fails the growth (the guest sees a failed
/// `table.grow`, and usually traps).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The limits of each sandbox of a component (or, as
/// `RuntimeOptions::limits`, of the components a runtime loads without a
/// policy). The size limits (see [`crate::limits`]) apply to what guests
/// hand the host: a guest that exceeds one fails its instance, or the
/// activity call, with a reason that names the limit. A component's size
/// limits can only be stricter than the store's (see
/// [`TextLimits::within`]).
///
/// In a policy file the durations are whole milliseconds, with `_ms` after
/// their names (`orchestration_turn_budget_ms = 2000`); a field left out
/// keeps its default, and an unknown one is refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxLimits {
    /// Linear memory one guest instance may grow to.
    pub max_memory_bytes: usize,
    /// CPU one orchestration turn may use: the time its guest spends
    /// running Wasm, counted at each epoch tick (10 ms). A turn that uses
    /// more fails its instance.
    #[serde(rename = "orchestration_turn_budget_ms", with = "millis")]
    pub orchestration_turn_budget: Duration,
    /// Wall-clock time one activity attempt may take, waiting included;
    /// past it the attempt fails.
    #[serde(rename = "activity_budget_ms", with = "millis")]
    pub activity_budget: Duration,
    /// CPU one activity attempt may use, counted as for a turn; past it
    /// the attempt fails.
    #[serde(rename = "activity_cpu_budget_ms", with = "millis")]
    pub activity_cpu_budget: Duration,
    /// Largest input, output, event payload or custom status.
    pub max_payload_bytes: usize,
    /// Longest orchestration, activity or event name, or version, a guest
    /// may ask for.
    pub max_name_bytes: usize,
    /// Longest instance id a guest may give a child or detached instance.
    pub max_instance_id_bytes: usize,
    /// Longest error text an orchestration or activity may return.
    pub max_error_bytes: usize,
    /// Longest line an orchestration may log; longer lines are cut.
    pub max_log_line_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        let text = TextLimits::default();
        Self {
            max_memory_bytes: 256 << 20,
            orchestration_turn_budget: Duration::from_secs(10),
            activity_budget: Duration::from_secs(300),
            activity_cpu_budget: Duration::from_secs(60),
            max_payload_bytes: text.max_payload_bytes,
            max_name_bytes: text.max_name_bytes,
            max_instance_id_bytes: text.max_instance_id_bytes,
            max_error_bytes: text.max_error_bytes,
            max_log_line_bytes: text.max_log_line_bytes,
        }
    }
}

impl SandboxLimits {
    /// These limits with size limits of texts no looser than `store`'s:
    /// what a component's sandboxes run under in a store that holds
    /// `store` (see [`TextLimits::within`]).
    pub fn within(&self, store: &TextLimits) -> SandboxLimits {
        self.with_text_limits(&self.text_limits().within(store))
    }

    /// These limits with the size limits of texts `text`.
    pub fn with_text_limits(&self, text: &TextLimits) -> SandboxLimits {
        SandboxLimits {
            max_payload_bytes: text.max_payload_bytes,
            max_name_bytes: text.max_name_bytes,
            max_instance_id_bytes: text.max_instance_id_bytes,
            max_error_bytes: text.max_error_bytes,
            max_log_line_bytes: text.max_log_line_bytes,
            ..self.clone()
        }
    }

    /// The size limits of texts, as the checks in [`crate::limits`] take
    /// them (and as a [`crate::Client`] may be given them).
    pub fn text_limits(&self) -> TextLimits {
        TextLimits {
            max_payload_bytes: self.max_payload_bytes,
            max_name_bytes: self.max_name_bytes,
            max_instance_id_bytes: self.max_instance_id_bytes,
            max_error_bytes: self.max_error_bytes,
            max_log_line_bytes: self.max_log_line_bytes,
        }
    }
}

/// Durations as whole milliseconds, for policy files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_text_limits_are_the_shared_defaults() {
        assert_eq!(
            SandboxLimits::default().text_limits(),
            TextLimits::default()
        );
    }

    #[test]
    fn within_the_store_only_the_text_limits_change() {
        let limits = SandboxLimits {
            max_memory_bytes: 7,
            max_payload_bytes: 100,
            max_error_bytes: 10,
            ..SandboxLimits::default()
        };
        let store = TextLimits {
            max_payload_bytes: 50,
            max_error_bytes: 20,
            ..TextLimits::default()
        };
        let within = limits.within(&store);
        assert_eq!(within.max_memory_bytes, 7);
        assert_eq!(within.max_payload_bytes, 50);
        assert_eq!(within.max_error_bytes, 10);
        assert_eq!(within.text_limits(), limits.text_limits().within(&store));
    }

    #[test]
    fn a_policy_file_names_durations_in_milliseconds_and_refuses_unknown_fields() {
        let limits: SandboxLimits =
            serde_json::from_str(r#"{"orchestration_turn_budget_ms": 250, "max_memory_bytes": 1}"#)
                .unwrap();
        assert_eq!(limits.orchestration_turn_budget, Duration::from_millis(250));
        assert_eq!(limits.max_memory_bytes, 1);
        assert_eq!(
            limits.activity_budget,
            SandboxLimits::default().activity_budget
        );
        let text = serde_json::to_string(&SandboxLimits::default()).unwrap();
        assert!(text.contains(r#""activity_cpu_budget_ms":60000"#), "{text}");
        let unknown = serde_json::from_str::<SandboxLimits>(r#"{"max_memory": 1}"#).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `max_memory`"),
            "{unknown}"
        );
    }

    #[test]
    fn text_limits_follow_each_field() {
        let limits = SandboxLimits {
            max_payload_bytes: 1,
            max_name_bytes: 2,
            max_instance_id_bytes: 3,
            max_error_bytes: 4,
            max_log_line_bytes: 5,
            ..SandboxLimits::default()
        };
        let text = limits.text_limits();
        assert_eq!(
            (
                text.max_payload_bytes,
                text.max_name_bytes,
                text.max_instance_id_bytes,
                text.max_error_bytes,
                text.max_log_line_bytes
            ),
            (1, 2, 3, 4, 5)
        );
    }
}
