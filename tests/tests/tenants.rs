//! Tenants through the real runtime, each store and guests built from
//! source: a client sees and controls only its tenant's instances; a guest
//! of one tenant that names another tenant's instance (as a child, a
//! detached start, or an id marked like a key) reaches its own tenant or is
//! refused; names resolve within the tenant that deployed or loaded them.

use std::time::Duration;

use duroxide::history::Event;
use duroxide::providers::query::InstanceFilter;
use duroxide::{Client, ClientError, OrchestrationStatus, Tenant};
use duroxide_tests::{
    Harness, WAIT_MS, completed, each_store, failed, guests, history_reaches, options, scenario,
};

/// A client of `tenant` on the harness's store.
fn client(h: &Harness, tenant: &str) -> anyhow::Result<Client> {
    Ok(Client::for_tenant(h.store.clone(), tenant)?)
}

/// Tenant `name`.
fn tenant(name: &str) -> anyhow::Result<Tenant> {
    Ok(Tenant::new(name)?)
}

/// Restart the harness's runtime with the model guest loaded for the
/// default tenant and for tenants `a` and `b`.
async fn with_model_in_every_tenant(h: &mut Harness, cache: bool) -> anyhow::Result<()> {
    h.runtime.stop().await;
    let mut runtime = duroxide::DuroxideRuntime::with_options(h.store.clone(), options(cache));
    runtime.load_component_file(guests::MODEL).await?;
    for name in ["a", "b"] {
        runtime
            .load_component_file_for(&tenant(name)?, guests::MODEL)
            .await?;
    }
    runtime.start().await?;
    h.runtime = runtime;
    Ok(())
}

/// Start `Waiter` instance `id` through `client` and wait until it waits
/// for its event: from then on it stays as it is unless someone touches it.
async fn parked_waiter(client: &Client, id: &str) -> anyhow::Result<()> {
    client.start_orchestration(id, "Waiter", "", None).await?;
    history_reaches(client, id, |h| {
        h.iter().any(|e| matches!(e, Event::EventSubscribed { .. }))
    })
    .await?;
    Ok(())
}

/// What a tenant's client can learn of instance `id`: status and history
/// length.
async fn observed(client: &Client, id: &str) -> anyhow::Result<(String, usize)> {
    let status = client.get_orchestration_status(id).await?;
    let history = client.get_execution_history(id, None).await?;
    Ok((format!("{status:?}"), history.len()))
}

scenario!(
    a_client_sees_and_controls_only_its_tenant,
    |cache| async move {
        let mut h = Harness::start(cache, &[]).await?;
        with_model_in_every_tenant(&mut h, cache).await?;
        let a = client(&h, "a")?;
        let b = client(&h, "b")?;

        // The same id in two tenants is two instances.
        parked_waiter(&a, "secret").await?;
        b.start_orchestration("secret", "Child", "b's", None)
            .await?;
        assert_eq!(
            completed(b.wait_for_completion("secret", Some(WAIT_MS)).await?)?,
            "B'S"
        );
        let before = observed(&a, "secret").await?;

        // B cannot see, signal, cancel or purge A's instances.
        a.start_orchestration("only-a", "Waiter", "", None).await?;
        assert_eq!(
            b.get_orchestration_status("only-a").await?,
            OrchestrationStatus::NotFound
        );
        assert!(b.get_instance_info("only-a").await?.is_none());
        assert!(b.get_instance_details("only-a").await?.is_none());
        assert!(matches!(
            b.get_execution_history("only-a", None).await,
            Err(ClientError::InstanceNotFound(_))
        ));
        assert!(matches!(
            b.raise_event("only-a", "never", "x").await,
            Err(ClientError::InstanceNotFound(_))
        ));
        assert!(matches!(
            b.cancel_orchestration("only-a").await,
            Err(ClientError::InstanceNotFound(_))
        ));
        assert!(matches!(
            b.purge_instance("only-a").await,
            Err(ClientError::InstanceNotFound(_))
        ));
        let bulk = b
            .get_bulk_status(&["only-a".into(), "secret".into()])
            .await?;
        assert_eq!(bulk[0].1, OrchestrationStatus::NotFound);
        assert!(bulk[1].1.is_terminal());
        // Nor name them by their store key.
        for key in ["@a/only-a", "@a/secret"] {
            assert!(matches!(
                b.get_orchestration_status(key).await,
                Err(ClientError::InvalidArgument(_))
            ));
            assert!(matches!(
                b.start_orchestration(key, "Child", "", None).await,
                Err(ClientError::InvalidArgument(_))
            ));
        }
        // Listings and counts are the tenant's own, with its own ids.
        let listed: Vec<String> = (b.list_instances(None).await?.instances)
            .into_iter()
            .map(|s| s.instance_id)
            .collect();
        assert_eq!(listed, ["secret"]);
        assert_eq!(b.get_system_health().await?.total_instances, 1);
        assert_eq!(a.get_system_health().await?.total_instances, 2);
        let default = Client::new(h.store.clone());
        assert!(default.list_instances(None).await?.instances.is_empty());
        assert_eq!(observed(&a, "secret").await?, before, "A's untouched");
        a.cancel_orchestration("secret").await?;
        a.wait_for_completion("secret", Some(WAIT_MS)).await?;
        Ok(())
    }
);

