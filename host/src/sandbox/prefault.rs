//! The pages of linear memory a component's guests write, learned from
//! their first executions (or activity calls) and written in at once when
//! a new sandbox of the same kind starts.
//!
//! A new sandbox maps its component's memory image copy-on-write. A
//! language runtime's guest writes hundreds of its pages as it starts (a
//! Python execution about 1.4 MB: reference counts, the heap), most of them
//! after reading them. Each such first write faults, copies the page and,
//! since the page was mapped for reading, flushes it from the TLB of every
//! core the process runs on: an interrupt to each, which in a virtual
//! machine exits to the hypervisor. That had cost a Python `hello_seq5` more
//! than half of its time. Asking the kernel for the learned pages writable
//! before the guest runs copies them in one system call, with nothing
//! mapped yet to flush.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::resident::{page_size, populate_writable};

/// Observations made before the pages are taken as learned: each a page
/// table read while learning, at a park that measures, at an execution's
/// end or after a returned activity call (so a few sandboxes may make them
/// all). Until then each adds what it saw.
const OBSERVATIONS: u32 = 8;

/// Most bytes written in per sandbox: a guest that writes much more than
/// this at its start is rare, and writing in what one execution never
/// touches would cost its memory for nothing.
const MOST_BYTES: usize = 8 << 20;

/// The pages a component's sandboxes of one kind (orchestration or
/// activity) write, as offsets into their main memory: the union of what
/// the observations saw, whichever orchestration or activity ran. A new
/// sandbox holds them all from its start, and a parked execution is
/// counted at them, whether or not its own code writes each one; hence
/// [`MOST_BYTES`].
#[derive(Debug, Default)]
pub(crate) struct WrittenPages {
    /// Observations so far.
    observed: AtomicU32,
    /// The pages they showed, while learning.
    pages: Mutex<BTreeSet<usize>>,
    /// Byte ranges a new sandbox writes in, in order.
    ranges: Mutex<Arc<[Range<usize>]>>,
}

impl WrittenPages {
    /// Whether the pages are still being learned: a park, or an execution
    /// that ends, should report the pages it holds through
    /// [`learn`](Self::learn).
    pub(crate) fn learning(&self) -> bool {
        self.observed.load(Ordering::Relaxed) < OBSERVATIONS
    }

    /// A sandbox holds `pages` (page indexes from its memory's start) of
    /// its own: new sandboxes write them in from now on, with those the
    /// earlier observations showed.
    pub(crate) fn learn(&self, pages: &[usize]) {
        let Ok(mut learned) = self.pages.lock() else {
            return;
        };
        if !self.learning() {
            return;
        }
        learned.extend(pages);
        let page = page_size();
        let ranges = ranges(&learned, page, MOST_BYTES / page);
        if let Ok(mut published) = self.ranges.lock() {
            *published = ranges.into();
        }
        if self.observed.fetch_add(1, Ordering::Relaxed) + 1 >= OBSERVATIONS {
            learned.clear();
        }
    }

    /// A new sandbox's main memory lies at `base`, `len` bytes long, and
    /// its first call is about to start (instantiation has run, and the
    /// allocator making room for the call's arguments): writes in the
    /// learned pages that lie within it.
    pub(crate) fn write_in(&self, base: usize, len: usize) {
        let Some(ranges) = self.ranges.lock().ok().map(|r| Arc::clone(&r)) else {
            return;
        };
        for range in ranges.iter() {
            if range.start >= len {
                break;
            }
            let end = range.end.min(len);
            populate_writable(base + range.start, end - range.start);
        }
    }
}

/// The byte ranges of `pages` (page indexes, each `page` bytes), adjacent
/// pages merged, at most `most` pages in all (the lowest kept).
fn ranges(pages: &BTreeSet<usize>, page: usize, most: usize) -> Box<[Range<usize>]> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for &p in pages.iter().take(most) {
        match ranges.last_mut() {
            Some(last) if last.end == p * page => last.end += page,
            _ => ranges.push(p * page..(p + 1) * page),
        }
    }
    ranges.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_pages_merge_into_one_range() {
        let pages = BTreeSet::from([0, 1, 2, 5, 7, 8]);
        assert_eq!(&*ranges(&pages, 10, 100), &[0..30, 50..60, 70..90]);
    }

    #[test]
    fn only_the_lowest_pages_up_to_the_cap_are_kept() {
        let pages = BTreeSet::from([3, 4, 9, 10]);
        assert_eq!(&*ranges(&pages, 10, 3), &[30..50, 90..100]);
    }

    #[test]
    fn each_observation_adds_its_pages_until_enough_were_made() {
        let written = WrittenPages::default();
        let page = page_size();
        written.learn(&[0]);
        let first = written.ranges.lock().unwrap().clone();
        assert_eq!((first.len(), &first[0]), (1, &(0..page)), "used at once");
        for observation in 1..OBSERVATIONS {
            assert!(written.learning());
            written.learn(&[observation as usize]);
        }
        assert!(!written.learning());
        written.learn(&[1000]);
        let learned = written.ranges.lock().unwrap().clone();
        let all = 0..OBSERVATIONS as usize * page;
        assert_eq!((learned.len(), &learned[0]), (1, &all));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn writing_in_makes_the_learned_pages_the_sandbox_own() {
        use crate::sandbox::resident::private_resident_bytes;
        use crate::sandbox::resident::tests::untouched;
        let page = page_size();
        let written = WrittenPages::default();
        written.learn(&[2, 3, 10]);
        let mut memory = untouched();
        let base = memory.spare_capacity_mut().as_mut_ptr() as usize;
        let base = base.next_multiple_of(page);
        let len = 64 * page;
        assert_eq!(private_resident_bytes(base, len), Some(0));
        written.write_in(base, len);
        assert_eq!(private_resident_bytes(base, len), Some(3 * page));
        // Pages past the memory's end are left alone.
        let mut other = untouched();
        let base = other.spare_capacity_mut().as_mut_ptr() as usize;
        let base = base.next_multiple_of(page);
        written.write_in(base, 4 * page);
        assert_eq!(private_resident_bytes(base, 64 * page), Some(2 * page));
    }
}
