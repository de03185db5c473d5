//! Each orchestration feature through the real runtime on each store (SQLite
//! and PostgreSQL) with Wasm guests, with the execution cache on and off.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use duroxide::history::Event;
use duroxide::{Client, DuroxideRuntime, OrchestrationStatus, StartOptions};
use duroxide_tests::{Harness, WAIT_MS, completed, guests, history_reaches, scenario};
use tokio::sync::Notify;

/// What the native activity `NativeDouble` computes: twice its input.
fn double(input: &str) -> Result<String, String> {
    let n: i64 = input.parse().map_err(|e| format!("not a number: {e}"))?;
    Ok((n * 2).to_string())
}

/// Waits until `instance`'s history holds an activity's schedule.
async fn activity_scheduled(h: &Harness, instance: &str) -> anyhow::Result<()> {
    history_reaches(&h.client, instance, |h| {
        h.iter()
            .any(|e| matches!(e, Event::ActivityScheduled { .. }))
    })
    .await
    .map(|_| ())
}

scenario!(sequential_activities, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let output = completed(h.run("seq", "Sequence", "x").await?)?;
    assert_eq!(output, "X:A!:B!");
    let history = h.history("seq").await?;
    let scheduled = history
        .iter()
        .filter(|e| matches!(e, Event::ActivityScheduled { .. }))
        .count();
    assert_eq!(scheduled, 3, "one decision per activity: {history:?}");
    Ok(())
});

scenario!(hello_world_example, |cache| async move {
    let h = Harness::start(cache, &[guests::HELLO_WORLD]).await?;
    assert_eq!(
        completed(h.run("hello", "HelloWorld", "World").await?)?,
        "Hello, World!"
    );
    Ok(())
});

scenario!(order_processing_example, |cache| async move {
    let h = Harness::start(cache, &[guests::ORDER_PROCESSING]).await?;
    h.client
        .start_orchestration("order", "ProcessOrder", r#"{"order_id":1}"#, None)
        .await?;
    // The event is raised only once the orchestration waits for it.
    history_reaches(&h.client, "order", |h| {
        h.iter()
            .any(|e| matches!(e, Event::EventSubscribed { name, .. } if name == "ShippingReady"))
    })
    .await?;
    assert_eq!(
        h.client.get_orchestration_status("order").await?,
        OrchestrationStatus::Running
    );
    h.client
        .raise_event("order", "ShippingReady", r#"{"carrier":"UPS"}"#)
        .await?;
    let output = completed(h.client.wait_for_completion("order", Some(WAIT_MS)).await?)?;
    assert_eq!(
        output,
        r#"{"status":"completed","shipping":{"carrier":"UPS"}}"#
    );
    Ok(())
});

scenario!(durable_timer, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let started = std::time::Instant::now();
    let output = completed(h.run("timer", "TimerThenActivity", "300").await?)?;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "timer fired early"
    );
    // The orchestration's clock moved by at least the timer's delay.
    assert_eq!(output, "WAITED TRUE");
    let history = h.history("timer").await?;
    assert!(
        history
            .iter()
            .any(|e| matches!(e, Event::TimerFired { .. }))
    );
    Ok(())
});

scenario!(
    timers_due_together_fire_on_time_not_early,
    |cache| async move {
        // Turns of timers about to fire are fetched ahead of time; each must
        // still wait until its timer is due.
        let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        let ids: Vec<String> = (0..40).map(|i| format!("timer-{i}")).collect();
        for id in &ids {
            h.client
                .start_orchestration(id, "TimerThenActivity", "250", None)
                .await?;
        }
        for id in &ids {
            let status = h.client.wait_for_completion(id, Some(WAIT_MS)).await?;
            assert_eq!(completed(status)?, "WAITED TRUE");
            let history = h.history(id).await?;
            let fire_at = history.iter().find_map(|e| match e {
                Event::TimerCreated { fire_at_ms, .. } => Some(*fire_at_ms),
                _ => None,
            });
            let fired_turn = history
                .iter()
                .scan(0, |turn_at, e| {
                    if let Event::TurnStarted { at_ms } = e {
                        *turn_at = *at_ms;
                    }
                    Some((*turn_at, e))
                })
                .find_map(|(turn_at, e)| matches!(e, Event::TimerFired { .. }).then_some(turn_at));
            let (Some(fire_at), Some(fired_turn)) = (fire_at, fired_turn) else {
                anyhow::bail!("no timer in the history of {id}: {history:?}");
            };
            assert!(
                fired_turn >= fire_at,
                "{id}: the timer due at {fire_at} fired in a turn that started at {fired_turn}"
            );
        }
        Ok(())
    }
);

