//! Components deployed to the store: a runtime loads every one when it
//! starts and polls for new ones while it runs, and an instance replays on
//! the component it is pinned to.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::component::Component;
use super::registry::{Registry, RegistryError};
use super::{Chain, RuntimeError, Shared};
use crate::providers::artifacts::{ArtifactManifest, ArtifactPolicy};
use crate::providers::{HistoryStore, InstanceRecord};
use crate::sandbox::{
    ComponentManifest, ComponentPolicy, LoadError, LoadedComponent, SandboxLimits, load_component,
};

/// How often a runtime looks for new deployments by default.
pub const DEPLOYMENT_POLL: Duration = Duration::from_millis(500);

/// Compile and check a component and read what it provides, as
/// [`crate::Client::deploy_component`] records it. Refuses bytes that are
/// not a component, a core module, a component that imports what duroxide
/// does not provide, and one that names nothing. Compiled code goes to the
/// on-disk cache, so runtimes that load it later do not compile it again.
pub async fn inspect_component(bytes: &[u8]) -> Result<ArtifactManifest, LoadError> {
    let loaded = load_component(bytes).await?;
    Ok(artifact_manifest(&loaded.manifest))
}

/// `policy` as the store keeps it with a deployed component, for
/// [`crate::Client::deploy_component_with_policy`].
pub fn stored_policy(policy: &ComponentPolicy) -> Result<ArtifactPolicy, serde_json::Error> {
    serde_json::to_string(policy).map(ArtifactPolicy::from_json)
}

/// The policy a deployed component was stored with, its grants checked
/// here as at a load (directories must exist on this host), or (`given`
/// false) the default policy with `limits` when it was deployed without one.
fn deployed_policy(
    stored: Option<&ArtifactPolicy>,
    limits: &SandboxLimits,
) -> Result<(ComponentPolicy, bool), String> {
    match stored {
        Some(stored) => {
            let mut policy: ComponentPolicy =
                serde_json::from_str(stored.json()).map_err(|e| e.to_string())?;
            policy.grants = std::mem::take(&mut policy.grants)
                .validated()
                .map_err(|e| e.to_string())?;
            Ok((policy, true))
        }
        None => Ok((ComponentPolicy::with_limits(limits.clone()), false)),
    }
}

/// A sandbox manifest as the store records it.
fn artifact_manifest(manifest: &ComponentManifest) -> ArtifactManifest {
    ArtifactManifest {
        orchestrations: manifest.orchestrations.clone(),
        activities: manifest.activities.clone(),
    }
}

/// Where a running execution's code comes from.
pub(crate) enum Pin {
    /// The instance is pinned to no component (or to one that does not
    /// provide its orchestration): found by name and version.
    Unpinned,
    /// The component it is pinned to.
    Loaded(Component),
    /// It is pinned to a deployed component this runtime has not loaded
    /// (yet): names what is missing.
    Missing(String),
}

/// The component `instance` (running orchestration `name` at `version`)
/// is pinned to. A runtime that does not serve deployments finds pinned
/// instances by name and version, as before deployments existed.
pub(crate) fn pinned(shared: &Shared, instance: &InstanceRecord, name: &str, version: &str) -> Pin {
    let Some(digest) = &instance.component_digest else {
        return Pin::Unpinned;
    };
    let Ok(registry) = shared.registry.read() else {
        return Pin::Unpinned;
    };
    match registry.by_digest(digest) {
        Some(component)
            if component
                .manifest
                .orchestrations
                .iter()
                .any(|(n, v)| n == name && v == version) =>
        {
            Pin::Loaded(component)
        }
        Some(_) => Pin::Unpinned,
        None if registry.serves_deployments => Pin::Missing(format!(
            "component {} (orchestration '{name}' version {version})",
            short(digest)
        )),
        None => Pin::Unpinned,
    }
}

