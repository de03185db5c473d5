//! Loading components: compile (or fetch from the cache), check imports,
//! read the manifest, and prepare instantiation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre};

use super::bindings::{activities, component, orchestrator};
use super::engine::{pooled_engine, shared_engine};
use super::policy::forbidden_import;
use super::prefault::WrittenPages;
use super::state::{GuestState, Linkers, linkers, pooled_linkers};
use super::{SandboxLimits, instance};

/// Why a component could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
    /// The component imports an interface its kind of guest may not have.
    #[error("the component imports '{0}', which duroxide does not provide to this kind of guest")]
    ForbiddenImport(String),
    /// The component lacks an export the contract requires.
    #[error("the component does not export {0}")]
    MissingExport(String),
    /// The component's manifest could not be read, or is inconsistent.
    #[error("cannot read the component's manifest: {0}")]
    Manifest(String),
    /// The sandbox itself could not be set up.
    #[error("sandbox error: {0}")]
    Sandbox(String),
}

/// What a component provides, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentManifest {
    /// (name, version) of each orchestration.
    pub orchestrations: Vec<(String, String)>,
    /// Activity names.
    pub activities: Vec<String>,
}

/// A compiled, checked component, ready to instantiate.
pub struct LoadedComponent {
    /// SHA-256 of the component's bytes, hex.
    pub digest: String,
    /// What it provides.
    pub manifest: ComponentManifest,
    /// On the shared engine.
    pub(crate) shared: Prepared,
    /// On the pooled engine, tried first; `None` if that engine could not
    /// take the component.
    pub(crate) pooled: Option<Prepared>,
    /// The pages its orchestrations' sandboxes write as they start.
    pub(crate) orchestration_writes: Arc<WrittenPages>,
    /// The pages its activities' sandboxes write (learned over returned
    /// calls), written in before a fresh one's first call.
    pub(crate) activity_writes: Arc<WrittenPages>,
}

/// A component ready to instantiate on one engine.
pub(crate) struct Prepared {
    /// Its orchestrations, if it provides any.
    pub(crate) orchestrator: Option<(InstancePre<GuestState>, orchestrator::GuestIndices)>,
    /// Its activities, if it provides any.
    pub(crate) activities: Option<(InstancePre<GuestState>, activities::GuestIndices)>,
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("digest", &self.digest)
            .field("manifest", &self.manifest)
            .finish()
    }
}

/// Components already loaded in this process, by digest.
static LOADED: OnceLock<Mutex<HashMap<String, Arc<LoadedComponent>>>> = OnceLock::new();

/// Load a component from its bytes. The same bytes load once per process.
pub async fn load_component(bytes: &[u8]) -> Result<Arc<LoadedComponent>, LoadError> {
    let digest = hex::encode(Sha256::digest(bytes));
    let loaded = LOADED.get_or_init(Mutex::default);
    if let Some(hit) = loaded.lock().ok().and_then(|m| m.get(&digest).cloned()) {
        return Ok(hit);
    }
    let component = Arc::new(compile_and_check(bytes, digest.clone()).await?);
    if let Ok(mut map) = loaded.lock() {
        map.insert(digest, component.clone());
    }
    Ok(component)
}

async fn compile_and_check(bytes: &[u8], digest: String) -> Result<LoadedComponent, LoadError> {
    let engine = shared_engine().map_err(LoadError::Sandbox)?;
    let linkers = linkers(&engine).map_err(LoadError::Sandbox)?;
    let compiled = {
        let engine = engine.clone();
        let bytes = bytes.to_vec();
        // Compiling is CPU-bound and can take a while; keep it off the async workers.
        tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| LoadError::Sandbox(e.to_string()))?
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?
    };
    if let Some(import) = forbidden_import(&engine, &compiled, false) {
        return Err(LoadError::ForbiddenImport(import));
    }
    let activity_pre = linkers
        .activity
        .instantiate_pre(&compiled)
        .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
    let manifest = read_manifest(&activity_pre).await?;
    if !manifest.orchestrations.is_empty()
        && let Some(import) = forbidden_import(&engine, &compiled, true)
    {
        return Err(LoadError::ForbiddenImport(import));
    }
    let shared = prepare(linkers, &compiled, activity_pre, &manifest)?;
    let pooled = pooled(bytes, &manifest).await;
    Ok(LoadedComponent {
        digest,
        manifest,
        shared,
        pooled,
        orchestration_writes: Arc::default(),
        activity_writes: Arc::default(),
    })
}

/// The orchestrations and activities `manifest` names, ready to instantiate
/// with `linkers`; `activity_pre` is the component on the activity linker.
fn prepare(
    linkers: &Linkers,
    compiled: &Component,
    activity_pre: InstancePre<GuestState>,
    manifest: &ComponentManifest,
) -> Result<Prepared, LoadError> {
    let invalid = |e: wasmtime::Error| LoadError::Invalid(format!("{e:#}"));
    let orchestrator = if manifest.orchestrations.is_empty() {
        None
    } else {
        let pre = linkers
            .orchestration
            .instantiate_pre(compiled)
            .map_err(invalid)?;
        let indices = orchestrator::GuestIndices::new(&pre)
            .map_err(|_| LoadError::MissingExport("duroxide:orchestration/orchestrator".into()))?;
        Some((pre, indices))
    };
    let activities = if manifest.activities.is_empty() {
        None
    } else {
        let indices = activities::GuestIndices::new(&activity_pre)
            .map_err(|_| LoadError::MissingExport("duroxide:orchestration/activities".into()))?;
        Some((activity_pre, indices))
    };
    Ok(Prepared {
        orchestrator,
        activities,
    })
}

/// The component on the pooled engine (compiled again for it, or read from
/// the compile cache). An optimisation: if anything fails here, its guests
/// simply run on the shared engine.
async fn pooled(bytes: &[u8], manifest: &ComponentManifest) -> Option<Prepared> {
    let prepared = async {
        let engine = pooled_engine()?;
        let linkers = pooled_linkers(&engine)?;
        let bytes = bytes.to_vec();
        let compiled = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e:#}"))?;
        let activity_pre = linkers
            .activity
            .instantiate_pre(&compiled)
            .map_err(|e| format!("{e:#}"))?;
        prepare(linkers, &compiled, activity_pre, manifest).map_err(|e| e.to_string())
    }
    .await;
    prepared
        .inspect_err(|e| tracing::warn!("guests will not use the sandbox pool: {e}"))
        .ok()
}

async fn read_manifest(pre: &InstancePre<GuestState>) -> Result<ComponentManifest, LoadError> {
    let indices = component::GuestIndices::new(pre)
        .map_err(|_| LoadError::MissingExport("duroxide:orchestration/component".into()))?;
    let mut store = instance::activity_store(pre.engine(), "manifest", &SandboxLimits::default());
    let instance = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| LoadError::Manifest(format!("{e:#}")))?;
    let manifest = indices
        .load(&mut store, &instance)
        .map_err(|e| LoadError::Manifest(format!("{e:#}")))?
        .call_describe(&mut store)
        .await
        .map_err(|e| LoadError::Manifest(format!("{e:#}")))?;
    let orchestrations: Vec<(String, String)> = manifest
        .orchestrations
        .into_iter()
        .map(|o| (o.name, o.version))
        .collect();
    if orchestrations.is_empty() && manifest.activities.is_empty() {
        return Err(LoadError::Manifest(
            "it names no orchestrations and no activities".into(),
        ));
    }
    Ok(ComponentManifest {
        orchestrations,
        activities: manifest.activities,
    })
}
