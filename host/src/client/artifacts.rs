//! Deploying components through the client: the store keeps the bytes by
//! digest with the manifest the deploying side read (the client never runs
//! guest code: `duroxide::runtime::inspect_component` reads it), runtimes
//! load them, and starts are checked against what is deployed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{Client, ClientError};
use crate::limits::TextKind;
use crate::providers::artifacts::{
    ArtifactManifest, ArtifactPolicy, ArtifactSummary, NewArtifact, RemoveOutcome,
};

/// How long a client trusts the list of deployed components it read when a
/// start finds its orchestration in it (a start it refuses reads it again).
const DEPLOYED_FRESH_FOR: Duration = Duration::from_secs(1);

/// What [`Client::deploy_component`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// SHA-256 of the bytes, lower-case hex: the artifact's name.
    pub digest: String,
    /// What the component provides.
    pub manifest: ArtifactManifest,
    /// Its label (the first deployment's, if it was deployed before).
    pub label: Option<String>,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// When it was first deployed, ms since the Unix epoch.
    pub deployed_at_ms: u64,
    /// False when the same bytes were deployed already (nothing changed).
    pub newly_deployed: bool,
    /// The policy it runs under, if it was deployed with one.
    pub policy: Option<ArtifactPolicy>,
}

/// The deployed components a client read last, and when.
#[derive(Default)]
pub(super) struct DeployedCache {
    read: Mutex<Option<(Instant, Arc<Vec<ArtifactSummary>>)>>,
}

impl Client {
    /// Deploy a component: store its bytes under their SHA-256 digest with
    /// `manifest` (what it provides, from
    /// `duroxide::runtime::inspect_component`) and an optional `label`.
    /// Runtimes serving deployments load it within a second, under their
    /// default policy. Deploying the same bytes again changes nothing and
    /// returns the same digest.
    pub async fn deploy_component(
        &self,
        bytes: &[u8],
        manifest: ArtifactManifest,
        label: Option<&str>,
    ) -> Result<Deployed, ClientError> {
        self.deploy_component_with_policy(bytes, manifest, label, None)
            .await
    }

