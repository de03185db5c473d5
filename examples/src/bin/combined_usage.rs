//! Runtime and client in one process on an embedded SQLite file (or the
//! store `DUROXIDE_DB` names): loads the example guest components, runs
//! HelloWorld and ProcessOrder to completion.

use duroxide::{Client, DuroxideRuntime};
use duroxide_examples::{
    Completed, HELLO_WORLD_WASM, ORDER_PROCESSING_WASM, Order, Shipping, init_logging, run_suffix,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let store =
        duroxide::providers::open(&duroxide_examples::store_url("sqlite:./combined_demo.db"))
            .await?;

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
    // Typed: serde values in and out, JSON on the wire.
    client
        .start_orchestration_typed(&order, "ProcessOrder", &Order { order_id: 123 }, None)
        .await?;
    let shipping = Shipping {
        carrier: "UPS".into(),
    };
    client
        .raise_event_typed(&order, "ShippingReady", &shipping)
        .await?;
    let done: Completed = client
        .wait_for_completion_typed(&order, Some(30_000))
        .await?
        .into_result()
        .map_err(anyhow::Error::msg)?;
    println!("{order}: {} by {}", done.status, done.shipping.carrier);

    runtime.stop().await;
    Ok(())
}
