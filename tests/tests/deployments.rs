//! Components deployed to the store: a running runtime picks them up, and
//! every execution records the component it started on (children and
//! continue-as-new included); continue-as-new moves to the newest
//! deployment of the version it asks for.

use std::time::Duration;

use duroxide::providers::query::InstanceFilter;
use duroxide::{Client, ClientError};
use duroxide_tests::{Harness, WAIT_MS, completed, guests, scenario};

/// Deploys the component in `file` through `client`.
async fn deploy(client: &Client, file: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(file)?;
    let manifest = duroxide::runtime::inspect_component(&bytes).await?;
    Ok(client
        .deploy_component(&bytes, manifest, None)
        .await?
        .digest)
}

/// The digest instance `id`'s current execution is pinned to.
async fn pinned(client: &Client, id: &str) -> anyhow::Result<Option<String>> {
    Ok(client
        .get_instance_info(id)
        .await?
        .and_then(|i| i.component_digest))
}

scenario!(
    children_and_continue_as_new_are_pinned,
    |cache| async move {
        // Nothing loaded from files: the runtime serves what is deployed.
        let h = Harness::start(cache, &[]).await?;
        let model = deploy(&h.client, guests::MODEL).await?;
        let again = deploy(&h.client, guests::MODEL).await?;
        assert_eq!(model, again, "the same bytes deploy once");

        h.client
            .start_orchestration("p", "Parent", "x", None)
            .await?;
        completed(h.client.wait_for_completion("p", Some(WAIT_MS)).await?)?;
        assert_eq!(pinned(&h.client, "p").await?, Some(model.clone()));
        let filter = InstanceFilter {
            parent_instance: Some("p".into()),
            ..InstanceFilter::default()
        };
        let children = h.client.list_instances(Some(filter)).await?.instances;
        assert_eq!(children.len(), 2);
        for child in children {
            assert_eq!(
                pinned(&h.client, &child.instance_id).await?,
                Some(model.clone())
            );
        }

        h.client
            .start_orchestration("c", "Counter", "1", None)
            .await?;
        completed(h.client.wait_for_completion("c", Some(WAIT_MS)).await?)?;
        let info = h
            .client
            .get_instance_info("c")
            .await?
            .ok_or_else(|| anyhow::anyhow!("c"))?;
        assert!(info.execution_id > 1, "it continued as new");
        assert_eq!(info.component_digest, Some(model.clone()));

        // Upgrader 1.0.0 waits; 2.0.0 arrives in a second deployment, and its
        // continue-as-new (to the latest version) runs on that one.
        h.client
            .start_orchestration("u", "Upgrader", "", None)
            .await?;
        let v2 = deploy(&h.client, guests::MODEL_V2).await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pinned(&h.client, "u").await?.is_none() {
            anyhow::ensure!(std::time::Instant::now() < deadline, "u never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(pinned(&h.client, "u").await?, Some(model.clone()));
        // A start of 2.0.0 itself waits until the runtime has loaded it.
        h.client
            .start_orchestration_versioned("probe", "Upgrader", "probe", "2.0.0")
            .await?;
        completed(h.client.wait_for_completion("probe", Some(WAIT_MS)).await?)?;
        h.client.raise_event("u", "upgrade", "").await?;
        let output = completed(h.client.wait_for_completion("u", Some(WAIT_MS)).await?)?;
        assert_eq!(output, "2.0.0 continued from 1.0.0");
        assert_eq!(pinned(&h.client, "u").await?, Some(v2.clone()));

        // Removing a component is refused while an instance is pinned to it.
        h.client
            .start_orchestration("w", "Pinned", "", None)
            .await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pinned(&h.client, "w").await?.is_none() {
            anyhow::ensure!(std::time::Instant::now() < deadline, "w never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match h.client.remove_component(&v2).await {
            Err(ClientError::ComponentInUse { instances, .. }) => {
                assert!(instances.contains(&"w".to_owned()), "{instances:?}");
            }
            other => anyhow::bail!("removal was not refused: {other:?}"),
        }
        Ok(())
    }
);
