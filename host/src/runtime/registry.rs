//! What a runtime can run: orchestrations by name and version, activities by
//! name, each backed by a Wasm component or (activities only) a native closure.

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
}

impl ActivityContext {
    /// The instance whose orchestration scheduled the activity.
    pub fn instance_id(&self) -> &str {
        &self.call.info.instance_id
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
    /// Another component or closure registered this activity already.
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

/// Orchestrations and activities by name.
#[derive(Default, Clone)]
pub(crate) struct Registry {
    orchestrations: HashMap<String, BTreeMap<Version, Component>>,
    activities: HashMap<String, ActivityHandler>,
    /// Every component registered, by digest: instances pinned to one
    /// replay on it even after a newer one took over its names.
    by_digest: HashMap<String, Component>,
    /// Whether components deployed to the store are registered here.
    pub(crate) serves_deployments: bool,
    /// Digests of the components registered from the store's deployments.
    deployed: std::collections::HashSet<String>,
}

impl Registry {
    /// Register everything `component`'s manifest names. Nothing is registered
    /// if any name conflicts with a different component or closure.
    pub(crate) fn add_component(&mut self, component: &Component) -> Result<(), RuntimeError> {
        let versions = versions_of(component)?;
        for (name, version) in &versions {
            if let Some(existing) = self.orchestrations.get(name).and_then(|v| v.get(version))
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
            match self.activities.get(name) {
                Some(ActivityHandler::Wasm(existing)) if existing.digest == component.digest => {}
                Some(_) => return Err(RegistryError::ActivityTaken(name.clone()).into()),
                None => {}
            }
        }
        for (name, version) in versions {
            self.orchestrations
                .entry(name)
                .or_default()
                .insert(version, component.clone());
        }
        for name in &component.manifest.activities {
            self.activities
                .insert(name.clone(), ActivityHandler::Wasm(component.clone()));
        }
        self.by_digest
            .insert(component.digest.clone(), component.clone());
        Ok(())
    }

    /// Register a component deployed to the store. Deployed later than the
    /// components already registered, it takes over the orchestration
    /// versions and activities they share (new instances start on it); the
    /// earlier ones stay, by digest, for the instances pinned to them.
    /// Native activities keep their names.
    pub(crate) fn add_deployed(&mut self, component: &Component) -> Result<(), RuntimeError> {
        for (name, version) in versions_of(component)? {
            self.orchestrations
                .entry(name)
                .or_default()
                .insert(version, component.clone());
        }
        for name in &component.manifest.activities {
            if !matches!(self.activities.get(name), Some(ActivityHandler::Native(_))) {
                self.activities
                    .insert(name.clone(), ActivityHandler::Wasm(component.clone()));
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

    /// Register a native activity.
    pub(crate) fn add_native_activity(
        &mut self,
        name: &str,
        f: NativeActivity,
    ) -> Result<(), RuntimeError> {
        if self.activities.contains_key(name) {
            return Err(RegistryError::ActivityTaken(name.to_string()).into());
        }
        self.activities
            .insert(name.to_string(), ActivityHandler::Native(f));
        Ok(())
    }

    /// The component for orchestration `name` at `version`, or at the latest
    /// version when none is asked for. Returns the version chosen.
    pub(crate) fn orchestration(
        &self,
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
        let versions = self.orchestrations.get(name);
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

    /// The handler of activity `name`.
    pub(crate) fn activity(&self, name: &str) -> Option<ActivityHandler> {
        self.activities.get(name).cloned()
    }
}
