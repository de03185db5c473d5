//! The SDK's combinators and durable retries through the real runtime on
//! each store and the `patterns` guest, with the execution cache on and off:
//! races decided by what history holds, joins in input order, retries with
//! durable backoff timers, attempt and total timeouts, and a restart in the
//! middle of a backoff.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duroxide::OrchestrationStatus;
use duroxide::history::Event;
use duroxide_tests::{
    Harness, WAIT_MS, completed, count, failed, guests, history_reaches, options, scenario,
    timer_delays,
};

fn scheduled(history: &[Event]) -> usize {
    count(history, |e| matches!(e, Event::ActivityScheduled { .. }))
}

fn timers_created(history: &[Event]) -> usize {
    count(history, |e| matches!(e, Event::TimerCreated { .. }))
}

fn timers_fired(history: &[Event]) -> usize {
    count(history, |e| matches!(e, Event::TimerFired { .. }))
}

fn subscribed(history: &[Event], name: &str) -> usize {
    count(
        history,
        |e| matches!(e, Event::EventSubscribed { name: n, .. } if n == name),
    )
}

// Races.

scenario!(race_is_won_by_an_event_raised_in_time, |cache| async move {
    let h = Harness::start(cache, &[guests::PATTERNS]).await?;
    h.client
        .start_orchestration("race", "RaceEventTimeout", "60000", None)
        .await?;
    history_reaches(&h.client, "race", |h| {
        subscribed(h, "approve") == 1 && timers_created(h) == 1
    })
    .await?;
    h.client.raise_event("race", "approve", "yes").await?;
    let output = completed(h.client.wait_for_completion("race", Some(WAIT_MS)).await?)?;
    assert_eq!(output, "event:yes");
    let history = h.history("race").await?;
    assert_eq!(timers_fired(&history), 0, "{history:?}");
    Ok(())
});

scenario!(
    race_is_won_by_the_timeout_without_an_event,
    |cache| async move {
        let h = Harness::start(cache, &[guests::PATTERNS]).await?;
        let output = completed(h.run("race", "RaceEventTimeout", "200").await?)?;
        assert_eq!(output, "timeout");
        let history = h.history("race").await?;
        assert_eq!(timers_fired(&history), 1, "{history:?}");
        assert_eq!(timer_delays(&history), [200]);
        assert_eq!(subscribed(&history, "approve"), 1);
        assert_eq!(
            count(&history, |e| matches!(e, Event::EventRaised { .. })),
            0
        );
        Ok(())
    }
);

scenario!(
    race_is_won_by_an_activity_before_its_timer,
    |cache| async move {
        let h = Harness::start(cache, &[guests::PATTERNS]).await?;
        let output = completed(h.run("race", "RaceActivityTimer", "ping").await?)?;
        assert_eq!(output, "activity:ping");
        let history = h.history("race").await?;
        assert_eq!(scheduled(&history), 1);
        assert_eq!(timers_created(&history), 1);
        assert_eq!(timers_fired(&history), 0);
        Ok(())
    }
);

scenario!(
    a_timed_out_event_wait_gives_up_its_event,
    |cache| async move {
        let h = Harness::start(cache, &[guests::PATTERNS]).await?;
        h.client
            .start_orchestration("late", "TimeoutThenWait", "100", None)
            .await?;
        // The race timed out and the second wait is subscribed.
        history_reaches(&h.client, "late", |h| {
            timers_fired(h) == 1 && subscribed(h, "approve") == 2
        })
        .await?;
        // The losing subscription was cancelled, so the next wait receives
        // the first event raised after the timeout.
        assert!(
            h.history("late")
                .await?
                .iter()
                .any(|e| matches!(e, Event::TaskCancelled { .. })),
            "the loser is cancelled in history"
        );
        h.client.raise_event("late", "approve", "first").await?;
        let output = completed(h.client.wait_for_completion("late", Some(WAIT_MS)).await?)?;
        assert_eq!(output, "timeout,then:first");
        Ok(())
    }
);

// Joins and select_all.

scenario!(
    join_all_returns_outputs_in_input_order,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::PATTERNS]).await?;
        // Activity i returns only after the n-1-i activities after it have, so
        // they finish in reverse order.
        let (done, _) = tokio::sync::watch::channel(0usize);
        let done = Arc::new(done);
        let finished: Arc<Mutex<Vec<usize>>> = Arc::default();
        {
            let finished = finished.clone();
            h.runtime.register_activity("Ordered", move |input| {
                let done = done.clone();
                let finished = finished.clone();
                async move {
                    let (i, n) = input
                        .split_once('/')
                        .and_then(|(i, n)| {
                            Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?))
                        })
                        .ok_or_else(|| format!("bad input {input}"))?;
                    let mut rx = done.subscribe();
                    rx.wait_for(|d| *d >= n.saturating_sub(i + 1))
                        .await
                        .map_err(|e| e.to_string())?;
                    finished.lock().map_err(|e| e.to_string())?.push(i);
                    done.send_modify(|d| *d += 1);
                    Ok(format!("r{i}"))
                }
            })?;
        }
        let output = completed(h.run("join", "FanOutJoin", "5").await?)?;
        assert_eq!(output, "r0,r1,r2,r3,r4");
        assert_eq!(
            *finished.lock().map_err(|e| anyhow::anyhow!("{e}"))?,
            [4, 3, 2, 1, 0]
        );
        let history = h.history("join").await?;
        assert_eq!(scheduled(&history), 5);
        assert_eq!(
            count(&history, |e| matches!(e, Event::ActivityCompleted { .. })),
            5
        );

        // Joining nothing completes at once.
        let output = completed(h.run("join-none", "FanOutJoin", "0").await?)?;
        assert_eq!(output, "");
        Ok(())
    }
);

