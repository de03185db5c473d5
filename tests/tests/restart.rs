//! Durability: a runtime stopped mid-orchestration and a new one on the same
//! file finish it with the same result and no duplicated history; a changed
//! guest that diverges from recorded history fails precisely.

use duroxide::history::Event;
use duroxide::{DuroxideRuntime, OrchestrationStatus};
use duroxide_tests::{
    Harness, WAIT_MS, completed, count, each_store, failed, guests, history_reaches, options,
    scenario,
};

scenario!(restart_mid_orchestration, |cache| async move {
    let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    h.client
        .start_orchestration("restart", "ActivityTimerActivity", "1500", None)
        .await?;
    // First activity done, timer pending: stop there.
    history_reaches(&h.client, "restart", |h| {
        h.iter()
            .any(|e| matches!(e, Event::ActivityCompleted { .. }))
            && h.iter().any(|e| matches!(e, Event::TimerCreated { .. }))
    })
    .await?;
    h.runtime.stop().await;
    assert!(!h.runtime.is_running());
    let before = h.history("restart").await?;
    assert!(!before.iter().any(|e| matches!(e, Event::TimerFired { .. })));
    assert_eq!(
        h.client.get_orchestration_status("restart").await?,
        OrchestrationStatus::Running
    );

    // A new runtime on a new store object on the same database.
    let store = duroxide::providers::open(&h.url).await?;
    let mut runtime = DuroxideRuntime::with_options(store, options(cache));
    runtime.load_component_file(guests::SCENARIOS).await?;
    runtime.start().await?;
    let output = completed(
        h.client
            .wait_for_completion("restart", Some(WAIT_MS))
            .await?,
    )?;
    assert_eq!(output, "first!,second!");

    let history = h.history("restart").await?;
    assert_eq!(
        &history[..before.len()],
        &before[..],
        "history before the stop is unchanged"
    );
    assert_eq!(
        count(&history, |e| matches!(e, Event::ActivityScheduled { .. })),
        2
    );
    assert_eq!(
        count(&history, |e| matches!(e, Event::ActivityCompleted { .. })),
        2
    );
    assert_eq!(
        count(&history, |e| matches!(e, Event::TimerCreated { .. })),
        1
    );
    assert_eq!(
        count(&history, |e| matches!(e, Event::TimerFired { .. })),
        1
    );
    assert_eq!(count(&history, |e| e.is_terminal()), 1);
    h.runtime.stop().await;
    Ok(())
});

scenario!(
    changed_guest_fails_with_the_divergence,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::EVOLVING_V1]).await?;
        h.client
            .start_orchestration("evolve", "Evolving", "x", None)
            .await?;
        history_reaches(&h.client, "evolve", |h| {
            h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
        })
        .await?;
        h.runtime.stop().await;

        // Deploy a changed build under the same name and version.
        h.restart(options(cache), &[guests::EVOLVING_V2]).await?;
        h.client.raise_event("evolve", "go", "now").await?;
        let error = failed(
            h.client
                .wait_for_completion("evolve", Some(WAIT_MS))
                .await?,
        )?;
        assert!(
            error.starts_with("[DX001] nondeterministic orchestration"),
            "{error}"
        );
        assert!(error.contains("decision #1 (history event #1)"), "{error}");
        assert!(
            error.contains(r#"history holds ActivityScheduled(name: "StepA", input: "x")"#),
            "{error}"
        );
        assert!(
            error.contains(r#"the code asked for ActivityScheduled(name: "StepC", input: "x")"#),
            "{error}"
        );
        h.runtime.stop().await;
        Ok(())
    }
);

each_store!(stop_is_graceful_and_restartable, async move {
    let mut h = Harness::start(true, &[guests::SCENARIOS]).await?;
    for i in 0..20 {
        h.client
            .start_orchestration(&format!("load-{i}"), "Sequence", &i.to_string(), None)
            .await?;
    }
    // Stop while that work is in flight, then start again in place.
    h.runtime.stop().await;
    h.runtime.start().await?;
    for i in 0..20 {
        let output = completed(
            h.client
                .wait_for_completion(&format!("load-{i}"), Some(WAIT_MS))
                .await?,
        )?;
        assert_eq!(output, format!("{i}:A!:B!"));
        let history = h.history(&format!("load-{i}")).await?;
        assert_eq!(
            count(&history, |e| matches!(e, Event::ActivityCompleted { .. })),
            3
        );
    }
    Ok(())
});

/// Start a RaceEventTimeout with a `timeout_ms` timer, stop the runtime once
/// both racers are recorded, and restart it.
async fn race_then_restart(
    h: &mut Harness,
    cache: bool,
    id: &str,
    timeout_ms: &str,
) -> anyhow::Result<()> {
    h.client
        .start_orchestration(id, "RaceEventTimeout", timeout_ms, None)
        .await?;
    history_reaches(&h.client, id, |h| {
        h.iter().any(|e| matches!(e, Event::TimerCreated { .. }))
            && h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
    })
    .await?;
    h.restart(options(cache), &[guests::PATTERNS]).await?;
    Ok(())
}

scenario!(restart_during_a_race_the_event_wins, |cache| async move {
    let mut h = Harness::start(cache, &[guests::PATTERNS]).await?;
    race_then_restart(&mut h, cache, "race-e", "60000").await?;
    h.client.raise_event("race-e", "approve", "yes").await?;
    let output = completed(
        h.client
            .wait_for_completion("race-e", Some(WAIT_MS))
            .await?,
    )?;
    assert_eq!(output, "event:yes");
    h.runtime.stop().await;
    Ok(())
});

scenario!(restart_during_a_race_the_timer_wins, |cache| async move {
    let mut h = Harness::start(cache, &[guests::PATTERNS]).await?;
    race_then_restart(&mut h, cache, "race-t", "800").await?;
    let output = completed(
        h.client
            .wait_for_completion("race-t", Some(WAIT_MS))
            .await?,
    )?;
    assert_eq!(output, "timeout");
    // The losing subscription was cancelled, after the restart.
    let history = h.history("race-t").await?;
    assert_eq!(
        count(&history, |e| matches!(e, Event::TaskCancelled { .. })),
        1
    );
    assert_eq!(
        count(&history, |e| matches!(e, Event::TimerFired { .. })),
        1
    );
    h.runtime.stop().await;
    Ok(())
});
