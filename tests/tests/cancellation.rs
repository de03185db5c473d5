//! An activity whose result is no longer wanted is stopped at once, whether
//! it spins without ever asking or sleeps in a host call, and its slot is
//! freed: with one activity slot, the activity after it runs. Its attempt
//! is recorded as cancelled (a log line and a metric), the orchestration is
//! unaffected, and at a stop the work goes back to the queue instead.

use std::time::{Duration, Instant};

use duroxide::history::Event;
use duroxide::{ComponentPolicy, DuroxideRuntime, OrchestrationStatus, RuntimeOptions};
use duroxide_tests::{Harness, WAIT_MS, completed, guests, history_reaches, scenario};

/// Options with one activity slot and a budget far beyond the tests' wait:
/// an activity after a never-ending one runs only if that one was stopped.
fn one_slot(cache: bool) -> RuntimeOptions {
    let mut options = duroxide_tests::options(cache);
    options.activity_concurrency = 1;
    options.limits.activity_budget = Duration::from_secs(600);
    options
}

/// A started runtime on `h`'s store with `options`, running the
/// orchestrations and the never-ending activities.
async fn runtime(h: &Harness, options: RuntimeOptions) -> anyhow::Result<DuroxideRuntime> {
    let mut runtime = DuroxideRuntime::with_options(h.store.clone(), options.clone());
    runtime
        .load_component_file(guests::GRANT_ORCHESTRATIONS)
        .await?;
    let policy = ComponentPolicy::with_limits(options.limits.clone());
    runtime
        .load_component_file_with_policy(guests::CAPABILITIES, policy)
        .await?;
    runtime.start().await?;
    Ok(runtime)
}

async fn harness(cache: bool) -> anyhow::Result<Harness> {
    let mut h = Harness::start(cache, &[]).await?;
    h.runtime.stop().await;
    h.runtime = runtime(&h, one_slot(cache)).await?;
    Ok(h)
}

/// How many activity attempts the metrics count as cancelled.
fn cancelled_attempts() -> u64 {
    let text = duroxide::metrics::encode();
    text.lines()
        .find(|l| l.starts_with("duroxide_activity_attempts_total{outcome=\"cancelled\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

scenario!(
    an_activity_that_lost_its_race_is_stopped_and_frees_its_slot,
    |cache| async move {
        let h = harness(cache).await?;
        let before = cancelled_attempts();
        for (i, loser) in ["SpinForever", "SleepForever"].into_iter().enumerate() {
            let started = Instant::now();
            let output = completed(
                h.run(&format!("race{i}"), "Race", &format!("{loser}|50"))
                    .await?,
            )?;
            assert_eq!(output, "timer, then after", "{loser}");
            assert!(started.elapsed() < Duration::from_secs(20), "{loser}");
            // The loser's failure, naming the cancellation, was dropped:
            // the orchestration had stopped waiting for it.
            let history = h.history(&format!("race{i}")).await?;
            let failed = history
                .iter()
                .any(|e| matches!(e, Event::ActivityFailed { .. }));
            assert!(!failed, "{history:?}");
        }
        assert!(cancelled_attempts() >= before + 2);
        Ok(())
    }
);

scenario!(
    cancelling_the_instance_stops_its_running_activity,
    |cache| async move {
        let h = harness(cache).await?;
        for (i, activity) in ["SpinForever", "SleepForever"].into_iter().enumerate() {
            let instance = format!("waits{i}");
            h.client
                .start_orchestration(&instance, "WaitFor", activity, None)
                .await?;
            history_reaches(&h.client, &instance, |h| {
                h.iter()
                    .any(|e| matches!(e, Event::ActivityScheduled { .. }))
            })
            .await?;
            h.client.cancel_orchestration(&instance).await?;
            let status = h
                .client
                .wait_for_completion(&instance, Some(WAIT_MS))
                .await?;
            assert!(
                matches!(status, OrchestrationStatus::Cancelled { .. }),
                "{status:?}"
            );
            // The one slot is free again.
            let echo = completed(h.run(&format!("echo{i}"), "Call", "Echo|x").await?)?;
            assert_eq!(echo, "ok: x");
        }
        Ok(())
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_a_blocked_activity_at_once_and_requeues_its_work() -> anyhow::Result<()> {
    let mut h = Harness::start(true, &[]).await?;
    h.runtime.stop().await;
    let mut options = one_slot(true);
    options.shutdown_grace = Duration::from_secs(60);
    let mut stopping = runtime(&h, options).await?;
    h.client
        .start_orchestration("requeued", "WaitFor", "SleepForever", None)
        .await?;
    history_reaches(&h.client, "requeued", |h| {
        h.iter()
            .any(|e| matches!(e, Event::ActivityScheduled { .. }))
    })
    .await?;
    // The stop does not wait out its grace for the sleeping activity.
    let started = Instant::now();
    stopping.stop().await;
    assert!(started.elapsed() < Duration::from_secs(20));

    // The work was put back, not failed: a runtime whose SleepForever
    // returns at once completes the instance with it.
    let mut next = DuroxideRuntime::with_options(h.store.clone(), one_slot(true));
    next.load_component_file(guests::GRANT_ORCHESTRATIONS)
        .await?;
    next.register_activity("SleepForever", |_| async { Ok("awake".to_string()) })?;
    next.start().await?;
    let status = h
        .client
        .wait_for_completion("requeued", Some(WAIT_MS))
        .await?;
    assert_eq!(completed(status)?, "awake");
    next.stop().await;
    Ok(())
}

scenario!(
    a_native_activity_is_stopped_when_its_race_is_lost,
    |cache| async move {
        let mut h = Harness::start(cache, &[]).await?;
        h.runtime.stop().await;
        let options = one_slot(cache);
        let mut runtime = DuroxideRuntime::with_options(h.store.clone(), options);
        runtime
            .load_component_file(guests::GRANT_ORCHESTRATIONS)
            .await?;
        runtime.register_activity("Pending", |_| std::future::pending())?;
        runtime.start().await?;
        h.runtime = runtime;
        let output = completed(h.run("native", "Race", "Pending|50").await?)?;
        assert_eq!(output, "timer, then after");
        Ok(())
    }
);
