//! An activity knows the call it serves (instance, execution, name,
//! attempt), Wasm or native, and hears when its result is no longer wanted,
//! so a long one stops early and frees its slot.

use std::time::Duration;

use duroxide_tests::{Harness, completed, guests, scenario};

scenario!(an_activity_knows_the_call_it_serves, |cache| async move {
    let h = Harness::start(cache, &[guests::SCENARIOS]).await?;
    let output = completed(h.run("who", "AskWhoAmI", "").await?)?;
    assert_eq!(output, "who|1|WhoAmI|1");
    Ok(())
});

scenario!(
    a_native_activity_gets_the_same_context,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        h.runtime
            .register_activity_with_context("NativeDouble", |ctx, input| async move {
                Ok(format!(
                    "{input}@{}/{}/{}/{}",
                    ctx.instance_id(),
                    ctx.execution_id(),
                    ctx.name(),
                    ctx.attempt()
                ))
            })?;
        let output = completed(h.run("native-ctx", "CallNative", "21").await?)?;
        assert_eq!(output, "21@native-ctx/1/NativeDouble/1");
        Ok(())
    }
);

scenario!(
    an_activity_that_lost_its_race_hears_it_and_frees_its_slot,
    |cache| async move {
        let mut h = Harness::start(cache, &[guests::SCENARIOS]).await?;
        // One activity slot, and a budget far beyond the test's wait: the
        // activity after the race runs only if the loser stopped early.
        let mut options = duroxide_tests::options(cache);
        options.activity_concurrency = 1;
        options.limits.activity_budget = Duration::from_secs(120);
        h.restart(options, &[guests::SCENARIOS]).await?;
        let output = completed(h.run("race", "RacePatient", "").await?)?;
        assert_eq!(output, "timer, then AFTER");
        Ok(())
    }
);
