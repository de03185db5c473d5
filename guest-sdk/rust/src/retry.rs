//! Durable activity retries: a [`RetryPolicy`] and
//! [`OrchestrationContext::schedule_activity_with_retry`].
//!
//! Every attempt is an ordinary activity, every backoff and attempt timeout an
//! ordinary durable timer, and elapsed time comes from
//! [`OrchestrationContext::utc_now`]. A retry loop therefore replays exactly
//! and survives host restarts: a backoff in progress when the host stops
//! fires on schedule once a runtime resumes the instance.

use std::time::Duration;

use crate::OrchestrationContext;
use crate::combinators::{Either, select2};

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
    /// Factor each further wait grows by (`1.0` keeps it constant).
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

    /// The wait after failed attempt `attempt` (counting from 1):
    /// `initial_backoff * backoff_coefficient^(attempt-1)`, capped at
    /// `max_backoff`. A negative or not-a-number result counts as zero.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.initial_backoff.as_secs_f64() * self.backoff_coefficient.powi(exponent);
        if secs.is_nan() || secs <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(secs).map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }
}

impl OrchestrationContext {
    /// Run activity `name` with `input`, retrying failed attempts as `policy` says.
    ///
    /// Each attempt schedules the activity; with an
    /// [`attempt_timeout`](RetryPolicy::attempt_timeout) it races a durable
    /// timer (see [`select2`]), and an attempt the timer beats fails with
    /// `activity '<name>' attempt <n> timed out after <ms> ms`. Between
    /// attempts the orchestration waits the backoff on a durable timer. The
    /// first successful output is returned; when no attempt succeeds, the
    /// error is `activity '<name>' failed after <n> attempts: <last error>`
    /// (with a note before the colon when the total timeout stopped it).
    pub async fn schedule_activity_with_retry(
        &self,
        name: &str,
        input: &str,
        policy: &RetryPolicy,
    ) -> Result<String, String> {
        let max_attempts = policy.max_attempts.max(1);
        let first_started = self.utc_now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let error = match self.attempt_activity(name, input, attempt, policy).await {
                Ok(output) => return Ok(output),
                Err(error) => error,
            };
            if attempt >= max_attempts {
                return Err(format!(
                    "activity '{name}' failed after {attempt} attempts: {error}"
                ));
            }
            let backoff = policy.backoff(attempt);
            if let Some(total) = policy.total_timeout {
                let elapsed = self
                    .utc_now()
                    .duration_since(first_started)
                    .unwrap_or(Duration::ZERO);
                if elapsed.saturating_add(backoff) > total {
                    return Err(format!(
                        "activity '{name}' failed after {attempt} attempts \
                         (the next attempt would start past the total timeout of {} ms): {error}",
                        total.as_millis()
                    ));
                }
            }
            if !backoff.is_zero() {
                self.schedule_timer(backoff).await;
            }
        }
    }

    /// One attempt: the activity, raced against the attempt timeout if any.
    async fn attempt_activity(
        &self,
        name: &str,
        input: &str,
        attempt: u32,
        policy: &RetryPolicy,
    ) -> Result<String, String> {
        let activity = self.schedule_activity(name, input);
        let Some(timeout) = policy.attempt_timeout else {
            return activity.await;
        };
        match select2(activity, self.schedule_timer(timeout)).await {
            Either::Left(result) => result,
            Either::Right(()) => Err(format!(
                "activity '{name}' attempt {attempt} timed out after {} ms",
                timeout.as_millis()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_grows_by_the_coefficient_and_is_capped() {
        let policy = RetryPolicy::new(10)
            .with_initial_backoff(ms(100))
            .with_backoff_coefficient(2.0)
            .with_max_backoff(ms(500));
        let waits: Vec<Duration> = (1..=5).map(|n| policy.backoff(n)).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(policy.backoff(u32::MAX), ms(500));
    }

    #[test]
    fn constant_and_degenerate_backoffs() {
        let constant = RetryPolicy::new(3)
            .with_initial_backoff(ms(50))
            .with_backoff_coefficient(1.0);
        assert_eq!(constant.backoff(1), ms(50));
        assert_eq!(constant.backoff(7), ms(50));
        let nan = constant.clone().with_backoff_coefficient(f64::NAN);
        assert_eq!(nan.backoff(2), Duration::ZERO);
        let negative = constant.with_backoff_coefficient(-1.0);
        assert_eq!(negative.backoff(2), Duration::ZERO);
        let zero = RetryPolicy::new(3).with_initial_backoff(Duration::ZERO);
        assert_eq!(zero.backoff(3), Duration::ZERO);
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
