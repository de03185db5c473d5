//! Bad input gets a clear error or a Failed status with the reason, and the
//! runtime keeps serving every other instance.

use duroxide::runtime::RegistryError;
use duroxide::{ClientError, DuroxideRuntime, LoadError, OrchestrationStatus, RuntimeError};
use duroxide_tests::{Harness, WAIT_MS, completed, each_store, failed, guests, options, scenario};

/// After a failure, the same runtime still runs a healthy orchestration.
async fn still_serving(h: &Harness, id: &str) -> anyhow::Result<()> {
    assert_eq!(completed(h.run(id, "Sequence", "ok").await?)?, "OK:A!:B!");
    Ok(())
}

scenario!(orchestration_error_fails_the_instance, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let error = failed(h.run("rejected", "ReturnsError", "order-9").await?)?;
    assert_eq!(error, "rejected: order-9");
    still_serving(&h, "after-error").await
});

scenario!(panicking_guest_fails_with_its_message, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let error = failed(h.run("panics", "Panics", "order-3").await?)?;
    assert!(error.contains("trapped"), "{error}");
    assert!(
        error.contains("orchestration gave up on order-3"),
        "{error}"
    );
    still_serving(&h, "after-panic").await
});

scenario!(looping_guest_is_stopped, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    h.client
        .start_orchestration("spins", "Spins", "", None)
        .await?;
    // Others are served while the loop runs out its budget.
    still_serving(&h, "during-spin").await?;
    let error = failed(h.client.wait_for_completion("spins", Some(WAIT_MS)).await?)?;
    assert!(
        error.contains(
            "[DX006] the guest used more than its CPU budget of 2000 ms (orchestration_turn_budget)"
        ),
        "{error}"
    );
    Ok(())
});

scenario!(memory_hog_is_stopped, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let error = failed(h.run("hog", "HoardsMemory", "").await?)?;
    assert!(error.contains("memory"), "{error}");
    still_serving(&h, "after-hog").await
});

scenario!(
    oversized_activity_input_fails_the_instance,
    |cache| async move {
        let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        let error = failed(h.run("big", "BigInput", "100000").await?)?;
        assert!(error.contains("activity input is 100000 bytes"), "{error}");
        still_serving(&h, "after-big").await
    }
);

each_store!(oversized_client_payloads_are_refused, async move {
    let h = Harness::start(true, &[guests::SCENARIOS]).await?;
    let huge = "x".repeat(100_000);
    let start = h
        .client
        .start_orchestration("huge", "Sequence", &huge, None)
        .await;
    assert!(
        matches!(start, Err(ClientError::PayloadTooLarge { .. })),
        "{start:?}"
    );
    assert_eq!(
        h.client.get_orchestration_status("huge").await?,
        OrchestrationStatus::NotFound
    );
    h.client
        .start_orchestration("evt", "TwoEvents", "", None)
        .await?;
    let raise = h.client.raise_event("evt", "approval", &huge).await;
    assert!(
        matches!(raise, Err(ClientError::PayloadTooLarge { .. })),
        "{raise:?}"
    );
    Ok(())
});

each_store!(duplicate_instance_id_is_refused, async move {
    let h = Harness::start(true, &[guests::SCENARIOS]).await?;
    assert_eq!(
        completed(h.run("dup", "Sequence", "one").await?)?,
        "ONE:A!:B!"
    );
    let again = h
        .client
        .start_orchestration("dup", "Sequence", "two", None)
        .await;
    assert!(
        matches!(&again, Err(ClientError::InstanceExists(id)) if id == "dup"),
        "{again:?}"
    );
    // The first run's result is untouched.
    assert_eq!(
        completed(h.client.get_orchestration_status("dup").await?)?,
        "ONE:A!:B!"
    );
    Ok(())
});

each_store!(unknown_instances_get_clear_errors, async move {
    let h = Harness::start(true, &[]).await?;
    let raise = h.client.raise_event("ghost", "e", "").await;
    assert!(
        matches!(raise, Err(ClientError::InstanceNotFound(_))),
        "{raise:?}"
    );
    let cancel = h.client.cancel_orchestration("ghost").await;
    assert!(
        matches!(cancel, Err(ClientError::InstanceNotFound(_))),
        "{cancel:?}"
    );
    let wait = h.client.wait_for_completion("ghost", Some(100)).await;
    assert!(
        matches!(wait, Err(ClientError::InstanceNotFound(_))),
        "{wait:?}"
    );
    Ok(())
});

