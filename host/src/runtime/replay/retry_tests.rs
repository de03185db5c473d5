//! The replay engine running retries: what the guest sees, what history
//! records, and that a recorded retry replays to the same decisions.

use super::tests::started;
use super::*;

fn policy(max_attempts: u32, backoff_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff_ms: backoff_ms,
        backoff_coefficient: 2.0,
        max_backoff_ms: 60_000,
        attempt_timeout_ms: None,
        total_timeout_ms: None,
    }
}

fn failed(id: u64, error: &str) -> OrchestratorMessage {
    OrchestratorMessage::ActivityFailed {
        execution_id: 1,
        id,
        error: error.into(),
    }
}

fn succeeded(id: u64, output: &str) -> OrchestratorMessage {
    OrchestratorMessage::ActivityCompleted {
        execution_id: 1,
        id,
        output: output.into(),
    }
}

fn fired(id: u64) -> OrchestratorMessage {
    OrchestratorMessage::TimerFired {
        execution_id: 1,
        id,
    }
}

/// An execution driven turn by turn, keeping every event it committed.
struct Run {
    replay: Replay,
    history: Vec<Event>,
}

impl Run {
    fn new() -> Self {
        let mut replay = Replay::new("i", 1, Vec::new(), 1024);
        replay.append(started(1_000));
        Run {
            replay,
            history: Vec::new(),
        }
    }

    /// End the turn; the decisions it made.
    fn commit(&mut self) -> Vec<Event> {
        let events = self.replay.take_turn_output().new_events;
        self.history.extend(events.iter().cloned());
        events.into_iter().filter(Event::is_decision).collect()
    }

    fn turn(&mut self, at_ms: u64, messages: &[OrchestratorMessage]) {
        assert_eq!(self.replay.begin_turn(at_ms, messages), messages.len());
    }
}

fn activity(id: u64) -> Event {
    Event::ActivityScheduled {
        id,
        name: "A".into(),
        input: "x".into(),
    }
}

#[test]
fn a_failed_attempt_is_retried_after_its_backoff_behind_one_task() {
    let mut run = Run::new();
    let task = run
        .replay
        .schedule_activity_with_retry("A".into(), "x".into(), policy(3, 100))
        .unwrap();
    assert_eq!(task, 1);
    assert_eq!(run.replay.poll_wait(&[task]).unwrap(), None);
    assert_eq!(run.commit(), [activity(1)]);

    run.turn(2_000, &[failed(1, "boom")]);
    assert_eq!(run.replay.poll_wait(&[task]).unwrap(), None);
    let backoff = Event::TimerCreated {
        id: 2,
        fire_at_ms: 2_100,
    };
    assert_eq!(run.commit(), [backoff]);
    // The retry's own tasks are not the guest's to name.
    assert!(matches!(
        run.replay.poll_wait(&[2]),
        Err(GuestFault::UnknownTask(2))
    ));

    run.turn(2_100, &[fired(2)]);
    assert_eq!(run.replay.poll_wait(&[task]).unwrap(), None);
    assert_eq!(run.commit(), [activity(3)]);

    run.turn(2_200, &[succeeded(3, "ok")]);
    let completion = run.replay.poll_wait(&[task]).unwrap().unwrap();
    assert_eq!(completion.task, task);
    assert_eq!(completion.outcome, Outcome::Ok("ok".into()));
    run.commit();

    // Replayed from history, the retry makes the same decisions and hands
    // the guest the same outcome, adding nothing.
    let mut replay = Replay::new("i", 1, run.history, 1024);
    let again = replay
        .schedule_activity_with_retry("A".into(), "x".into(), policy(3, 100))
        .unwrap();
    let completion = replay.poll_wait(&[again]).unwrap().unwrap();
    assert_eq!(
        (completion.task, completion.outcome),
        (task, Outcome::Ok("ok".into()))
    );
    assert!(replay.take_turn_output().new_events.is_empty());
}

#[test]
fn the_last_failure_is_handed_over_naming_the_attempts() {
    let mut run = Run::new();
    let task = run
        .replay
        .schedule_activity_with_retry("A".into(), "x".into(), policy(2, 0))
        .unwrap();
    run.replay.poll_wait(&[task]).unwrap();
    run.commit();
    run.turn(2_000, &[failed(1, "first")]);
    assert_eq!(run.replay.poll_wait(&[task]).unwrap(), None);
    // No backoff: the next attempt starts at once.
    assert_eq!(run.commit(), [activity(2)]);
    run.turn(3_000, &[failed(2, "second")]);
    let completion = run.replay.poll_wait(&[task]).unwrap().unwrap();
    assert_eq!(
        completion.outcome,
        Outcome::Err("activity 'A' failed after 2 attempts: second".into())
    );
    assert!(matches!(
        run.replay.poll_wait(&[task]),
        Err(GuestFault::WaitNeverEnds { .. })
    ));
}

