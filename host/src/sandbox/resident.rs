//! What a guest's linear memory holds in fact: the pages of its range that
//! are resident and its own (written, or swapped out), read from the
//! kernel's page table of this process. A language runtime's memory is
//! mostly its pre-initialised image, mapped copy-on-write and shared by
//! every sandbox of its component, and pages it never touched: its size
//! says little about what one more parked execution costs.

/// Bytes of `len` bytes of memory at address `base` that are resident and
/// private to this mapping: pages written (or swapped out), not those still
/// shared with a file (a memory image) nor never touched. `None` where the
/// kernel does not tell (not Linux, or no `/proc`).
///
/// The range is only looked up, never read or written: a stale or wrong
/// range gives a wrong figure, nothing worse.
pub(crate) fn private_resident_bytes(base: usize, len: usize) -> Option<usize> {
    let mut pages = 0usize;
    imp::private_pages(base, len, |_| pages += 1)?;
    pages.checked_mul(page_size())
}

/// Like [`private_resident_bytes`], and also calls `each` with the index
/// (from `base`, in pages) of every page it counts.
pub(crate) fn private_pages(base: usize, len: usize, mut each: impl FnMut(usize)) -> Option<usize> {
    let mut pages = 0usize;
    imp::private_pages(base, len, |page| {
        pages += 1;
        each(page);
    })?;
    pages.checked_mul(page_size())
}

/// Makes the `len` bytes at `base` (page-aligned) present and writable in
/// one system call, each page a private copy of what it maps, as the first
/// write to each would, but without a fault per page. Contents never
/// change, whatever the range; populating costs the memory of the pages,
/// so the range should be a guest memory the caller holds. Best effort:
/// the kernel stops at the first page it cannot populate (one not mapped
/// writable), and where it cannot at all (not Linux, before 5.14) nothing
/// is done and no more is tried.
pub(crate) fn populate_writable(base: usize, len: usize) {
    imp::populate_writable(base, len)
}

