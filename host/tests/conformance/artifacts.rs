//! Deployed components: stored once by digest, listed oldest first, pinned
//! by an instance's first turn, removable only while nothing unfinished is
//! pinned, and repinned one instance at a time.

use duroxide::providers::artifacts::{
    ArtifactManifest, ArtifactPolicy, NewArtifact, RemoveOutcome,
};

use super::fixtures::*;

/// An artifact of `bytes` (the digest need not be a real hash here).
pub(super) fn artifact(digest: &str, bytes: &[u8], label: Option<&str>) -> NewArtifact {
    NewArtifact {
        tenant: "default".to_owned(),
        digest: digest.to_owned(),
        bytes: bytes.to_vec(),
        manifest: ArtifactManifest {
            orchestrations: vec![("greet".to_owned(), "1.0.0".to_owned())],
            activities: vec!["say_hello".to_owned()],
        },
        label: label.map(str::to_owned),
        policy: None,
    }
}

pub async fn an_artifact_is_stored_once_and_listed_oldest_first(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let (first, stored) = store
        .put_artifact(artifact("aa", b"one", Some("v1")))
        .await?;
    assert!(stored);
    assert_eq!(first.size_bytes, 3);
    assert_eq!(first.label.as_deref(), Some("v1"));
    // The same digest again: nothing changes, not even the label.
    let (again, stored) = store
        .put_artifact(artifact("aa", b"one", Some("other")))
        .await?;
    assert!(!stored);
    assert_eq!(again, first);
    store.put_artifact(artifact("bb", b"two!", None)).await?;
    let listed = store.list_artifacts(Some("default")).await?;
    let digests: Vec<&str> = listed.iter().map(|a| a.digest.as_str()).collect();
    assert_eq!(digests, ["aa", "bb"]);
    let fetched = store
        .artifact("default", "bb")
        .await?
        .ok_or("bb is stored")?;
    assert_eq!(fetched.bytes, b"two!");
    assert!(fetched.summary.manifest.provides("greet", Some("1.0.0")));
    assert!(store.artifact("default", "cc").await?.is_none());
    Ok(())
}

pub async fn an_artifact_keeps_the_policy_it_was_first_stored_with(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    let policy = ArtifactPolicy::from_json(r#"{"max_history_events":7}"#.to_owned());
    let mut with = artifact("aa", b"one", None);
    with.policy = Some(policy.clone());
    let (stored, _) = store.put_artifact(with).await?;
    assert_eq!(stored.policy.as_ref(), Some(&policy));
    // The same bytes again change nothing, their policy included.
    let (again, inserted) = store.put_artifact(artifact("aa", b"one", None)).await?;
    assert!(!inserted);
    assert_eq!(again.policy.as_ref(), Some(&policy));
    let fetched = store
        .artifact("default", "aa")
        .await?
        .ok_or("aa is stored")?;
    assert_eq!(fetched.summary.policy, Some(policy));
    let (without, _) = store.put_artifact(artifact("bb", b"two", None)).await?;
    assert_eq!(without.policy, None);
    let listed = store.list_artifacts(Some("default")).await?;
    assert_eq!(listed.len(), 2);
    assert!(listed[0].policy.is_some() && listed[1].policy.is_none());
    Ok(())
}

pub async fn a_pinned_artifact_cannot_be_removed_until_its_instances_finish(
    store: Arc<dyn HistoryStore>,
) -> TestResult {
    store.put_artifact(artifact("aa", b"one", None)).await?;
    store.put_artifact(artifact("bb", b"two", None)).await?;
    store.create_instance(new_instance("i1", 0)).await?;
    let work = store
        .fetch_orchestration_work(LONG_LOCK)
        .await?
        .ok_or("i1 is ready")?;
    let mut commit = empty_commit(&work);
    commit.component_digest = Some("aa".to_owned());
    store.commit_turn(commit).await?;
    let row = store.instance("i1").await?.ok_or("i1 exists")?;
    assert_eq!(row.component_digest.as_deref(), Some("aa"));
    assert_eq!(store.pinned_instances("default", "aa", 10).await?, ["i1"]);
    assert_eq!(
        store.remove_artifact("default", "aa").await?,
        RemoveOutcome::Pinned(vec!["i1".to_owned()])
    );
    assert!(store.artifact("default", "aa").await?.is_some());
    assert_eq!(
        store.remove_artifact("default", "zz").await?,
        RemoveOutcome::NotFound
    );
    // Repinned from the wrong digest: nothing moves.
    assert!(!store.repin_instance("i1", "bb", "aa").await?);
    assert!(store.repin_instance("i1", "aa", "bb").await?);
    assert!(
        store
            .pinned_instances("default", "aa", 10)
            .await?
            .is_empty()
    );
    assert_eq!(
        store.remove_artifact("default", "aa").await?,
        RemoveOutcome::Removed
    );
    assert!(store.artifact("default", "aa").await?.is_none());
    let row = store.instance("i1").await?.ok_or("i1 exists")?;
    assert_eq!(row.component_digest.as_deref(), Some("bb"));
    Ok(())
}