#[test]
fn an_attempt_past_its_timeout_is_cancelled_and_its_late_result_ignored() {
    let mut run = Run::new();
    let mut timed = policy(2, 0);
    timed.attempt_timeout_ms = Some(50);
    let task = run
        .replay
        .schedule_activity_with_retry("A".into(), "x".into(), timed)
        .unwrap();
    run.replay.poll_wait(&[task]).unwrap();
    let timeout = Event::TimerCreated {
        id: 2,
        fire_at_ms: 1_050,
    };
    assert_eq!(run.commit(), [activity(1), timeout]);

    run.turn(1_050, &[fired(2)]);
    assert_eq!(run.replay.poll_wait(&[task]).unwrap(), None);
    // The cancel is decision 3, so the second attempt's tasks are 4 and 5.
    let second_timeout = Event::TimerCreated {
        id: 5,
        fire_at_ms: 1_100,
    };
    assert_eq!(
        run.commit(),
        [Event::TaskCancelled { id: 1 }, activity(4), second_timeout]
    );

    // The first attempt's late result is dropped; the second's wins and
    // its timeout is cancelled.
    assert_eq!(run.replay.begin_turn(1_060, &[succeeded(1, "late")]), 0);
    run.turn(1_070, &[succeeded(4, "ok")]);
    let completion = run.replay.poll_wait(&[task]).unwrap().unwrap();
    assert_eq!(completion.outcome, Outcome::Ok("ok".into()));
    assert_eq!(run.commit(), [Event::TaskCancelled { id: 5 }]);
    assert!(!run.replay.take_turn_output().timer_pending);
}

#[test]
fn a_watched_retry_goes_on_through_wait_any() {
    let mut run = Run::new();
    let task = run
        .replay
        .schedule_activity_with_retry("A".into(), "x".into(), policy(3, 10))
        .unwrap();
    let other = run.replay.schedule_timer(1_000).unwrap();
    run.replay.watch(&[task, other]).unwrap();
    assert_eq!(run.replay.poll_wait_any().unwrap(), None);
    run.commit();
    run.turn(1_100, &[failed(1, "boom")]);
    assert_eq!(run.replay.poll_wait_any().unwrap(), None);
    run.commit();
    run.turn(1_110, &[fired(3)]);
    assert_eq!(run.replay.poll_wait_any().unwrap(), None);
    run.turn(1_120, &[succeeded(4, "ok")]);
    let completion = run.replay.poll_wait_any().unwrap().unwrap();
    assert_eq!(
        (completion.task, completion.outcome),
        (task, Outcome::Ok("ok".into()))
    );
}

#[test]
fn cancelling_a_retry_cancels_what_it_waits_on() {
    let mut run = Run::new();
    let task = run
        .replay
        .schedule_activity_with_retry("A".into(), "x".into(), policy(3, 100))
        .unwrap();
    run.replay.poll_wait(&[task]).unwrap();
    run.commit();
    run.turn(2_000, &[failed(1, "boom")]);
    run.replay.poll_wait(&[task]).unwrap();
    run.commit();
    run.replay.cancel_task(task).unwrap();
    assert_eq!(run.commit(), [Event::TaskCancelled { id: 2 }]);
    assert!(matches!(
        run.replay.poll_wait(&[task]),
        Err(GuestFault::WaitNeverEnds { .. })
    ));
    assert!(matches!(
        run.replay.cancel_task(2),
        Err(GuestFault::UnknownTask(2))
    ));
}

#[test]
fn an_invalid_policy_fails_before_anything_is_scheduled() {
    let mut run = Run::new();
    let mut bad = policy(3, 100);
    bad.backoff_coefficient = f64::NAN;
    let err = run
        .replay
        .schedule_activity_with_retry("A".into(), "x".into(), bad)
        .unwrap_err();
    assert!(matches!(err, GuestFault::InvalidRetryPolicy(_)), "{err}");
    assert!(run.commit().is_empty());
}
