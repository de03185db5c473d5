//! The execution side: `DuroxideRuntime` loads components, registers native
//! activities, and runs the orchestrator and activity dispatchers against the
//! store.

mod activity;
mod cache;
mod calls;
mod component;
mod deployments;
pub(crate) mod execution;
mod fast_path;
mod history_limit;
mod idle;
mod inline;
mod linked_replay;
mod orchestrator;
mod outage;
mod plan;
mod registry;
pub(crate) mod replay;
mod sampler;
mod slots;
mod turn_cost;
mod turn_window;
mod unserved;
mod verify;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::clock::SharedClock;
use crate::providers::HistoryStore;
pub use crate::providers::retention::Retention;
pub use crate::sandbox::GuestFault;
use crate::sandbox::{ComponentPolicy, LoadError, LoadedComponent, SandboxLimits, load_component};
use crate::tenant::Tenant;
use cache::ExecutionCache;
use component::Component;
pub use deployments::{DEPLOYMENT_POLL, inspect_component, stored_policy};
use registry::Registry;
pub use registry::{ActivityContext, ActivityFuture, NativeActivity, RegistryError};
#[doc(hidden)]
pub use turn_cost::{TurnCost, measure_activity_cost, measure_turn_cost};
pub use verify::{ReplayMismatch, verify_replay};

/// Errors of the runtime API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A component file could not be read.
    #[error("cannot read component file {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The component's grants break a rule (see [`crate::Grants`]).
    #[error("the component's grants were refused")]
    Grants(#[from] crate::sandbox::GrantError),
    /// A name conflicts with one already registered, or is malformed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// `start` was called on a running runtime.
    #[error("the runtime is already running")]
    AlreadyRunning,
    /// The store failed (reading or writing the shared text limits, or
    /// reading the deployed components, at start).
    #[error(transparent)]
    Store(#[from] crate::providers::StoreError),
}

/// How a runtime behaves. `Default` suits production; tests shorten locks.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Keep executions parked between turns (sticky execution). Turning it off
    /// replays every turn from history; results are identical.
    pub execution_cache: bool,
    /// Most parked executions kept; the least recently used is evicted.
    pub cache_capacity: usize,
    /// Most guest memory the parked executions may hold together.
    pub cache_max_bytes: usize,
    /// Orchestration turns run side by side.
    pub orchestration_workers: usize,
    /// Activities run side by side. The default, 1024, lets the activity
    /// dispatcher take large batches (hello_seq5 ran 18% faster than with
    /// 256); each running Wasm activity holds a sandbox of the pool, which
    /// it shares with the parked executions.
    pub activity_concurrency: usize,
    /// How long a fetched instance stays locked; a crashed worker's instance is
    /// retried after it.
    pub orchestration_lock: Duration,
    /// How long a fetched activity stays locked; a crashed worker's activity is
    /// retried after it.
    pub activity_lock: Duration,
    /// A message fetched more often than this fails its instance as poison.
    pub max_message_attempts: u32,
    /// Activity work fetched more often than this fails its activity: each
    /// earlier attempt ended without a result (its worker crashed or lost
    /// the lock). An attempt that runs past its budget fails at once.
    pub max_activity_attempts: u32,
    /// How long work waits for a runtime that has its code (an
    /// orchestration name and version, or an activity) before it fails.
    /// `None`, the default, waits for ever: in a mixed fleet or a rolling
    /// deploy a runtime that lacks the code leaves the work to one that has
    /// it, logging a warning that names what it lacks.
    pub unserved_grace: Option<Duration>,
    /// Longest wait between polls of the store when idle (work from other
    /// processes is noticed within it).
    pub max_poll_interval: Duration,
    /// How long `stop` waits for running activities before abandoning them.
    pub shutdown_grace: Duration,
    /// Limits every guest runs under.
    pub limits: SandboxLimits,
    /// Delete finished instances after a while, swept on a schedule;
    /// `None` (the default) keeps them until purged through the client.
    pub retention: Option<Retention>,
    /// Serve the components deployed to the store
    /// (`Client::deploy_component`): load them all on `start`, then look
    /// for new ones this often ([`DEPLOYMENT_POLL`], half a second, by
    /// default). `None` serves only the components loaded by hand.
    pub deployment_poll: Option<Duration>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            execution_cache: true,
            cache_capacity: 4096,
            cache_max_bytes: 2 << 30,
            orchestration_workers: 1024,
            activity_concurrency: 1024,
            orchestration_lock: Duration::from_secs(30),
            activity_lock: Duration::from_secs(300),
            max_message_attempts: 10,
            max_activity_attempts: 10,
            unserved_grace: None,
            max_poll_interval: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(5),
            limits: SandboxLimits::default(),
            retention: None,
            deployment_poll: Some(DEPLOYMENT_POLL),
        }
    }
}

