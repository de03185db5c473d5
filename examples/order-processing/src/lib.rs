//! Guest component: ProcessOrder takes the payment, reserves inventory, waits
//! for the ShippingReady event and completes the order.

use duroxide_guest::{OrchestrationContext, Registry};

async fn process_order(ctx: OrchestrationContext, input: String) -> Result<String, String> {
    ctx.log_info(&format!("Processing order: {input}"));
    let payment = ctx.schedule_activity("ProcessPayment", &input).await?;
    let inventory = ctx.schedule_activity("ReserveInventory", &input).await?;
    ctx.log_info(&format!(
        "payment {payment}, inventory {inventory}; waiting for shipping"
    ));
    let shipping = ctx.wait_for_external_event("ShippingReady").await;
    ctx.schedule_activity("CompleteOrder", &shipping).await
}

fn process_payment(input: String) -> Result<String, String> {
    if input.contains("\"declined\"") {
        return Err("payment declined".to_string());
    }
    Ok(r#"{"status":"paid"}"#.to_string())
}

fn reserve_inventory(_input: String) -> Result<String, String> {
    Ok(r#"{"status":"reserved"}"#.to_string())
}

fn complete_order(shipping: String) -> Result<String, String> {
    Ok(format!(r#"{{"status":"completed","shipping":{shipping}}}"#))
}

fn register(registry: &mut Registry) {
    registry.orchestration("ProcessOrder", process_order);
    registry.activity("ProcessPayment", process_payment);
    registry.activity("ReserveInventory", reserve_inventory);
    registry.activity("CompleteOrder", complete_order);
}

duroxide_guest::component!(register);
