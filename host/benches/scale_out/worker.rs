//! A runtime process of the fleet: opens the store in the schema it is
//! given, serves the benchmark guest, says `ready` on stdout, and stops
//! when its stdin closes (the parent closes it, or dies).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use duroxide::DuroxideRuntime;
use duroxide::providers::postgres::{PostgresHistoryStore, PostgresOptions};

/// The line a worker prints once it serves.
pub const READY: &str = "ready";

/// Runs a worker with `args`: the server's URL, the schema, the guest, and
/// the connections of its pool (empty for the store's default).
pub fn run(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let url = args.next().context("the server's URL")?;
    let schema = args.next().context("the schema")?;
    let wasm = args.next().context("the guest component")?;
    let pool = args.next().context("the pool's size")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut options = PostgresOptions {
            schema: Some(schema),
            ..PostgresOptions::default()
        };
        if !pool.is_empty() {
            options.max_connections = pool.parse().context("the pool's size")?;
        }
        let store = Arc::new(PostgresHistoryStore::with_options(&url, options).await?);
        let mut runtime = DuroxideRuntime::new(store.clone());
        runtime.load_component_file(Path::new(&wasm)).await?;
        runtime.start().await?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{READY}")?;
        stdout.flush()?;
        tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
        runtime.stop().await;
        store.close().await;
        anyhow::Ok(())
    })
}
