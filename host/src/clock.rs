//! The one clock of a store, its client and its runtimes: every stored time
//! (enqueue and visibility, lock deadlines, turn times, timers) is read from
//! it. `SystemClock` is the wall clock; `ManualClock` is one that tests move
//! by hand, so a one-hour timer fires when the test says an hour has passed.
//!
//! Waits measured on the machine (CPU budgets, lock renewal, polling) use
//! tokio's monotonic clock instead: they bound real work, not stored time.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// The current time, ms since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// A clock shared by a store and everything that uses it.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }
}

/// The wall clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The wall clock's time, for tests and tools outside a store. Library code
/// takes time from its store's clock instead.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place the wall clock is read"
)]
pub fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start_ms)))
    }

    /// A clock reading the wall clock's time now.
    pub fn starting_now() -> Self {
        Self::new(system_now_ms())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(by, Ordering::Relaxed);
    }

    /// Sets the clock to `ms`.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    /// This clock, shared.
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_follow() {
        let clock = ManualClock::new(1_000);
        let shared = clock.shared();
        assert_eq!(shared.now_ms(), 1_000);
        clock.advance(Duration::from_secs(3_600));
        assert_eq!(shared.now_ms(), 3_601_000);
        clock.set(5);
        assert_eq!(shared.now_ms(), 5);
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = system_now_ms();
        let now = SystemClock.now_ms();
        assert!(now >= before && now < before + 60_000);
        assert!(now > 1_700_000_000_000, "after 2023: {now}");
    }
}
