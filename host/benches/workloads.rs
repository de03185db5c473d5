//! The workload benchmark: `cargo bench -p duroxide --bench workloads [-- <workload>...
//! [--instances N] [--fan-out N] [--workers N] [--component FILE] [--processes 1,2,4]
//! [--pool N]]`.
//! Runs each workload on a fresh SQLite file with durable commits and a
//! release build of the benchmark guest, and prints one
//! `workload=<name> key=value ...` line per workload. The `_pg` workloads
//! (`--features postgres`) run on PostgreSQL with runtimes in `--processes`
//! separate processes (see `scale_out`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use duroxide::history::Event;
use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::runtime::{measure_activity_cost, measure_turn_cost};
use duroxide::{Client, DuroxideRuntime, LoadedComponent, OrchestrationStatus};

/// The host's allocations (events, messages, sandbox bookkeeping) are many
/// and small; mimalloc serves them at a fraction of the system allocator's
/// cost, as it would in a production host.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// turn_cost first: it measures microseconds and wants a quiet machine.
const WORKLOADS: [&str; 15] = [
    "turn_cost",
    "hello_seq5",
    "fan_out_1000",
    "fan_out_scaling",
    "long_history",
    "timers",
    "management",
    "deploy",
    "fairness",
    scale_out::WORKLOADS[0],
    scale_out::WORKLOADS[1],
    "hello_seq5_py",
    "hello_seq5_js",
    "cold_start",
    "parked_memory",
];

struct Args {
    workloads: Vec<String>,
    /// More components for the deploy workload (`--component FILE`).
    components: Vec<std::path::PathBuf>,
    instances: Option<usize>,
    fan_out: usize,
    /// Orchestration turns side by side in the fairness workload
    /// (`--workers N`; the runtime's default when absent).
    workers: Option<usize>,
    /// Runtime processes of the `_pg` workloads, one line per count
    /// (`--processes 1,2,4`, the default).
    processes: Vec<usize>,
    /// Connections of each process's pool in the `_pg` workloads (`--pool N`).
    pool: Option<u32>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        workloads: Vec::new(),
        components: Vec::new(),
        instances: None,
        fan_out: 1000,
        workers: None,
        processes: vec![1, 2, 4],
        pool: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bench" => {}
            "--instances" => args.instances = Some(it.next().context("--instances N")?.parse()?),
            "--fan-out" => args.fan_out = it.next().context("--fan-out N")?.parse()?,
            "--workers" => args.workers = Some(it.next().context("--workers N")?.parse()?),
            "--processes" => {
                args.processes = it
                    .next()
                    .context("--processes N,N,...")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--pool" => args.pool = Some(it.next().context("--pool N")?.parse()?),
            "--component" => args
                .components
                .push(it.next().context("--component FILE")?.into()),
            w if WORKLOADS.contains(&w) => args.workloads.push(w.to_string()),
            other => bail!("unknown argument {other}; workloads are {WORKLOADS:?}"),
        }
    }
    if args.workloads.is_empty() {
        args.workloads = WORKLOADS.iter().map(|w| w.to_string()).collect();
    }
    Ok(args)
}

/// A runtime and client on a fresh durable SQLite file.
struct Bench {
    _dir: tempfile::TempDir,
    client: Client,
    runtime: DuroxideRuntime,
}

impl Bench {
    async fn start(wasm: &Path) -> anyhow::Result<(Self, Arc<LoadedComponent>)> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite:{}", dir.path().join("bench.db").display());
        let store = Arc::new(SqliteHistoryStore::new(&url).await?);
        let mut runtime = DuroxideRuntime::new(store.clone());
        let component = runtime.load_component_file(wasm).await?;
        runtime.start().await?;
        let client = Client::new(store);
        Ok((
            Bench {
                _dir: dir,
                client,
                runtime,
            },
            component,
        ))
    }

    /// Starts one `name` instance per id, all at once.
    async fn start_all(&self, ids: &[String], name: &str, input: &str) -> anyhow::Result<()> {
        start_all(&self.client, ids, name, input).await
    }

    /// Waits until every instance in `ids` ended (see [`wait_all`]).
    async fn wait_all(&self, ids: &[String]) -> anyhow::Result<Vec<(u64, u64, bool)>> {
        wait_all(&self.client, ids).await
    }
}

