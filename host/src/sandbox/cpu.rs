//! CPU budgets: the time a guest spends running WebAssembly in one turn or
//! one activity attempt, counted at each epoch tick, so a loop is stopped
//! within a tick of its budget however busy the host is.
//!
//! The epoch callback runs only while the guest runs Wasm: each time it
//! runs, the meter charges the time since the guest last started running
//! (the turn's start, its resumption after the callback's own yield, or the
//! callback before), capped at one tick. The cap keeps time the guest spent
//! parked in an awaiting host call (a `wait`, say) out of its budget: such a
//! call costs it at most one tick. Wall-clock time spent waiting for a
//! worker thread is never charged, so a busy host does not fail guests that
//! keep to their budgets.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::engine::EPOCH_TICK;
use super::fault::GuestFault;

/// The CPU a guest has used of its budget in the current turn or attempt.
pub(crate) struct CpuMeter {
    /// The budget of one turn or attempt.
    budget: Duration,
    /// The setting that holds the budget, for the reason a guest fails with.
    setting: &'static str,
    /// Charged so far in this turn or attempt.
    used: Duration,
    /// When the guest last started running, as far as the callback saw.
    since: Instant,
    /// When the guest last resumed after a yield, in nanoseconds after
    /// `origin`: written by the yield's future, which cannot reach the
    /// store's data.
    resumed: Arc<AtomicU64>,
    origin: Instant,
}

impl CpuMeter {
    /// A meter for `budget`, held in `setting`, starting now.
    pub(crate) fn new(budget: Duration, setting: &'static str) -> Self {
        let now = Instant::now();
        Self {
            budget,
            setting,
            used: Duration::ZERO,
            since: now,
            resumed: Arc::default(),
            origin: now,
        }
    }

    /// A new turn starts at `now`: its budget is whole again.
    pub(crate) fn start_turn(&mut self, now: Instant) {
        self.used = Duration::ZERO;
        self.since = now;
    }

    /// Charges the guest, still running at `now`, for the time since it
    /// last started running (at most one tick); fails once it has used
    /// more than its budget.
    pub(crate) fn charge(&mut self, now: Instant) -> Result<(), GuestFault> {
        let resumed = self.origin + Duration::from_nanos(self.resumed.load(Ordering::Relaxed));
        let since = self.since.max(resumed);
        self.used += now.saturating_duration_since(since).min(EPOCH_TICK);
        self.since = now;
        if self.used > self.budget {
            return Err(GuestFault::BudgetExceeded {
                budget_ms: self.budget.as_millis(),
                setting: self.setting,
            });
        }
        Ok(())
    }

    /// A yield to the other tasks of the worker, which notes when the guest
    /// resumes so the time it waited is not charged.
    pub(crate) fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (resumed, origin) = (self.resumed.clone(), self.origin);
        Box::pin(async move {
            tokio::task::yield_now().await;
            let nanos = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
            resumed.store(nanos, Ordering::Relaxed);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn running_is_charged_tick_by_tick_until_the_budget() {
        let mut meter = CpuMeter::new(30 * MS, "orchestration_turn_budget");
        let start = meter.since;
        for tick in 1..=3 {
            assert!(meter.charge(start + EPOCH_TICK * tick).is_ok(), "{tick}");
        }
        let fault = meter.charge(start + EPOCH_TICK * 4).unwrap_err();
        assert_eq!(
            fault.to_string(),
            "[DX006] the guest used more than its CPU budget of 30 ms (orchestration_turn_budget)"
        );
    }

    #[test]
    fn time_away_from_wasm_costs_at_most_one_tick() {
        let mut meter = CpuMeter::new(25 * MS, "activity_cpu_budget");
        let start = meter.since;
        // Parked in a host call for ten seconds, then back in Wasm.
        assert!(meter.charge(start + Duration::from_secs(10)).is_ok());
        assert_eq!(meter.used, EPOCH_TICK);
    }

    #[test]
    fn time_waiting_for_a_worker_after_a_yield_is_not_charged() {
        let mut meter = CpuMeter::new(Duration::from_secs(1), "activity_cpu_budget");
        let start = meter.since;
        // Resumed 5 s after the yield, then ran 2 ms before the next tick.
        let resumed = start + Duration::from_secs(5);
        let nanos = (resumed - meter.origin).as_nanos() as u64;
        meter.resumed.store(nanos, Ordering::Relaxed);
        meter.charge(resumed + 2 * MS).unwrap();
        assert_eq!(meter.used, 2 * MS);
    }

    #[test]
    fn a_new_turn_has_its_whole_budget() {
        let mut meter = CpuMeter::new(15 * MS, "orchestration_turn_budget");
        let start = meter.since;
        meter.charge(start + EPOCH_TICK).unwrap();
        meter.start_turn(start + EPOCH_TICK * 100);
        meter.charge(start + EPOCH_TICK * 101).unwrap();
        assert_eq!(meter.used, EPOCH_TICK);
    }
}
