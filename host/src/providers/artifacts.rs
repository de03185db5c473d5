//! Deployed components (artifacts) as the store keeps them: the bytes by
//! content digest, what they provide, an optional label and when they were
//! deployed. Instances record the digest they started on (see
//! [`super::InstanceRecord::component_digest`]).

use serde::{Deserialize, Serialize};

/// What a deployed component provides, as recorded when it was deployed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactManifest {
    /// (name, version) of each orchestration.
    pub orchestrations: Vec<(String, String)>,
    /// Activity names.
    pub activities: Vec<String>,
}

impl ArtifactManifest {
    /// Whether it provides orchestration `name`, at `version` if one is given.
    pub fn provides(&self, name: &str, version: Option<&str>) -> bool {
        self.orchestrations
            .iter()
            .any(|(n, v)| n == name && version.is_none_or(|wanted| same_version(v, wanted)))
    }
}

/// Two version texts name the same semantic version (or, when either does
/// not parse, are equal texts).
fn same_version(a: &str, b: &str) -> bool {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The policy a deployed component runs under, as the store keeps it: a
/// JSON document in the shape of `duroxide::ComponentPolicy`, written by
/// `duroxide::runtime::stored_policy` and read by the runtimes that load
/// the component. The store and the client never look inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArtifactPolicy(String);

impl ArtifactPolicy {
    /// A policy document as a store read it (or a runtime wrote it).
    pub fn from_json(json: String) -> Self {
        Self(json)
    }

    /// The document.
    pub fn json(&self) -> &str {
        &self.0
    }
}

/// A component to store.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    /// The tenant deploying it: its names resolve within this tenant.
    pub tenant: String,
    /// SHA-256 of `bytes`, lower-case hex.
    pub digest: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// What it provides.
    pub manifest: ArtifactManifest,
    /// A name for people ("orders v2"), if given.
    pub label: Option<String>,
    /// The policy it runs under; `None` runs it under each runtime's
    /// default policy.
    pub policy: Option<ArtifactPolicy>,
}

/// A stored component, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSummary {
    /// The tenant it was deployed to.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// SHA-256 of the bytes, lower-case hex.
    pub digest: String,
    /// Size of the component in bytes.
    pub size_bytes: u64,
    /// What it provides.
    pub manifest: ArtifactManifest,
    /// Its label, if it was given one.
    pub label: Option<String>,
    /// When it was first deployed, ms since the Unix epoch.
    pub deployed_at_ms: u64,
    /// The policy it was deployed with, if any.
    pub policy: Option<ArtifactPolicy>,
}

/// The tenant of a summary written before summaries named one.
fn default_tenant() -> String {
    crate::tenant::Tenant::DEFAULT.to_owned()
}

/// A stored component with its bytes.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// What is known about it.
    pub summary: ArtifactSummary,
    /// The component.
    pub bytes: Vec<u8>,
}

/// What [`super::HistoryStore::remove_artifact`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoveOutcome {
    /// The artifact is gone.
    Removed,
    /// The tenant has no artifact with this digest.
    NotFound,
    /// Unfinished instances are pinned to it (their ids, up to 100); it
    /// stays.
    Pinned(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provides_matches_name_and_semantic_version() {
        let manifest = ArtifactManifest {
            orchestrations: vec![("Greet".into(), "1.0.0".into())],
            activities: vec!["Say".into()],
        };
        assert!(manifest.provides("Greet", None));
        assert!(manifest.provides("Greet", Some("1.0.0")));
        assert!(!manifest.provides("Greet", Some("2.0.0")));
        assert!(!manifest.provides("Say", None));
    }
}