scenario!(select_all_returns_the_event_that_came, |cache| async move {
    let h = Harness::start(cache, &[guests::PATTERNS]).await?;
    h.client
        .start_orchestration("first", "SelectFirstOf", "", None)
        .await?;
    history_reaches(&h.client, "first", |h| {
        ["a", "b", "c"].iter().all(|name| subscribed(h, name) == 1)
    })
    .await?;
    h.client.raise_event("first", "b", "B").await?;
    let output = completed(h.client.wait_for_completion("first", Some(WAIT_MS)).await?)?;
    assert_eq!(output, "1:B");
    Ok(())
});

scenario!(
    select_all_follows_history_order_not_index_order,
    |cache| async move {
        let h = Harness::start(cache, &[guests::PATTERNS]).await?;
        h.client
            .start_orchestration("order", "SelectFirstOf", "gated", None)
            .await?;
        history_reaches(&h.client, "order", |h| subscribed(h, "go") == 1).await?;
        // "c" is recorded before "a": when the race begins, both are in
        // history, and the host hands back the earlier one.
        h.client.raise_event("order", "c", "C").await?;
        h.client.raise_event("order", "a", "A").await?;
        h.client.raise_event("order", "go", "").await?;
        let output = completed(h.client.wait_for_completion("order", Some(WAIT_MS)).await?)?;
        assert_eq!(output, "2:C");
        Ok(())
    }
);

// Retries.

scenario!(
    retry_succeeds_once_the_activity_stops_failing,
    |cache| async move {
        const FAILURES: u32 = 2;
        let mut h = Harness::start(cache, &[guests::PATTERNS]).await?;
        let calls = Arc::new(AtomicU32::new(0));
        {
            let calls = calls.clone();
            h.runtime.register_activity("Flaky", move |_input| {
                let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if call <= FAILURES {
                        Err(format!("flaky failure {call}"))
                    } else {
                        Ok(format!("ok on call {call}"))
                    }
                }
            })?;
        }
        let output = completed(h.run("flaky", "RetryFlaky", "x").await?)?;
        assert_eq!(output, "ok on call 3 (input x)");
        assert_eq!(calls.load(Ordering::SeqCst), FAILURES + 1);
        let history = h.history("flaky").await?;
        assert_eq!(scheduled(&history), FAILURES as usize + 1);
        assert_eq!(
            count(&history, |e| matches!(e, Event::ActivityFailed { .. })),
            FAILURES as usize
        );
        assert_eq!(timers_created(&history), FAILURES as usize);
        // Backoff 20 ms, doubling.
        assert_eq!(timer_delays(&history), [20, 40]);
        Ok(())
    }
);

scenario!(
    exhausted_retries_fail_with_the_last_error,
    |cache| async move {
        let h = Harness::start(cache, &[guests::PATTERNS]).await?;
        let error = failed(h.run("exhausted", "RetryExhausted", "50").await?)?;
        assert_eq!(
            error,
            "activity 'AlwaysFails' failed after 3 attempts: cannot process payload"
        );
        let history = h.history("exhausted").await?;
        assert_eq!(scheduled(&history), 3);
        assert_eq!(
            count(&history, |e| matches!(e, Event::ActivityFailed { .. })),
            3
        );
        assert_eq!(timer_delays(&history), [50, 100]);
        assert_eq!(timers_fired(&history), 2);
        Ok(())
    }
);

scenario!(
    attempts_that_time_out_are_retried_then_fail,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::PATTERNS]).await?;
        let calls = Arc::new(AtomicU32::new(0));
        {
            let calls = calls.clone();
            h.runtime.register_activity("Sleepy", move |input| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    Ok(format!("late {input}"))
                }
            })?;
        }
        let error = failed(h.run("sleepy", "RetryAttemptTimeout", "nap").await?)?;
        assert_eq!(
            error,
            "activity 'Sleepy' failed after 3 attempts: activity 'Sleepy' attempt 3 timed out after 200 ms"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let history = h.history("sleepy").await?;
        assert_eq!(scheduled(&history), 3);
        // An attempt timer per attempt, a backoff timer between attempts.
        assert_eq!(timer_delays(&history), [200, 50, 200, 50, 200]);
        assert_eq!(timers_fired(&history), 5);
        assert_eq!(
            count(&history, |e| matches!(
                e,
                Event::ActivityCompleted { .. } | Event::ActivityFailed { .. }
            )),
            0,
            "no attempt finished in time: {history:?}"
        );
        Ok(())
    }
);