/// The host's page size.
pub(crate) fn page_size() -> usize {
    imp::page_size()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `/proc/self/pagemap` entry bits (Documentation/admin-guide/mm/pagemap.rst).
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    /// A file page (an image mapped copy-on-write and not yet written) or
    /// shared anonymous memory: not this mapping's own.
    const FILE_OR_SHARED: u64 = 1 << 61;

    /// Entries read per system call.
    const BATCH: usize = 512;

    /// The process's page table, opened once.
    fn pagemap() -> Option<&'static File> {
        static PAGEMAP: OnceLock<Option<File>> = OnceLock::new();
        PAGEMAP
            .get_or_init(|| File::open("/proc/self/pagemap").ok())
            .as_ref()
    }

    pub(super) fn private_pages(
        base: usize,
        len: usize,
        mut each: impl FnMut(usize),
    ) -> Option<()> {
        let file = pagemap()?;
        let page = super::page_size();
        let first = base / page;
        let end = base.checked_add(len)?.div_ceil(page);
        let mut entries = [0u8; BATCH * 8];
        let mut at = first;
        while at < end {
            let count = (end - at).min(BATCH);
            let buf = &mut entries[..count * 8];
            let offset = u64::try_from(at).ok()?.checked_mul(8)?;
            file.read_exact_at(buf, offset).ok()?;
            let own = buf
                .chunks_exact(8)
                .filter_map(|e| e.try_into().ok().map(u64::from_le_bytes))
                .map(|e| (e & PRESENT != 0 && e & FILE_OR_SHARED == 0) || e & SWAPPED != 0);
            for (i, own) in own.enumerate() {
                if own {
                    each(at + i - first);
                }
            }
            at += count;
        }
        Some(())
    }

    pub(super) fn page_size() -> usize {
        rustix::param::page_size()
    }

    /// Set once the kernel refused the advice as unknown (before 5.14).
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

    pub(super) fn populate_writable(base: usize, len: usize) {
        use rustix::io::Errno;
        use rustix::mm::{Advice, madvise};
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: `madvise` is unsafe for advice that changes contents
        // (`MADV_DONTNEED`, `MADV_FREE`); `MADV_POPULATE_WRITE` changes no
        // byte of any range (each page is copied from what it maps, or
        // zeroed where it maps nothing, as a write fault would), so no
        // view of the memory can tell it ran.
        #[allow(unsafe_code)]
        let done = unsafe { madvise(base as *mut _, len, Advice::LinuxPopulateWrite) };
        match done {
            Ok(()) => {}
            Err(Errno::INVAL) => UNSUPPORTED.store(true, Ordering::Relaxed),
            Err(e) => tracing::trace!("cannot populate {len} bytes of guest memory: {e}"),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn private_pages(_base: usize, _len: usize, _each: impl FnMut(usize)) -> Option<()> {
        None
    }

    /// Only the learning of written pages asks, and it learns nothing here.
    pub(super) fn page_size() -> usize {
        4096
    }

    pub(super) fn populate_writable(_base: usize, _len: usize) {}
}

#[cfg(test)]
#[cfg(target_os = "linux")]
pub(crate) mod tests {
    use super::*;

    /// The host's page size.
    pub(crate) fn page() -> usize {
        rustix::param::page_size()
    }

    /// A fresh, untouched mapping of 64 MiB: an allocation this large is
    /// mapped on its own, and left uninitialised nothing writes it.
    pub(crate) fn untouched() -> Vec<u8> {
        Vec::with_capacity(64 << 20)
    }

    /// Writes the first byte of `pages` pages of `buf`'s spare room, one in
    /// every `step`.
    pub(crate) fn write_pages(buf: &mut Vec<u8>, pages: usize, step: usize) {
        let spare = buf.spare_capacity_mut();
        for i in 0..pages {
            spare[i * step * page()].write(1);
        }
    }

    fn resident(base: *const u8, len: usize) -> usize {
        private_resident_bytes(base as usize, len).expect("the kernel tells")
    }

    #[test]
    fn only_the_pages_written_count() {
        let mut buf = untouched();
        let (base, len) = (buf.as_ptr(), 4096 * page());
        // Untouched: at most the allocator's header page.
        assert!(resident(base, len) <= page(), "{}", resident(base, len));
        write_pages(&mut buf, 100, 8);
        let written = resident(base, len);
        assert!(
            (100 * page()..=101 * page()).contains(&written),
            "100 pages written, {written} bytes counted"
        );
    }

    #[test]
    fn a_range_spanning_batches_counts_each_page_once() {
        let mut buf = untouched();
        write_pages(&mut buf, 3000, 1);
        let written = resident(buf.as_ptr(), 3000 * page());
        assert!(
            (3000 * page()..=3001 * page()).contains(&written),
            "3000 pages written, {written} bytes counted"
        );
    }

    #[test]
    fn the_pages_written_are_named_from_the_range_start() {
        let mut buf = untouched();
        let page = page();
        let start = buf.spare_capacity_mut().as_ptr() as usize;
        // The range starts at the buffer's first page boundary.
        let base = start.next_multiple_of(page);
        write_pages(&mut buf, 20, 4);
        let mut pages = Vec::new();
        let bytes = private_pages(base, 128 * page, |p| pages.push(p));
        // Every fourth page of the buffer, named by the page of the range
        // it falls in.
        let expected: Vec<usize> = (0..20)
            .map(|i| start + i * 4 * page)
            .filter(|&at| at >= base)
            .map(|at| (at - base) / page)
            .collect();
        assert_eq!(pages, expected);
        assert_eq!(bytes, Some(expected.len() * page));
    }

    #[test]
    fn an_empty_range_holds_nothing() {
        assert_eq!(private_resident_bytes(page() * 16, 0), Some(0));
    }
}
