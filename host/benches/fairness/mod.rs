//! `workload=fairness`: tenant A floods N `hello_seq5` instances (all
//! started at once) while tenant B starts one every 100 ms until A's are
//! done. Prints B's start-to-completion p50/p99 (a fair dispatcher keeps it
//! near a lone instance's, not behind A's backlog), A's throughput, and the
//! throughput of the same N instances of one tenant alone, measured first
//! in the same run on a fresh store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use duroxide::history::Event;
use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{Client, DuroxideRuntime, RuntimeOptions, Tenant};

/// How often tenant B starts an instance.
const B_EVERY: Duration = Duration::from_millis(100);

/// A runtime serving tenants `a` and `b` on a fresh durable SQLite file,
/// and a client for each.
struct TwoTenants {
    _dir: tempfile::TempDir,
    a: Client,
    b: Client,
    runtime: DuroxideRuntime,
}

impl TwoTenants {
    /// With `workers` orchestration turns side by side (the default when
    /// `None`).
    async fn start(wasm: &Path, workers: Option<usize>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite:{}", dir.path().join("bench.db").display());
        let store = Arc::new(SqliteHistoryStore::new(&url).await?);
        let mut options = RuntimeOptions::default();
        if let Some(workers) = workers {
            options.orchestration_workers = workers;
        }
        let mut runtime = DuroxideRuntime::with_options(store.clone(), options);
        for tenant in ["a", "b"] {
            runtime
                .load_component_file_for(&Tenant::new(tenant)?, wasm)
                .await?;
        }
        runtime.start().await?;
        Ok(Self {
            _dir: dir,
            a: Client::for_tenant(store.clone(), "a")?,
            b: Client::for_tenant(store, "b")?,
            runtime,
        })
    }
}

/// Starts a `Sequence` of 5 for each of `ids`, all at once.
async fn start_all(client: &Client, ids: &[String]) -> anyhow::Result<()> {
    super::start_all(client, ids, "Sequence", "5").await
}

/// Waits until every one of `ids` ended; returns each one's (created,
/// updated) times. Fails on an instance that did not complete.
async fn wait_all(client: &Client, ids: &[String]) -> anyhow::Result<Vec<(u64, u64)>> {
    let done = super::wait_all(client, ids).await?;
    if let Some((id, _)) = ids.iter().zip(&done).find(|(_, d)| !d.2) {
        bail!("{id} did not complete");
    }
    Ok(done
        .into_iter()
        .map(|(created, updated, _)| (created, updated))
        .collect())
}

/// Instances per second of `n` instances started at `started` whose last
/// one ended at the latest time in `done`.
fn throughput(n: usize, started: u64, done: &[(u64, u64)]) -> f64 {
    let end = done.iter().map(|d| d.1).max().unwrap_or(started);
    n as f64 / ((end.saturating_sub(started)).max(1) as f64 / 1000.0)
}

/// How long each of `ids` waited from its creation to its first turn, ms.
async fn start_waits(client: &Client, ids: &[String]) -> anyhow::Result<Vec<u64>> {
    let mut waits = Vec::with_capacity(ids.len());
    for id in ids {
        let created = client
            .get_instance_info(id)
            .await?
            .context("instance vanished")?
            .created_at_ms;
        let history = client.get_execution_history(id, Some(1)).await?;
        if let Some(Event::OrchestrationStarted { started_at_ms, .. }) = history.first() {
            waits.push(started_at_ms.saturating_sub(created));
        }
    }
    waits.sort_unstable();
    Ok(waits)
}

/// N instances of tenant `a` alone.
async fn alone(wasm: &Path, n: usize, workers: Option<usize>) -> anyhow::Result<f64> {
    let bench = TwoTenants::start(wasm, workers).await?;
    let ids: Vec<String> = (0..n).map(|i| format!("alone-{i}")).collect();
    let started = duroxide::clock::system_now_ms();
    start_all(&bench.a, &ids).await?;
    let done = wait_all(&bench.a, &ids).await?;
    let mut runtime = bench.runtime;
    runtime.stop().await;
    Ok(throughput(n, started, &done))
}

/// Runs the workload and prints its line.
pub async fn run(
    wasm: &Path,
    n: usize,
    workers: Option<usize>,
    percentile: fn(&[u64], f64) -> u64,
) -> anyhow::Result<()> {
    let alone = alone(wasm, n, workers).await?;

    let bench = TwoTenants::start(wasm, workers).await?;
    let a_ids: Vec<String> = (0..n).map(|i| format!("flood-{i}")).collect();
    let flooding = Arc::new(AtomicBool::new(true));
    // B starts one instance every 100 ms while A's flood lasts.
    let b_client = bench.b.clone();
    let b_flooding = flooding.clone();
    let b_starts = tokio::spawn(async move {
        let mut every = tokio::time::interval(B_EVERY);
        let mut ids = Vec::new();
        while b_flooding.load(Ordering::Relaxed) {
            every.tick().await;
            let id = format!("b-{}", ids.len());
            b_client
                .start_orchestration(&id, "Sequence", "5", None)
                .await?;
            ids.push(id);
        }
        anyhow::Ok(ids)
    });
    let started = duroxide::clock::system_now_ms();
    start_all(&bench.a, &a_ids).await?;
    let a_done = wait_all(&bench.a, &a_ids).await?;
    flooding.store(false, Ordering::Relaxed);
    let b_ids = b_starts.await??;
    let b_done = wait_all(&bench.b, &b_ids).await?;
    let b_waits = start_waits(&bench.b, &b_ids).await?;
    let mut runtime = bench.runtime;
    runtime.stop().await;

    let flood = throughput(n, started, &a_done);
    let mut latencies: Vec<u64> = b_done.iter().map(|d| d.1.saturating_sub(d.0)).collect();
    latencies.sort_unstable();
    println!(
        "workload=fairness a_instances={n} a_orch_per_s={flood:.0} alone_orch_per_s={alone:.0} \
         a_vs_alone={:.2} b_instances={} b_p50_ms={} b_p99_ms={} b_max_ms={} \
         b_start_wait_p50_ms={} b_start_wait_p99_ms={} workers={}",
        flood / alone.max(1.0),
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
        percentile(&b_waits, 0.5),
        percentile(&b_waits, 0.99),
        workers.map_or_else(|| "default".to_owned(), |w| w.to_string()),
    );
    Ok(())
}
