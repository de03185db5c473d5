//! A runtime in its own OS process, for the cross-process tests.
//!
//! Usage: `duroxide-test-host <store-url> <lock-ms> <component.wasm>...`,
//! where the URL names any store [`duroxide::providers::open`] opens.
//! Prints `ready` once started; stops gracefully when stdin closes. Logs
//! warnings and errors to stderr. With `DUROXIDE_TURN_JOURNAL` naming a
//! file, journals every turn commit there (see
//! [`duroxide_tests::turn_journal`]).

use std::sync::Arc;
use std::time::Duration;

use duroxide::DuroxideRuntime;
use duroxide::providers::{self, HistoryStore};
use duroxide_tests::turn_journal::JournalingStore;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .init();
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("missing store url"))?;
    let lock_ms: u64 = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("missing lock ms"))?
        .parse()?;
    let mut store = providers::open(&url).await?;
    if let Some(path) = std::env::var_os("DUROXIDE_TURN_JOURNAL") {
        let journaling: Arc<dyn HistoryStore> =
            Arc::new(JournalingStore::new(store, path.as_ref())?);
        store = journaling;
    }
    let mut options = duroxide_tests::options(true);
    options.orchestration_lock = Duration::from_millis(lock_ms);
    options.activity_lock = Duration::from_millis(lock_ms);
    let mut runtime = DuroxideRuntime::with_options(store, options);
    for path in args {
        runtime.load_component_file(&path).await?;
    }
    runtime.start().await?;
    println!("ready");
    let mut sink = Vec::new();
    tokio::io::stdin().read_to_end(&mut sink).await?;
    runtime.stop().await;
    Ok(())
}
