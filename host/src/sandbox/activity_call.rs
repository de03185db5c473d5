//! What an activity attempt knows of the call it serves, and the flag that
//! says its result is no longer wanted. Wasm activities read both through
//! the `activity-context` import; native activities get the same.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

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

/// Why an activity's result is no longer wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// Its orchestration stopped waiting for it: the task lost a race, or
    /// the instance ended (completed, failed, cancelled, continued as new).
    NotWanted,
    /// The runtime is stopping: the result is still wanted, from another
    /// attempt.
    Stopping,
}

/// Set when an activity's result is no longer wanted: the orchestration
/// stopped waiting for it, or the runtime is stopping. Clones share it; the
/// first reason given sticks. The guest reads it through the activity
/// context, the sandbox stops a guest that does not at its next epoch tick,
/// and the runtime awaits [`CancelToken::cancelled`] to stop a call blocked
/// in a host call or a native closure.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    /// 0 while wanted, else 1 + the reason's index.
    reason: AtomicU8,
    notify: Notify,
}

impl CancelToken {
    /// Says the result is no longer wanted by its orchestration.
    pub fn cancel(&self) {
        self.cancel_for(CancelReason::NotWanted);
    }

    /// Says the result is no longer wanted, for `reason`.
    pub fn cancel_for(&self, reason: CancelReason) {
        let code = match reason {
            CancelReason::NotWanted => 1,
            CancelReason::Stopping => 2,
        };
        let set = (self.0.reason).compare_exchange(0, code, Ordering::Release, Ordering::Relaxed);
        if set.is_ok() {
            self.0.notify.notify_waiters();
        }
    }

    /// Whether the result is no longer wanted.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Why the result is no longer wanted, if it is not.
    pub fn reason(&self) -> Option<CancelReason> {
        match self.0.reason.load(Ordering::Acquire) {
            0 => None,
            1 => Some(CancelReason::NotWanted),
            _ => Some(CancelReason::Stopping),
        }
    }

    /// Waits until the result is no longer wanted, and says why.
    pub async fn cancelled(&self) -> CancelReason {
        loop {
            // Registered before the check, so a cancel in between is heard.
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
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

    #[tokio::test]
    async fn a_waiter_hears_the_first_reason() {
        let token = CancelToken::default();
        let waiter = tokio::spawn({
            let token = token.clone();
            async move { token.cancelled().await }
        });
        tokio::task::yield_now().await;
        token.cancel_for(CancelReason::Stopping);
        token.cancel();
        assert_eq!(waiter.await.ok(), Some(CancelReason::Stopping));
        // A wait that starts after the cancel ends at once.
        assert_eq!(token.cancelled().await, CancelReason::Stopping);
    }
}
