//! The orchestration model through real Wasm guests, with the execution
//! cache on and off: children, detached starts, continue-as-new, versions
//! and cancellation.

use duroxide::OrchestrationStatus;
use duroxide::history::Event;
use duroxide_tests::{
    Harness, WAIT_MS, completed, failed, guests, history_reaches, options, scenario,
};

scenario!(
    sub_orchestrations_with_derived_and_explicit_ids,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MODEL]).await?;
        let output = completed(h.run("p", "Parent", "p").await?)?;
        assert_eq!(output, "P-1|P-2");
        // The derived child id is stable: parent id and task id.
        let derived = h.client.get_instance_info("p::1::1").await?;
        let derived = derived.ok_or_else(|| anyhow::anyhow!("derived child missing"))?;
        assert_eq!(derived.parent_instance.as_deref(), Some("p"));
        assert_eq!(derived.parent_id, Some(1));
        assert_eq!(
            derived.status,
            OrchestrationStatus::Completed {
                output: "P-1".into()
            }
        );
        let explicit = h.client.get_instance_info("p-explicit").await?;
        let explicit = explicit.ok_or_else(|| anyhow::anyhow!("explicit child missing"))?;
        assert_eq!(explicit.parent_instance.as_deref(), Some("p"));
        Ok(())
    }
);

scenario!(child_failure_reaches_the_parent, |cache| async move {
    let h = Harness::start(cache, &[guests::MODEL]).await?;
    let output = completed(h.run("c", "CatchesChild", "x").await?)?;
    assert_eq!(output, "parent saw: child broke on x");
    let error = failed(h.run("f", "PropagatesChild", "y").await?)?;
    assert_eq!(error, "child broke on y");
    Ok(())
});

scenario!(child_in_another_component, |cache| async move {
    let h = Harness::start(cache, &[guests::MODEL, guests::MODEL_V2]).await?;
    h.client
        .start_orchestration("cc", "CrossComponent", "", None)
        .await?;
    history_reaches(&h.client, "cc::1::1", |h| {
        h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
    })
    .await?;
    h.client.raise_event("cc::1::1", "go", "").await?;
    assert_eq!(
        completed(h.client.wait_for_completion("cc", Some(WAIT_MS)).await?)?,
        "ran 2.0.0"
    );
    Ok(())
});

scenario!(taken_child_id_fails_the_task, |cache| async move {
    let h = Harness::start(cache, &[guests::MODEL]).await?;
    h.client
        .start_orchestration("t-explicit", "Waiter", "", None)
        .await?;
    let error = failed(h.run("t", "Parent", "t").await?)?;
    assert!(
        error.contains("instance 't-explicit' already exists"),
        "{error}"
    );
    Ok(())
});

scenario!(detached_orchestration_runs_on_its_own, |cache| async move {
    let h = Harness::start(cache, &[guests::MODEL]).await?;
    assert_eq!(completed(h.run("d", "Detacher", "d").await?)?, "started");
    let status = h
        .client
        .wait_for_completion("detached-d", Some(WAIT_MS))
        .await?;
    assert_eq!(completed(status)?, "D");
    let info = h.client.get_instance_info("detached-d").await?;
    assert_eq!(
        info.and_then(|i| i.parent_instance),
        None,
        "detached: no parent"
    );
    assert!(h.history("d").await?.iter().any(|e| matches!(
        e,
        Event::OrchestrationStartedDetached { instance_id, .. } if instance_id == "detached-d"
    )));
    Ok(())
});

scenario!(
    continue_as_new_starts_fresh_executions,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MODEL]).await?;
        assert_eq!(
            completed(h.run("count", "Counter", "1").await?)?,
            "done at 3"
        );
        let info = h.client.get_instance_info("count").await?;
        assert_eq!(info.map(|i| i.execution_id), Some(3));
        for (execution, input) in [(1u64, "1"), (2, "2"), (3, "3")] {
            let history = h
                .client
                .get_execution_history("count", Some(execution))
                .await?;
            let Some(Event::OrchestrationStarted { input: started, .. }) = history.first() else {
                anyhow::bail!("execution {execution} has no start: {history:?}");
            };
            assert_eq!(started, input);
            let ended_by_continuing = matches!(history.last(), Some(Event::ContinuedAsNew { .. }));
            assert_eq!(ended_by_continuing, execution < 3, "{history:?}");
        }
        Ok(())
    }
);

scenario!(unconsumed_events_carry_over, |cache| async move {
    let h = Harness::start(cache, &[guests::MODEL]).await?;
    h.client
        .start_orchestration("tick", "Ticker", "0", None)
        .await?;
    h.client.raise_event("tick", "tick", "first").await?;
    h.client.raise_event("tick", "tick", "second").await?;
    let output = completed(h.client.wait_for_completion("tick", Some(WAIT_MS)).await?)?;
    assert_eq!(output, "second execution got second");
    Ok(())
});

