//! Activity sandboxes kept warm between calls.
//!
//! Instantiating a component costs little for a Rust guest but milliseconds
//! for one that carries an interpreter (CPython, SpiderMonkey): its tables
//! are filled and its memory image is written page by page on every start.
//! So a sandbox whose activity call returned normally serves the next call
//! of the same component for the same tenant instead of being freed. It
//! keeps its guest's state (as a warm worker process would); everything a
//! call is told (its name, input, attempt, cancel token, CPU budget) is
//! set again for each call.
//!
//! A sandbox is never reused across tenants, nor after a trap, a limit or
//! a cancel stopped its guest, nor past [`MAX_CALLS`]. While idle it holds
//! none of its component's memory budget: a call that needs the room takes
//! it, and the idle sandbox is freed when it cannot take its memory back.

use std::collections::HashMap;
use std::sync::Mutex;

use wasmtime::Store;

use super::bindings::activities;
use super::reaper;
use super::state::GuestState;

/// Calls one sandbox serves at most: whatever a guest leaks between calls
/// is bounded in time as well as by its memory limit.
pub(crate) const MAX_CALLS: u32 = 1_000;

/// Idle sandboxes kept for one tenant of one component: enough for the
/// calls that overlap in a burst, few enough that idle memory stays small.
pub(crate) const MAX_IDLE: usize = 16;

/// How a call in a sandbox ended, for [`may_serve_again`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallEnd {
    /// The guest returned (a result or its own error).
    Returned,
    /// The guest was stopped: a trap, a limit, a cancel, a failed host call.
    Stopped,
}

/// Whether a sandbox that has served `calls` calls, the last ending as
/// `end`, may serve another. The one rule for reuse.
pub(crate) fn may_serve_again(end: CallEnd, calls: u32) -> bool {
    end == CallEnd::Returned && calls < MAX_CALLS
}

/// An instantiated activity sandbox between calls.
pub(crate) struct WarmSandbox {
    pub(crate) store: Store<GuestState>,
    pub(crate) guest: activities::Guest,
    /// Calls it has served.
    pub(crate) calls: u32,
}

/// The idle activity sandboxes of one registered component, by tenant.
#[derive(Default)]
pub(crate) struct WarmActivities {
    idle: Mutex<HashMap<String, Vec<WarmSandbox>>>,
}

impl std::fmt::Debug for WarmActivities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmActivities")
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl WarmActivities {
    /// An idle sandbox of `tenant`'s, with its memory taken back from its
    /// budget; `None` if there is none (or none could take its memory back:
    /// those are freed).
    pub(crate) fn take(&self, tenant: &str) -> Option<WarmSandbox> {
        loop {
            let mut sandbox = {
                let mut idle = self.idle.lock().ok()?;
                idle.get_mut(tenant)?.pop()?
            };
            if sandbox.store.data_mut().limiter.wake().is_ok() {
                return Some(sandbox);
            }
            reaper::free(sandbox.store);
        }
    }

    /// Keeps `sandbox` for `tenant`'s next call, if it may serve again and
    /// there is room; frees it otherwise.
    pub(crate) fn put(&self, tenant: &str, mut sandbox: WarmSandbox, end: CallEnd) {
        if may_serve_again(end, sandbox.calls) {
            sandbox.store.data_mut().limiter.idle();
            sandbox.store.data_mut().activity = None;
            if let Ok(mut idle) = self.idle.lock() {
                // The tenant's list exists after its first call: no key to
                // allocate on every call.
                match idle.get_mut(tenant) {
                    Some(kept) if kept.len() >= MAX_IDLE => {}
                    Some(kept) => {
                        kept.push(sandbox);
                        return;
                    }
                    None => {
                        idle.insert(tenant.to_owned(), vec![sandbox]);
                        return;
                    }
                }
            }
        }
        reaper::free(sandbox.store);
    }

    /// How many sandboxes are idle.
    fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .map_or(0, |idle| idle.values().map(Vec::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_serves_again_only_after_a_normal_return() {
        assert!(may_serve_again(CallEnd::Returned, 1));
        assert!(!may_serve_again(CallEnd::Stopped, 1));
    }

    #[test]
    fn a_sandbox_retires_after_its_last_call() {
        assert!(may_serve_again(CallEnd::Returned, MAX_CALLS - 1));
        assert!(!may_serve_again(CallEnd::Returned, MAX_CALLS));
    }
}
