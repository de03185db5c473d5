//! The activity calls running in this runtime, by the task they serve, so
//! a call whose result is no longer wanted hears of it: the orchestration
//! cancelled the task (it lost a race), the instance ended, or the runtime
//! is stopping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::sandbox::{CancelReason, CancelToken};

/// An instance and execution.
type Execution = (String, u64);

/// The running calls' cancel tokens, by execution and task.
#[derive(Default)]
pub(crate) struct RunningCalls {
    calls: Arc<Mutex<HashMap<Execution, HashMap<u64, CancelToken>>>>,
    /// Set by [`RunningCalls::cancel_all`]: a call registered later (its
    /// task was spawned before the stop but first ran after it) is told at
    /// once.
    stopping: AtomicBool,
}

/// Keeps a call registered; dropping it (the call ended) forgets it.
pub(crate) struct Registered {
    calls: Arc<Mutex<HashMap<Execution, HashMap<u64, CancelToken>>>>,
    key: Execution,
    task: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let Ok(mut calls) = self.calls.lock() else {
            return;
        };
        if let Some(tasks) = calls.get_mut(&self.key) {
            tasks.remove(&self.task);
            if tasks.is_empty() {
                calls.remove(&self.key);
            }
        }
    }
}

impl RunningCalls {
    /// Registers the call serving `task` of `instance`'s `execution`; its
    /// token is cancelled when the result is no longer wanted.
    pub(crate) fn register(
        &self,
        instance: &str,
        execution: u64,
        task: u64,
        token: CancelToken,
    ) -> Registered {
        let key = (instance.to_string(), execution);
        if let Ok(mut calls) = self.calls.lock() {
            // Read under the lock, which `cancel_all` holds while it sets it.
            if self.stopping.load(Ordering::Relaxed) {
                token.cancel_for(CancelReason::Stopping);
            }
            calls.entry(key.clone()).or_default().insert(task, token);
        }
        Registered {
            calls: self.calls.clone(),
            key,
            task,
        }
    }

    /// The execution no longer waits for `tasks` (it cancelled them), or,
    /// with `ended`, for any of its calls.
    pub(crate) fn no_longer_wanted(
        &self,
        instance: &str,
        execution: u64,
        tasks: &[u64],
        ended: bool,
    ) {
        if tasks.is_empty() && !ended {
            return;
        }
        let Ok(calls) = self.calls.lock() else {
            return;
        };
        let Some(running) = calls.get(&(instance.to_string(), execution)) else {
            return;
        };
        for (task, token) in running {
            if ended || tasks.contains(task) {
                token.cancel();
            }
        }
    }

    /// Every running call's result is no longer wanted: the runtime stops.
    pub(crate) fn cancel_all(&self) {
        if let Ok(calls) = self.calls.lock() {
            self.stopping.store(true, Ordering::Relaxed);
            calls
                .values()
                .flat_map(HashMap::values)
                .for_each(|token| token.cancel_for(CancelReason::Stopping));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_task_or_an_ended_instance_cancels_its_calls_only() {
        let calls = RunningCalls::default();
        let (a1, a2, b1) = (
            CancelToken::default(),
            CancelToken::default(),
            CancelToken::default(),
        );
        let _a1 = calls.register("a", 1, 1, a1.clone());
        let _a2 = calls.register("a", 1, 2, a2.clone());
        let _b1 = calls.register("b", 1, 1, b1.clone());
        calls.no_longer_wanted("a", 1, &[2], false);
        assert!(!a1.is_cancelled() && a2.is_cancelled() && !b1.is_cancelled());
        calls.no_longer_wanted("a", 1, &[], true);
        assert!(a1.is_cancelled() && !b1.is_cancelled());
        calls.cancel_all();
        assert!(b1.is_cancelled());
        // A call that registers after the stop hears it at once.
        let late = CancelToken::default();
        let _late = calls.register("c", 1, 1, late.clone());
        assert_eq!(late.reason(), Some(CancelReason::Stopping));
    }

    #[test]
    fn an_ended_call_is_forgotten() {
        let calls = RunningCalls::default();
        let token = CancelToken::default();
        drop(calls.register("a", 1, 1, token.clone()));
        calls.no_longer_wanted("a", 1, &[1], true);
        assert!(!token.is_cancelled());
        assert!(calls.calls.lock().expect("lock").is_empty());
    }
}