/// State the dispatchers share.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn HistoryStore>,
    pub(crate) registry: Arc<RwLock<Registry>>,
    pub(crate) cache: ExecutionCache,
    pub(crate) options: RuntimeOptions,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The turn slots (`orchestration_workers`): taken by the orchestrator
    /// dispatcher's turns and by an activity that runs its instance's next
    /// turn itself.
    pub(crate) turn_slots: Arc<Semaphore>,
    /// How many of those the orchestrator dispatcher fills: fewer while
    /// turns lose their locks before they commit.
    pub(crate) turn_window: turn_window::TurnWindow,
    /// The activity slots (`activity_concurrency`): taken by the activity
    /// dispatcher's fetches and, ahead of its commit, by a turn for the
    /// activities it schedules and hands over at once.
    pub(crate) activity_slots: Arc<Semaphore>,
    /// Where a turn hands the activities it locked to the activity dispatcher.
    pub(crate) handed_over: mpsc::UnboundedSender<activity::Handed>,
    /// Warnings about work this runtime lacks the code for.
    pub(crate) unserved: unserved::Warnings,
    /// The store's clock: every stored time the runtime writes.
    pub(crate) clock: SharedClock,
    /// The activity calls running here, to tell them when their result is
    /// no longer wanted.
    pub(crate) calls: calls::RunningCalls,
    /// The component each parked execution runs on.
    pub(crate) parked_on: deployments::ParkedOn,
}

impl Shared {
    /// The store clock's time.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The load the fast paths are chosen by (see `fast_path`).
    pub(crate) fn load(&self) -> fast_path::Load {
        let slots = self.options.orchestration_workers.max(1);
        fast_path::Load {
            running_turns: slots.saturating_sub(self.turn_slots.available_permits()),
            stopping: *self.shutdown.borrow(),
        }
    }
}

/// Longest a run of short activities keeps its instance from the queue:
/// the time inline steps may take before they commit (see `inline`), and
/// how long an instance stays held while an activity its last turn handed
/// over runs (see `activity::finish`). Messages that come for the instance
/// meanwhile (events, cancellation, children's results) wait at most this
/// long; instances with timers or messages queued are neither held nor run
/// inline.
const HOLD_PATIENCE: Duration = Duration::from_secs(1);

/// The execution engine: runs the orchestrations and activities of loaded
/// components (and native activities) for every instance in its store.
pub struct DuroxideRuntime {
    store: Arc<dyn HistoryStore>,
    registry: Arc<RwLock<Registry>>,
    options: RuntimeOptions,
    running: Option<Running>,
}

struct Running {
    shutdown: watch::Sender<bool>,
    shared: Arc<Shared>,
    dispatchers: Vec<JoinHandle<()>>,
}

impl DuroxideRuntime {
    /// A runtime over `store` with default options.
    pub fn new(store: Arc<dyn HistoryStore>) -> Self {
        Self::with_options(store, RuntimeOptions::default())
    }

    /// A runtime over `store` with `options`.
    pub fn with_options(store: Arc<dyn HistoryStore>, options: RuntimeOptions) -> Self {
        Self {
            store,
            registry: Arc::default(),
            options,
            running: None,
        }
    }

    /// Load a component from a `.wasm` file and register everything its
    /// manifest names for the default tenant, under the default policy with
    /// this runtime's limits (its sizes of texts the store's). May be called
    /// while running (to deploy new versions).
    pub async fn load_component_file(
        &mut self,
        path: impl AsRef<Path>,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let bytes = read_component(path.as_ref()).await?;
        self.register(&Tenant::default(), &bytes, None).await
    }

