//! What a runtime can run: orchestrations by name and version, activities by
//! name, each backed by a Wasm component or (activities only) a native closure.
//! Components belong to a tenant, and an instance's names resolve within its
//! tenant's components; native activities are the host's own (trusted) code
//! and serve every tenant.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use semver::Version;

use super::RuntimeError;
use super::component::Component;
use crate::sandbox::{ActivityCall, LoadedComponent};

/// A boxed native activity future.
pub type ActivityFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// A native activity: trusted host code, called with the call's context and
/// the activity's input.
pub type NativeActivity = Arc<dyn Fn(ActivityContext, String) -> ActivityFuture + Send + Sync>;

/// What a native activity knows of the call it serves, as a Wasm activity
/// does through its `activity-context` import.
#[derive(Debug, Clone)]
pub struct ActivityContext {
    pub(crate) call: ActivityCall,
    pub(crate) tenant: String,
}

impl ActivityContext {
    /// The instance whose orchestration scheduled the activity, as its
    /// tenant's clients name it.
    pub fn instance_id(&self) -> &str {
        &self.call.info.instance_id
    }

    /// The tenant of that instance: a native activity serves every tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// That orchestration's execution.
    pub fn execution_id(&self) -> u64 {
        self.call.info.execution_id
    }

    /// The activity's name.
    pub fn name(&self) -> &str {
        &self.call.info.name
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.call.info.attempt
    }

    /// Whether the result is no longer wanted: the orchestration stopped
    /// waiting for it, or the runtime is stopping. A long activity checks it
    /// to stop early; what it returns then is ignored.
    pub fn is_cancelled(&self) -> bool {
        self.call.cancelled.is_cancelled()
    }
}

/// Where an activity runs.
#[derive(Clone)]
pub(crate) enum ActivityHandler {
    Wasm(Component),
    Native(NativeActivity),
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A component names an orchestration version that is not semver.
    #[error("orchestration '{name}' has version '{version}', which is not a semantic version")]
    InvalidVersion {
        /// The orchestration.
        name: String,
        /// The version it gave.
        version: String,
        /// Why it does not parse.
        source: semver::Error,
    },
    /// Another component registered this orchestration version already.
    #[error("orchestration '{name}' version {version} is already registered by another component")]
    OrchestrationTaken {
        /// The orchestration.
        name: String,
        /// The version.
        version: String,
    },
    /// Another component (of the same tenant) or a native closure
    /// registered this activity already.
    #[error("activity '{0}' is already registered")]
    ActivityTaken(String),
    /// A thread panicked while it changed the registry.
    #[error("the registry is unusable: a thread panicked while changing it")]
    Poisoned,
}

/// The orchestrations `component` provides, each with its version parsed.
fn versions_of(component: &LoadedComponent) -> Result<Vec<(String, Version)>, RegistryError> {
    (component.manifest.orchestrations.iter())
        .map(|(name, version)| {
            let parsed =
                Version::parse(version).map_err(|source| RegistryError::InvalidVersion {
                    name: name.clone(),
                    version: version.clone(),
                    source,
                })?;
            Ok((name.clone(), parsed))
        })
        .collect()
}

/// Why the registry has no orchestration for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No component loaded here provides it (another runtime may): names
    /// the orchestration and version.
    NotLoaded(String),
    /// The version asked for is malformed; no runtime can serve it.
    InvalidVersion(String),
}

/// What one tenant's components register, by name.
type ByName<T> = HashMap<String, T>;

/// Orchestrations and activities by tenant and name.
#[derive(Default, Clone)]
pub(crate) struct Registry {
    orchestrations: HashMap<String, ByName<BTreeMap<Version, Component>>>,
    activities: HashMap<String, ByName<ActivityHandler>>,
    /// Native activities, which serve every tenant.
    natives: ByName<NativeActivity>,
    /// Every component registered, by digest: instances pinned to one
    /// replay on it even after a newer one took over its names.
    by_digest: HashMap<String, Component>,
    /// Whether components deployed to the store are registered here.
    pub(crate) serves_deployments: bool,
    /// Digests of the components registered from the store's deployments.
    deployed: std::collections::HashSet<String>,
}

