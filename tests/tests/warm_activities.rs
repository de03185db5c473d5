//! Activity sandboxes kept warm between calls, through the real runtime
//! with a guest built from source: a sandbox whose call returned serves the
//! next call of its component and tenant; one whose guest trapped never
//! serves again; tenants never share one. The guest's `Count` activity
//! returns how many calls its sandbox has served, 1 in a fresh one.

use duroxide::{Client, DuroxideRuntime, Tenant};
use duroxide_tests::{Harness, WAIT_MS, completed, guests, options, scenario};

scenario!(
    a_returned_call_leaves_its_sandbox_warm,
    |cache| async move {
        let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
        let output = completed(h.run("seq", "InSequence", "Count,Count,Count").await?)?;
        assert_eq!(output, "1,2,3", "one sandbox served all three calls");
        Ok(())
    }
);

scenario!(a_trapped_sandbox_never_serves_again, |cache| async move {
    let h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
    let run = h.run("trap", "InSequence", "Count,CountThenPanic,Count");
    let output = completed(run.await?)?;
    // The panic took the warm sandbox (its second call) and trapped: the
    // third call starts afresh.
    assert_eq!(output, "1,err,1");
    Ok(())
});

scenario!(tenants_never_share_a_sandbox, |cache| async move {
    let mut h = Harness::start(cache, &[guests::MISBEHAVING]).await?;
    h.runtime.stop().await;
    let mut runtime = DuroxideRuntime::with_options(h.store.clone(), options(cache));
    for name in ["a", "b"] {
        (runtime.load_component_file_for(&Tenant::new(name)?, guests::MISBEHAVING)).await?;
    }
    runtime.start().await?;
    h.runtime = runtime;
    let run = |tenant: &'static str, id: &'static str, input: &'static str| {
        let store = h.store.clone();
        async move {
            let client = Client::for_tenant(store, tenant)?;
            client
                .start_orchestration(id, "InSequence", input, None)
                .await?;
            let status = client.wait_for_completion(id, Some(WAIT_MS)).await?;
            completed(status)
        }
    };
    assert_eq!(run("a", "a-1", "Count,Count").await?, "1,2");
    assert_eq!(run("b", "b-1", "Count").await?, "1", "b starts afresh");
    assert_eq!(
        run("a", "a-2", "Count").await?,
        "3",
        "a's sandbox stayed a's"
    );
    Ok(())
});
