//! The memory budget of one component: the linear memory all its sandboxes
//! (running activities, orchestration turns, parked executions) hold
//! together. Each sandbox reserves from it as its memory grows and gives
//! back what it held when it is freed.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::fault::GuestFault;

/// Linear memory one component's sandboxes hold together, and its limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none of it used.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now by the component's sandboxes.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` more for a sandbox that holds `own` already, or
    /// fails naming the budget if the component would then hold more than
    /// its limit.
    pub(crate) fn reserve(&self, bytes: usize, own: usize) -> Result<(), GuestFault> {
        let reserved = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            });
        match reserved {
            Ok(_) => Ok(()),
            Err(used) => Err(GuestFault::MemoryBudget {
                held: used,
                own,
                asked: bytes,
                limit: self.limit,
            }),
        }
    }

    /// Gives back `bytes` reserved earlier.
    pub(crate) fn release(&self, bytes: usize) {
        let _ = (self.used).fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            Some(used.saturating_sub(bytes))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_up_to_the_limit_pass_and_the_next_names_the_budget() {
        let budget = MemoryBudget::new(100);
        budget.reserve(60, 0).unwrap();
        budget.reserve(40, 0).unwrap();
        let fault = budget.reserve(1, 40).unwrap_err();
        assert_eq!(
            fault.to_string(),
            "[DX012] the component's sandboxes hold 100 bytes and one asked for 1 more, more than its memory budget of 100 bytes (memory_budget_bytes)"
        );
        budget.release(40);
        assert_eq!(budget.used(), 60);
        budget.reserve(40, 0).unwrap();
    }

    #[test]
    fn only_a_sandbox_that_fits_the_budget_alone_waits_for_room() {
        let budget = MemoryBudget::new(100);
        budget.reserve(90, 0).unwrap();
        // Others hold the room: it would fit alone, so its turn waits.
        assert!(budget.reserve(20, 10).unwrap_err().waits_for_room());
        // It alone would hold more than the whole budget: it is the offender.
        assert!(!budget.reserve(20, 90).unwrap_err().waits_for_room());
    }

    #[test]
    fn releasing_more_than_held_stops_at_zero() {
        let budget = MemoryBudget::new(10);
        budget.reserve(5, 0).unwrap();
        budget.release(8);
        assert_eq!(budget.used(), 0);
    }
}