scenario!(
    running_instances_stay_on_their_version,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::MODEL]).await?;
        h.client
            .start_orchestration("old", "Pinned", "", None)
            .await?;
        history_reaches(&h.client, "old", |h| {
            h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
        })
        .await?;
        // Deploy 2.0.0 while "old" runs on 1.0.0.
        h.runtime.load_component_file(guests::MODEL_V2).await?;
        h.client
            .start_orchestration("new", "Pinned", "", None)
            .await?;
        h.client
            .start_orchestration_versioned("chosen", "Pinned", "", "1.0.0")
            .await?;
        for id in ["old", "new", "chosen"] {
            history_reaches(&h.client, id, |h| {
                h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
            })
            .await?;
            h.client.raise_event(id, "go", "").await?;
        }
        assert_eq!(
            completed(h.client.wait_for_completion("old", Some(WAIT_MS)).await?)?,
            "ran 1.0.0"
        );
        assert_eq!(
            completed(h.client.wait_for_completion("new", Some(WAIT_MS)).await?)?,
            "ran 2.0.0"
        );
        assert_eq!(
            completed(
                h.client
                    .wait_for_completion("chosen", Some(WAIT_MS))
                    .await?
            )?,
            "ran 1.0.0"
        );
        let info = h.client.get_instance_info("new").await?;
        assert_eq!(
            info.and_then(|i| i.orchestration_version).as_deref(),
            Some("2.0.0")
        );
        Ok(())
    }
);

scenario!(
    continue_as_new_moves_to_the_latest_version,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::MODEL]).await?;
        h.client
            .start_orchestration("up", "Upgrader", "", None)
            .await?;
        history_reaches(&h.client, "up", |h| {
            h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
        })
        .await?;
        h.runtime.load_component_file(guests::MODEL_V2).await?;
        h.client.raise_event("up", "upgrade", "").await?;
        let output = completed(h.client.wait_for_completion("up", Some(WAIT_MS)).await?)?;
        assert_eq!(output, "2.0.0 continued from 1.0.0");
        Ok(())
    }
);

scenario!(
    cancelling_a_parent_cancels_its_children,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MODEL]).await?;
        h.client
            .start_orchestration("boss", "WaitsOnChild", "", None)
            .await?;
        history_reaches(&h.client, "boss::1::1", |h| {
            h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
        })
        .await?;
        h.client
            .cancel_orchestration_with_reason("boss", "shutting down")
            .await?;
        let parent = h.client.wait_for_completion("boss", Some(WAIT_MS)).await?;
        assert_eq!(
            parent,
            OrchestrationStatus::Cancelled {
                reason: "shutting down".into()
            }
        );
        let child = h
            .client
            .wait_for_completion("boss::1::1", Some(WAIT_MS))
            .await?;
        let OrchestrationStatus::Cancelled { reason } = child else {
            anyhow::bail!("child not cancelled: {child:?}");
        };
        assert!(
            reason.contains("parent 'boss' was cancelled: shutting down"),
            "{reason}"
        );
        Ok(())
    }
);

scenario!(restart_while_a_child_runs, |cache| async move {
    let mut h = Harness::start(cache, &[guests::MODEL]).await?;
    h.client
        .start_orchestration("r", "WaitsOnChild", "", None)
        .await?;
    history_reaches(&h.client, "r::1::1", |h| {
        h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
    })
    .await?;
    h.runtime.stop().await;
    h.restart(options(cache), &[guests::MODEL]).await?;
    h.client.raise_event("r::1::1", "never", "finally").await?;
    assert_eq!(
        completed(h.client.wait_for_completion("r", Some(WAIT_MS)).await?)?,
        "finally"
    );
    h.runtime.stop().await;
    Ok(())
});

scenario!(a_child_that_loses_a_race_is_cancelled, |cache| async move {
    let h = Harness::start(cache, &[guests::MODEL]).await?;
    assert_eq!(completed(h.run("rc", "RaceChild", "").await?)?, "timer won");
    let child = h
        .client
        .wait_for_completion("rc::1::1", Some(WAIT_MS))
        .await?;
    let OrchestrationStatus::Cancelled { reason } = child else {
        anyhow::bail!("child not cancelled: {child:?}");
    };
    assert!(reason.contains("stopped waiting"), "{reason}");
    assert!(
        h.history("rc")
            .await?
            .iter()
            .any(|e| matches!(e, Event::TaskCancelled { id: 1 }))
    );
    Ok(())
});

scenario!(continue_as_new_onto_a_named_version, |cache| async move {
    let h = Harness::start(cache, &[guests::MODEL, guests::MODEL_V2]).await?;
    let output = completed(h.run("down", "Downgrader", "").await?)?;
    assert_eq!(output, "1.0.0 got from 2.0.0");
    let info = h.client.get_instance_info("down").await?;
    let info = info.ok_or_else(|| anyhow::anyhow!("instance missing"))?;
    assert_eq!(info.execution_id, 2);
    assert_eq!(info.orchestration_version.as_deref(), Some("1.0.0"));
    Ok(())
});
