//! The memory budget of one component: the linear memory all its sandboxes
//! (running activities, orchestration turns, parked executions) hold
//! together. Each sandbox reserves from it as its memory grows and gives
//! back what it held when it is freed. A parked execution holds only what
//! it measures (see [`SandboxMemory::park`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::fault::GuestFault;
use super::prefault::WrittenPages;
use super::resident::{private_pages, private_resident_bytes};

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

    /// Takes back `bytes` a parked sandbox lent, whatever the others hold:
    /// its memory was admitted when it grew, and the turns that may run at
    /// once (the component's turn slots) bound how far over the limit this
    /// can go until they park again.
    fn reclaim(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }
}

/// The linear memory of one sandbox: its size, reserved from its
/// component's budget, and where its main memory lies, so that what it
/// holds can be measured.
#[derive(Debug, Default)]
pub(crate) struct SandboxMemory {
    /// Bytes of linear memory the sandbox declared (its memories' sizes).
    declared: AtomicUsize,
    /// Of `declared`, what a parked sandbox lent back to its budget.
    lent: AtomicUsize,
    /// Host address of its main memory (the one its calls pass strings
    /// in), 0 until known.
    base: AtomicUsize,
    /// Bytes of its other memories when the main one was found: counted
    /// at their size.
    others: AtomicUsize,
    /// What the last park measured, and how many parks have used it.
    last_park: Mutex<ParkMeasure>,
    /// The pages its component's sandboxes of its kind (orchestration or
    /// activity) write: written in when its main memory is found, learned
    /// from while it parks or as it finishes.
    written: OnceLock<Arc<WrittenPages>>,
}

/// What a park measured, kept for the parks after it (see
/// [`remeasures`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ParkMeasure {
    /// The declared size it was measured at.
    declared: usize,
    /// What it measured.
    bytes: usize,
    /// Parks since it was taken, that one included; 0 before any.
    parks: u32,
}

/// Parks that reuse a measurement while the sandbox's size stays the same.
const PARKS_PER_MEASURE: u32 = 16;

/// Whether a park measures the sandbox again rather than reuse `last`, now
/// that it declares `declared` bytes: at its first park, whenever its
/// memory grew or shrank, and every [`PARKS_PER_MEASURE`] parks. (Reading
/// the page table costs more than a cached turn of a large guest; a turn
/// that grows no memory writes few new pages.) The one rule for it.
fn remeasures(last: ParkMeasure, declared: usize) -> bool {
    last.parks == 0 || last.declared != declared || last.parks >= PARKS_PER_MEASURE
}

impl SandboxMemory {
    /// Bytes of linear memory declared now.
    pub(crate) fn declared(&self) -> usize {
        self.declared.load(Ordering::Relaxed)
    }

    /// Records the size of its memories, `bytes` in all.
    pub(crate) fn set_declared(&self, bytes: usize) {
        self.declared.store(bytes, Ordering::Relaxed);
    }

    /// Records that its main memory starts at host address `base` and is
    /// `len` bytes long now; the rest of what it declared is other memories.
    pub(crate) fn found_main(&self, base: usize, len: usize) {
        let others = self.declared().saturating_sub(len);
        self.others.store(others, Ordering::Relaxed);
        self.base.store(base, Ordering::Release);
        if let Some(written) = self.written.get() {
            written.write_in(base, len);
        }
    }

    /// Its execution ended, or its activity call returned: while its
    /// component's pages are learned, the pages it holds teach them (for an
    /// execution, those of its later turns too).
    pub(crate) fn teach(&self) {
        if self.written.get().is_some_and(|w| w.learning()) {
            self.measure(true);
        }
    }

    /// Its main memory, once found, is to be started with the pages
    /// `written` learned, and its parks teach them.
    pub(crate) fn writes_like(&self, written: Arc<WrittenPages>) {
        let _ = self.written.set(written);
    }

    /// What the sandbox holds in fact: the pages of its main memory that
    /// are resident and its own, and its other memories at their size.
    /// Its declared size while the main memory is unknown or the kernel
    /// does not tell.
    pub(crate) fn measured(&self) -> usize {
        self.measure(false)
    }

