//! The `deploy` workload: what loading a deployed component costs a
//! runtime, compiled from scratch and loaded again from the on-disk compile
//! cache. Each load runs in a fresh process (this benchmark run again with
//! `__deploy_load <file>`), since a process loads a component once; both
//! processes share a compile cache directory that starts empty.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The argument that makes this benchmark a loader child.
pub const CHILD_FLAG: &str = "__deploy_load";

/// Measures each component in `files`: one line per component.
pub fn run(files: &[std::path::PathBuf]) -> anyhow::Result<()> {
    for file in files {
        let size = std::fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        let (compile_ms, cached_load_ms) = load_times(file)?;
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "workload=deploy component={name} component_mb={:.2} compile_ms={compile_ms:.0} cached_load_ms={cached_load_ms:.0}",
            size as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}

/// Milliseconds to load `file` in a fresh process compiling it from
/// scratch, then in another finding it in the compile cache the first one
/// filled.
pub fn load_times(file: &Path) -> anyhow::Result<(f64, f64)> {
    let cache = tempfile::TempDir::new()?;
    let compile_ms = load_in_child(file, cache.path())?;
    let cached_load_ms = load_in_child(file, cache.path())?;
    Ok((compile_ms, cached_load_ms))
}

/// Loads `file` in a fresh process with compile cache `cache`; returns the
/// milliseconds the load took there.
fn load_in_child(file: &Path, cache: &Path) -> anyhow::Result<f64> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(file)
        .env("DUROXIDE_CACHE_DIR", cache)
        .output()?;
    if !output.status.success() {
        bail!(
            "loading {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("the loader printed {text:?}"))
}

/// The child's side: load the component once, as a runtime serving the
/// deployment would (`inspect_component` compiles it for both engines and
/// reads its manifest), and print the milliseconds.
pub fn child(file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    runtime
        .block_on(duroxide::runtime::inspect_component(&bytes))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", started.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}
