//! Tenants in the store: an instance's tenant is the one its key names,
//! management queries filter by it, artifacts belong to one, and the
//! orchestrator fetch shares its slots fairly between the tenants with
//! ready work.

use duroxide::providers::query::{CountsQuery, InstanceFilter, PurgeFilter};

use super::artifacts::artifact;
use super::fixtures::*;

/// The instance ids of a batch, in its order.
fn ids(batch: &[OrchestrationWork]) -> Vec<&str> {
    batch
        .iter()
        .map(|w| w.instance.instance_id.as_str())
        .collect()
}

/// Finish every ready instance: fetch it and commit it completed.
async fn complete_ready(store: &dyn HistoryStore) -> TestResult {
    let batch = store
        .fetch_orchestration_batch(10, LONG_LOCK, Duration::ZERO)
        .await?;
    for work in batch {
        let mut commit = empty_commit(&work);
        commit.new_events = vec![started_event()];
        commit.status = InstanceStatus::Completed;
        commit.output = Some("\"done\"".to_owned());
        store.commit_turn(commit).await?;
    }
    Ok(())
}

pub async fn management_queries_see_only_the_tenant_asked_for(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let now = now_ms();
    // Two that finish, in two tenants; then two that stay pending.
    store.create_instance(new_instance("x", now - 40)).await?;
    store
        .create_instance(new_instance("@acme/x", now - 30))
        .await?;
    complete_ready(store).await?;
    store
        .create_instance(new_instance("@acme/y", now - 20))
        .await?;
    store
        .create_instance(new_instance("@beta/x", now - 10))
        .await?;
    let listed = |tenant: Option<&str>| InstanceFilter {
        tenant: tenant.map(str::to_owned),
        ..InstanceFilter::default()
    };
    let keys = |page: duroxide::InstancePage| -> Vec<String> {
        page.instances.into_iter().map(|s| s.instance_id).collect()
    };
    assert_eq!(
        keys(store.list_instances(&listed(Some("acme"))).await?),
        ["@acme/y", "@acme/x"]
    );
    assert_eq!(
        keys(store.list_instances(&listed(Some("default"))).await?),
        ["x"]
    );
    assert!(
        keys(store.list_instances(&listed(Some("nobody"))).await?).is_empty(),
        "a tenant with no instances lists none"
    );
    assert_eq!(keys(store.list_instances(&listed(None)).await?).len(), 4);
    let counts = |tenant: &str| CountsQuery {
        tenant: Some(tenant.to_owned()),
        long_running_before_ms: 0,
        recent_since_ms: 0,
    };
    let acme = store.instance_counts(counts("acme")).await?;
    assert_eq!((acme.pending, acme.completed), (1, 1));
    assert_eq!(store.instance_counts(counts("beta")).await?.total(), 1);

    // A purge for one tenant leaves another's finished instances alone.
    let purge = |tenant: &str| PurgeFilter {
        tenant: Some(tenant.to_owned()),
        finished_before_ms: now_ms() + 60_000,
        orchestration_name: None,
        status: None,
    };
    assert_eq!(store.purge_finished(&purge("beta"), 10).await?, 0);
    assert_eq!(store.purge_finished(&purge("acme"), 10).await?, 1);
    assert!(store.instance("@acme/x").await?.is_none());
    assert!(
        store.instance("x").await?.is_some(),
        "the default tenant's stays"
    );
    Ok(())
}

pub async fn a_fetch_takes_turns_between_tenants(store: Arc<dyn HistoryStore>) -> TestResult {
    let store = &*store;
    let now = now_ms();
    // Tenant a's backlog is older than tenant b's one instance.
    for i in 0..10 {
        store
            .create_instance(new_instance(&format!("@a/{i}"), now - 1_000 + i))
            .await?;
    }
    store.create_instance(new_instance("@b/one", now)).await?;
    store.create_instance(new_instance("plain", now)).await?;

    // One fetch of four slots: one from each tenant with work, then a's
    // second oldest; each tenant's oldest first.
    let batch = store
        .fetch_orchestration_batch(4, LONG_LOCK, Duration::ZERO)
        .await?;
    let mut got = ids(&batch);
    assert_eq!(got.len(), 4);
    assert!(
        got.contains(&"@b/one"),
        "b's instance is not starved: {got:?}"
    );
    assert!(got.contains(&"plain"), "nor the default tenant's: {got:?}");
    got.retain(|id| id.starts_with("@a/"));
    assert_eq!(got, ["@a/0", "@a/1"], "a's oldest first");
    Ok(())
}

