//! Shared helpers of the integration tests: guest component paths, a harness
//! that runs a real runtime and client on a fresh store (a SQLite file or a
//! PostgreSQL schema), and condition waits.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duroxide::history::Event;
use duroxide::providers::HistoryStore;
use duroxide::{Client, DuroxideRuntime, OrchestrationStatus, RuntimeOptions};

pub mod http_server;
pub mod postgres;
pub mod stores;

pub use stores::{StoreKind, TestDb, current_store, on_store};

/// Paths of the guest components the build script compiled.
pub mod guests {
    /// HelloWorld and SayHello.
    pub const HELLO_WORLD: &str = env!("GUEST_HELLO_WORLD");
    /// ProcessOrder and its activities.
    pub const ORDER_PROCESSING: &str = env!("GUEST_ORDER_PROCESSING");
    /// One orchestration per runtime feature.
    pub const SCENARIOS: &str = env!("GUEST_SCENARIOS");
    /// Evolving, first build.
    pub const EVOLVING_V1: &str = env!("GUEST_EVOLVING_V1");
    /// Evolving, changed build with the same name and version.
    pub const EVOLVING_V2: &str = env!("GUEST_EVOLVING_V2");
    /// Children, detached starts, continue-as-new, versions 1.0.0.
    pub const MODEL: &str = env!("GUEST_MODEL");
    /// Version 2.0.0 of the model's versioned orchestrations.
    pub const MODEL_V2: &str = env!("GUEST_MODEL_V2");
    /// An interpreter of generated orchestration programs.
    pub const PROGRAMS: &str = env!("GUEST_PROGRAMS");
    /// An orchestration that imports sockets.
    pub const FORBIDDEN_IMPORT: &str = env!("GUEST_FORBIDDEN_IMPORT");
    /// Races, joins and durable retries built from the SDK's combinators.
    pub const PATTERNS: &str = env!("GUEST_PATTERNS");
    /// Guests that exceed limits, misuse the raw contract or exit abruptly.
    pub const MISBEHAVING: &str = env!("GUEST_MISBEHAVING");
    /// Orchestrations, activities, events, children and continue-as-new on
    /// serde values.
    pub const TYPED_PAYLOADS: &str = env!("GUEST_TYPED_PAYLOADS");
    /// Upgrade, first build.
    pub const UPGRADE_V1: &str = env!("GUEST_UPGRADE_V1");
    /// Upgrade, second build: replays the first's histories but those of
    /// input "extra", and finishes with "v2:".
    pub const UPGRADE_V2: &str = env!("GUEST_UPGRADE_V2");
    /// Activities that reach for files, environment variables, sockets and
    /// HTTP hosts, and activities that never end (busy or blocked).
    pub const CAPABILITIES: &str = env!("GUEST_CAPABILITIES");
    /// Races and calls of activities by name, an orchestration that looks
    /// for files and variables itself, and Echo and ReadFileHere.
    pub const GRANT_ORCHESTRATIONS: &str = env!("GUEST_GRANT_ORCHESTRATIONS");
    /// Built against the 0.2.0 contract with bindings of its own: `Hello`
    /// calls `Greet`.
    pub const CONTRACT_0_2_0: &str = env!("GUEST_CONTRACT_0_2_0");
}

/// How long a test waits for an instance before it fails.
pub const WAIT_MS: u64 = 30_000;

/// Runtime options for tests: the cache on or off, short locks so crashed
/// work comes back quickly, and a short turn budget for runaway guests.
pub fn options(cache: bool) -> RuntimeOptions {
    let mut options = RuntimeOptions {
        execution_cache: cache,
        orchestration_lock: Duration::from_secs(5),
        activity_lock: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(2),
        ..RuntimeOptions::default()
    };
    options.limits.orchestration_turn_budget = Duration::from_secs(2);
    options.limits.max_memory_bytes = 64 << 20;
    options.limits.max_payload_bytes = 64 * 1024;
    options
}

/// A runtime and a client on a fresh database of the running scenario's
/// store (see [`current_store`]).
pub struct Harness {
    /// A runtime on the store, loaded with the scenario guests, started.
    /// Declared first: dropped before the database goes.
    pub runtime: DuroxideRuntime,
    /// A client on the store.
    pub client: Client,
    /// The shared store.
    pub store: Arc<dyn HistoryStore>,
    /// The store's URL: `duroxide::providers::open` opens another store
    /// object on it, as another process would.
    pub url: String,
    /// The database, and a temporary directory of the test's own.
    pub db: TestDb,
}

impl Harness {
    /// A started runtime with `components` loaded, on the running
    /// scenario's store.
    pub async fn start(cache: bool, components: &[&str]) -> anyhow::Result<Self> {
        let db = TestDb::current()?;
        let store = db.open(None).await?;
        let mut runtime = DuroxideRuntime::with_options(store.clone(), options(cache));
        for path in components {
            runtime.load_component_file(path).await?;
        }
        runtime.start().await?;
        // Held to the runtime's 64 KiB payload limit, which the store shares.
        let client = Client::new(store.clone());
        Ok(Self {
            runtime,
            client,
            store,
            url: db.url.clone(),
            db,
        })
    }

