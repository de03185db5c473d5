//! The execution cache: parked executions by instance id, bounded by count
//! and by the guests' memory, least recently used evicted first. Correctness
//! never depends on it: a miss replays from history.

use std::collections::HashMap;
use std::sync::Mutex;

use super::execution::Execution;

/// Parked executions, at most `capacity` of them holding at most `max_bytes`.
pub(crate) struct ExecutionCache {
    capacity: usize,
    max_bytes: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    tick: u64,
    bytes: usize,
    /// Instance id to (last use, guest memory when parked, execution).
    map: HashMap<String, (u64, usize, Execution)>,
}

impl ExecutionCache {
    /// A cache holding up to `capacity` executions and `max_bytes` of guest
    /// memory; a capacity of 0 disables it.
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            capacity,
            max_bytes,
            inner: Mutex::default(),
        }
    }

    /// Take the cached execution of `instance`, if any. The caller owns it
    /// for the turn and puts it back with [`put`](Self::put).
    pub(crate) fn take(&self, instance: &str) -> Option<Execution> {
        let mut entries = self.inner.lock().ok()?;
        let (_, bytes, execution) = entries.map.remove(instance)?;
        entries.bytes -= bytes;
        Some(execution)
    }

    /// Park `execution` for `instance`, evicting the least recently used
    /// entries while over a bound. Dropping an evicted execution ends its guest.
    pub(crate) fn put(&self, instance: String, execution: Execution) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.inner.lock() else {
            return;
        };
        entries.tick += 1;
        let tick = entries.tick;
        let bytes = execution.memory_bytes();
        entries.bytes += bytes;
        if let Some((_, old, _)) = entries.map.insert(instance, (tick, bytes, execution)) {
            entries.bytes -= old;
        }
        while entries.map.len() > self.capacity
            || (entries.bytes > self.max_bytes && entries.map.len() > 1)
        {
            let oldest = entries
                .map
                .iter()
                .min_by_key(|(_, (t, _, _))| *t)
                .map(|(k, _)| k.clone());
            let Some((_, bytes, _)) = oldest.and_then(|k| entries.map.remove(&k)) else {
                break;
            };
            entries.bytes -= bytes;
        }
    }

    /// Drop every parked execution.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.inner.lock() {
            entries.map.clear();
            entries.bytes = 0;
        }
    }

    /// How many executions are parked.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map(|e| e.map.len()).unwrap_or(0)
    }
}