    /// Deploy a component as [`deploy_component`](Self::deploy_component)
    /// does, to run under `policy` (from `duroxide::runtime::stored_policy`)
    /// wherever it is loaded. Deploying the same bytes again with the same
    /// policy changes nothing; with another, it is refused with
    /// [`ClientError::PolicyDiffers`].
    pub async fn deploy_component_with_policy(
        &self,
        bytes: &[u8],
        manifest: ArtifactManifest,
        label: Option<&str>,
        policy: Option<ArtifactPolicy>,
    ) -> Result<Deployed, ClientError> {
        if manifest.orchestrations.is_empty() && manifest.activities.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the manifest names no orchestrations and no activities".into(),
            ));
        }
        if let Some(label) = label {
            let limits = self.text_limits().await?;
            limits
                .check(TextKind::Name, "label", label)
                .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let (summary, newly_deployed) = self
            .store
            .put_artifact(NewArtifact {
                tenant: self.tenant.name().to_owned(),
                digest,
                bytes: bytes.to_vec(),
                manifest,
                label: label.map(str::to_owned),
                policy: policy.clone(),
            })
            .await
            .map_err(ClientError::Storage)?;
        self.forget_deployed();
        if !newly_deployed && summary.policy != policy {
            return Err(ClientError::PolicyDiffers(summary.digest));
        }
        Ok(Deployed {
            digest: summary.digest,
            manifest: summary.manifest,
            label: summary.label,
            size_bytes: summary.size_bytes,
            deployed_at_ms: summary.deployed_at_ms,
            newly_deployed,
            policy: summary.policy,
        })
    }

    /// Every component deployed to this client's tenant, oldest deployment
    /// first.
    pub async fn list_components(&self) -> Result<Vec<ArtifactSummary>, ClientError> {
        self.store
            .list_artifacts(Some(self.tenant.name()))
            .await
            .map_err(ClientError::Storage)
    }

    /// The bytes of the deployed component `digest`.
    pub async fn component_bytes(&self, digest: &str) -> Result<Vec<u8>, ClientError> {
        match self.store.artifact(self.tenant.name(), digest).await {
            Ok(Some(artifact)) => Ok(artifact.bytes),
            Ok(None) => Err(ClientError::ComponentNotFound(digest.to_owned())),
            Err(e) => Err(ClientError::Storage(e)),
        }
    }

    /// Remove the deployed component `digest`. Refused with
    /// [`ClientError::ComponentInUse`], naming them, while unfinished
    /// instances are pinned to it.
    pub async fn remove_component(&self, digest: &str) -> Result<(), ClientError> {
        let outcome = self
            .store
            .remove_artifact(self.tenant.name(), digest)
            .await
            .map_err(ClientError::Storage)?;
        self.forget_deployed();
        match outcome {
            RemoveOutcome::Removed => Ok(()),
            RemoveOutcome::NotFound => Err(ClientError::ComponentNotFound(digest.to_owned())),
            RemoveOutcome::Pinned(instances) => Err(ClientError::ComponentInUse {
                digest: digest.to_owned(),
                instances: instances.iter().map(|key| self.unkey(key)).collect(),
            }),
        }
    }

    /// Unfinished instances pinned to component `digest`, oldest first, up
    /// to `limit`.
    pub async fn pinned_instances(
        &self,
        digest: &str,
        limit: u32,
    ) -> Result<Vec<String>, ClientError> {
        let keys = self
            .store
            .pinned_instances(self.tenant.name(), digest, limit)
            .await
            .map_err(ClientError::Storage)?;
        Ok(keys.iter().map(|key| self.unkey(key)).collect())
    }

    /// Move unfinished instance `instance_id` from component `from` to
    /// component `to` (which must replay its history: check with
    /// `duroxide::runtime::verify_replay` first). Returns whether it moved;
    /// it does not if it finished or is pinned to another component.
    pub async fn repin_instance(
        &self,
        instance_id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, ClientError> {
        self.store
            .repin_instance(&self.key(instance_id)?, from, to)
            .await
            .map_err(ClientError::Storage)
    }

    /// Refuse a start of orchestration `name` (at `version`) that no
    /// deployed component provides, once any component is deployed. With
    /// nothing deployed, every start is let through (runtimes may load
    /// their components from files).
    pub(super) async fn check_deployed(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ClientError> {
        let provided = |list: &[ArtifactSummary]| {
            list.is_empty() || list.iter().any(|a| a.manifest.provides(name, version))
        };
        if let Some(list) = self.cached_deployed()
            && provided(&list)
        {
            return Ok(());
        }
        let list = Arc::new(self.list_components().await?);
        *self
            .deployed
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), list.clone()));
        if provided(&list) {
            return Ok(());
        }
        let mut deployed: Vec<String> = list
            .iter()
            .flat_map(|a| a.manifest.orchestrations.iter())
            .map(|(n, v)| format!("{n} {v}"))
            .collect();
        deployed.sort();
        deployed.dedup();
        Err(ClientError::NotDeployed {
            orchestration: match version {
                Some(v) => format!("'{name}' version {v}"),
                None => format!("'{name}'"),
            },
            deployed,
        })
    }

    /// The deployed components read within [`DEPLOYED_FRESH_FOR`].
    fn cached_deployed(&self) -> Option<Arc<Vec<ArtifactSummary>>> {
        let read = self
            .deployed
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        read.as_ref()
            .filter(|(at, _)| at.elapsed() < DEPLOYED_FRESH_FOR)
            .map(|(_, list)| list.clone())
    }

    /// Forget the cached list, after this client changed it.
    fn forget_deployed(&self) {
        *self
            .deployed
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}
