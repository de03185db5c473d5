//! Every text a guest or client hands the host is held to a limit, delays
//! stay in range, a wait that could never end fails at once, and failure
//! reasons name their cause. Each breach fails only the instance (or the
//! activity call) that made it; the runtime keeps serving.

use duroxide::history::Event;
use duroxide::limits::MAX_DELAY_MS;
use duroxide::{Client, ClientError, DuroxideRuntime, OrchestrationStatus, StartOptions};
use duroxide_tests::{
    Captured, Harness, WAIT_MS, completed, count, each_store, failed, guests, options, scenario,
};

/// After a failure, the same runtime still runs a healthy orchestration.
async fn still_serving(h: &Harness, id: &str) -> anyhow::Result<()> {
    assert_eq!(completed(h.run(id, "Echo", "fine").await?)?, "fine");
    Ok(())
}

scenario!(
    overlong_names_and_ids_fail_the_instance,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
        let cases = [
            ("activity-name", "activity name", "max_name_bytes"),
            ("event-name", "event name", "max_name_bytes"),
            ("child-name", "orchestration name", "max_name_bytes"),
            ("child-version", "orchestration version", "max_name_bytes"),
            ("child-id", "child instance id", "max_instance_id_bytes"),
            ("detached-name", "orchestration name", "max_name_bytes"),
            (
                "detached-version",
                "orchestration version",
                "max_name_bytes",
            ),
            (
                "detached-id",
                "detached instance id",
                "max_instance_id_bytes",
            ),
        ];
        for (kind, what, setting) in cases {
            let id = format!("long-{kind}");
            let error = failed(h.run(&id, "LongText", &format!("{kind}:300")).await?)?;
            let expected = format!(
                "{what} \"{}…\" is 300 bytes, more than the limit of 256 bytes ({setting})",
                "x".repeat(32)
            );
            assert!(error.contains(&expected), "{kind}: {error}");
            // Nothing the refused call asked for was recorded or started.
            let history = h.history(&id).await?;
            assert_eq!(
                count(&history, Event::is_decision),
                0,
                "{kind}: {history:?}"
            );
            assert_eq!(
                h.client.get_orchestration_status("detached").await?,
                OrchestrationStatus::NotFound
            );
        }
        // At the limit, a name is fine: the long child id starts its child.
        let at_limit = completed(h.run("id-at-limit", "LongText", "child-id:256").await?)?;
        assert_eq!(at_limit, "the host accepted a child-id of 256 bytes");
        still_serving(&h, "after-long-names").await
    }
);

scenario!(
    a_client_without_limits_refuses_what_the_runtime_refuses,
    |cache| async move {
        let db = duroxide_tests::TestDb::current()?;
        let store = db.open(None).await?;
        let mut opts = options(cache);
        opts.limits.max_payload_bytes = 1000;
        let mut runtime = DuroxideRuntime::with_options(store.clone(), opts);
        runtime.load_component_file(guests::TYPED_PAYLOADS).await?;
        runtime.start().await?;
        // Another store object on the same database, as another process
        // has, and a client given no limit: it reads the runtime's.
        let other = duroxide::providers::open(&db.url).await?;
        let client = Client::new(other);
        assert_eq!(client.text_limits().await?.max_payload_bytes, 1000);
        let oversized = "x".repeat(1001);
        let err = client
            .start_orchestration("big", "ForwardPadded", &oversized, None)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("the client took 1001 bytes"))?;
        assert!(
            matches!(
                err,
                ClientError::PayloadTooLarge {
                    size: 1001,
                    limit: 1000,
                    ..
                }
            ),
            "{err:?}"
        );
        // The runtime refuses the same text when a guest hands it over.
        client
            .start_orchestration("padded", "ForwardPadded", "1001", None)
            .await?;
        let error = failed(client.wait_for_completion("padded", Some(WAIT_MS)).await?)?;
        assert!(
            error.contains("activity input is 1001 bytes, more than the limit of 1000 bytes"),
            "{error}"
        );
        // At the limit, both take it: 998 bytes, 1000 as a JSON string.
        client
            .start_orchestration("at-limit", "ForwardPadded", "998", None)
            .await?;
        let output = completed(
            client
                .wait_for_completion("at-limit", Some(WAIT_MS))
                .await?,
        )?;
        assert_eq!(output.len(), 1000);
        runtime.stop().await;
        Ok(())
    }
);

