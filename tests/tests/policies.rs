//! A component's policy, given when it is loaded or deployed: a deployed
//! component runs under the policy stored with it in every runtime that
//! loads it, and its concurrency limits make calls over them wait rather
//! than fail.

use std::time::{Duration, Instant};

use duroxide::{Client, ComponentPolicy};
use duroxide_tests::{Harness, completed, failed, guests, options, scenario};

/// Deploys the component in `file` through `client` under `policy`.
async fn deploy(client: &Client, file: &str, policy: &ComponentPolicy) -> anyhow::Result<String> {
    let bytes = std::fs::read(file)?;
    let manifest = duroxide::runtime::inspect_component(&bytes).await?;
    let stored = duroxide::runtime::stored_policy(policy)?;
    Ok(client
        .deploy_component_with_policy(&bytes, manifest, None, Some(stored))
        .await?
        .digest)
}

scenario!(
    a_deployed_component_runs_under_the_policy_stored_with_it,
    |cache| async move {
        // Nothing loaded from files: the runtime serves what is deployed.
        let h = Harness::start(cache, &[]).await?;
        let mut policy = ComponentPolicy::default();
        policy.max_history_events = 20;
        policy.limits.max_payload_bytes = 100;
        policy.limits.max_error_bytes = 1 << 30;
        deploy(&h.client, guests::MISBEHAVING, &policy).await?;
        let error = failed(h.run("many", "ManyEvents", "30").await?)?;
        assert!(
            error.starts_with("[DX013] the execution would hold"),
            "{error}"
        );
        assert!(
            error.contains("more than the limit of 20 (max_history_events)"),
            "{error}"
        );
        // Its own payload limit, stricter than the store's 64 KiB.
        let output = completed(h.run("output", "CallActivity", "BigOutput|101").await?)?;
        assert!(
            output.contains("activity output is 101 bytes, more than the limit of 100 bytes"),
            "{output}"
        );
        let output = completed(h.run("small", "CallActivity", "BigOutput|100").await?)?;
        assert_eq!(output, "ok: 100 bytes");
        // Its error limit, looser than the store's 64 KiB, is held to the
        // store's.
        let output = completed(h.run("error", "CallActivity", "FailsLong|70000").await?)?;
        assert!(
            output.contains("activity error is 70000 bytes, more than the limit of 65536 bytes"),
            "{output}"
        );
        Ok(())
    }
);

scenario!(
    activities_over_their_components_limit_wait_for_a_slot,
    |cache| async move {
        let mut h = Harness::start(cache, &[]).await?;
        h.runtime.stop().await;
        let mut runtime = duroxide::DuroxideRuntime::with_options(h.store.clone(), options(cache));
        let mut policy = ComponentPolicy::default();
        policy.max_concurrent_activities = 2;
        runtime
            .load_component_file_with_policy(guests::MISBEHAVING, policy)
            .await?;
        runtime.start().await?;
        h.runtime = runtime;
        // Six calls of 200 ms, two at a time: three rounds, all complete.
        let started = Instant::now();
        let output = completed(h.run("holds", "FanOutHolds", "6:200").await?)?;
        let took = started.elapsed();
        assert_eq!(output, "6 of 6 held");
        assert!(
            took >= Duration::from_millis(600),
            "six calls of 200 ms, two at a time, took only {took:?}"
        );
        Ok(())
    }
);
