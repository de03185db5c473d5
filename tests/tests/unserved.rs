//! A runtime that lacks the code of some work (an orchestration name or
//! version, an activity) leaves it for a runtime that has it, without
//! burning attempts; with a grace period set, work nobody serves fails.

use std::time::Duration;

use duroxide::{DuroxideRuntime, OrchestrationStatus};
use duroxide_tests::{Harness, WAIT_MS, completed, eventually, failed, guests, scenario};

scenario!(
    an_orchestration_waits_until_a_runtime_has_its_code,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::HELLO_WORLD]).await?;
        // Two fetches would make a message poison, had deferrals counted.
        let mut options = duroxide_tests::options(cache);
        options.max_message_attempts = 2;
        h.restart(options, &[guests::HELLO_WORLD]).await?;
        h.client
            .start_orchestration("later", "Sequence", "p", None)
            .await?;
        // Several deferrals pass; the instance is still waiting, unharmed.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Between deferrals it reads Pending: each fetch that marks it
        // Running is undone when the runtime gives it back.
        eventually(Duration::from_millis(WAIT_MS), || async {
            let status = h.client.get_orchestration_status("later").await?;
            Ok((status == OrchestrationStatus::Pending).then_some(()))
        })
        .await?;
        // A deploy brings the code, and the waiting instance runs.
        h.runtime.load_component_file(guests::SCENARIOS).await?;
        let status = h.client.wait_for_completion("later", Some(WAIT_MS)).await?;
        assert_eq!(completed(status)?, "P:A!:B!");
        Ok(())
    }
);

scenario!(
    an_activity_is_left_for_the_runtime_that_has_it,
    |cache| async move {
        // The harness runtime has the orchestration but not the activity; a
        // second runtime on the same store has only the activity.
        let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        let mut other =
            DuroxideRuntime::with_options(h.store.clone(), duroxide_tests::options(cache));
        other.register_activity("NativeDouble", |input| async move {
            let n: i64 = input.parse().map_err(|e| format!("not a number: {e}"))?;
            Ok((n * 2).to_string())
        })?;
        other.start().await?;
        assert_eq!(completed(h.run("split", "CallNative", "21").await?)?, "42");
        other.stop().await;
        Ok(())
    }
);

scenario!(
    unserved_work_fails_after_the_grace_period,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        let mut options = duroxide_tests::options(cache);
        options.unserved_grace = Some(Duration::from_millis(500));
        h.restart(options, &[guests::SCENARIOS]).await?;

        let error = failed(h.run("unknown", "NoSuchOrchestration", "").await?)?;
        assert!(
            error.contains("no runtime serves orchestration 'NoSuchOrchestration'"),
            "{error}"
        );
        assert!(error.contains("grace period of 500 ms"), "{error}");

        let error = failed(h.run("missing", "CallMissing", "").await?)?;
        assert!(
            error.contains("no runtime serves activity 'NoSuchActivity'"),
            "{error}"
        );
        // The runtime goes on serving everything it has.
        assert_eq!(completed(h.run("ok", "Sequence", "ok").await?)?, "OK:A!:B!");
        Ok(())
    }
);
