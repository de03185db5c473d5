//! Work this runtime has no code for (an orchestration name or version, an
//! activity it has not loaded): it is left for a runtime that has the code,
//! as in a mixed fleet or a rolling deploy, rather than failed here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long deferred work stays out of every fetch. Short, since a runtime
/// that has the code waits this long too; long enough that runtimes without
/// it do not spin on the work.
pub(crate) const DEFER_FOR: Duration = Duration::from_millis(250);

/// How often one runtime warns about the same missing code.
const WARN_EVERY_MS: u64 = 60_000;

/// What to do with work whose code this runtime lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unserved {
    /// Give it back, fetchable again at `until_ms`, without counting the attempt.
    Defer {
        /// When it may be fetched again, ms since the Unix epoch.
        until_ms: u64,
    },
    /// Nobody has served it within the grace period: fail it with `reason`.
    Fail {
        /// Why, naming the missing code and the grace period.
        reason: String,
    },
}

/// Decides for work that needs `missing` (say "orchestration 'Hello'
/// version 1.0.0") and has waited since `waiting_since_ms`: defer it, or,
/// once it has waited longer than `grace` (off when `None`), fail it.
pub(crate) fn decide(
    missing: &str,
    waiting_since_ms: u64,
    now_ms: u64,
    grace: Option<Duration>,
) -> Unserved {
    let waited = now_ms.saturating_sub(waiting_since_ms);
    match grace {
        Some(grace) if u128::from(waited) > grace.as_millis() => Unserved::Fail {
            reason: format!(
                "no runtime serves {missing}: it waited {waited} ms, longer than the grace period of {} ms (unserved_grace)",
                grace.as_millis()
            ),
        },
        _ => Unserved::Defer {
            until_ms: now_ms.saturating_add(DEFER_FOR.as_millis() as u64),
        },
    }
}

/// Warns about missing code once a minute per name, so a fleet that keeps
/// deferring the same work does not flood the log.
#[derive(Default)]
pub(crate) struct Warnings {
    last: Mutex<HashMap<String, u64>>,
}

impl Warnings {
    /// Logs that this runtime lacks `missing`, needed by `instance`, unless
    /// it did within the last minute.
    pub(crate) fn warn(&self, missing: &str, instance: &str, now_ms: u64) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let due = last
            .get(missing)
            .is_none_or(|at| now_ms.saturating_sub(*at) >= WARN_EVERY_MS);
        if due {
            last.insert(missing.to_string(), now_ms);
            tracing::warn!(
                %instance,
                "this runtime lacks {missing}; the work is left for a runtime that has it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHAT: &str = "orchestration 'Hello' version 1.0.0";

    #[test]
    fn without_a_grace_period_work_is_always_deferred() {
        let decided = decide(WHAT, 0, 10_000_000, None);
        assert_eq!(
            decided,
            Unserved::Defer {
                until_ms: 10_000_000 + DEFER_FOR.as_millis() as u64
            }
        );
    }

    #[test]
    fn within_the_grace_period_work_is_deferred() {
        let grace = Some(Duration::from_secs(5));
        assert!(matches!(
            decide(WHAT, 1_000, 6_000, grace),
            Unserved::Defer { until_ms } if until_ms == 6_000 + DEFER_FOR.as_millis() as u64
        ));
    }

    #[test]
    fn past_the_grace_period_work_fails_naming_what_is_missing() {
        let grace = Some(Duration::from_secs(5));
        let Unserved::Fail { reason } = decide(WHAT, 1_000, 6_001, grace) else {
            panic!("expected a failure");
        };
        assert!(reason.contains(WHAT), "{reason}");
        assert!(reason.contains("5000 ms"), "{reason}");
    }

    #[test]
    fn a_clock_behind_the_wait_start_counts_as_no_wait() {
        let grace = Some(Duration::ZERO);
        assert!(matches!(
            decide(WHAT, 9_000, 8_000, grace),
            Unserved::Defer { .. }
        ));
    }

    #[test]
    fn warnings_repeat_at_most_once_a_minute_per_name() {
        let warnings = Warnings::default();
        warnings.warn(WHAT, "a", 1_000);
        warnings.warn(WHAT, "b", 2_000);
        let last = warnings.last.lock().unwrap().get(WHAT).copied();
        assert_eq!(last, Some(1_000));
        warnings.warn(WHAT, "c", 61_000);
        let last = warnings.last.lock().unwrap().get(WHAT).copied();
        assert_eq!(last, Some(61_000));
    }
}