scenario!(external_events_are_buffered, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    h.client
        .start_orchestration("events", "TwoEvents", "", None)
        .await?;
    // Both events raised before the second wait exists; order is kept.
    h.client.raise_event("events", "approval", "first").await?;
    h.client.raise_event("events", "approval", "second").await?;
    let output = completed(
        h.client
            .wait_for_completion("events", Some(WAIT_MS))
            .await?,
    )?;
    assert_eq!(output, "first+second");
    Ok(())
});

scenario!(events_raised_before_start_are_kept, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let delayed = StartOptions {
        delay_ms: Some(300),
        ..StartOptions::default()
    };
    h.client
        .start_orchestration("early", "TwoEvents", "", Some(delayed))
        .await?;
    assert_eq!(
        h.client.get_orchestration_status("early").await?,
        OrchestrationStatus::Pending
    );
    h.client.raise_event("early", "approval", "a").await?;
    h.client.raise_event("early", "approval", "b").await?;
    assert_eq!(
        completed(h.client.wait_for_completion("early", Some(WAIT_MS)).await?)?,
        "a+b"
    );
    Ok(())
});

scenario!(deterministic_now_and_guid, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let output = completed(h.run("det", "Deterministic", "").await?)?;
    let history = h.history("det").await?;
    let Some(Event::ActivityScheduled { input, .. }) = history
        .iter()
        .find(|e| matches!(e, Event::ActivityScheduled { .. }))
    else {
        anyhow::bail!("no activity in {history:?}");
    };
    let Some(Event::OrchestrationStarted { started_at_ms, .. }) = history.first() else {
        anyhow::bail!("no start event");
    };
    // The guid and time the code saw were recorded as the activity input; a
    // different guid on replay would have failed the instance.
    let (guid, now) = input
        .split_once('|')
        .ok_or_else(|| anyhow::anyhow!("bad input {input}"))?;
    let (guid, random) = guid
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("bad guid {guid}"))?;
    assert_eq!(guid.len(), 36, "uuid layout: {guid}");
    assert!(u64::from_str_radix(random, 16).is_ok(), "random: {random}");
    assert_eq!(
        now,
        started_at_ms.to_string(),
        "now is the turn's start time"
    );
    assert!(
        output.starts_with(&format!("{input}!|std_now_matches=true")),
        "{output}"
    );
    // The output is computed in the last turn: a replay of the first lines
    // unless the execution stayed parked in the cache.
    let expected_end = format!("replaying_at_start={}|replaying_now=false", !cache);
    assert!(output.ends_with(&expected_end), "{output}");
    Ok(())
});

scenario!(
    activity_failure_reaches_the_orchestration,
    |cache| async move {
        let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        let output = completed(h.run("fail", "HandleFailure", "order-7").await?)?;
        assert_eq!(output, "handled: cannot process order-7");
        Ok(())
    }
);

scenario!(native_activity, |cache| async move {
    let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    h.runtime
        .register_activity("NativeDouble", |input| async move { double(&input) })?;
    assert_eq!(completed(h.run("native", "CallNative", "21").await?)?, "42");
    Ok(())
});