/// Which component each parked execution of this runtime runs on, by
/// instance: a cached execution is reused only while its instance is still
/// pinned to that component (an upgrade may have moved it).
#[derive(Default)]
pub(crate) struct ParkedOn {
    digests: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl ParkedOn {
    /// `instance`'s execution now runs on `digest`.
    pub(crate) fn record(&self, instance: &str, digest: &str) {
        if let Ok(mut digests) = self.digests.lock() {
            digests.insert(instance.to_owned(), digest.to_owned());
        }
    }

    /// `instance` finished: forget it.
    pub(crate) fn forget(&self, instance: &str) {
        if let Ok(mut digests) = self.digests.lock() {
            digests.remove(instance);
        }
    }

    /// Whether a parked execution of `instance` may run its next turn: it
    /// runs on the component the instance is pinned to (or the instance is
    /// pinned to none).
    pub(crate) fn current(&self, instance: &InstanceRecord) -> bool {
        let Some(pinned) = &instance.component_digest else {
            return true;
        };
        self.digests
            .lock()
            .ok()
            .and_then(|d| d.get(&instance.instance_id).map(|on| on == pinned))
            .unwrap_or(true)
    }
}

/// The digest an execution starting on `component` is pinned to: a
/// deployed component's; components loaded from files pin nothing (their
/// instances follow the name and version, as before deployments).
pub(crate) fn pin_of(shared: &Shared, component: &LoadedComponent) -> Option<String> {
    let registry = shared.registry.read().ok()?;
    registry
        .is_deployed(&component.digest)
        .then(|| component.digest.clone())
}

/// The first 12 hex digits of a digest, for messages.
pub(crate) fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// Load and register every deployed component (of every tenant) not in
/// `known`, oldest deployment first, so the newest serves new instances. A
/// component that cannot be loaded, or whose policy cannot be read, is
/// logged and skipped (and not tried again): it never runs under a policy
/// other than its own. One deployed without a policy runs under the default
/// policy with `limits`.
pub(crate) async fn sync(
    store: &dyn HistoryStore,
    registry: &RwLock<Registry>,
    known: &mut HashSet<(String, String)>,
    limits: &SandboxLimits,
) -> Result<usize, RuntimeError> {
    let mut loaded = 0;
    for summary in store.list_artifacts(None).await? {
        let deployment = (summary.tenant.clone(), summary.digest.clone());
        if !known.insert(deployment) {
            continue;
        }
        let Some(artifact) = store.artifact(&summary.tenant, &summary.digest).await? else {
            continue; // removed meanwhile
        };
        let (policy, given) = match deployed_policy(artifact.summary.policy.as_ref(), limits) {
            Ok(policy) => policy,
            Err(e) => {
                tracing::error!(digest = %summary.digest, "a deployed component's policy cannot be read: {e}");
                continue;
            }
        };
        let component = match load_component(&artifact.bytes).await {
            Ok(loaded) => Component::registered(loaded, policy, given),
            Err(e) => {
                tracing::error!(digest = %summary.digest, "a deployed component cannot be loaded: {e}");
                continue;
            }
        };
        registry
            .write()
            .map_err(|_| RegistryError::Poisoned)?
            .add_deployed(&summary.tenant, &component)?;
        tracing::info!(
            tenant = %summary.tenant,
            digest = %summary.digest,
            label = summary.label.as_deref().unwrap_or(""),
            "loaded a deployed component"
        );
        loaded += 1;
    }
    Ok(loaded)
}

/// Polls for new deployments every `every` until shutdown.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut known: HashSet<(String, String)>,
    every: Duration,
) {
    let mut shutdown = shared.shutdown.clone();
    while !*shutdown.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => break,
        }
        if let Err(e) = sync(
            &*shared.store,
            &shared.registry,
            &mut known,
            &shared.options.limits,
        )
        .await
        {
            tracing::warn!("looking for new deployments failed: {}", Chain(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_policy_reads_back_as_given_and_none_is_the_default() {
        let policy = ComponentPolicy {
            max_history_events: 12,
            ..ComponentPolicy::default()
        };
        let stored = stored_policy(&policy).unwrap();
        let limits = SandboxLimits::default();
        assert_eq!(
            deployed_policy(Some(&stored), &limits).unwrap(),
            (policy, true)
        );
        let (default, given) = deployed_policy(None, &limits).unwrap();
        assert!(!given);
        assert_eq!(default, ComponentPolicy::with_limits(limits));
        let broken = ArtifactPolicy::from_json("{\"max_history\": 1}".into());
        assert!(deployed_policy(Some(&broken), &SandboxLimits::default()).is_err());
    }
}
