//! A runaway activity is stopped at its budget on every path it can run by
//! (inline, handed over, held, fetched from the queue), even when its lock is
//! much shorter than its budget; and work whose attempts keep ending without
//! a result fails after a bounded number of them.

use std::time::Duration;

use duroxide::history::Event;
use duroxide::{DuroxideRuntime, RuntimeOptions};
use duroxide_tests::{
    Harness, WAIT_MS, completed, each_store, failed, guests, history_reaches, scenario,
};

/// Budget of one activity attempt in these tests.
const BUDGET: Duration = Duration::from_millis(1500);

/// Options whose activity lock is a fifth of the budget: the lock must be
/// renewed for the budget, not the lock, to end the attempt.
fn short_lock(cache: bool) -> RuntimeOptions {
    let mut options = duroxide_tests::options(cache);
    options.activity_lock = Duration::from_millis(300);
    options.limits.activity_budget = BUDGET;
    options
}

/// A harness whose runtime runs with [`short_lock`] options.
async fn harness(cache: bool) -> anyhow::Result<Harness> {
    let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    h.restart(short_lock(cache), &[guests::SCENARIOS]).await?;
    Ok(h)
}

scenario!(
    a_spinning_activity_beside_a_quick_one_fails_at_its_budget,
    |cache| async move {
        let h = harness(cache).await?;
        let output = completed(h.run("beside", "SpinBeside", "x").await?)?;
        assert!(output.contains("quick: Ok(\"X\")"), "{output}");
        assert!(output.contains("spin: Err("), "{output}");
        assert!(output.contains("budget of 1500 ms"), "{output}");
        // One attempt: the budget ended it, and its failure was accepted.
        let history = h.history("beside").await?;
        let failures = history
            .iter()
            .filter(|e| matches!(e, Event::ActivityFailed { .. }))
            .count();
        assert_eq!(failures, 1, "{history:?}");
        Ok(())
    }
);

scenario!(
    a_spinning_activity_alone_fails_its_instance_at_its_budget,
    |cache| async move {
        let h = harness(cache).await?;
        let error = failed(h.run("alone", "SpinAlone", "x").await?)?;
        assert!(error.contains("budget of 1500 ms"), "{error}");
        Ok(())
    }
);

scenario!(
    a_spinning_activity_fetched_from_the_queue_fails_at_its_budget,
    |cache| async move {
        let mut h = harness(cache).await?;
        h.client
            .start_orchestration("queued", "SpinAlone", "x", None)
            .await?;
        history_reaches(&h.client, "queued", |h| {
            h.iter()
                .any(|e| matches!(e, Event::ActivityScheduled { .. }))
        })
        .await?;
        // The stop abandons the running attempt and puts its work back in
        // the queue, where the next runtime's dispatcher fetches it.
        let mut options = short_lock(cache);
        options.shutdown_grace = Duration::from_millis(100);
        h.restart(options, &[guests::SCENARIOS]).await?;
        let status = h
            .client
            .wait_for_completion("queued", Some(WAIT_MS))
            .await?;
        let error = failed(status)?;
        assert!(error.contains("budget of 1500 ms"), "{error}");
        Ok(())
    }
);

each_store!(attempts_that_end_without_a_result_are_bounded, async move {
    let h = Harness::start(true, &[guests::SCENARIOS]).await?;
    let Harness {
        store,
        client,
        runtime,
        db: _db,
        ..
    } = h;
    drop(runtime);
    // A runtime whose attempt never ends, and which dies mid-call: dropped
    // without `stop`, it neither completes nor releases the work.
    let mut options = short_lock(true);
    options.limits.activity_budget = Duration::from_secs(60);
    let mut dying = DuroxideRuntime::with_options(store.clone(), options.clone());
    dying.load_component_file(guests::SCENARIOS).await?;
    dying.register_activity("NativeDouble", |_| std::future::pending())?;
    dying.start().await?;
    client
        .start_orchestration("crashes", "CallNative", "21", None)
        .await?;
    history_reaches(&client, "crashes", |h| {
        h.iter()
            .any(|e| matches!(e, Event::ActivityScheduled { .. }))
    })
    .await?;
    drop(dying);

    // Its successor takes the work once the lock expires, as the attempt
    // past the limit, and fails the activity saying why.
    options.max_activity_attempts = 1;
    let mut successor = DuroxideRuntime::with_options(store.clone(), options);
    successor.load_component_file(guests::SCENARIOS).await?;
    successor.register_activity("NativeDouble", |input| async move { Ok(input) })?;
    successor.start().await?;
    let error = failed(client.wait_for_completion("crashes", Some(WAIT_MS)).await?)?;
    assert!(
        error.contains("activity 'NativeDouble' was abandoned after 1 attempts"),
        "{error}"
    );
    assert!(error.contains("max_activity_attempts"), "{error}");
    successor.stop().await;
    Ok(())
});