pub async fn single_slot_fetches_rotate_through_the_tenants(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let store = &*store;
    let now = now_ms();
    for i in 0..5 {
        store
            .create_instance(new_instance(&format!("@a/{i}"), now - 1_000 + i))
            .await?;
    }
    // Newer than a's, and visible already: an instance created in the
    // future would not be fetched by a test faster than a millisecond.
    store
        .create_instance(new_instance("@b/0", now - 10))
        .await?;
    store.create_instance(new_instance("@b/1", now - 9)).await?;
    // A dispatcher whose slots free one at a time fetches one at a time:
    // the tenants still alternate while both have work.
    let mut order = Vec::new();
    for _ in 0..6 {
        let batch = store
            .fetch_orchestration_batch(1, LONG_LOCK, Duration::ZERO)
            .await?;
        order.extend(ids(&batch).into_iter().map(str::to_owned));
    }
    let tenants: Vec<&str> = order.iter().map(|k| &k[..2]).collect();
    let first_b = tenants.iter().position(|t| *t == "@b");
    assert!(
        first_b.is_some_and(|at| at <= 1),
        "b waits at most one fetch: {order:?}"
    );
    assert_eq!(
        tenants.iter().filter(|t| **t == "@b").count(),
        2,
        "both of b's instances within six fetches: {order:?}"
    );
    let a: Vec<&String> = order.iter().filter(|k| k.starts_with("@a/")).collect();
    assert_eq!(a, ["@a/0", "@a/1", "@a/2", "@a/3"], "a's oldest first");
    Ok(())
}

pub async fn artifacts_belong_to_their_tenant(store: Arc<dyn HistoryStore>) -> TestResult {
    let in_tenant = |tenant: &str| {
        let mut new = artifact("aa", b"same bytes", None);
        new.tenant = tenant.to_owned();
        new
    };
    // The same bytes deployed by two tenants are two artifacts.
    assert!(store.put_artifact(in_tenant("acme")).await?.1);
    assert!(store.put_artifact(in_tenant("beta")).await?.1);
    let acme = store.list_artifacts(Some("acme")).await?;
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].tenant, "acme");
    assert!(store.list_artifacts(Some("default")).await?.is_empty());
    assert_eq!(store.list_artifacts(None).await?.len(), 2);
    assert!(store.artifact("default", "aa").await?.is_none());
    assert!(store.artifact("beta", "aa").await?.is_some());

    // An instance of acme pinned to its artifact keeps it; beta's goes.
    store.create_instance(new_instance("@acme/i", 0)).await?;
    let work = store
        .fetch_orchestration_work(LONG_LOCK)
        .await?
        .ok_or("@acme/i is ready")?;
    let mut commit = empty_commit(&work);
    commit.component_digest = Some("aa".to_owned());
    store.commit_turn(commit).await?;
    assert_eq!(store.pinned_instances("acme", "aa", 10).await?, ["@acme/i"]);
    assert!(store.pinned_instances("beta", "aa", 10).await?.is_empty());
    assert_eq!(
        store.remove_artifact("beta", "aa").await?,
        duroxide::providers::artifacts::RemoveOutcome::Removed
    );
    assert!(store.artifact("acme", "aa").await?.is_some());
    // No repinning onto a component of another tenant.
    let mut other = artifact("bb", b"other", None);
    other.tenant = "beta".to_owned();
    store.put_artifact(other).await?;
    assert!(!store.repin_instance("@acme/i", "aa", "bb").await?);
    Ok(())
}
