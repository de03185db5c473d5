//! Resource limits every guest runs under.

use std::time::Duration;

/// Largest payload (input, output, event data) accepted by default: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// The limits one runtime applies to the guests it runs.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Linear memory one guest instance may grow to.
    pub max_memory_bytes: usize,
    /// Wall-clock CPU budget of one orchestration turn; a guest that runs
    /// longer without yielding fails its instance.
    pub orchestration_turn_budget: Duration,
    /// Budget of one activity attempt.
    pub activity_budget: Duration,
    /// Largest input, output or event payload.
    pub max_payload_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            orchestration_turn_budget: Duration::from_secs(10),
            activity_budget: Duration::from_secs(300),
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}
