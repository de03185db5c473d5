//! The execution cache: parked executions by instance id, bounded by count
//! and by the guests' memory (measured when each parks: the pages it holds,
//! not its memory's size), least recently used evicted first. Correctness
//! never depends on it: a miss replays from history.

use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::execution::Execution;
use crate::sandbox::MemoryBudget;

/// Parked executions, at most `capacity` of them holding at most `max_bytes`.
pub(crate) struct ExecutionCache {
    capacity: usize,
    max_bytes: usize,
    inner: Mutex<Entries>,
}

struct Entries {
    /// Guest memory of every parked execution, summed.
    bytes: usize,
    /// Instance id to (guest memory when parked, execution), in use order.
    /// Unbounded: `put` evicts by both bounds itself, since the crate's
    /// own bound counts entries only.
    map: LruCache<String, (usize, Execution)>,
}

impl Entries {
    /// Evicts the least recently used executions parked on `budget` (one
    /// component's) while its sandboxes hold more than half of it, so
    /// parked executions leave its running turns and activities at least
    /// half of the budget. An evicted execution's memory returns to the
    /// budget once the reaper frees its sandbox (counted as returned here,
    /// so no more are evicted than needed). The one parked last stays.
    fn keep_room(&mut self, budget: &Arc<MemoryBudget>) {
        let mut returning = 0;
        if !over_half(budget, returning) {
            return;
        }
        let victims: Vec<String> = (self.map.iter().rev())
            .filter(|(_, (_, e))| Arc::ptr_eq(e.memory_budget(), budget))
            .map(|(id, _)| id.clone())
            .collect();
        // The most recently used is last: it stays.
        for id in victims.iter().take(victims.len().saturating_sub(1)) {
            if !over_half(budget, returning) {
                break;
            }
            if let Some((bytes, _evicted)) = self.map.pop(id) {
                self.bytes -= bytes;
                returning += bytes;
            }
        }
    }
}

/// Whether `budget`'s sandboxes hold more than half of it, once
/// `returning` bytes are given back.
fn over_half(budget: &MemoryBudget, returning: usize) -> bool {
    budget.used().saturating_sub(returning) > budget.limit() / 2
}

impl ExecutionCache {
    /// A cache holding up to `capacity` executions and `max_bytes` of guest
    /// memory; a capacity of 0 disables it.
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            capacity,
            max_bytes,
            inner: Mutex::new(Entries {
                bytes: 0,
                map: LruCache::unbounded(),
            }),
        }
    }

    /// Take the cached execution of `instance`, if any. The caller owns it
    /// for the turn and puts it back with [`put`](Self::put).
    pub(crate) fn take(&self, instance: &str) -> Option<Execution> {
        let mut entries = self.inner.lock().ok()?;
        let (bytes, execution) = entries.map.pop(instance)?;
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
        let bytes = execution.memory_bytes();
        let budget = execution.memory_budget().clone();
        entries.bytes += bytes;
        // Unbounded, so `push` hands back only an entry it replaced.
        if let Some((_, (old, _))) = entries.map.push(instance, (bytes, execution)) {
            entries.bytes -= old;
        }
        // The entry just parked is kept even if it alone exceeds the memory
        // bound: it is the one most likely to be used next.
        while entries.map.len() > self.capacity
            || (entries.bytes > self.max_bytes && entries.map.len() > 1)
        {
            let Some((_, (bytes, _))) = entries.map.pop_lru() else {
                break;
            };
            entries.bytes -= bytes;
        }
        entries.keep_room(&budget);
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

    /// Guest memory the parked executions hold, as measured when each parked.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().map(|e| e.bytes).unwrap_or(0)
    }
}
