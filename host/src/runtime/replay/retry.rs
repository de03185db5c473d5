//! Activity retries the host runs for the guest (`schedule-activity-with-retry`).
//!
//! The guest holds one task id, that of the first attempt's activity. Behind
//! it the host makes ordinary decisions while the guest waits on that task:
//! each attempt is an activity, each backoff and attempt timeout a durable
//! timer, a timed-out attempt a cancel. They are recorded and replayed like
//! the guest's own, so a retry replays exactly and survives restarts, and no
//! SDK has to carry a retry loop. [`Retries`] tracks which tasks belong to
//! which retry; the rules (which policies are valid, how long each backoff
//! is, when to give up) are the free functions here.

use std::borrow::Cow;

use super::index::{TaskIdMap, TaskIdSet};
use crate::limits::check_delay;
use crate::sandbox::{GuestFault, RetryPolicy};

/// How often the backoff grows at most: past this many failed attempts it
/// stays where it got to. Bounds the work per attempt whatever
/// `max_attempts` says, and keeps the backoff the same repeated
/// multiplications on every host (no `powi`, whose rounding may differ
/// between builds, while a timer's fire time is checked on replay).
const MAX_BACKOFF_STEPS: u32 = 1_000;

/// Refuse a policy the host cannot follow: a delay out of range, or a
/// coefficient that is negative or not finite.
pub(super) fn check(policy: &RetryPolicy) -> Result<(), GuestFault> {
    check_delay("retry initial backoff", policy.initial_backoff_ms)?;
    check_delay("retry max backoff", policy.max_backoff_ms)?;
    if let Some(ms) = policy.attempt_timeout_ms {
        check_delay("retry attempt timeout", ms)?;
    }
    if let Some(ms) = policy.total_timeout_ms {
        check_delay("retry total timeout", ms)?;
    }
    let coefficient = policy.backoff_coefficient;
    if !coefficient.is_finite() || coefficient < 0.0 {
        return Err(GuestFault::InvalidRetryPolicy(format!(
            "the backoff coefficient must be finite and not negative, not {coefficient}"
        )));
    }
    Ok(())
}

/// The wait after failed attempt `attempt` (from 1), in ms:
/// `initial_backoff_ms * backoff_coefficient^(attempt-1)`, capped at
/// `max_backoff_ms`.
pub(super) fn backoff_ms(policy: &RetryPolicy, attempt: u32) -> u64 {
    let cap = policy.max_backoff_ms as f64;
    let mut ms = policy.initial_backoff_ms as f64;
    for _ in 1..attempt.min(MAX_BACKOFF_STEPS) {
        if ms >= cap || ms == 0.0 {
            break;
        }
        ms *= policy.backoff_coefficient;
    }
    // `as` saturates; the cap keeps the result within the delay limit.
    (ms.min(cap)) as u64
}

/// What follows a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AfterFailure {
    /// Try again after this many ms (0: at once).
    RetryAfter(u64),
    /// Stop; the text says why when it is not simply the last attempt.
    GiveUp(Option<String>),
}

/// What follows failed attempt `attempt` (from 1) of a retry whose first
/// attempt started at `first_started_ms`, at `now_ms`.
pub(super) fn after_failure(
    policy: &RetryPolicy,
    attempt: u32,
    first_started_ms: u64,
    now_ms: u64,
) -> AfterFailure {
    if attempt >= policy.max_attempts.max(1) {
        return AfterFailure::GiveUp(None);
    }
    let backoff = backoff_ms(policy, attempt);
    if let Some(total) = policy.total_timeout_ms {
        let elapsed = now_ms.saturating_sub(first_started_ms);
        if elapsed.saturating_add(backoff) > total {
            return AfterFailure::GiveUp(Some(format!(
                "the next attempt would start past the total timeout of {total} ms"
            )));
        }
    }
    AfterFailure::RetryAfter(backoff)
}

/// The error a retry ends with when no attempt succeeded.
pub(super) fn gave_up(name: &str, attempts: u32, why: Option<&str>, last_error: &str) -> String {
    match why {
        None => format!("activity '{name}' failed after {attempts} attempts: {last_error}"),
        Some(why) => {
            format!("activity '{name}' failed after {attempts} attempts ({why}): {last_error}")
        }
    }
}

/// The error of an attempt its timeout ended.
pub(super) fn timed_out(name: &str, attempt: u32, timeout_ms: u64) -> String {
    format!("activity '{name}' attempt {attempt} timed out after {timeout_ms} ms")
}