scenario!(
    an_attempt_after_a_timed_out_one_can_succeed,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::PATTERNS]).await?;
        let calls = Arc::new(AtomicU32::new(0));
        {
            let calls = calls.clone();
            h.runtime.register_activity("Sleepy", move |input| {
                let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    if call == 1 {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    Ok(format!("{input} on call {call}"))
                }
            })?;
        }
        let output = completed(h.run("sleepy", "RetryAttemptTimeout", "nap").await?)?;
        assert_eq!(output, "nap on call 2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let history = h.history("sleepy").await?;
        assert_eq!(scheduled(&history), 2);
        assert_eq!(timer_delays(&history), [200, 50, 200]);
        // The first attempt's timer and the backoff fired; the second attempt won its race.
        assert_eq!(timers_fired(&history), 2);
        Ok(())
    }
);

scenario!(total_timeout_stops_retrying, |cache| async move {
    let h = Harness::start(cache, &[guests::PATTERNS]).await?;
    let error = failed(h.run("total", "RetryTotalTimeout", "").await?)?;
    let history = h.history("total").await?;
    let attempts = scheduled(&history);
    // 200 ms between attempts within 300 ms: two attempts normally, one if
    // the first took over 100 ms; never the ten the policy allows.
    assert!(
        (1..=2).contains(&attempts),
        "{attempts} attempts: {history:?}"
    );
    assert_eq!(
        error,
        format!(
            "activity 'AlwaysFails' failed after {attempts} attempts \
             (the next attempt would start past the total timeout of 300 ms): cannot process payload"
        )
    );
    assert_eq!(timer_delays(&history), vec![200; attempts - 1]);

    // The decision followed the orchestration's clock as recorded in history:
    // each backoff ended within 300 ms of the start, the one refused would not.
    let mut started = 0;
    let mut now = 0;
    let mut failures_at = Vec::new();
    for event in &history {
        match event {
            Event::OrchestrationStarted { started_at_ms, .. } => {
                started = *started_at_ms;
                now = started;
            }
            Event::TurnStarted { at_ms } => now = *at_ms,
            Event::ActivityFailed { .. } => failures_at.push(now - started),
            _ => {}
        }
    }
    assert_eq!(failures_at.len(), attempts);
    let (last, earlier) = failures_at.split_last().unwrap_or((&0, &[]));
    assert!(
        earlier.iter().all(|elapsed| elapsed + 200 <= 300),
        "{failures_at:?}"
    );
    assert!(last + 200 > 300, "{failures_at:?}");
    Ok(())
});

// Durability.

scenario!(retry_backoff_survives_a_restart, |cache| async move {
    let mut h = Harness::start(cache, &[guests::PATTERNS]).await?;
    h.client
        .start_orchestration("restart", "RetryExhausted", "800", None)
        .await?;
    // The first attempt failed and its backoff timer is pending: stop there.
    history_reaches(&h.client, "restart", |h| {
        let failed_at = h
            .iter()
            .position(|e| matches!(e, Event::ActivityFailed { .. }));
        let timer_at = h
            .iter()
            .position(|e| matches!(e, Event::TimerCreated { .. }));
        matches!((failed_at, timer_at), (Some(f), Some(t)) if f < t)
    })
    .await?;
    h.runtime.stop().await;
    let before = h.history("restart").await?;
    assert_eq!(
        h.client.get_orchestration_status("restart").await?,
        OrchestrationStatus::Running
    );

    // A new runtime on the same store finishes the retries.
    h.restart(options(cache), &[guests::PATTERNS]).await?;
    let error = failed(
        h.client
            .wait_for_completion("restart", Some(WAIT_MS))
            .await?,
    )?;
    assert_eq!(
        error,
        "activity 'AlwaysFails' failed after 3 attempts: cannot process payload"
    );
    let history = h.history("restart").await?;
    assert_eq!(
        &history[..before.len()],
        &before[..],
        "history before the stop is unchanged"
    );
    assert_eq!(
        scheduled(&history),
        3,
        "no attempt was repeated: {history:?}"
    );
    assert_eq!(
        count(&history, |e| matches!(e, Event::ActivityFailed { .. })),
        3
    );
    // 800 ms, then 1600 ms capped at 1 s.
    assert_eq!(timer_delays(&history), [800, 1000]);
    assert_eq!(timers_fired(&history), 2);
    assert_eq!(count(&history, |e| e.is_terminal()), 1);
    h.runtime.stop().await;
    Ok(())
});
