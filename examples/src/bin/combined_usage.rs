//! Runtime and client in one process on an embedded SQLite file: loads the
//! example guest components, runs HelloWorld and ProcessOrder to completion.

use std::sync::Arc;

use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{Client, DuroxideRuntime};
use duroxide_examples::{HELLO_WORLD_WASM, ORDER_PROCESSING_WASM, init_logging, run_suffix};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let store = Arc::new(SqliteHistoryStore::new("sqlite:./combined_demo.db").await?);

    let mut runtime = DuroxideRuntime::new(store.clone());
    for wasm in [HELLO_WORLD_WASM, ORDER_PROCESSING_WASM] {
        let component = runtime.load_component_file(wasm).await?;
        println!("loaded {wasm}: {:?}", component.manifest);
    }
    runtime.start().await?;

    let client = Client::new(store);
    let run = run_suffix();

    let hello = format!("hello-{run}");
    client
        .start_orchestration(&hello, "HelloWorld", "World", None)
        .await?;
    let status = client.wait_for_completion(&hello, Some(30_000)).await?;
    println!("{hello}: {status}");

    let order = format!("order-{run}");
    client
        .start_orchestration(&order, "ProcessOrder", r#"{"order_id":123}"#, None)
        .await?;
    client
        .raise_event(&order, "ShippingReady", r#"{"carrier":"UPS"}"#)
        .await?;
    let status = client.wait_for_completion(&order, Some(30_000)).await?;
    println!("{order}: {status}");

    runtime.stop().await;
    Ok(())
}