    /// [`measured`](Self::measured); with `teach`, the pages it finds also
    /// teach its component's written pages while they are learned.
    fn measure(&self, teach: bool) -> usize {
        let declared = self.declared();
        let base = self.base.load(Ordering::Acquire);
        if base == 0 {
            return declared;
        }
        let others = self.others.load(Ordering::Relaxed).min(declared);
        let len = declared - others;
        let main = match self.written.get() {
            Some(written) if teach && written.learning() => {
                let mut pages = Vec::new();
                let main = private_pages(base, len, |page| pages.push(page));
                if main.is_some() {
                    written.learn(&pages);
                }
                main
            }
            _ => private_resident_bytes(base, len),
        };
        match main {
            Some(main) => (main + others).min(declared),
            None => declared,
        }
    }

    /// What the sandbox holds as it parks: [`measured`](Self::measured)
    /// (which teaches its component's written pages while they are
    /// learned), or what an earlier park measured while [`remeasures`]
    /// allows.
    pub(crate) fn measured_for_park(&self) -> usize {
        let declared = self.declared();
        let Ok(mut last) = self.last_park.lock() else {
            return self.measured();
        };
        if remeasures(*last, declared) {
            *last = ParkMeasure {
                declared,
                bytes: self.measure(true),
                parks: 0,
            };
        }
        last.parks += 1;
        last.bytes
    }

    /// The sandbox parks holding `held` bytes (measured) of what it
    /// declared: the rest goes back to `budget` until it runs again.
    /// Returns what it holds of the budget now.
    pub(crate) fn park(&self, budget: &MemoryBudget, held: usize) -> usize {
        let declared = self.declared();
        let lend = declared.saturating_sub(held);
        let before = self.lent.swap(lend, Ordering::AcqRel);
        // Parking twice lends only the difference.
        budget.reclaim(before);
        budget.release(lend);
        declared - lend
    }

    /// The sandbox runs again: it takes back from `budget` what it lent.
    pub(crate) fn resume(&self, budget: &MemoryBudget) {
        budget.reclaim(self.lent.swap(0, Ordering::AcqRel));
    }

    /// The sandbox runs again if `budget` has room for what it lent: takes
    /// it back, or fails naming the budget and leaves it lent.
    pub(crate) fn resume_within(&self, budget: &MemoryBudget) -> Result<(), GuestFault> {
        let lent = self.lent.load(Ordering::Acquire);
        budget.reserve(lent, self.declared().saturating_sub(lent))?;
        self.lent.fetch_sub(lent, Ordering::AcqRel);
        Ok(())
    }

