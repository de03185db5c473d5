//! The workloads of guests in other languages: the Python and JavaScript
//! builds of the benchmark guest (tests/guests-py/bench-workloads,
//! tests/guests-js/bench-workloads) beside the Rust one. `cold_start` is
//! what a component costs before its first turn (compiling it, loading it
//! from the compile cache, instantiating it); `parked_memory` is what one
//! parked execution holds, measured as the process's resident memory and
//! as the execution cache counts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::runtime::measure_turn_cost;
use duroxide::{Client, DuroxideRuntime};
use duroxide_guest_build::{Language, build_guest};

/// A language's build of the benchmark guest.
pub struct Guest {
    /// `rust`, `py` or `js`.
    pub lang: &'static str,
    /// The component.
    pub wasm: PathBuf,
}

/// The Python and JavaScript builds, built with the pinned tools.
pub fn build(manifest_dir: &Path) -> anyhow::Result<Vec<Guest>> {
    let root = manifest_dir.join("..").join("tests");
    [
        ("py", Language::Python, "guests-py"),
        ("js", Language::JavaScript, "guests-js"),
    ]
    .into_iter()
    .map(|(lang, language, dir)| {
        let built = build_guest(
            manifest_dir,
            language,
            &root.join(dir).join("bench-workloads"),
        )
        .map_err(|e| anyhow::anyhow!("building the {lang} benchmark guest: {e}"))?;
        Ok(Guest {
            lang,
            wasm: built.path,
        })
    })
    .collect()
}

/// One line per language: the component's size, its compile from scratch
/// and its load from the compile cache (each in a fresh process), and an
/// instantiation with a one-turn replay and a cached turn, measured on one
/// thread with no store.
pub fn cold_start(guests: &[Guest]) -> anyhow::Result<()> {
    for guest in guests {
        let size = std::fs::metadata(&guest.wasm)?.len();
        let (compile_ms, cached_load_ms) = super::deploy::load_times(&guest.wasm)?;
        let wasm = guest.wasm.clone();
        let cost = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let bytes = std::fs::read(&wasm)?;
                let component = duroxide::sandbox::load_component(&bytes).await?;
                measure_turn_cost(&component, "Sequence", "1000000", 1, 3)
                    .await
                    .map_err(anyhow::Error::msg)?;
                measure_turn_cost(&component, "Sequence", "1000000", 1, 20)
                    .await
                    .map_err(anyhow::Error::msg)
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the measuring thread panicked"))??;
        println!(
            "workload=cold_start lang={} component_mb={:.1} compile_ms={compile_ms:.0} cached_load_ms={cached_load_ms:.0} instantiate_ms={:.1} cached_turn_us={}",
            guest.lang,
            size as f64 / (1024.0 * 1024.0),
            cost.cold_replay.as_secs_f64() * 1000.0,
            cost.cached.as_micros()
        );
    }
    Ok(())
}

/// The argument that makes this benchmark a parked-memory child.
pub const PARKED_CHILD_FLAG: &str = "__parked_memory";

/// Parks `n` executions of each language (cache on), each language in a
/// fresh process so no other guest's memory is in its figures, and prints
/// how many stayed parked, the resident memory they added per execution,
/// and what the execution cache counts each at, beside the cache's limit.
pub fn parked_memory(guests: &[Guest], n: usize) -> anyhow::Result<()> {
    for guest in guests {
        let output = std::process::Command::new(std::env::current_exe()?)
            .arg(PARKED_CHILD_FLAG)
            .arg(guest.lang)
            .arg(&guest.wasm)
            .arg(n.to_string())
            .output()?;
        if !output.status.success() {
            anyhow::bail!(
                "measuring {} failed: {}",
                guest.lang,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
    Ok(())
}

/// The child's side: `lang wasm n` from the arguments after the flag.
pub fn parked_memory_child(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let lang = args.next().context("the language")?;
    let wasm = PathBuf::from(args.next().context("the component")?);
    let n: usize = args.next().context("how many executions")?.parse()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(park(&lang, &wasm, n))
}

/// Parks `n` executions of `wasm` and prints what they added.
async fn park(lang: &str, wasm: &Path, n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("parked.db").display());
    let store = Arc::new(SqliteHistoryStore::new(&url).await?);
    let options = duroxide::RuntimeOptions::default();
    let cache_limit = options.cache_max_bytes;
    let mut runtime = DuroxideRuntime::with_options(store.clone(), options);
    runtime.load_component_file(wasm).await?;
    runtime.start().await?;
    let client = Client::new(store);
    // One execution first, so the component's code and the runtime's own
    // memory are in the baseline.
    client
        .start_orchestration("warm", "Parked", "null", None)
        .await?;
    wait_parked(&client, "warm").await?;
    let before = rss_bytes()?;
    // One at a time: what a parked execution holds, not what many first
    // turns running at once hold while they start.
    for i in 0..n {
        let id = format!("parked-{i}");
        client
            .start_orchestration(&id, "Parked", "null", None)
            .await?;
        wait_parked(&client, &id).await?;
    }
    let after = rss_bytes()?;
    let added = after.saturating_sub(before);
    // Every execution is still parked (none evicted and replayed), and the
    // cache counts each at what it measured.
    let parked = runtime.cached_executions();
    let measured = runtime.cached_execution_bytes();
    println!(
        "workload=parked_memory lang={lang} executions={n} parked={parked} rss_added_mb={:.1} per_execution_kb={} measured_per_execution_kb={} cache_limit_mb={}",
        added as f64 / (1024.0 * 1024.0),
        added / n.max(1) as u64 / 1024,
        measured / parked.max(1) / 1024,
        cache_limit / (1024 * 1024)
    );
    runtime.stop().await;
    Ok(())
}

/// Waits until `id` has subscribed to its event: it has parked.
async fn wait_parked(client: &Client, id: &str) -> anyhow::Result<()> {
    for _ in 0..60_000 {
        let history = client
            .get_execution_history(id, None)
            .await
            .unwrap_or_default();
        if history
            .iter()
            .any(|e| matches!(e, duroxide::history::Event::EventSubscribed { .. }))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    anyhow::bail!("{id} never parked")
}

/// The process's resident memory.
fn rss_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmRSS in /proc/self/status")?
        .parse()?;
    Ok(kb * 1024)
}
