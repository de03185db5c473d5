//! What an activity attempt knows of the call it serves, and the flag that
//! says its result is no longer wanted. Wasm activities read both through
//! the `activity-context` import; native activities get the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The call an activity attempt serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityInfo {
    /// The instance whose orchestration scheduled the activity.
    pub instance_id: String,
    /// That orchestration's execution.
    pub execution_id: u64,
    /// The activity's name.
    pub name: String,
    /// The attempt, from 1.
    pub attempt: u32,
}

/// Set when an activity's result is no longer wanted: the orchestration
/// stopped waiting for it, or the runtime is stopping. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Says the result is no longer wanted.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the result is no longer wanted.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One activity attempt: what it serves, and whether its result is still
/// wanted.
#[derive(Debug, Clone)]
pub struct ActivityCall {
    /// The call it serves.
    pub info: ActivityInfo,
    /// Set when its result is no longer wanted.
    pub cancelled: CancelToken,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_reaches_every_clone() {
        let token = CancelToken::default();
        let seen_by_guest = token.clone();
        assert!(!seen_by_guest.is_cancelled());
        token.cancel();
        assert!(seen_by_guest.is_cancelled());
    }
}
