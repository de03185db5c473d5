//! Durable activity retries: a [`RetryPolicy`] and
//! [`OrchestrationContext::schedule_activity_with_retry`].
//!
//! The host runs the retries (the contract's `schedule-activity-with-retry`):
//! every attempt is an ordinary activity, every backoff and attempt timeout an
//! ordinary durable timer, decided and replayed by the host. A retry
//! therefore replays exactly and survives host restarts: a backoff in
//! progress when the host stops fires on schedule once a runtime resumes
//! the instance.

use std::time::Duration;

use crate::bindings::duroxide::orchestration::context as host;
use crate::bindings::duroxide::orchestration::types::RetryPolicy as WitRetryPolicy;
use crate::{ActivityTask, OrchestrationContext};

/// How [`OrchestrationContext::schedule_activity_with_retry`] retries a
/// failing activity.
///
/// After failed attempt `n` (counting from 1) the orchestration waits
/// `initial_backoff * backoff_coefficient^(n-1)`, capped at `max_backoff`, on
/// a durable timer, then tries again, up to `max_attempts` attempts in all.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. `0` is treated as `1`.
    pub max_attempts: u32,
    /// Wait after the first failed attempt.
    pub initial_backoff: Duration,
    /// Factor each further wait grows by (`1.0` keeps it constant). It must
    /// be finite and not negative: the host fails the orchestration
    /// (`DX014`) otherwise.
    pub backoff_coefficient: f64,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Fail an attempt that has not finished after this long. The activity
    /// itself is not stopped: it runs on, and its late result is ignored.
    pub attempt_timeout: Option<Duration>,
    /// Start no further attempt when its backoff would end more than this
    /// long after the first attempt started. It bounds when attempts may
    /// start, not how long a running attempt may take (use
    /// `attempt_timeout` for that).
    pub total_timeout: Option<Duration>,
}

impl Default for RetryPolicy {
    /// Three attempts, backoff 1 s doubling up to 60 s, no timeouts.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            backoff_coefficient: 2.0,
            max_backoff: Duration::from_secs(60),
            attempt_timeout: None,
            total_timeout: None,
        }
    }
}

impl RetryPolicy {
    /// The default policy with `max_attempts` attempts in all.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            ..Self::default()
        }
    }

    /// Set the wait after the first failed attempt.
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Set the factor each further wait grows by.
    pub fn with_backoff_coefficient(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Set the longest wait between attempts.
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Fail each attempt that has not finished after `timeout`.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// Start no attempt whose backoff would end later than `timeout` after the first attempt.
    pub fn with_total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// The policy as the contract carries it: durations in whole
    /// milliseconds, saturating.
    fn to_wit(&self) -> WitRetryPolicy {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        WitRetryPolicy {
            max_attempts: self.max_attempts,
            initial_backoff_ms: ms(self.initial_backoff),
            backoff_coefficient: self.backoff_coefficient,
            max_backoff_ms: ms(self.max_backoff),
            attempt_timeout_ms: self.attempt_timeout.map(ms),
            total_timeout_ms: self.total_timeout.map(ms),
        }
    }
}

impl OrchestrationContext {
    /// Run activity `name` with `input`, retried by the host as `policy`
    /// says; await the task for the first successful output.
    ///
    /// With an [`attempt_timeout`](RetryPolicy::attempt_timeout), an attempt
    /// still running when it ends is cancelled and fails with `activity
    /// '<name>' attempt <n> timed out after <ms> ms`. Between attempts the
    /// host waits the backoff on a durable timer. When no attempt succeeds,
    /// the error is `activity '<name>' failed after <n> attempts: <last
    /// error>` (with a note before the colon when the total timeout stopped
    /// it). Attempts advance while the orchestration awaits the task, alone
    /// or in a [`select2`](crate::select2) or [`join_all`](crate::join_all).
    pub fn schedule_activity_with_retry(
        &self,
        name: &str,
        input: &str,
        policy: &RetryPolicy,
    ) -> ActivityTask {
        let id = host::schedule_activity_with_retry(name, input, policy.to_wit());
        self.activity_task(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_contract_gets_whole_milliseconds() {
        let wit = RetryPolicy::new(4)
            .with_initial_backoff(Duration::from_micros(1_500))
            .with_backoff_coefficient(1.5)
            .with_max_backoff(Duration::MAX)
            .with_attempt_timeout(ms(10))
            .to_wit();
        assert_eq!(wit.max_attempts, 4);
        assert_eq!(wit.initial_backoff_ms, 1);
        assert_eq!(wit.backoff_coefficient, 1.5);
        assert_eq!(wit.max_backoff_ms, u64::MAX);
        assert_eq!(wit.attempt_timeout_ms, Some(10));
        assert_eq!(wit.total_timeout_ms, None);
    }

    #[test]
    fn builder_sets_every_field() {
        let policy = RetryPolicy::new(4)
            .with_attempt_timeout(ms(10))
            .with_total_timeout(ms(20));
        assert_eq!(policy.max_attempts, 4);
        assert_eq!(policy.attempt_timeout, Some(ms(10)));
        assert_eq!(policy.total_timeout, Some(ms(20)));
        assert_eq!(
            policy.initial_backoff,
            RetryPolicy::default().initial_backoff
        );
    }
}
