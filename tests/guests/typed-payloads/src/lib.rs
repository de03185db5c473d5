//! Orchestrations and activities that take and return serde values through
//! the SDK's typed calls: activities, events, children, continue-as-new, and
//! payloads that do not decode.

use duroxide_guest::{OrchestrationContext, Registry};
use serde::{Deserialize, Serialize};

/// An order, as a client sends it.
#[derive(Serialize, Deserialize)]
struct Order {
    id: u32,
    customer: String,
    lines: Vec<Line>,
}

/// One line of an order.
#[derive(Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
    price_cents: u64,
}

/// What pricing an order returns.
#[derive(Serialize, Deserialize)]
struct Total {
    cents: u64,
}

/// The data of the "Shipping" event.
#[derive(Serialize, Deserialize)]
struct Shipping {
    carrier: String,
}

/// What the label child takes.
#[derive(Serialize, Deserialize)]
struct LabelRequest {
    customer: String,
    carrier: String,
}

/// What the label child returns.
#[derive(Serialize, Deserialize)]
struct Label {
    text: String,
}

/// The output of TypedOrder.
#[derive(Serialize, Deserialize)]
struct Receipt {
    order_id: u32,
    total_cents: u64,
    label: Label,
}

/// The state TypedCount carries across executions.
#[derive(Serialize, Deserialize)]
struct Count {
    execution: u32,
    upto: u32,
    seen: Vec<String>,
}

/// What TypedCollect waits for.
#[derive(Serialize, Deserialize)]
struct Collect {
    events: usize,
}

/// Prices the order, waits for shipping, has a child write the label.
async fn typed_order(ctx: OrchestrationContext, order: Order) -> Result<Receipt, String> {
    let total: Total = ctx.schedule_activity_typed("PriceOrder", &order).await?;
    let shipping: Shipping = ctx.wait_for_external_event_typed("Shipping").await?;
    let request = LabelRequest {
        customer: order.customer,
        carrier: shipping.carrier,
    };
    let label: Label = ctx
        .schedule_sub_orchestration_typed("TypedLabel", &request)
        .await?;
    Ok(Receipt {
        order_id: order.id,
        total_cents: total.cents,
        label,
    })
}

/// The label child.
async fn typed_label(_ctx: OrchestrationContext, request: LabelRequest) -> Result<Label, String> {
    Ok(Label {
        text: format!("{} via {}", request.customer, request.carrier),
    })
}

/// Sums the order's lines.
fn price_order(order: Order) -> Result<Total, String> {
    let cents = order
        .lines
        .iter()
        .map(|l| u64::from(l.quantity) * l.price_cents)
        .sum();
    Ok(Total { cents })
}

/// Continues as new until `upto` executions ran, noting each.
async fn typed_count(ctx: OrchestrationContext, mut count: Count) -> Result<Count, String> {
    count.seen.push(format!("execution {} ✓", count.execution));
    if count.execution < count.upto {
        count.execution += 1;
        ctx.continue_as_new_typed(&count)?;
    }
    Ok(count)
}

/// Waits for `events` "Item" events and returns their data in order.
async fn typed_collect(ctx: OrchestrationContext, collect: Collect) -> Result<Vec<String>, String> {
    let mut items = Vec::with_capacity(collect.events);
    for _ in 0..collect.events {
        let item: String = ctx.wait_for_external_event_typed("Item").await?;
        items.push(item);
    }
    Ok(items)
}

/// Hands PriceOrder a value that is not an order: the activity's decode
/// error comes back as its failure, which this returns as its output.
async fn wrong_activity_input(ctx: OrchestrationContext, _: ()) -> Result<String, String> {
    let shipping = Shipping {
        carrier: "UPS".into(),
    };
    match ctx
        .schedule_activity_typed::<_, Total>("PriceOrder", &shipping)
        .await
    {
        Ok(_) => Err("PriceOrder took a Shipping".into()),
        Err(error) => Ok(error),
    }
}

/// Sends `size` bytes to an untyped activity: the runtime holds the
/// activity input to the payload limit.
async fn forward_padded(ctx: OrchestrationContext, size: usize) -> Result<String, String> {
    ctx.schedule_activity("EchoText", &"x".repeat(size)).await
}

fn register(registry: &mut Registry) {
    registry
        .orchestration_typed("TypedOrder", typed_order)
        .orchestration_typed("TypedLabel", typed_label)
        .orchestration_typed("TypedCount", typed_count)
        .orchestration_typed("TypedCollect", typed_collect)
        .orchestration_typed("WrongActivityInput", wrong_activity_input)
        .orchestration_typed("ForwardPadded", forward_padded)
        .activity_typed("PriceOrder", price_order)
        .activity("EchoText", Ok);
}

duroxide_guest::component!(register);