#[tokio::test]
async fn malformed_wasm_is_refused_at_load() -> anyhow::Result<()> {
    let h = Harness::start(true, &[]).await?;
    let mut runtime = DuroxideRuntime::with_options(h.store.clone(), options(true));
    for bytes in [
        b"definitely not wasm".to_vec(),
        // A valid core module is still not a component.
        b"\0asm\x01\0\0\0".to_vec(),
        // A component cut short.
        std::fs::read(guests::SCENARIOS)?[..1000].to_vec(),
    ] {
        let err = runtime.load_component_bytes(&bytes).await;
        assert!(
            matches!(err, Err(RuntimeError::Load(LoadError::Invalid(_)))),
            "{err:?}"
        );
    }
    let missing = runtime.load_component_file("/no/such/file.wasm").await;
    assert!(
        matches!(missing, Err(RuntimeError::Io { .. })),
        "{missing:?}"
    );
    Ok(())
}

#[tokio::test]
async fn forbidden_import_is_refused_with_its_name() -> anyhow::Result<()> {
    let h = Harness::start(true, &[]).await?;
    let mut runtime = DuroxideRuntime::with_options(h.store.clone(), options(true));
    let err = runtime.load_component_file(guests::FORBIDDEN_IMPORT).await;
    let Err(RuntimeError::Load(LoadError::ForbiddenImport(import))) = err else {
        anyhow::bail!("expected a forbidden import, got {err:?}");
    };
    assert!(import.starts_with("wasi:http/"), "{import}");
    Ok(())
}

#[tokio::test]
async fn conflicting_registrations_are_refused() -> anyhow::Result<()> {
    let h = Harness::start(true, &[guests::EVOLVING_V1]).await?;
    let mut runtime = DuroxideRuntime::with_options(h.store.clone(), options(true));
    runtime.load_component_file(guests::EVOLVING_V1).await?;
    // Loading the same bytes again is harmless.
    runtime.load_component_file(guests::EVOLVING_V1).await?;
    let err = runtime.load_component_file(guests::EVOLVING_V2).await;
    assert!(
        matches!(
            err,
            Err(RuntimeError::Registry(
                RegistryError::OrchestrationTaken { .. }
            ))
        ),
        "{err:?}"
    );
    runtime.register_activity("Native", |i| async move { Ok(i) })?;
    let twice = runtime.register_activity("Native", |i| async move { Ok(i) });
    assert!(matches!(
        twice,
        Err(RuntimeError::Registry(RegistryError::ActivityTaken(name))) if name == "Native"
    ));
    let clash = runtime.register_activity("StepA", |i| async move { Ok(i) });
    assert!(matches!(
        clash,
        Err(RuntimeError::Registry(RegistryError::ActivityTaken(name))) if name == "StepA"
    ));
    drop(h);
    Ok(())
}

each_store!(
    a_message_that_keeps_failing_poisons_its_instance,
    async move {
        use std::time::Duration;

        let mut h = Harness::start(true, &[guests::SCENARIOS]).await?;
        h.runtime.stop().await;
        h.client
            .start_orchestration("poison", "Sequence", "p", None)
            .await?;
        // Three workers that crash mid-turn: each fetch locks and never commits.
        for _ in 0..3 {
            let work = duroxide_tests::eventually(Duration::from_secs(10), || async {
                Ok(h.store
                    .fetch_orchestration_work(Duration::from_millis(1))
                    .await?)
            })
            .await?;
            assert_eq!(work.instance.instance_id, "poison");
        }
        let mut opts = options(true);
        opts.max_message_attempts = 3;
        h.restart(opts, &[guests::SCENARIOS]).await?;
        let error = failed(
            h.client
                .wait_for_completion("poison", Some(WAIT_MS))
                .await?,
        )?;
        assert!(error.contains("poison message"), "{error}");
        assert!(
            error.contains("StartOrchestration failed 3 times"),
            "{error}"
        );
        Ok(())
    }
);