scenario!(
    a_sequence_of_short_activities_commits_together,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        // What the store says of the instance while each activity runs: its
        // status, and how many events of it have committed.
        let seen: Arc<Mutex<Vec<(OrchestrationStatus, usize)>>> = Arc::default();
        {
            let (seen, client) = (seen.clone(), Client::new(h.store.clone()));
            h.runtime.register_activity("NativeDouble", move |input| {
                let (seen, client) = (seen.clone(), client.clone());
                async move {
                    let status = client
                        .get_orchestration_status("twice")
                        .await
                        .map_err(|e| e.to_string())?;
                    let committed = client
                        .get_execution_history("twice", Some(1))
                        .await
                        .map_err(|e| e.to_string())?
                        .len();
                    seen.lock()
                        .map_err(|e| e.to_string())?
                        .push((status, committed));
                    double(&input)
                }
            })?;
        }
        assert_eq!(
            completed(h.run("twice", "CallNativeTwice", "21").await?)?,
            "84"
        );
        let seen = seen.lock().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
        // The instance reads Running from its first step on, cache or not:
        // the fetch that took its first turn marked it.
        let statuses: Vec<_> = seen.iter().map(|(status, _)| status.clone()).collect();
        assert_eq!(
            statuses,
            [OrchestrationStatus::Running, OrchestrationStatus::Running]
        );
        // With the cache, the first turn and both activities ran before
        // anything committed; without it, each step commits on its own.
        let committed: Vec<_> = seen.iter().map(|(_, n)| *n).collect();
        if cache {
            assert_eq!(committed, [0, 0]);
        } else {
            assert!(committed.iter().all(|n| *n > 0), "{committed:?}");
        }
        let history = h.history("twice").await?;
        assert_eq!(
            history
                .iter()
                .filter(|e| matches!(e, Event::ActivityCompleted { .. }))
                .count(),
            2,
            "{history:?}"
        );
        Ok(())
    }
);

scenario!(
    a_long_activity_is_scheduled_durably_while_it_runs,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        let gate = Arc::new(Notify::new());
        {
            let gate = gate.clone();
            h.runtime.register_activity("NativeDouble", move |input| {
                let gate = gate.clone();
                async move {
                    gate.notified().await;
                    double(&input)
                }
            })?;
        }
        h.client
            .start_orchestration("long", "CallNative", "21", None)
            .await?;
        // The activity cannot end before the gate opens, yet its schedule
        // reaches the store: past the inline steps' time, the turn commits.
        activity_scheduled(&h, "long").await?;
        gate.notify_one();
        let status = h.client.wait_for_completion("long", Some(WAIT_MS)).await?;
        assert_eq!(completed(status)?, "42");
        Ok(())
    }
);

scenario!(
    stop_abandons_a_long_activity_after_the_grace_period,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        h.runtime
            .register_activity("NativeDouble", |_input| async move {
                std::future::pending::<()>().await;
                Ok(String::new())
            })?;
        h.client
            .start_orchestration("stuck", "CallNative", "21", None)
            .await?;
        activity_scheduled(&h, "stuck").await?;
        // The activity never ends: stop waits out the grace period, then
        // abandons it and puts its work back in the queue.
        tokio::time::timeout(Duration::from_millis(WAIT_MS), h.runtime.stop()).await?;

        let mut runtime =
            DuroxideRuntime::with_options(h.store.clone(), duroxide_tests::options(cache));
        runtime.load_component_file(guests::SCENARIOS).await?;
        runtime.register_activity("NativeDouble", |input| async move { double(&input) })?;
        runtime.start().await?;
        h.runtime = runtime;
        let status = h.client.wait_for_completion("stuck", Some(WAIT_MS)).await?;
        assert_eq!(completed(status)?, "42");
        Ok(())
    }
);

scenario!(native_activity_panic_is_a_failure, |cache| async move {
    let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    h.runtime
        .register_activity("NativeDouble", |input| async move {
            if input == "boom" {
                panic!("native activity exploded");
            }
            Ok(input)
        })?;
    let status = h.run("native-panic", "CallNative", "boom").await?;
    let error = duroxide_tests::failed(status)?;
    assert!(error.contains("native activity exploded"), "{error}");
    Ok(())
});

scenario!(fan_out_and_join, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let output = completed(h.run("fan", "FanOut", "300").await?)?;
    let expected: Vec<String> = (0..300).map(|i| format!("ITEM{i}")).collect();
    assert_eq!(output, expected.join(","));
    Ok(())
});

scenario!(cancel_running_instance, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    h.client
        .start_orchestration("cancel", "TwoEvents", "", None)
        .await?;
    history_reaches(&h.client, "cancel", |h| {
        h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
    })
    .await?;
    h.client
        .cancel_orchestration_with_reason("cancel", "customer changed their mind")
        .await?;
    let status = h
        .client
        .wait_for_completion("cancel", Some(WAIT_MS))
        .await?;
    assert_eq!(
        status,
        OrchestrationStatus::Cancelled {
            reason: "customer changed their mind".into()
        }
    );
    // An event after cancellation is accepted by the store and ignored.
    let again = h.client.cancel_orchestration("cancel").await;
    assert!(
        matches!(again, Err(duroxide::ClientError::InstanceFinished { .. })),
        "{again:?}"
    );
    Ok(())
});