scenario!(
    a_guest_cannot_reach_another_tenants_instances,
    |cache| async move {
        let mut h = Harness::start(cache, &[]).await?;
        with_model_in_every_tenant(&mut h, cache).await?;
        let a = client(&h, "a")?;
        let b = client(&h, "b")?;
        let default = Client::new(h.store.clone());

        // A's instances, with the ids B's guests will name.
        for id in ["victim-explicit", "detached-victim", "p::1::1"] {
            parked_waiter(&a, id).await?;
        }
        let mut before = Vec::new();
        for id in ["victim-explicit", "detached-victim", "p::1::1"] {
            before.push(observed(&a, id).await?);
        }

        // B's parent names a child "victim-explicit" and derives
        // "p::1::1": both are B's own, and run.
        b.start_orchestration("p", "Parent", "victim", None).await?;
        let out = completed(b.wait_for_completion("p", Some(WAIT_MS)).await?)?;
        assert_eq!(out, "VICTIM-1|VICTIM-2");
        let filter = InstanceFilter {
            parent_instance: Some("p".into()),
            ..InstanceFilter::default()
        };
        let mut children: Vec<String> = (b.list_instances(Some(filter)).await?.instances)
            .into_iter()
            .map(|s| s.instance_id)
            .collect();
        children.sort();
        assert_eq!(children, ["p::1::1", "victim-explicit"]);

        // B's detached start of "detached-victim" is B's.
        b.start_orchestration("d", "Detacher", "victim", None)
            .await?;
        completed(b.wait_for_completion("d", Some(WAIT_MS)).await?)?;
        completed(
            b.wait_for_completion("detached-victim", Some(WAIT_MS))
                .await?,
        )?;

        // A child id marked like a key is refused, in B and in the default
        // tenant alike (where it would otherwise be A's key itself).
        parked_waiter(&a, "x-explicit").await?;
        let a_x = observed(&a, "x-explicit").await?;
        for parent in [&b, &default] {
            parent
                .start_orchestration("q", "Parent", "@a/x", None)
                .await?;
            let error = failed(parent.wait_for_completion("q", Some(WAIT_MS)).await?)?;
            assert!(
                error.contains("instance id '@a/x-explicit' is invalid"),
                "{error}"
            );
        }
        assert_eq!(observed(&a, "x-explicit").await?, a_x);

        // Every instance of A is as it was: same status, same history.
        for (id, was) in ["victim-explicit", "detached-victim", "p::1::1"]
            .into_iter()
            .zip(before)
        {
            assert_eq!(observed(&a, id).await?, was, "{id}");
        }
        Ok(())
    }
);

scenario!(
    names_resolve_within_the_tenant_that_deployed_them,
    |cache| async move {
        let mut h = Harness::start(cache, &[]).await?;
        h.runtime.stop().await;
        let a = client(&h, "a")?;
        let b = client(&h, "b")?;
        let bytes = std::fs::read(guests::MODEL)?;
        let manifest = duroxide::runtime::inspect_component(&bytes).await?;
        let deployed = a.deploy_component(&bytes, manifest, None).await?;
        // A runtime that loads the deployments as it starts, and fails what
        // no component of the instance's tenant serves after a short grace.
        let mut opts = options(cache);
        opts.unserved_grace = Some(Duration::from_millis(200));
        let mut runtime = duroxide::DuroxideRuntime::with_options(h.store.clone(), opts);
        runtime.start().await?;
        h.runtime = runtime;
        assert_eq!(a.list_components().await?.len(), 1);
        assert!(b.list_components().await?.is_empty());
        assert!(matches!(
            b.component_bytes(&deployed.digest).await,
            Err(ClientError::ComponentNotFound(_))
        ));

        a.start_orchestration("c", "Child", "hi", None).await?;
        assert_eq!(
            completed(a.wait_for_completion("c", Some(WAIT_MS)).await?)?,
            "HI"
        );
        // B deployed nothing: no component of B's provides "Child".
        b.start_orchestration("c", "Child", "hi", None).await?;
        let error = failed(b.wait_for_completion("c", Some(WAIT_MS)).await?)?;
        assert!(error.contains("orchestration 'Child'"), "{error}");
        Ok(())
    }
);

each_store!(tenant_names_are_checked_where_they_enter, async move {
    let h = Harness::start(false, &[]).await?;
    for bad in ["", "Acme", "a_b", "-a", "a/b", "@a"] {
        let refused = Client::for_tenant(h.store.clone(), bad).err();
        let message = refused.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(&format!("tenant name '{bad}' is invalid")),
            "{bad}: {message}"
        );
    }
    assert_eq!(
        Client::for_tenant(h.store.clone(), "acme-2")?
            .tenant()
            .name(),
        "acme-2"
    );
    assert!(Client::new(h.store.clone()).tenant().is_default());
    Ok(())
});