scenario!(limits_set_on_the_runtime_apply, |cache| async move {
    let mut h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
    let mut opts = options(cache);
    // Room for "FailsLong", not for 13 bytes.
    opts.limits.max_name_bytes = 12;
    opts.limits.max_error_bytes = 100;
    h.restart(opts, &[guests::MISBEHAVING]).await?;
    let error = failed(h.run("name-13", "LongText", "activity-name:13").await?)?;
    assert!(
        error.contains(
            "activity name \"xxxxxxxxxxxxx\" is 13 bytes, more than the limit of 12 bytes (max_name_bytes)"
        ),
        "{error}"
    );
    let error = failed(h.run("error-101", "BigError", "101").await?)?;
    assert!(
        error.contains("orchestration error is 101 bytes, more than the limit of 100 bytes"),
        "{error}"
    );
    let output = completed(h.run("fail-101", "CallActivity", "FailsLong|101").await?)?;
    assert_eq!(
        output,
        "err: [DX004] activity error is 101 bytes, more than the limit of 100 bytes (max_error_bytes)"
    );
    Ok(())
});

scenario!(
    an_oversized_orchestration_error_fails_with_the_limit,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
        let error = failed(h.run("big-error", "BigError", "200000").await?)?;
        assert!(
            error.contains(
                "orchestration error is 200000 bytes, more than the limit of 65536 bytes (max_error_bytes)"
            ),
            "{error}"
        );
        assert!(error.len() < 1000, "{} bytes stored", error.len());
        let history = h.history("big-error").await?;
        let Some(Event::OrchestrationFailed { error: recorded }) = history.last() else {
            anyhow::bail!("no failure recorded: {history:?}");
        };
        assert_eq!(recorded, &error);
        // An error within the limit is the instance's error as it was.
        assert_eq!(
            failed(h.run("small-error", "BigError", "5").await?)?,
            "eeeee"
        );
        still_serving(&h, "after-big-error").await
    }
);

scenario!(
    an_oversized_activity_error_fails_only_that_call,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
        let output = completed(
            h.run("long-fail", "CallActivity", "FailsLong|200000")
                .await?,
        )?;
        assert_eq!(
            output,
            "err: [DX004] activity error is 200000 bytes, more than the limit of 65536 bytes (max_error_bytes)"
        );
        let output = completed(h.run("short-fail", "CallActivity", "FailsLong|3").await?)?;
        assert_eq!(output, "err: aaa");
        still_serving(&h, "after-long-fail").await
    }
);

scenario!(an_out_of_range_timer_fails_at_once, |cache| async move {
    let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
    let error = failed(h.run("endless", "EndlessTimer", "").await?)?;
    assert!(
        error.contains("timer delay of 18446744073709551615 ms is out of range"),
        "{error}"
    );
    assert!(
        error.contains(&format!("the maximum is {MAX_DELAY_MS} ms (100 years)")),
        "{error}"
    );
    let history = h.history("endless").await?;
    assert_eq!(
        count(&history, |e| matches!(e, Event::TimerCreated { .. })),
        0
    );
    still_serving(&h, "after-endless").await
});

scenario!(
    a_wait_that_can_never_end_fails_at_once,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
        let cases = [
            ("WaitEmpty", "waited on no tasks at all"),
            (
                "WaitCancelled",
                "waited only on tasks that can never finish again (task 1 was cancelled)",
            ),
            ("WaitUnknown", "used task 999, which it never created"),
            ("WaitAnyNothing", "waited on no tasks at all"),
            ("WaitAnyCancelled", "waited on no tasks at all"),
            ("WatchUnknown", "used task 999, which it never created"),
            (
                "WaitConsumed",
                "waited only on tasks that can never finish again (task 1 was already received)",
            ),
        ];
        for (name, reason) in cases {
            let error = failed(h.run(name, name, "").await?)?;
            assert!(error.contains(reason), "{name}: {error}");
        }
        still_serving(&h, "after-waits").await
    }
);

scenario!(an_exit_names_its_status, |cache| async move {
    let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
    // The guest calls exit(3); WASI 0.2 carries only success or failure.
    let error = failed(h.run("exits", "Exits", "").await?)?;
    assert!(
        error.starts_with("[DX009] the guest exited with status 1 (a failure"),
        "{error}"
    );
    assert!(!error.contains("backtrace"), "{error}");
    let output = completed(
        h.run("exits-activity", "CallActivity", "ExitsActivity|")
            .await?,
    )?;
    assert!(
        output.starts_with("err: [DX009] the guest exited with status 1"),
        "{output}"
    );
    still_serving(&h, "after-exit").await
});

scenario!(a_stack_overflow_is_named, |cache| async move {
    let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
    let buffers = failed(h.run("overflow", "OverflowsStack", "").await?)?;
    let stores = failed(h.run("store-overflow", "OverflowsStackStores", "").await?)?;
    let calls = failed(h.run("call-overflow", "OverflowsCallStack", "").await?)?;
    for error in [&buffers, &stores] {
        assert!(error.contains("probably a stack overflow"), "{error}");
    }
    assert!(calls.contains("stack overflow"), "{calls}");
    still_serving(&h, "after-overflow").await
});