/// Starts one `name` instance per id through `client`, all at once (the
/// store commits concurrent starts together, as it would for many clients).
async fn start_all(client: &Client, ids: &[String], name: &str, input: &str) -> anyhow::Result<()> {
    let mut starts = tokio::task::JoinSet::new();
    for id in ids {
        let (client, id, name, input) = (
            client.clone(),
            id.clone(),
            name.to_owned(),
            input.to_owned(),
        );
        starts.spawn(async move { client.start_orchestration(&id, &name, &input, None).await });
    }
    while let Some(started) = starts.join_next().await {
        started??;
    }
    Ok(())
}

/// Waits until every instance in `ids` ended; returns (created, updated,
/// completed) of each. Polls one unfinished instance at a time, so the
/// waiting costs the runtime little.
async fn wait_all(client: &Client, ids: &[String]) -> anyhow::Result<Vec<(u64, u64, bool)>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut done = Vec::with_capacity(ids.len());
    for id in ids {
        loop {
            let info = client
                .get_instance_info(id)
                .await?
                .context("instance vanished")?;
            if info.status.is_terminal() {
                let ok = matches!(info.status, OrchestrationStatus::Completed { .. });
                done.push((info.created_at_ms, info.updated_at_ms, ok));
                break;
            }
            if Instant::now() > deadline {
                bail!("{id} did not finish");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    Ok(done)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// What a run of many instances measured.
struct Throughput {
    completed: usize,
    orch_per_s: f64,
    p50_ms: u64,
    p99_ms: u64,
}

impl Throughput {
    /// The figures of instances started at `started` (ms) that ended as
    /// `done` says (see [`wait_all`]).
    fn of(started: u64, done: &[(u64, u64, bool)]) -> Self {
        let completed = done.iter().filter(|d| d.2).count();
        let end = done.iter().map(|d| d.1).max().unwrap_or(started);
        let mut latencies: Vec<u64> = done.iter().map(|d| d.1.saturating_sub(d.0)).collect();
        latencies.sort_unstable();
        let secs = (end.saturating_sub(started)).max(1) as f64 / 1000.0;
        Self {
            completed,
            orch_per_s: done.len() as f64 / secs,
            p50_ms: percentile(&latencies, 0.5),
            p99_ms: percentile(&latencies, 0.99),
        }
    }
}

/// `instances` sequences of 5 activities on one runtime and SQLite file.
async fn measure_hello_seq5(wasm: &Path, instances: usize) -> anyhow::Result<Throughput> {
    let (bench, _) = Bench::start(wasm).await?;
    let ids: Vec<String> = (0..instances).map(|i| format!("seq5-{i}")).collect();
    let started = duroxide::clock::system_now_ms();
    bench.start_all(&ids, "Sequence", "5").await?;
    let done = bench.wait_all(&ids).await?;
    let mut runtime = bench.runtime;
    runtime.stop().await;
    Ok(Throughput::of(started, &done))
}

/// `instances` orchestrations of five sequential activities each, all
/// started at once; `label` names the line (the language's run).
async fn hello_seq5(wasm: &Path, instances: usize, label: &str) -> anyhow::Result<()> {
    let t = measure_hello_seq5(wasm, instances).await?;
    println!(
        "workload={label} instances={instances} completed={} orch_per_s={:.0} p50_ms={} p99_ms={}",
        t.completed, t.orch_per_s, t.p50_ms, t.p99_ms
    );
    Ok(())
}

async fn run_one(wasm: &Path, name: &str, input: &str) -> anyhow::Result<u64> {
    let (bench, _) = Bench::start(wasm).await?;
    let id = format!("{name}-{input}");
    bench
        .client
        .start_orchestration(&id, name, input, None)
        .await?;
    let done = bench.wait_all(std::slice::from_ref(&id)).await?;
    let (created, updated, ok) = done[0];
    if !ok {
        bail!(
            "{id} did not complete: {:?}",
            bench.client.get_orchestration_status(&id).await?
        );
    }
    let mut runtime = bench.runtime;
    runtime.stop().await;
    Ok(updated.saturating_sub(created))
}

async fn fan_out(wasm: &Path, n: usize) -> anyhow::Result<()> {
    let ms = run_one(wasm, "FanOut", &n.to_string()).await?;
    println!("workload=fan_out_{n} activities={n} total_ms={ms}");
    Ok(())
}

/// A join of 1,000 and of 10,000 activities: the ratio shows whether the
/// cost grows linearly (10) or faster. The short run goes before and after
/// the long one, for the machine's drift.
async fn fan_out_scaling(wasm: &Path) -> anyhow::Result<()> {
    let before = run_one(wasm, "FanOut", "1000").await?;
    let ms_10000 = run_one(wasm, "FanOut", "10000").await?;
    let after = run_one(wasm, "FanOut", "1000").await?;
    let ms_1000 = (before + after) as f64 / 2.0;
    println!(
        "workload=fan_out_scaling ms_1000={ms_1000:.0} ms_10000={ms_10000} ratio={:.2}",
        ms_10000 as f64 / ms_1000.max(1.0)
    );
    Ok(())
}

/// Three 1,000-step runs go before the 10,000-step one and three after,
/// and `ms_1000` is their mean: the machine's speed drifts over the seconds
/// the runs take, and a 1,000-step run is short enough that one slow moment
/// shows, so a drift or a hiccup would otherwise read as growth (or hide it).
async fn long_history(wasm: &Path) -> anyhow::Result<()> {
    const SHORT_RUNS: u64 = 3;
    let mut before = 0;
    for _ in 0..SHORT_RUNS {
        before += run_one(wasm, "Sequence", "1000").await?;
    }
    let ms_10000 = run_one(wasm, "Sequence", "10000").await?;
    let mut after = 0;
    for _ in 0..SHORT_RUNS {
        after += run_one(wasm, "Sequence", "1000").await?;
    }
    let ms_1000 = (before + after) as f64 / (2 * SHORT_RUNS) as f64;
    println!(
        "workload=long_history ms_1000={ms_1000:.0} ms_10000={ms_10000} ratio={:.2} \
         ms_1000_before={} ms_1000_after={}",
        ms_10000 as f64 / ms_1000.max(1.0),
        before / SHORT_RUNS,
        after / SHORT_RUNS
    );
    Ok(())
}

async fn turn_cost(wasm: &Path) -> anyhow::Result<()> {
    let (bench, component) = Bench::start(wasm).await?;
    drop(bench);
    // Measured on a runtime of its own with one thread, so the figures are the
    // host's work for a turn, not the time a sleeping worker thread of a
    // multi-threaded runtime takes to wake up for the parked execution.
    let measure = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            // Warm up, then measure: 33 turns make a history of about 100 events.
            measure_turn_cost(&component, "Sequence", "1000000", 33, 5)
                .await
                .map_err(anyhow::Error::msg)?;
            let turn = measure_turn_cost(&component, "Sequence", "1000000", 33, 200)
                .await
                .map_err(anyhow::Error::msg)?;
            measure_activity_cost(&component, "Noop", "1", 50)
                .await
                .map_err(anyhow::Error::msg)?;
            let activity = measure_activity_cost(&component, "Noop", "1", 2000)
                .await
                .map_err(anyhow::Error::msg)?;
            anyhow::Ok((turn, activity))
        })
    });
    let (cost, activity) = measure
        .join()
        .map_err(|_| anyhow::anyhow!("the measuring thread panicked"))??;
    println!(
        "workload=turn_cost cached_us={} cold_replay_us={} history_events={} activity_us={}",
        cost.cached.as_micros(),
        cost.cold_replay.as_micros(),
        cost.history_events,
        activity.as_micros()
    );
    Ok(())
}

