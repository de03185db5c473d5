"""Guest component in Python: ProcessOrder takes the payment, reserves
inventory, waits for the ShippingReady event and completes the order, as
the Rust and JavaScript examples do. `{"order_id": 123}` in,
`{"status": "completed", "shipping": {"carrier": "UPS"}}` out.

Build and deploy it: `duroxide build examples/order-processing-py` then
`duroxide deploy order-processing-py.wasm`."""

import duroxide


@duroxide.orchestration("ProcessOrder")
def process_order(ctx, order):
    ctx.log(f"Processing order {order['order_id']}")
    payment = ctx.call_activity("ProcessPayment", order)
    inventory = ctx.call_activity("ReserveInventory", order)
    ctx.log(f"payment {payment['status']}, inventory {inventory['status']}; waiting for shipping")
    shipping = ctx.wait_for_event("ShippingReady")
    return ctx.call_activity("CompleteOrder", shipping)


@duroxide.activity("ProcessPayment")
def process_payment(ctx, order):
    if order.get("decline"):
        raise ValueError(f"payment for order {order['order_id']} declined")
    return {"status": "paid"}


@duroxide.activity("ReserveInventory")
def reserve_inventory(ctx, order):
    return {"status": "reserved"}


@duroxide.activity("CompleteOrder")
def complete_order(ctx, shipping):
    return {"status": "completed", "shipping": shipping}


from duroxide.exports import Activities, Component, Orchestrator  # noqa: E402,F401