each_store!(
    the_client_refuses_overlong_and_malformed_arguments,
    async move {
        let h = Harness::start(true, &[guests::MISBEHAVING]).await?;
        let long_id = "i".repeat(257);
        let huge_id = "i".repeat(16 << 20);
        let long_name = "n".repeat(257);
        let invalid = |result: Result<(), ClientError>, needle: &str| match result {
            Err(ClientError::InvalidArgument(text)) => {
                assert!(text.contains(needle), "{text} lacks {needle}");
                Ok(())
            }
            other => anyhow::bail!("expected InvalidArgument({needle}), got {other:?}"),
        };
        let client = &h.client;
        invalid(
            client.start_orchestration(&long_id, "Echo", "", None).await,
            "is 257 bytes, more than the limit of 256 bytes (max_instance_id_bytes)",
        )?;
        invalid(
            client.start_orchestration(&huge_id, "Echo", "", None).await,
            "(max_instance_id_bytes)",
        )?;
        invalid(
            client.start_orchestration("n", &long_name, "", None).await,
            "is 257 bytes, more than the limit of 256 bytes (max_name_bytes)",
        )?;
        let version = |v: &str| {
            Some(StartOptions {
                version: Some(v.to_string()),
                ..StartOptions::default()
            })
        };
        invalid(
            client
                .start_orchestration("v", "Echo", "", version("not-a-version"))
                .await,
            "version 'not-a-version' is not a semantic version",
        )?;
        invalid(
            client
                .start_orchestration("v", "Echo", "", version(&"1".repeat(300)))
                .await,
            "orchestration version \"111",
        )?;
        invalid(
            client
                .schedule_orchestration("d", "Echo", "", u64::MAX)
                .await,
            "start delay of 18446744073709551615 ms is out of range",
        )?;
        for id in ["n", "v", "d"] {
            assert_eq!(
                client.get_orchestration_status(id).await?,
                OrchestrationStatus::NotFound
            );
        }
        // The longest delay is accepted: the instance waits, pending.
        client
            .schedule_orchestration("far", "Echo", "", MAX_DELAY_MS)
            .await?;
        assert_eq!(
            client.get_orchestration_status("far").await?,
            OrchestrationStatus::Pending
        );
        invalid(
            client.raise_event("far", &long_name, "").await,
            "event name \"nnn",
        )?;
        invalid(
            client.raise_event(&long_id, "e", "").await,
            "(max_instance_id_bytes)",
        )?;
        invalid(
            client
                .cancel_orchestration_with_reason("far", &"r".repeat(100_000))
                .await,
            "cancel reason is 100000 bytes, more than the limit of 65536 bytes (max_error_bytes)",
        )?;
        assert_eq!(
            client.get_orchestration_status("far").await?,
            OrchestrationStatus::Pending
        );
        client
            .cancel_orchestration_with_reason("far", "done")
            .await?;
        Ok(())
    }
);

each_store!(
    raising_an_event_to_a_finished_instance_is_refused,
    async move {
        let h = Harness::start(true, &[guests::MISBEHAVING]).await?;
        assert_eq!(completed(h.run("done", "Echo", "x").await?)?, "x");
        let raise = h.client.raise_event("done", "e", "late").await;
        assert!(
            matches!(
                &raise,
                Err(ClientError::InstanceFinished { instance, status: OrchestrationStatus::Completed { .. } })
                    if instance == "done"
            ),
            "{raise:?}"
        );
        let raise = h.client.raise_event("ghost", "e", "").await;
        assert!(
            matches!(&raise, Err(ClientError::InstanceNotFound(id)) if id == "ghost"),
            "{raise:?}"
        );
        Ok(())
    }
);

/// The only test here that installs a subscriber (it is process-wide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_log_lines_are_cut_with_a_marker() -> anyhow::Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    for cache in [true, false] {
        let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
        let id = format!("log-{cache}");
        assert_eq!(completed(h.run(&id, "BigLog", "100000").await?)?, "logged");
        let text = captured.text();
        // Through the context, and through stdout.
        for run in ["lll", "ppp"] {
            let line = text
                .lines()
                .find(|l| l.contains(&id) && l.contains(run))
                .ok_or_else(|| anyhow::anyhow!("no {run} line of {id}"))?;
            assert!(
                line.contains(
                    "[cut: 100000 bytes, more than the limit of 16384 bytes (max_log_line_bytes)]"
                ),
                "{}",
                &line[line.len().saturating_sub(200)..]
            );
            assert!(line.len() < 17_000, "{} bytes", line.len());
        }
    }
    Ok(())
}