async fn timers(wasm: &Path, instances: usize) -> anyhow::Result<()> {
    let (bench, _) = Bench::start(wasm).await?;
    let fire_at = duroxide::clock::system_now_ms() + 2_000 + 3 * instances as u64;
    let ids: Vec<String> = (0..instances).map(|i| format!("timers-{i}")).collect();
    bench
        .start_all(&ids, "TimersAt", &fire_at.to_string())
        .await?;
    bench.wait_all(&ids).await?;
    let mut lateness = Vec::new();
    for id in &ids {
        let history = bench.client.get_execution_history(id, None).await?;
        let mut due: HashMap<u64, u64> = HashMap::new();
        let mut turn_at = 0;
        for event in &history {
            match event {
                Event::TimerCreated { id, fire_at_ms } => {
                    due.insert(*id, *fire_at_ms);
                }
                Event::TurnStarted { at_ms } => turn_at = *at_ms,
                Event::TimerFired { id } => {
                    lateness.push(turn_at.saturating_sub(due.get(id).copied().unwrap_or(turn_at)));
                }
                _ => {}
            }
        }
    }
    lateness.sort_unstable();
    println!(
        "workload=timers timers={} p50_late_ms={} p99_late_ms={} max_late_ms={}",
        lateness.len(),
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or(0)
    );
    Ok(())
}

