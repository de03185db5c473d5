//! How a dispatcher rides out a failing store: it waits with exponential
//! backoff between attempts (a database that is down is not polled in a
//! tight loop), and says so once when the store starts failing, again while
//! it goes on failing, and once when it answers again, rather than a line
//! per attempt. Nothing is lost meanwhile: work stays in the store, and what
//! a failed commit held comes back when its lock expires.

use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::Chain;
use crate::providers::StoreError;

/// The first wait after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a store that goes on failing is mentioned again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// The failures in a row of one dispatcher's calls (`what`).
pub(crate) struct Outage {
    what: &'static str,
    backoff: Duration,
    failures: u32,
    since: Option<Instant>,
    said_at: Option<Instant>,
}

impl Outage {
    /// No failure yet for `what` ("fetching orchestration work").
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            backoff: MIN_BACKOFF,
            failures: 0,
            since: None,
            said_at: None,
        }
    }

    /// A call succeeded: an outage, if there was one, is over.
    pub(crate) fn ended(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                "{} works again, after {} failed attempts over {:.1?}",
                self.what,
                self.failures,
                since.elapsed()
            );
        }
        self.failures = 0;
        self.backoff = MIN_BACKOFF;
        self.said_at = None;
    }

    /// A call failed with `e`: says so if it is news, and waits the backoff,
    /// or until `signal` (new work, or the store reconnected) or shutdown.
    pub(crate) async fn failed(
        &mut self,
        e: &StoreError,
        signal: &Notify,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        self.failures += 1;
        if !e.is_retryable() {
            // Not a passing outage: every occurrence is worth a line.
            tracing::error!("{} failed: {}", self.what, Chain(e));
        } else if self.said_at.is_none() {
            tracing::warn!(
                "{} failed, the store is unreachable; retrying with backoff (up to {:?}): {}",
                self.what,
                MAX_BACKOFF,
                Chain(e)
            );
            self.said_at = Some(now);
        } else if self.said_at.is_some_and(|at| now - at >= REMIND_EVERY) {
            tracing::warn!(
                "{} still fails, the store is unreachable ({} attempts over {:.0?}): {}",
                self.what,
                self.failures,
                now - since,
                Chain(e)
            );
            self.said_at = Some(now);
        } else {
            tracing::debug!("{} failed again: {}", self.what, Chain(e));
        }
        tokio::select! {
            () = tokio::time::sleep(self.backoff) => {}
            () = signal.notified() => {}
            _ = shutdown.changed() => {}
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::DatabaseError;

    #[tokio::test]
    async fn the_wait_doubles_up_to_a_limit_and_a_success_resets_it() {
        let down = StoreError::Database(DatabaseError::caused_by(
            "fetching",
            std::io::Error::other("refused"),
            true,
        ));
        let signal = Notify::new();
        let (_tx, mut shutdown) = watch::channel(false);
        let mut outage = Outage::new("fetching");
        let mut waits = Vec::new();
        for _ in 0..9 {
            // A signal ends a wait at once: the test need not sit through it.
            signal.notify_one();
            outage.failed(&down, &signal, &mut shutdown).await;
            waits.push(outage.backoff.as_millis());
        }
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000],
            "backs off, never spins"
        );
        assert_eq!(outage.failures, 9);
        outage.ended();
        assert_eq!((outage.backoff, outage.failures), (MIN_BACKOFF, 0));
        // The first wait is the shortest, and really waited.
        let began = Instant::now();
        outage.failed(&down, &signal, &mut shutdown).await;
        assert!(began.elapsed() >= MIN_BACKOFF);
    }
}