/// Where a retry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// An attempt runs: its activity, and the timer of its timeout if any.
    Attempt { activity: u64, timeout: Option<u64> },
    /// Waiting out a backoff on `timer`.
    Backoff { timer: u64 },
    /// Over: handed to the guest or cancelled; `last` is the task whose
    /// completion ended it (or the one cancelled), which a later wait finds
    /// taken or cancelled.
    Done { last: u64 },
}

impl Phase {
    /// The tasks a wait on the retry waits on.
    fn tasks(self) -> impl Iterator<Item = u64> {
        let (a, b) = match self {
            Phase::Attempt { activity, timeout } => (activity, timeout),
            Phase::Backoff { timer } => (timer, None),
            Phase::Done { last } => (last, None),
        };
        std::iter::once(a).chain(b)
    }
}

/// One retry: what it runs, and where it is.
#[derive(Debug, Clone)]
pub(super) struct Retry {
    /// The activity.
    pub(super) name: String,
    /// Its input.
    pub(super) input: String,
    /// How to retry it.
    pub(super) policy: RetryPolicy,
    /// When the first attempt started, in ms since the Unix epoch.
    pub(super) first_started_ms: u64,
    /// The attempt running or last run, from 1.
    pub(super) attempt: u32,
    /// Where it is.
    pub(super) phase: Phase,
}

/// The retries of an execution, by the task id the guest holds.
#[derive(Default)]
pub(super) struct Retries {
    by_task: TaskIdMap<Retry>,
    /// Every task a retry made for itself, to the guest's task id: looked
    /// up for every completion handed over, hence the task-id hasher.
    owner: TaskIdMap<u64>,
    /// Retries the guest waits on through `wait-any`.
    watched: TaskIdSet,
}

impl Retries {
    /// Start tracking `retry` under the guest's task id `task` (its first
    /// attempt's activity).
    pub(super) fn insert(&mut self, task: u64, retry: Retry) {
        for t in retry.phase.tasks() {
            self.owner.insert(t, task);
        }
        self.by_task.insert(task, retry);
    }

    /// The retry the guest holds as `task`.
    pub(super) fn get(&self, task: u64) -> Option<&Retry> {
        self.by_task.get(&task)
    }

    /// The guest's task id of the retry that made `task`, if one did.
    pub(super) fn owner(&self, task: u64) -> Option<u64> {
        self.owner.get(&task).copied()
    }

    /// Move retry `task` to `phase` at attempt `attempt`.
    pub(super) fn set(&mut self, task: u64, attempt: u32, phase: Phase) {
        for t in phase.tasks() {
            self.owner.insert(t, task);
        }
        if let Some(retry) = self.by_task.get_mut(&task) {
            retry.attempt = attempt;
            retry.phase = phase;
        }
        if matches!(phase, Phase::Done { .. }) {
            self.watched.remove(&task);
        }
    }

    /// Whether the guest waits on retry `task` through `wait-any`.
    pub(super) fn is_watched(&self, task: u64) -> bool {
        self.watched.contains(&task)
    }

    /// The guest watches `tasks`: remember which are retries still running.
    pub(super) fn watch(&mut self, tasks: &[u64]) {
        for task in tasks {
            if let Some(retry) = self.by_task.get(task)
                && !matches!(retry.phase, Phase::Done { .. })
            {
                self.watched.insert(*task);
            }
        }
    }

