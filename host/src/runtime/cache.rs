//! The execution cache: parked executions by instance id, bounded, least
//! recently used evicted first. Correctness never depends on it: a miss
//! replays from history.

use std::collections::HashMap;
use std::sync::Mutex;

use super::execution::Execution;

/// Parked executions, at most `capacity` of them.
pub(crate) struct ExecutionCache {
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    tick: u64,
    map: HashMap<String, (u64, Execution)>,
}

impl ExecutionCache {
    /// A cache holding up to `capacity` executions; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// Take the cached execution of `instance`, if any. The caller owns it
    /// for the turn and puts it back with [`put`](Self::put).
    pub(crate) fn take(&self, instance: &str) -> Option<Execution> {
        let mut entries = self.inner.lock().ok()?;
        entries.map.remove(instance).map(|(_, e)| e)
    }

    /// Park `execution` for `instance`, evicting the least recently used
    /// entry when full. Dropping an evicted execution ends its guest.
    pub(crate) fn put(&self, instance: String, execution: Execution) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.inner.lock() else {
            return;
        };
        entries.tick += 1;
        let tick = entries.tick;
        entries.map.insert(instance, (tick, execution));
        if entries.map.len() > self.capacity {
            let oldest = entries
                .map
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.map.remove(&oldest);
            }
        }
    }

    /// Drop every parked execution.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.inner.lock() {
            entries.map.clear();
        }
    }

    /// How many executions are parked.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map(|e| e.map.len()).unwrap_or(0)
    }
}
