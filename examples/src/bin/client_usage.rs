//! The control side alone: starts, signals, cancels and waits on
//! orchestrations in the demo database, then takes the operator's view:
//! a listing, one instance's details with the work it waits for, the
//! system's health, and purges. A runtime (`runtime_usage`) must be running,
//! in another process, for the orchestrations to progress.

use std::time::{Duration, Instant};

use duroxide::{Client, InstanceFilter, InstanceStatus, StartOptions};
use duroxide_examples::{DEMO_DB, Order, Shipping, run_suffix, store_url};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = store_url(DEMO_DB);
    let store = duroxide::providers::open(&url).await?;
    let client = Client::new(store);
    let run = run_suffix();
    let (order1, order2, order3) = (
        format!("order-1-{run}"),
        format!("order-2-{run}"),
        format!("order-3-{run}"),
    );

    client
        .start_orchestration_typed(&order1, "ProcessOrder", &Order { order_id: 123 }, None)
        .await?;
    client
        .start_orchestration_typed(&order2, "ProcessOrder", &Order { order_id: 124 }, None)
        .await?;
    // A delayed start: the runtime picks it up in two seconds.
    let delayed = StartOptions {
        delay_ms: Some(2_000),
        ..StartOptions::default()
    };
    client
        .start_orchestration_typed(
            &order3,
            "ProcessOrder",
            &Order { order_id: 125 },
            Some(delayed),
        )
        .await?;

    let ship = |carrier: &str| Shipping {
        carrier: carrier.into(),
    };
    client
        .raise_event_typed(&order1, "ShippingReady", &ship("UPS"))
        .await?;
    client
        .raise_event_typed(&order3, "ShippingReady", &ship("DHL"))
        .await?;
    client.cancel_orchestration(&order2).await?;

    for id in [&order1, &order2, &order3] {
        let status = client.wait_for_completion(id, Some(60_000)).await?;
        println!("{id}: {status}");
    }

    // An order nobody ships: it waits for ShippingReady.
    let order4 = format!("order-4-{run}");
    client
        .start_orchestration_typed(&order4, "ProcessOrder", &Order { order_id: 126 }, None)
        .await?;
    operator_view(&client, &order4).await?;

    // Retention by hand: a finished instance, then the waiting one, which
    // is cancelled first.
    client.purge_instance(&order1).await?;
    client
        .purge_instance_forced(&order4, Duration::from_secs(30))
        .await?;
    println!("purged {order1} and {order4}");
    Ok(())
}

/// What an operator sees: the newest orders, what `waiting` waits for, and
/// the system's health.
async fn operator_view(client: &Client, waiting: &str) -> anyhow::Result<()> {
    // Poll the details until its activities are done and it waits for the event.
    let deadline = Instant::now() + Duration::from_secs(60);
    let details = loop {
        let details = client
            .get_instance_details(waiting)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{waiting} vanished"))?;
        let waits = details
            .current_execution
            .as_ref()
            .is_some_and(|c| !c.pending_events.is_empty());
        if waits {
            break details;
        }
        anyhow::ensure!(Instant::now() < deadline, "{waiting} never waited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let page = client
        .list_instances(Some(InstanceFilter {
            orchestration_name: Some("ProcessOrder".into()),
            limit: Some(10),
            ..InstanceFilter::default()
        }))
        .await?;
    println!("newest orders:");
    for s in &page.instances {
        println!(
            "  {} {:?} v{} executions={} created_at_ms={}",
            s.instance_id,
            s.status,
            s.orchestration_version.as_deref().unwrap_or("-"),
            s.execution_count,
            s.created_at_ms
        );
    }
    if let Some(next) = page.next {
        println!("  (more after {})", next.instance_id);
    }

    println!("{waiting}: {}", details.status);
    if let Some(current) = &details.current_execution {
        for e in &current.pending_events {
            println!("  waits for event {} since {}", e.name, e.subscribed_at_ms);
        }
        for a in &current.pending_activities {
            println!("  runs activity {}({})", a.name, a.input);
        }
        for t in &current.pending_timers {
            println!("  timer fires at {}", t.fire_at_ms);
        }
    }
    for e in &details.executions {
        println!(
            "  execution {}: {:?}, {} events",
            e.execution_id, e.status, e.event_count
        );
    }

    let health = client.get_system_health().await?;
    println!(
        "health {}/100: {} instances, {} running, {} failed ({} in the last hour)",
        health.health_score,
        health.total_instances,
        health.running_instances,
        health.failed_instances,
        health.recent_failures
    );
    let running = client
        .list_instances(Some(InstanceFilter {
            status: Some(vec![InstanceStatus::Running, InstanceStatus::Pending]),
            limit: Some(1),
            ..InstanceFilter::default()
        }))
        .await?;
    println!(
        "newest unfinished: {:?}",
        running.instances.first().map(|s| &s.instance_id)
    );
    Ok(())
}