    /// The tasks to look for when the guest names `tasks`: each retry
    /// stands for the tasks of its phase. A task a retry made for itself is
    /// not the guest's to name: [`GuestFault::UnknownTask`].
    pub(super) fn expand<'a>(&self, tasks: &'a [u64]) -> Result<Cow<'a, [u64]>, GuestFault> {
        if self.by_task.is_empty() {
            return Ok(Cow::Borrowed(tasks));
        }
        let mut expanded = Vec::with_capacity(tasks.len() + 1);
        for &task in tasks {
            match self.by_task.get(&task) {
                Some(retry) => expanded.extend(retry.phase.tasks()),
                None if self.owner.contains_key(&task) => {
                    return Err(GuestFault::UnknownTask(task));
                }
                None => expanded.push(task),
            }
        }
        Ok(Cow::Owned(expanded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32, initial: u64, coefficient: f64, max: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff_ms: initial,
            backoff_coefficient: coefficient,
            max_backoff_ms: max,
            attempt_timeout_ms: None,
            total_timeout_ms: None,
        }
    }

    #[test]
    fn backoff_grows_by_the_coefficient_and_is_capped() {
        let p = policy(10, 100, 2.0, 500);
        let waits: Vec<u64> = (1..=5).map(|n| backoff_ms(&p, n)).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(backoff_ms(&p, u32::MAX), 500);
        let constant = policy(3, 50, 1.0, 1_000);
        assert_eq!(backoff_ms(&constant, 1), 50);
        assert_eq!(backoff_ms(&constant, 7), 50);
        assert_eq!(backoff_ms(&policy(3, 0, 2.0, 1_000), 3), 0);
        assert_eq!(backoff_ms(&policy(3, 100, 0.5, 1_000), 3), 25);
        // Shrinking for ever stops growing work at the step bound.
        assert_eq!(
            backoff_ms(&policy(u32::MAX, 100, 0.999_999, 1_000), u32::MAX),
            99
        );
    }

    #[test]
    fn only_finite_non_negative_coefficients_and_delays_in_range_are_valid() {
        assert!(check(&policy(3, 10, 2.0, 100)).is_ok());
        assert!(check(&policy(3, 10, 0.0, 100)).is_ok());
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let err = check(&policy(3, 10, bad, 100)).unwrap_err();
            assert!(
                matches!(err, GuestFault::InvalidRetryPolicy(_)),
                "{bad}: {err}"
            );
            assert!(err.to_string().starts_with("[DX014]"), "{err}");
        }
        let mut far = policy(3, 10, 2.0, 100);
        far.attempt_timeout_ms = Some(u64::MAX);
        let err = check(&far).unwrap_err();
        assert!(err.to_string().contains("retry attempt timeout"), "{err}");
        assert!(check(&policy(3, u64::MAX, 2.0, 100)).is_err());
    }

    #[test]
    fn a_failure_is_retried_until_the_attempts_or_the_total_timeout_run_out() {
        let p = policy(3, 100, 2.0, 1_000);
        assert_eq!(after_failure(&p, 1, 0, 0), AfterFailure::RetryAfter(100));
        assert_eq!(after_failure(&p, 2, 0, 0), AfterFailure::RetryAfter(200));
        assert_eq!(after_failure(&p, 3, 0, 0), AfterFailure::GiveUp(None));
        assert_eq!(
            after_failure(&policy(0, 100, 2.0, 1_000), 1, 0, 0),
            AfterFailure::GiveUp(None),
            "0 attempts count as 1"
        );
        let mut bounded = p.clone();
        bounded.total_timeout_ms = Some(250);
        assert_eq!(
            after_failure(&bounded, 1, 0, 150),
            AfterFailure::RetryAfter(100)
        );
        let AfterFailure::GiveUp(Some(why)) = after_failure(&bounded, 1, 0, 151) else {
            panic!("a backoff ending past the total timeout gives up");
        };
        assert!(why.contains("total timeout of 250 ms"), "{why}");
    }

    #[test]
    fn errors_name_the_activity_and_the_attempts() {
        assert_eq!(
            gave_up("Charge", 3, None, "boom"),
            "activity 'Charge' failed after 3 attempts: boom"
        );
        assert_eq!(
            gave_up("Charge", 1, Some("why"), "boom"),
            "activity 'Charge' failed after 1 attempts (why): boom"
        );
        assert_eq!(
            timed_out("Charge", 2, 50),
            "activity 'Charge' attempt 2 timed out after 50 ms"
        );
    }

    #[test]
    fn a_retry_stands_for_the_tasks_of_its_phase_and_hides_its_own() {
        let mut retries = Retries::default();
        assert!(matches!(retries.expand(&[1, 2]).unwrap(), Cow::Borrowed(_)));
        retries.insert(
            1,
            Retry {
                name: "A".into(),
                input: String::new(),
                policy: policy(3, 10, 1.0, 10),
                first_started_ms: 0,
                attempt: 1,
                phase: Phase::Attempt {
                    activity: 1,
                    timeout: Some(2),
                },
            },
        );
        assert_eq!(&*retries.expand(&[1, 5]).unwrap(), &[1, 2, 5]);
        assert!(matches!(
            retries.expand(&[2]),
            Err(GuestFault::UnknownTask(2))
        ));
        retries.watch(&[1]);
        assert!(retries.is_watched(1));
        retries.set(1, 1, Phase::Backoff { timer: 3 });
        assert_eq!(&*retries.expand(&[1]).unwrap(), &[3]);
        assert_eq!(retries.owner(3), Some(1));
        retries.set(1, 1, Phase::Done { last: 3 });
        assert!(!retries.is_watched(1));
        assert_eq!(&*retries.expand(&[1]).unwrap(), &[3]);
    }
}