    /// Of `reserved` bytes, what the budget still counts for the sandbox
    /// (the rest was lent back while parked); forgets what was lent.
    pub(crate) fn take_counted(&self, reserved: usize) -> usize {
        reserved.saturating_sub(self.lent.swap(0, Ordering::AcqRel))
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

    /// A sandbox that reserved `declared` bytes of `budget`.
    fn sandbox(budget: &MemoryBudget, declared: usize) -> SandboxMemory {
        budget.reserve(declared, 0).unwrap();
        let memory = SandboxMemory::default();
        memory.set_declared(declared);
        memory
    }

    #[test]
    fn a_parked_sandbox_holds_what_it_measures_until_it_runs_again() {
        let budget = MemoryBudget::new(100);
        let memory = sandbox(&budget, 60);
        assert_eq!(memory.park(&budget, 10), 10);
        assert_eq!(budget.used(), 10);
        // Room for another while it is parked, none had it kept its size.
        budget.reserve(80, 0).unwrap();
        memory.resume(&budget);
        assert_eq!(budget.used(), 140, "running again, it holds its size");
        budget.release(80);
        assert_eq!(budget.used(), 60);
    }

    #[test]
    fn parking_again_lends_only_the_difference() {
        let budget = MemoryBudget::new(100);
        let memory = sandbox(&budget, 60);
        memory.park(&budget, 10);
        memory.park(&budget, 30);
        assert_eq!(budget.used(), 30);
        // Measured above its size (pages of other memories, say): it
        // lends nothing and holds its size.
        assert_eq!(memory.park(&budget, 90), 60);
        assert_eq!(budget.used(), 60);
    }

    #[test]
    fn a_sandbox_freed_while_parked_gives_back_only_what_the_budget_counts() {
        let budget = MemoryBudget::new(100);
        let memory = sandbox(&budget, 60);
        memory.park(&budget, 10);
        budget.release(memory.take_counted(60));
        assert_eq!(budget.used(), 0);
        // Nothing stays lent: freeing it again gives back all it reserved.
        assert_eq!(memory.take_counted(60), 60);
    }

    #[test]
    fn without_its_main_memory_found_a_sandbox_measures_its_size() {
        let memory = SandboxMemory::default();
        memory.set_declared(1 << 20);
        assert_eq!(memory.measured(), 1 << 20);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_sandbox_measures_the_pages_of_its_main_memory_it_wrote() {
        use crate::sandbox::resident::tests::{page, untouched, write_pages};
        let page = page();
        let mut main = untouched();
        write_pages(&mut main, 16, 4);
        let memory = SandboxMemory::default();
        // A main memory of 256 pages, and 16 more in another memory,
        // counted at its size.
        memory.set_declared(272 * page);
        memory.found_main(main.as_ptr() as usize, 256 * page);
        let measured = memory.measured();
        assert!(
            (32 * page..=33 * page).contains(&measured),
            "16 pages written and 16 of another memory: {measured} bytes"
        );
    }

    #[test]
    fn releasing_more_than_held_stops_at_zero() {
        let budget = MemoryBudget::new(10);
        budget.reserve(5, 0).unwrap();
        budget.release(8);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn an_idle_sandbox_holds_nothing_and_wakes_only_with_room() {
        let budget = MemoryBudget::new(100);
        let memory = SandboxMemory::default();
        budget.reserve(60, 0).unwrap();
        memory.set_declared(60);
        // Idle: all of it goes back.
        memory.park(&budget, 0);
        assert_eq!(budget.used(), 0);
        // Another sandbox takes most of the room: no waking.
        budget.reserve(50, 0).unwrap();
        assert!(memory.resume_within(&budget).is_err());
        assert_eq!(budget.used(), 50, "a failed wake takes nothing");
        // Freed while idle, it gives back nothing more.
        assert_eq!(memory.take_counted(60), 0);
        // With room, it takes its 60 back.
        budget.release(50);
        let memory = SandboxMemory::default();
        budget.reserve(60, 0).unwrap();
        memory.set_declared(60);
        memory.park(&budget, 0);
        memory.resume_within(&budget).unwrap();
        assert_eq!(budget.used(), 60);
        assert_eq!(memory.take_counted(60), 60);
    }

    #[test]
    fn a_park_measures_first_then_on_growth_and_every_sixteenth_park() {
        let first = ParkMeasure::default();
        assert!(remeasures(first, 100), "the first park measures");
        let taken = ParkMeasure {
            declared: 100,
            bytes: 40,
            parks: 1,
        };
        assert!(!remeasures(taken, 100));
        assert!(remeasures(taken, 200), "the memory grew");
        let old = ParkMeasure {
            parks: PARKS_PER_MEASURE,
            ..taken
        };
        assert!(remeasures(old, 100));
    }

    #[test]
    fn parks_reuse_a_measurement_until_the_size_changes() {
        let memory = SandboxMemory::default();
        memory.set_declared(1 << 20);
        assert_eq!(memory.measured_for_park(), 1 << 20);
        let last = *memory.last_park.lock().unwrap();
        assert_eq!(last.parks, 1);
        memory.measured_for_park();
        assert_eq!(memory.last_park.lock().unwrap().parks, 2);
        memory.set_declared(2 << 20);
        assert_eq!(memory.measured_for_park(), 2 << 20);
        assert_eq!(memory.last_park.lock().unwrap().parks, 1, "measured again");
    }
}
