//! The control side alone: starts, signals, cancels and waits on
//! orchestrations in the demo database. A runtime (`runtime_usage`) must be
//! running, in another process, for them to progress.

use std::sync::Arc;

use duroxide::providers::sqlite::SqliteHistoryStore;
use duroxide::{Client, StartOptions};
use duroxide_examples::{DEMO_DB, run_suffix};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let store = Arc::new(SqliteHistoryStore::new(DEMO_DB).await?);
    let client = Client::new(store);
    let run = run_suffix();
    let (order1, order2, order3) = (
        format!("order-1-{run}"),
        format!("order-2-{run}"),
        format!("order-3-{run}"),
    );

    client
        .start_orchestration(&order1, "ProcessOrder", r#"{"order_id":123}"#, None)
        .await?;
    client
        .start_orchestration(&order2, "ProcessOrder", r#"{"order_id":124}"#, None)
        .await?;
    // A delayed start: the runtime picks it up in two seconds.
    let delayed = StartOptions {
        delay_ms: Some(2_000),
        ..StartOptions::default()
    };
    client
        .start_orchestration(
            &order3,
            "ProcessOrder",
            r#"{"order_id":125}"#,
            Some(delayed),
        )
        .await?;

    client
        .raise_event(&order1, "ShippingReady", r#"{"carrier":"UPS"}"#)
        .await?;
    client
        .raise_event(&order3, "ShippingReady", r#"{"carrier":"DHL"}"#)
        .await?;
    client.cancel_orchestration(&order2).await?;

    for id in [&order1, &order2, &order3] {
        let status = client.wait_for_completion(id, Some(60_000)).await?;
        println!("{id}: {status}");
    }
    Ok(())
}
