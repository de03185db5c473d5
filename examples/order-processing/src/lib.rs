//! Guest component: ProcessOrder takes the payment, reserves inventory, waits
//! for the ShippingReady event and completes the order. Every payload is a
//! small serde struct, carried as JSON: `{"order_id":123}` in,
//! `{"status":"completed","shipping":{"carrier":"UPS"}}` out.

use duroxide_guest::{OrchestrationContext, Registry};
use serde::{Deserialize, Serialize};

/// The order a client starts ProcessOrder with.
#[derive(Serialize, Deserialize)]
struct Order {
    order_id: u64,
    /// Set to have the payment declined (a demo of a failing activity).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    decline: bool,
}

/// What an activity reports: "paid", "reserved", "completed".
#[derive(Serialize, Deserialize)]
struct Step {
    status: String,
}

/// The data of the ShippingReady event.
#[derive(Serialize, Deserialize)]
struct Shipping {
    carrier: String,
}

/// ProcessOrder's output.
#[derive(Serialize, Deserialize)]
struct Completed {
    status: String,
    shipping: Shipping,
}

async fn process_order(ctx: OrchestrationContext, order: Order) -> Result<Completed, String> {
    ctx.log_info(&format!("Processing order {}", order.order_id));
    let payment: Step = ctx
        .schedule_activity_typed("ProcessPayment", &order)
        .await?;
    let inventory: Step = ctx
        .schedule_activity_typed("ReserveInventory", &order)
        .await?;
    ctx.log_info(&format!(
        "payment {}, inventory {}; waiting for shipping",
        payment.status, inventory.status
    ));
    let shipping: Shipping = ctx.wait_for_external_event_typed("ShippingReady").await?;
    ctx.schedule_activity_typed("CompleteOrder", &shipping)
        .await
}

fn process_payment(order: Order) -> Result<Step, String> {
    if order.decline {
        return Err(format!("payment for order {} declined", order.order_id));
    }
    Ok(Step {
        status: "paid".into(),
    })
}

fn reserve_inventory(_order: Order) -> Result<Step, String> {
    Ok(Step {
        status: "reserved".into(),
    })
}

fn complete_order(shipping: Shipping) -> Result<Completed, String> {
    Ok(Completed {
        status: "completed".into(),
        shipping,
    })
}

fn register(registry: &mut Registry) {
    registry
        .orchestration_typed("ProcessOrder", process_order)
        .activity_typed("ProcessPayment", process_payment)
        .activity_typed("ReserveInventory", reserve_inventory)
        .activity_typed("CompleteOrder", complete_order);
}

duroxide_guest::component!(register);
