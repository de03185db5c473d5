//! How dispatchers wait when there is no work: woken at once by an enqueue in
//! this process, at the next timer or lock expiry, or by a poll that backs off
//! (work enqueued by other processes is seen that way).

use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::providers::HistoryStore;

/// Shortest poll interval, used right after work was found.
const MIN_POLL: Duration = Duration::from_millis(5);

/// Adaptive polling state of one dispatcher loop.
pub(crate) struct Idle {
    backoff: Duration,
    max: Duration,
    lead: Duration,
}

impl Idle {
    /// Polls that back off up to `max`, waking `lead` before the store's
    /// next wake-up time (for a dispatcher that fetches work ahead of time).
    pub(crate) fn new(max: Duration, lead: Duration) -> Self {
        Self {
            backoff: MIN_POLL,
            max: max.max(MIN_POLL),
            lead,
        }
    }

    /// Work was found: poll eagerly again next time.
    pub(crate) fn reset(&mut self) {
        self.backoff = MIN_POLL;
    }

    /// Sleep until `signal`, the lead before the store's next wake-up time,
    /// the backoff interval, or shutdown, whichever comes first.
    pub(crate) async fn wait(
        &mut self,
        store: &dyn HistoryStore,
        signal: &Notify,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let mut sleep = self.backoff;
        if let Ok(Some(at)) = store.next_wake_at_ms().await {
            let until = Duration::from_millis(at.saturating_sub(store.clock().now_ms()));
            // Within the lead, the fetch that just found nothing could not
            // take what is due (work of the other dispatcher, a lock that
            // expires): wait for the time itself rather than poll until then.
            let wake_in = if until > self.lead {
                until - self.lead
            } else {
                until
            };
            sleep = sleep.min(wake_in);
        }
        tokio::select! {
            _ = signal.notified() => self.reset(),
            _ = tokio::time::sleep(sleep) => self.backoff = (self.backoff * 2).min(self.max),
            _ = shutdown.changed() => {}
        }
    }
}
