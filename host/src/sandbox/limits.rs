//! Resource limits every guest runs under.

use std::time::Duration;

pub use crate::limits::DEFAULT_MAX_PAYLOAD_BYTES;
use crate::limits::TextLimits;

/// Table elements one guest instance may grow its tables to: generous, but
/// bounded. Growing past it fails the growth (the guest sees a failed
/// `table.grow`, and usually traps).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The limits one runtime applies to the guests it runs. The size limits
/// (see [`crate::limits`]) apply to what guests hand the host: a guest that
/// exceeds one fails its instance, or the activity call, with a reason that
/// names the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Linear memory one guest instance may grow to.
    pub max_memory_bytes: usize,
    /// Wall-clock CPU budget of one orchestration turn; a guest that runs
    /// longer without yielding fails its instance.
    pub orchestration_turn_budget: Duration,
    /// Budget of one activity attempt.
    pub activity_budget: Duration,
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
            max_payload_bytes: text.max_payload_bytes,
            max_name_bytes: text.max_name_bytes,
            max_instance_id_bytes: text.max_instance_id_bytes,
            max_error_bytes: text.max_error_bytes,
            max_log_line_bytes: text.max_log_line_bytes,
        }
    }
}

impl SandboxLimits {
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