    /// Load a component from a `.wasm` file and register everything its
    /// manifest names, to run under `policy`.
    pub async fn load_component_file_with_policy(
        &mut self,
        path: impl AsRef<Path>,
        policy: ComponentPolicy,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let bytes = read_component(path.as_ref()).await?;
        self.register(&Tenant::default(), &bytes, Some(policy))
            .await
    }

    /// Load a component from its bytes and register everything its manifest
    /// names, under the default policy with this runtime's limits.
    pub async fn load_component_bytes(
        &mut self,
        bytes: &[u8],
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        self.register(&Tenant::default(), bytes, None).await
    }

    /// Load a component from its bytes and register everything its manifest
    /// names, to run under `policy`. Its grants are checked first (and their
    /// directories canonicalised); its activities reach only what they
    /// grant, its orchestrations nothing.
    pub async fn load_component_bytes_with_policy(
        &mut self,
        bytes: &[u8],
        policy: ComponentPolicy,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        self.register(&Tenant::default(), bytes, Some(policy)).await
    }

    /// Load a component from a `.wasm` file and register everything its
    /// manifest names for `tenant`, under the default policy: only that
    /// tenant's instances resolve names to it.
    pub async fn load_component_file_for(
        &mut self,
        tenant: &Tenant,
        path: impl AsRef<Path>,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let bytes = read_component(path.as_ref()).await?;
        self.register(tenant, &bytes, None).await
    }

    /// Load a component from its bytes and register everything its manifest
    /// names for `tenant`, to run under `policy` (the default policy with
    /// this runtime's limits when `None`).
    pub async fn load_component_bytes_for(
        &mut self,
        tenant: &Tenant,
        bytes: &[u8],
        policy: Option<ComponentPolicy>,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        self.register(tenant, bytes, policy).await
    }

    /// Load `bytes` and register them for `tenant` under `policy`, or
    /// (`None`) the default policy with this runtime's limits.
    async fn register(
        &mut self,
        tenant: &Tenant,
        bytes: &[u8],
        policy: Option<ComponentPolicy>,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let policy = match policy {
            Some(mut policy) => {
                policy.grants = std::mem::take(&mut policy.grants).validated()?;
                Some(policy)
            }
            None => None,
        };
        let loaded = load_component(bytes).await?;
        let given = policy.is_some();
        let policy =
            policy.unwrap_or_else(|| ComponentPolicy::with_limits(self.options.limits.clone()));
        self.registry
            .write()
            .map_err(|_| RegistryError::Poisoned)?
            .add_component(
                tenant.name(),
                &Component::registered(loaded.clone(), policy, given),
            )?;
        Ok(loaded)
    }

