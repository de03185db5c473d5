//! How many turns the orchestrator dispatcher keeps in flight.
//!
//! A fetch locks every instance it takes for the orchestration lock. A
//! runtime that fetches more than it can commit within that time (its CPU
//! or its store connections are the bottleneck) loses the locks of the
//! turns at the back: their work is thrown away, another runtime fetches
//! the expired instances and does it again, and the queue's attempt counts
//! climb until messages are taken for poison. Left alone, that state feeds
//! itself. So the window of turns in flight halves when a turn loses its
//! lock, and grows back slowly while turns commit.
//!
//! A runtime starts with a small window that grows by one per commit
//! (doubling every window of commits) until a turn first loses its lock, so
//! a runtime that starts into a backlog (a restart, a process added) does
//! not lock more than it can turn. Where the store keeps up, the window
//! reaches `orchestration_workers` within the first thousand commits and
//! stays there.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The fewest turns the window allows: a runtime that cannot commit this
/// many within a lock is stalled, not overloaded, and a smaller window
/// would not help it.
const MIN_TURNS: usize = 16;

/// The window a runtime starts with (or its turn slots, if fewer).
const START_TURNS: usize = 64;

/// After the first lost lock, the window grows by one for every `limit / GROWTH_DIVISOR` commits: by
/// about an eighth per window of commits, so a window that was cut finds
/// its level again without a burst that loses locks at once.
const GROWTH_DIVISOR: usize = 8;

/// The number of turns the orchestrator dispatcher may have in flight.
pub(crate) struct TurnWindow {
    state: Mutex<State>,
    /// The largest window: the runtime's turn slots.
    max: usize,
    /// The orchestration lock: turns fetched together lose their locks
    /// together, so the window is cut at most once per lock period.
    lock: Duration,
}

struct State {
    limit: usize,
    /// Commits counted toward the next growth step.
    credit: usize,
    /// No turn has lost its lock yet: the window grows by one per commit.
    starting: bool,
    last_cut: Option<Instant>,
}

impl TurnWindow {
    /// A starting window that grows to `max` turns, for a runtime whose
    /// locks last `lock`.
    pub(crate) fn new(max: usize, lock: Duration) -> Self {
        let max = max.max(1);
        Self {
            state: Mutex::new(State {
                limit: START_TURNS.min(max),
                credit: 0,
                starting: true,
                last_cut: None,
            }),
            max,
            lock,
        }
    }

    /// How many more turns may start while `in_flight` are running.
    pub(crate) fn room(&self, in_flight: usize) -> usize {
        self.limit().saturating_sub(in_flight)
    }

    /// The current window.
    pub(crate) fn limit(&self) -> usize {
        self.state.lock().map_or(self.max, |s| s.limit)
    }

    /// A turn committed: the window grows toward its maximum.
    pub(crate) fn committed(&self) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if s.limit >= self.max {
            return;
        }
        if s.starting {
            s.limit += 1;
            return;
        }
        s.credit += 1;
        if s.credit >= (s.limit / GROWTH_DIVISOR).max(1) {
            s.credit = 0;
            s.limit += 1;
        }
    }

    /// A turn lost its lock before it committed, at `now`: the window
    /// halves, unless it was cut less than a lock period ago.
    pub(crate) fn lost_lock(&self, now: Instant) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if s.last_cut
            .is_some_and(|cut| now.duration_since(cut) < self.lock)
        {
            return;
        }
        let floor = MIN_TURNS.min(self.max);
        let cut = (s.limit / 2).max(floor);
        if cut < s.limit {
            tracing::warn!(
                "turns lose their locks before they commit: fetching at most {cut} at once \
                 (was {})",
                s.limit
            );
        }
        s.limit = cut;
        s.credit = 0;
        s.starting = false;
        s.last_cut = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: Duration = Duration::from_secs(2);

    /// A window grown to its maximum without losing a lock.
    fn full(max: usize) -> TurnWindow {
        let window = TurnWindow::new(max, LOCK);
        for _ in 0..max {
            window.committed();
        }
        window
    }

    #[test]
    fn a_runtime_starts_small_and_doubles_each_window_of_commits() {
        let window = TurnWindow::new(1024, LOCK);
        assert_eq!(window.limit(), START_TURNS);
        assert_eq!(window.room(60), 4);
        for _ in 0..START_TURNS {
            window.committed();
        }
        assert_eq!(window.limit(), 2 * START_TURNS);
        assert_eq!(
            TurnWindow::new(8, LOCK).limit(),
            8,
            "never past the maximum"
        );
    }

    #[test]
    fn a_runtime_that_never_loses_a_lock_keeps_its_full_window() {
        let window = full(1024);
        for _ in 0..10_000 {
            window.committed();
        }
        assert_eq!(window.limit(), 1024);
        assert_eq!(window.room(1000), 24);
        assert_eq!(window.room(2000), 0);
    }

    #[test]
    fn a_lost_lock_halves_the_window_once_per_lock_period() {
        let window = full(1024);
        let t0 = Instant::now();
        window.lost_lock(t0);
        assert_eq!(window.limit(), 512);
        // The turns fetched with it lose theirs too: no further cut.
        window.lost_lock(t0 + Duration::from_millis(10));
        window.lost_lock(t0 + LOCK - Duration::from_millis(1));
        assert_eq!(window.limit(), 512);
        window.lost_lock(t0 + LOCK);
        assert_eq!(window.limit(), 256);
    }

    #[test]
    fn the_window_never_falls_below_its_floor() {
        let window = full(1024);
        let t0 = Instant::now();
        for n in 0..20 {
            window.lost_lock(t0 + LOCK * n);
        }
        assert_eq!(window.limit(), MIN_TURNS);
        let small = TurnWindow::new(4, LOCK);
        small.lost_lock(t0);
        assert_eq!(small.limit(), 4, "a window below the floor is not cut");
    }

    #[test]
    fn commits_grow_the_window_back_by_an_eighth_per_window() {
        let window = full(1024);
        window.lost_lock(Instant::now());
        assert_eq!(window.limit(), 512);
        // 64 commits (512 / 8) make one step.
        for _ in 0..63 {
            window.committed();
        }
        assert_eq!(window.limit(), 512);
        window.committed();
        assert_eq!(window.limit(), 513);
        for _ in 0..1_000_000 {
            window.committed();
        }
        assert_eq!(window.limit(), 1024, "never past the maximum");
    }

    #[test]
    fn a_cut_restarts_the_growth_count() {
        let window = full(256);
        let t0 = Instant::now();
        window.lost_lock(t0);
        for _ in 0..15 {
            window.committed();
        }
        window.lost_lock(t0 + LOCK);
        assert_eq!(window.limit(), 64);
        for _ in 0..7 {
            window.committed();
        }
        assert_eq!(window.limit(), 64, "8 commits make a step at 64");
        window.committed();
        assert_eq!(window.limit(), 65);
    }
}
