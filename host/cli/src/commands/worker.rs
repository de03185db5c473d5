//! `duroxide run`: a worker executing every deployed component.

use std::net::SocketAddr;

use duroxide::DuroxideRuntime;

use crate::exit::{Code, fail};
use crate::store;

/// Runs a worker until Ctrl-C or SIGTERM, then stops it gracefully: turns
/// in progress commit and running activities get their grace period.
pub async fn run(db: &str, metrics: Option<SocketAddr>) -> anyhow::Result<Code> {
    let store = store::open(db, true).await?;
    let _metrics = match metrics {
        Some(addr) => {
            let server = duroxide::metrics::serve(addr).map_err(|e| {
                fail(
                    Code::Failure,
                    format!(
                        "cannot serve metrics on {addr}: {e}: choose another --metrics address"
                    ),
                )
            })?;
            eprintln!("metrics at http://{}/metrics", server.addr());
            Some(server)
        }
        None => None,
    };
    let components = store.list_artifacts(None).await?.len();
    let mut runtime = DuroxideRuntime::new(store);
    runtime.start().await?;
    eprintln!(
        "worker running on {} with {components} deployed component(s); new deployments are picked up as they come. Ctrl-C stops it.",
        store::shown(db)
    );
    shutdown_signal().await?;
    eprintln!("stopping: finishing the turns in progress");
    runtime.stop().await;
    eprintln!("stopped");
    Ok(Code::Ok)
}

/// Waits for Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok(())
    }
}