    /// Stop the runtime and start a new one on the same file with `options`
    /// and `components`: what a restart or a redeploy does.
    pub async fn restart(
        &mut self,
        options: RuntimeOptions,
        components: &[&str],
    ) -> anyhow::Result<()> {
        self.runtime.stop().await;
        let mut runtime = DuroxideRuntime::with_options(self.store.clone(), options);
        for path in components {
            runtime.load_component_file(path).await?;
        }
        runtime.start().await?;
        self.runtime = runtime;
        Ok(())
    }

    /// Start `name` as `instance` and wait for it to finish.
    pub async fn run(
        &self,
        instance: &str,
        name: &str,
        input: &str,
    ) -> anyhow::Result<OrchestrationStatus> {
        self.client
            .start_orchestration(instance, name, input, None)
            .await?;
        Ok(self
            .client
            .wait_for_completion(instance, Some(WAIT_MS))
            .await?)
    }

    /// The current execution's history.
    pub async fn history(&self, instance: &str) -> anyhow::Result<Vec<Event>> {
        Ok(self.client.get_execution_history(instance, None).await?)
    }

    /// A temporary directory of the test's own.
    pub fn dir(&self) -> &Path {
        self.db.dir()
    }
}

/// The output of a Completed status, or a test failure naming the status.
pub fn completed(status: OrchestrationStatus) -> anyhow::Result<String> {
    match status {
        OrchestrationStatus::Completed { output } => Ok(output),
        other => anyhow::bail!("expected Completed, got {other:?}"),
    }
}

/// The error of a Failed status, or a test failure naming the status.
pub fn failed(status: OrchestrationStatus) -> anyhow::Result<String> {
    match status {
        OrchestrationStatus::Failed { error } => Ok(error),
        other => anyhow::bail!("expected Failed, got {other:?}"),
    }
}

/// How many events of `history` `pred` selects.
pub fn count(history: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    history.iter().filter(|e| pred(e)).count()
}

/// The delay of each timer `history` created, in ms: its fire time less
/// the time of the turn that created it.
pub fn timer_delays(history: &[Event]) -> Vec<u64> {
    let mut now = 0;
    let mut delays = Vec::new();
    for event in history {
        match event {
            Event::OrchestrationStarted { started_at_ms, .. } => now = *started_at_ms,
            Event::TurnStarted { at_ms } => now = *at_ms,
            Event::TimerCreated { fire_at_ms, .. } => delays.push(fire_at_ms.saturating_sub(now)),
            _ => {}
        }
    }
    delays
}

/// Poll `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait until `instance`'s history satisfies `pred`.
pub async fn history_reaches(
    client: &Client,
    instance: &str,
    pred: impl Fn(&[Event]) -> bool,
) -> anyhow::Result<Vec<Event>> {
    eventually(Duration::from_millis(WAIT_MS), || async {
        let history = match client.get_execution_history(instance, None).await {
            Ok(h) => h,
            Err(duroxide::ClientError::InstanceNotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(pred(&history).then_some(history))
    })
    .await
}

/// Declare a scenario test that runs four times: on SQLite and on
/// PostgreSQL (`NAME::sqlite::cached`, `NAME::postgres::uncached`...), each
/// with the execution cache on and off. The body, `|cache| async move {..}`,
/// runs with [`current_store`] set, so [`Harness::start`] and
/// [`TestDb::current`] open the run's store.
#[macro_export]
macro_rules! scenario {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports, reason = "not every scenario uses every import")]
            use super::*;

            $crate::scenario!(@store sqlite, Sqlite, $body);
            $crate::scenario!(@store postgres, Postgres, $body);
        }
    };
    (@store $module:ident, $kind:ident, $body:expr) => {
        mod $module {
            #[allow(unused_imports, reason = "not every scenario uses every import")]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cached() -> anyhow::Result<()> {
                $crate::on_store($crate::StoreKind::$kind, ($body)(true)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn uncached() -> anyhow::Result<()> {
                $crate::on_store($crate::StoreKind::$kind, ($body)(false)).await
            }
        }
    };
}

/// Declare a test that runs once on each store (`NAME::sqlite`,
/// `NAME::postgres`): the body, `async move {..}`, runs with
/// [`current_store`] set.
#[macro_export]
macro_rules! each_store {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports, reason = "not every test uses every import")]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                $crate::on_store($crate::StoreKind::Sqlite, $body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                $crate::on_store($crate::StoreKind::Postgres, $body).await
            }
        }
    };
}

/// Collects everything a tracing subscriber writes, for tests that read
/// the log.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// How often `needle` was written.
    pub fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }
}

pub mod turn_journal;
