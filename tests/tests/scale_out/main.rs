//! Scale-out under SIGKILL: four runtime processes and a client process on
//! one PostgreSQL schema run 10,000 instances of every shape (sequences,
//! fan-out, timers, external events, children, continue-as-new) while
//! runtime processes are killed with SIGKILL and restarted, or paused
//! past their locks, at points a seeded generator picks. Afterwards every instance must have completed
//! with the output its program implies, every history must be well formed,
//! and the processes' journals of their commits must show that no two
//! turns of one instance ever ran at once.
//!
//! `DUROXIDE_SCALE_OUT_SEED` replays a seed (the test prints the one it
//! used); `DUROXIDE_SCALE_OUT_INSTANCES` changes the count. The server is
//! `DUROXIDE_TEST_PG`; without one the test says so on stderr and passes,
//! or fails with `DUROXIDE_REQUIRE_PG=1`.

mod exclusivity;
mod fleet;
mod histories;
mod workload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use duroxide::providers::HistoryStore;
use duroxide::{Client, OrchestrationStatus};
use fleet::{Fleet, Schema};
use workload::{Expected, Instance, Rng};

/// Runtime processes running at once.
const RUNTIMES: usize = 4;
/// Instance and activity locks: short, so a killed process's work comes
/// back quickly.
const LOCK_MS: u64 = 2_000;
/// How long the workload may take before the test gives up.
const TIMEOUT: Duration = Duration::from_secs(600);
/// How long no instance may finish before the test gives up.
const STALL: Duration = Duration::from_secs(90);
/// How many tasks read histories at once.
const READERS: usize = 8;
/// SIGKILLs a run must have dealt to mean anything.
const MIN_KILLS: usize = 3;

/// A random number (from the OS-seeded keys of std's `RandomState`).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

fn env_u64(name: &str) -> anyhow::Result<Option<u64>> {
    std::env::var(name)
        .ok()
        .map(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            }
            .map_err(|e| anyhow::anyhow!("{name}={v}: {e}"))
        })
        .transpose()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runtime_processes_on_postgres_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let Some(mut schema) = Schema::fresh().await? else {
        return Ok(());
    };
    let seed = match env_u64("DUROXIDE_SCALE_OUT_SEED")? {
        Some(seed) => seed,
        None => random(),
    };
    let count = env_u64("DUROXIDE_SCALE_OUT_INSTANCES")?.unwrap_or(10_000);
    eprintln!(
        "scale_out: seed {seed:#x} (DUROXIDE_SCALE_OUT_SEED={seed:#x} replays the workload \
         and the kill schedule), {count} instances"
    );
    let mut rng = Rng(seed | 1);
    let instances: Vec<Instance> = (0..usize::try_from(count)?)
        .map(|n| workload::instance(&mut rng, n))
        .collect();
    let store: Arc<dyn HistoryStore> = Arc::new(schema.open().await?);
    let mut fleet = Fleet::new(&schema.url)?;
    let result = run(&mut fleet, store, &instances, &mut rng, seed).await;
    if result.is_err() {
        // What the processes wrote, for the failure's story.
        fleet.dir.disable_cleanup(true);
        schema.keep = true;
        eprintln!(
            "scale_out: journals and logs kept in {}",
            fleet.dir.path().display()
        );
    }
    result
}

/// Runs `instances` on the fleet, killing and pausing runtime processes as
/// `rng` says, then checks the outcome.
async fn run(
    fleet: &mut Fleet,
    store: Arc<dyn HistoryStore>,
    instances: &[Instance],
    rng: &mut Rng,
    seed: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    for slot in 0..RUNTIMES {
        fleet.start(slot, LOCK_MS)?;
    }
    let workload_file = fleet.dir.path().join("workload.jsonl");
    std::fs::write(&workload_file, workload::client_file(instances))?;
    fleet.start_client(&workload_file)?;

    // Kill a runtime process now and then, until every instance finished.
    let client = Client::new(store.clone());
    let (mut finished, mut progressed) = (0, Instant::now());
    loop {
        let pause = Duration::from_millis(500 + rng.below(4_000));
        tokio::time::sleep(pause).await;
        let client_done = fleet.client_finished()?;
        let health = client.get_system_health().await?;
        if client_done && health.pending_instances + health.running_instances == 0 {
            break;
        }
        let now_finished = health.completed_instances + health.failed_instances;
        if now_finished != finished {
            (finished, progressed) = (now_finished, Instant::now());
        }
        if progressed.elapsed() >= STALL {
            anyhow::bail!(
                "seed {seed:#x}: no instance finished for {STALL:?}: {health:?}; {}",
                stuck(&client).await?
            );
        }
        anyhow::ensure!(
            started.elapsed() < TIMEOUT,
            "seed {seed:#x}: not finished after {TIMEOUT:?} ({} kills): {health:?}",
            fleet.kills
        );
        let victim = usize::try_from(rng.below(RUNTIMES as u64))?;
        // The first events are kills, so that a run which ends after a few
        // events still has the kills the check below asks for; then one in
        // four is a pause.
        if fleet.kills >= MIN_KILLS && rng.below(4) == 0 {
            let pause = Duration::from_millis(LOCK_MS + 500 + rng.below(1_000));
            fleet.freeze(victim, pause).await?;
        } else {
            let down = Duration::from_millis(rng.below(1_500));
            fleet.kill(victim)?;
            tokio::time::sleep(down).await;
            fleet.start(victim, LOCK_MS)?;
        }
    }
    let ran = started.elapsed();
    fleet.stop_all()?;

    let lengths = check_instances(&client, &store, instances, seed).await?;
    let records = exclusivity::read(&fleet.journals).map_err(anyhow::Error::msg)?;
    let summary = exclusivity::check(records, &lengths, &fleet.killed)
        .map_err(|e| anyhow::anyhow!("seed {seed:#x}: {e}"))?;
    eprintln!(
        "scale_out: seed {seed:#x}: {} instances ({} executions with children) in {ran:.1?} \
         with {} SIGKILLs and {} pauses; {} commits, {} refused, {} unacknowledged by a killed process",
        instances.len(),
        lengths.len(),
        fleet.kills,
        fleet.freezes,
        summary.committed,
        summary.refused,
        summary.unacknowledged
    );
    anyhow::ensure!(fleet.kills >= MIN_KILLS, "too few kills to mean anything");
    Ok(())
}

