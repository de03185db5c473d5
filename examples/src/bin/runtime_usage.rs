//! The execution side alone: a runtime on the demo database that runs the
//! example components until Ctrl-C. Start `client_usage` in another terminal.

use duroxide::DuroxideRuntime;
use duroxide_examples::{
    DEMO_DB, HELLO_WORLD_WASM, ORDER_PROCESSING_WASM, init_logging, store_url,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let url = store_url(DEMO_DB);
    let store = duroxide::providers::open(&url).await?;
    let mut runtime = DuroxideRuntime::new(store);
    runtime.load_component_file(HELLO_WORLD_WASM).await?;
    runtime.load_component_file(ORDER_PROCESSING_WASM).await?;
    // A native activity: trusted host code beside the sandboxed ones.
    runtime.register_activity("AuditLog", |entry| async move {
        println!("audit: {entry}");
        Ok("logged".to_string())
    })?;
    runtime.start().await?;
    println!("runtime started on {url}; Ctrl-C stops it");

    tokio::signal::ctrl_c().await?;
    runtime.stop().await;
    println!("runtime stopped");
    Ok(())
}