impl Registry {
    /// Register everything `component`'s manifest names, for `tenant`.
    /// Nothing is registered if any name conflicts with a different
    /// component of the tenant or a native closure.
    pub(crate) fn add_component(
        &mut self,
        tenant: &str,
        component: &Component,
    ) -> Result<(), RuntimeError> {
        let versions = versions_of(component)?;
        let orchestrations = self.orchestrations.entry(tenant.to_owned()).or_default();
        let activities = self.activities.entry(tenant.to_owned()).or_default();
        for (name, version) in &versions {
            if let Some(existing) = orchestrations.get(name).and_then(|v| v.get(version))
                && existing.digest != component.digest
            {
                return Err(RegistryError::OrchestrationTaken {
                    name: name.clone(),
                    version: version.to_string(),
                }
                .into());
            }
        }
        for name in &component.manifest.activities {
            if self.natives.contains_key(name) {
                return Err(RegistryError::ActivityTaken(name.clone()).into());
            }
            match activities.get(name) {
                Some(ActivityHandler::Wasm(existing)) if existing.digest == component.digest => {}
                Some(_) => return Err(RegistryError::ActivityTaken(name.clone()).into()),
                None => {}
            }
        }
        for (name, version) in versions {
            orchestrations
                .entry(name)
                .or_default()
                .insert(version, component.clone());
        }
        for name in &component.manifest.activities {
            activities.insert(name.clone(), ActivityHandler::Wasm(component.clone()));
        }
        self.by_digest
            .insert(component.digest.clone(), component.clone());
        Ok(())
    }

    /// Register a component deployed to the store by `tenant`. Deployed
    /// later than the tenant's components already registered, it takes over
    /// the orchestration versions and activities they share (new instances
    /// start on it); the earlier ones stay, by digest, for the instances
    /// pinned to them. Native activities keep their names.
    pub(crate) fn add_deployed(
        &mut self,
        tenant: &str,
        component: &Component,
    ) -> Result<(), RuntimeError> {
        let versions = versions_of(component)?;
        let orchestrations = self.orchestrations.entry(tenant.to_owned()).or_default();
        for (name, version) in versions {
            orchestrations
                .entry(name)
                .or_default()
                .insert(version, component.clone());
        }
        let activities = self.activities.entry(tenant.to_owned()).or_default();
        for name in &component.manifest.activities {
            if !self.natives.contains_key(name) {
                activities.insert(name.clone(), ActivityHandler::Wasm(component.clone()));
            }
        }
        self.by_digest
            .insert(component.digest.clone(), component.clone());
        self.deployed.insert(component.digest.clone());
        Ok(())
    }

    /// Whether the component with this digest came from a deployment.
    pub(crate) fn is_deployed(&self, digest: &str) -> bool {
        self.deployed.contains(digest)
    }

    /// The registered component with this digest.
    pub(crate) fn by_digest(&self, digest: &str) -> Option<Component> {
        self.by_digest.get(digest).cloned()
    }

    /// Register a native activity, for every tenant.
    pub(crate) fn add_native_activity(
        &mut self,
        name: &str,
        f: NativeActivity,
    ) -> Result<(), RuntimeError> {
        let taken = self.natives.contains_key(name)
            || self
                .activities
                .values()
                .any(|names| names.contains_key(name));
        if taken {
            return Err(RegistryError::ActivityTaken(name.to_string()).into());
        }
        self.natives.insert(name.to_string(), f);
        Ok(())
    }

    /// `tenant`'s component for orchestration `name` at `version`, or at
    /// the latest version when none is asked for. Returns the version chosen.
    pub(crate) fn orchestration(
        &self,
        tenant: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(String, Component), Lookup> {
        let wanted = version
            .map(|v| {
                Version::parse(v).map_err(|e| {
                    Lookup::InvalidVersion(format!("'{v}' is not a semantic version: {e}"))
                })
            })
            .transpose()?;
        let versions = self.orchestrations.get(tenant).and_then(|o| o.get(name));
        let found = match &wanted {
            None => versions.and_then(|v| v.iter().next_back()),
            Some(wanted) => versions.and_then(|v| v.get_key_value(wanted)),
        };
        found
            .map(|(v, c)| (v.to_string(), c.clone()))
            .ok_or_else(|| {
                Lookup::NotLoaded(match version {
                    Some(v) => format!("orchestration '{name}' version {v}"),
                    None => format!("orchestration '{name}'"),
                })
            })
    }

    /// The handler of activity `name` for an instance of `tenant`: a native
    /// activity, or one of the tenant's components.
    pub(crate) fn activity(&self, tenant: &str, name: &str) -> Option<ActivityHandler> {
        if let Some(native) = self.natives.get(name) {
            return Some(ActivityHandler::Native(native.clone()));
        }
        self.activities.get(tenant)?.get(name).cloned()
    }
}
