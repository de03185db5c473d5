// Guest component in JavaScript: ProcessOrder takes the payment, reserves
// inventory, waits for the ShippingReady event and completes the order, as
// the Rust and Python examples do. `{"order_id": 123}` in,
// `{"status": "completed", "shipping": {"carrier": "UPS"}}` out.
//
// Build and deploy it: `duroxide build examples/order-processing-js` then
// `duroxide deploy order-processing-js.wasm`.
import { orchestration, activity } from './duroxide.js';

orchestration('ProcessOrder', (ctx, order) => {
  ctx.log(`Processing order ${order.order_id}`);
  const payment = ctx.callActivity('ProcessPayment', order);
  const inventory = ctx.callActivity('ReserveInventory', order);
  ctx.log(`payment ${payment.status}, inventory ${inventory.status}; waiting for shipping`);
  const shipping = ctx.waitForEvent('ShippingReady');
  return ctx.callActivity('CompleteOrder', shipping);
});

activity('ProcessPayment', (ctx, order) => {
  if (order.decline) throw new Error(`payment for order ${order.order_id} declined`);
  return { status: 'paid' };
});

activity('ReserveInventory', (ctx) => ({ status: 'reserved' }));

activity('CompleteOrder', (ctx, shipping) => ({ status: 'completed', shipping }));

export { orchestrator, activities, component } from './duroxide.js';