    /// Register a native activity: trusted host code run for activity
    /// `name`, for the instances of every tenant (its context names the
    /// tenant of each call).
    pub fn register_activity<F, Fut>(&mut self, name: &str, f: F) -> Result<&mut Self, RuntimeError>
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        self.register_activity_with_context(name, move |_, input| f(input))
    }

    /// Register a native activity that takes the call's context: the
    /// instance, execution, name and attempt it serves, and whether its
    /// result is still wanted.
    pub fn register_activity_with_context<F, Fut>(
        &mut self,
        name: &str,
        f: F,
    ) -> Result<&mut Self, RuntimeError>
    where
        F: Fn(ActivityContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        let native: NativeActivity = Arc::new(move |ctx, input| Box::pin(f(ctx, input)));
        self.registry
            .write()
            .map_err(|_| RegistryError::Poisoned)?
            .add_native_activity(name, native)?;
        Ok(self)
    }

    /// Start the dispatchers. Must be called inside a tokio runtime.
    pub async fn start(&mut self) -> Result<(), RuntimeError> {
        if self.running.is_some() {
            return Err(RuntimeError::AlreadyRunning);
        }
        // The text limits are the store's, shared with every client: a
        // runtime configured with its own writes them (see `limits::settle`).
        let stored = self
            .store
            .text_limits()
            .await
            .map_err(RuntimeError::Store)?;
        let (text, write) = crate::limits::settle(stored, self.options.limits.text_limits());
        if write {
            (self.store.set_text_limits(text).await).map_err(RuntimeError::Store)?;
        }
        let mut options = self.options.clone();
        options.limits.max_payload_bytes = text.max_payload_bytes;
        options.limits.max_name_bytes = text.max_name_bytes;
        options.limits.max_instance_id_bytes = text.max_instance_id_bytes;
        options.limits.max_error_bytes = text.max_error_bytes;
        options.limits.max_log_line_bytes = text.max_log_line_bytes;
        let mut known = std::collections::HashSet::new();
        if self.options.deployment_poll.is_some() {
            self.registry
                .write()
                .map_err(|_| RegistryError::Poisoned)?
                .serves_deployments = true;
            deployments::sync(
                &*self.store,
                &self.registry,
                &mut known,
                &self.options.limits,
            )
            .await?;
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (handed_over, handed_over_rx) = mpsc::unbounded_channel();
        let capacity = if self.options.execution_cache {
            self.options.cache_capacity
        } else {
            0
        };
        let shared = Arc::new(Shared {
            store: self.store.clone(),
            registry: self.registry.clone(),
            cache: ExecutionCache::new(capacity, self.options.cache_max_bytes),
            options,
            shutdown: shutdown_rx,
            turn_slots: Arc::new(Semaphore::new(self.options.orchestration_workers.max(1))),
            turn_window: turn_window::TurnWindow::new(
                self.options.orchestration_workers,
                self.options.orchestration_lock,
            ),
            activity_slots: Arc::new(Semaphore::new(self.options.activity_concurrency.max(1))),
            handed_over,
            unserved: unserved::Warnings::default(),
            clock: self.store.clock(),
            calls: calls::RunningCalls::default(),
            parked_on: deployments::ParkedOn::default(),
        });
        let mut dispatchers = vec![
            tokio::spawn(orchestrator::run(shared.clone())),
            tokio::spawn(activity::run(shared.clone(), handed_over_rx)),
            tokio::spawn(sampler::run(shared.clone())),
        ];
        if let Some(every) = self.options.deployment_poll {
            dispatchers.push(tokio::spawn(deployments::run(shared.clone(), known, every)));
        }
        if let Some(retention) = self.options.retention {
            let sweep = crate::providers::retention::run(
                self.store.clone(),
                retention,
                shared.shutdown.clone(),
            );
            dispatchers.push(tokio::spawn(sweep));
        }
        self.running = Some(Running {
            shutdown,
            shared,
            dispatchers,
        });
        Ok(())
    }

    /// Stop gracefully: no new work is fetched, turns in progress finish and
    /// commit, running activities get the grace period and are then abandoned
    /// (their work returns to the queue). Nothing is half-committed.
    pub async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let _ = running.shutdown.send(true);
        for dispatcher in running.dispatchers {
            let _ = dispatcher.await;
        }
        running.shared.cache.clear();
    }

    /// Whether the dispatchers are running.
    pub fn is_running(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.dispatchers.iter().all(|d| !d.is_finished()))
    }

    /// How many executions are parked in the cache.
    pub fn cached_executions(&self) -> usize {
        self.running.as_ref().map_or(0, |r| r.shared.cache.len())
    }

    /// Bytes of guest memory the executions parked in the cache hold, as
    /// measured when each parked: what the cache's `cache_max_bytes` bounds.
    pub fn cached_execution_bytes(&self) -> usize {
        self.running.as_ref().map_or(0, |r| r.shared.cache.bytes())
    }
}

/// The bytes of the component file at `path`.
async fn read_component(path: &Path) -> Result<Vec<u8>, RuntimeError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| RuntimeError::Io {
            path: path.display().to_string(),
            source,
        })
}

impl Drop for DuroxideRuntime {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown.send(true);
            for dispatcher in running.dispatchers {
                dispatcher.abort();
            }
        }
    }
}

/// Shows an error with its causes, `error: cause: cause`, for logs: the
/// store's errors keep the database's error as their source.
pub(crate) struct Chain<'a>(pub(crate) &'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{DatabaseError, StoreError};

    #[test]
    fn a_chain_shows_each_cause_once() {
        let cause = std::io::Error::other("disk on fire");
        let error = StoreError::Database(DatabaseError::caused_by("committing", cause, true));
        assert_eq!(
            Chain(&error).to_string(),
            "database error: committing: disk on fire"
        );
    }
}