#[path = "management/mod.rs"]
mod management;

#[path = "deploy/mod.rs"]
mod deploy;

#[path = "fairness/mod.rs"]
mod fairness;

#[path = "scale_out/mod.rs"]
mod scale_out;

#[path = "languages/mod.rs"]
mod languages;

fn main() -> anyhow::Result<()> {
    let mut raw = std::env::args().skip(1);
    match raw.next().as_deref() {
        Some(deploy::CHILD_FLAG) => {
            let file = raw.next().context("the component to load")?;
            return deploy::child(Path::new(&file));
        }
        Some(languages::PARKED_CHILD_FLAG) => return languages::parked_memory_child(raw),
        #[cfg(feature = "postgres")]
        Some(scale_out::WORKER_FLAG) => return scale_out::worker::run(raw),
        _ => {}
    }
    let args = parse_args()?;
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = duroxide_guest_build::build_in(manifest_dir, &["bench-workloads"])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let wasm = built[0].path.clone();
    if args.workloads.iter().any(|w| w == "deploy") {
        let mut files = vec![wasm.clone()];
        files.extend(args.components.iter().cloned());
        deploy::run(&files)?;
    }
    let other_languages = [
        "hello_seq5_py",
        "hello_seq5_js",
        "cold_start",
        "parked_memory",
    ];
    let guests = if args
        .workloads
        .iter()
        .any(|w| other_languages.contains(&w.as_str()))
    {
        let mut guests = vec![languages::Guest {
            lang: "rust",
            wasm: wasm.clone(),
        }];
        guests.extend(languages::build(manifest_dir)?);
        guests
    } else {
        Vec::new()
    };
    let guest = |lang: &str| {
        guests
            .iter()
            .find(|g| g.lang == lang)
            .map(|g| g.wasm.clone())
            .context("the guest was not built")
    };
    if args.workloads.iter().any(|w| w == "cold_start") {
        languages::cold_start(&guests)?;
    }
    if args.workloads.iter().any(|w| w == "parked_memory") {
        languages::parked_memory(&guests, 200)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for workload in &args.workloads {
            match workload.as_str() {
                "hello_seq5" => {
                    hello_seq5(&wasm, args.instances.unwrap_or(1000), "hello_seq5").await?
                }
                "hello_seq5_py" => {
                    let n = args.instances.unwrap_or(1000);
                    hello_seq5(&guest("py")?, n, "hello_seq5_py").await?
                }
                "hello_seq5_js" => {
                    let n = args.instances.unwrap_or(1000);
                    hello_seq5(&guest("js")?, n, "hello_seq5_js").await?
                }
                "fan_out_1000" => fan_out(&wasm, args.fan_out).await?,
                "fan_out_scaling" => fan_out_scaling(&wasm).await?,
                "long_history" => long_history(&wasm).await?,
                "turn_cost" => turn_cost(&wasm).await?,
                "timers" => timers(&wasm, args.instances.unwrap_or(1000)).await?,
                "management" => management::run(args.instances.unwrap_or(100_000)).await?,
                "fairness" => {
                    let n = args.instances.unwrap_or(10_000);
                    fairness::run(&wasm, n, args.workers, percentile).await?
                }
                w if scale_out::WORKLOADS.contains(&w) => {
                    let plan = scale_out::Plan {
                        processes: args.processes.clone(),
                        instances: args.instances.unwrap_or(1000),
                        fan_out: args.fan_out,
                        pool: args.pool,
                    };
                    scale_out::run(&wasm, w, &plan).await?
                }
                _ => {}
            }
        }
        anyhow::Ok(())
    })
}