/// The instances still running, each with the end of its history.
async fn stuck(client: &Client) -> anyhow::Result<String> {
    let mut text = String::new();
    for summary in client.find_running_instances().await?.iter().take(10) {
        let id = &summary.instance_id;
        let history = client.get_execution_history(id, None).await?;
        let tail = &history[history.len().saturating_sub(6)..];
        let details = client.get_instance_details(id).await?;
        text.push_str(&format!("\n{id}: ...{tail:?}\n  {details:?}"));
    }
    Ok(text)
}

/// Checks every instance and child: completed with its expected output and
/// well-formed histories. Returns every execution's history length.
async fn check_instances(
    client: &Client,
    store: &Arc<dyn HistoryStore>,
    instances: &[Instance],
    seed: u64,
) -> anyhow::Result<HashMap<(String, u64), u64>> {
    let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
    for (chunk, expected) in ids.chunks(1_000).zip(instances.chunks(1_000)) {
        for ((id, status), instance) in client.get_bulk_status(chunk).await?.iter().zip(expected) {
            match status {
                OrchestrationStatus::Completed { output } if *output == instance.output => {}
                other => anyhow::bail!(
                    "seed {seed:#x}: {id} ({}, program {}) is {other:?}, expected output {:?}",
                    workload::SHAPES[instance.shape],
                    instance.program,
                    instance.output
                ),
            }
        }
    }
    // The histories, read by a few tasks at once.
    let work: Vec<(String, Vec<Expected>)> = instances
        .iter()
        .map(|i| (i.id.clone(), i.executions.clone()))
        .collect();
    let work = Arc::new(work);
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..READERS {
        let (work, store) = (work.clone(), store.clone());
        readers.spawn(async move {
            let mut lengths = HashMap::new();
            for (id, executions) in work.iter().skip(reader).step_by(READERS) {
                check_histories(store.as_ref(), id, executions, None, &mut lengths).await?;
            }
            anyhow::Ok(lengths)
        });
    }
    let mut lengths = HashMap::new();
    while let Some(part) = readers.join_next().await {
        lengths.extend(part?.map_err(|e| anyhow::anyhow!("seed {seed:#x}: {e}"))?);
    }
    Ok(lengths)
}

/// Checks the histories of `id`'s executions against `executions`, then
/// those of its children; `output` is the child's expected output.
async fn check_histories(
    store: &dyn HistoryStore,
    id: &str,
    executions: &[Expected],
    output: Option<&str>,
    lengths: &mut HashMap<(String, u64), u64>,
) -> anyhow::Result<()> {
    let record = store
        .instance(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{id} is missing"))?;
    anyhow::ensure!(
        usize::try_from(record.execution_id)? == executions.len(),
        "{id} ran {} executions, its program asks for {}",
        record.execution_id,
        executions.len()
    );
    if let Some(output) = output {
        anyhow::ensure!(
            record.output.as_deref() == Some(output),
            "child {id} output {:?}, expected {output:?}",
            record.output
        );
    }
    let mut children = Vec::new();
    for (n, expected) in executions.iter().enumerate() {
        let execution = u64::try_from(n)? + 1;
        let history = store.read_history(id, execution).await?;
        let last = n + 1 == executions.len();
        let checked = histories::check(&history, expected, last)
            .map_err(|e| anyhow::anyhow!("{id} execution {execution}: {e}: {history:?}"))?;
        let len = u64::try_from(history.len())?;
        if last {
            anyhow::ensure!(
                record.history_len == len,
                "{id}: the instance row says {} events, the history holds {len}",
                record.history_len
            );
        }
        lengths.insert((id.to_owned(), execution), len);
        children.extend(checked.children.into_iter().zip(expected.children.iter()));
    }
    for (child, steps) in children {
        let (output, expected) = workload::child_expectation(steps);
        Box::pin(check_histories(
            store,
            &child,
            &[expected],
            Some(&output),
            lengths,
        ))
        .await?;
    }
    Ok(())
}