scenario!(
    a_cancel_reaches_an_instance_while_its_activity_runs,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        // An instance lock that outlasts the test's wait: the cancel cannot
        // come through a lock that expired, only through one let go.
        let mut options = duroxide_tests::options(cache);
        options.orchestration_lock = Duration::from_millis(2 * WAIT_MS);
        h.restart(options, &[guests::SCENARIOS]).await?;
        let running = Arc::new(Notify::new());
        let gate = Arc::new(Notify::new());
        {
            let (running, gate) = (running.clone(), gate.clone());
            h.runtime.register_activity("NativeDouble", move |input| {
                let (running, gate) = (running.clone(), gate.clone());
                async move {
                    running.notify_one();
                    gate.notified().await;
                    Ok(input)
                }
            })?;
        }
        h.client
            .start_orchestration("busy", "CallNative", "21", None)
            .await?;
        tokio::time::timeout(Duration::from_millis(WAIT_MS), running.notified()).await?;
        h.client
            .cancel_orchestration_with_reason("busy", "no longer needed")
            .await?;
        let status = h.client.wait_for_completion("busy", Some(WAIT_MS)).await?;
        assert_eq!(
            status,
            OrchestrationStatus::Cancelled {
                reason: "no longer needed".into()
            }
        );
        // The activity still ends; its late completion changes nothing.
        gate.notify_one();
        Ok(())
    }
);

scenario!(scheduled_start_waits_for_its_delay, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let started = std::time::Instant::now();
    h.client
        .schedule_orchestration("later", "Sequence", "s", 300)
        .await?;
    assert_eq!(
        h.client.get_orchestration_status("later").await?,
        OrchestrationStatus::Pending
    );
    let output = completed(h.client.wait_for_completion("later", Some(WAIT_MS)).await?)?;
    assert_eq!(output, "S:A!:B!");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "started early"
    );
    Ok(())
});

scenario!(versioned_start, |cache| async move {
    let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    // A version nobody serves fails after a short grace period.
    let mut options = duroxide_tests::options(cache);
    options.unserved_grace = Some(std::time::Duration::from_millis(300));
    h.restart(options, &[guests::SCENARIOS]).await?;
    h.client
        .start_orchestration_versioned("v1", "Sequence", "v", "1.0.0")
        .await?;
    assert_eq!(
        completed(h.client.wait_for_completion("v1", Some(WAIT_MS)).await?)?,
        "V:A!:B!"
    );
    let Some(Event::OrchestrationStarted { version, .. }) = h.history("v1").await?.first().cloned()
    else {
        anyhow::bail!("no start event");
    };
    assert_eq!(version, "1.0.0");
    h.client
        .start_orchestration_versioned("v2", "Sequence", "v", "2.0.0")
        .await?;
    let error = duroxide_tests::failed(h.client.wait_for_completion("v2", Some(WAIT_MS)).await?)?;
    assert!(
        error.contains("no runtime serves orchestration 'Sequence' version 2.0.0"),
        "{error}"
    );
    Ok(())
});

scenario!(custom_status_is_visible_while_running, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    assert!(
        h.client.get_custom_status("progress").await.is_err(),
        "unknown instance"
    );
    h.client
        .start_orchestration("progress", "Progress", "", None)
        .await?;
    duroxide_tests::eventually(Duration::from_millis(WAIT_MS), || async {
        Ok(h.client
            .get_custom_status("progress")
            .await?
            .filter(|s| s == "waiting for approval"))
    })
    .await?;
    assert_eq!(
        h.client.get_orchestration_status("progress").await?,
        OrchestrationStatus::Running
    );
    h.client.raise_event("progress", "approval", "ops").await?;
    assert_eq!(
        completed(
            h.client
                .wait_for_completion("progress", Some(WAIT_MS))
                .await?
        )?,
        "done"
    );
    assert_eq!(
        h.client.get_custom_status("progress").await?.as_deref(),
        Some("approved by ops")
    );
    Ok(())
});
