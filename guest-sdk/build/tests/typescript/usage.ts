// Uses every part of the JavaScript SDK's declarations (duroxide.d.ts) the
// way a TypeScript guest would; `tsc --noEmit` must accept it. One
// orchestration per part of the API: a new call gets a function of its own.
import {
  type ActivityContext,
  ActivityError,
  type Json,
  type OrchestrationContext,
  SubOrchestrationError,
  type Task,
  activity,
  orchestration,
} from './duroxide.js';

interface Order {
  orderId: number;
  items: string[];
}

orchestration('Activities', (ctx, input: Json) => {
  const greeting: string = ctx.callActivity<string>('Greet', input);
  const task: Task<number> = ctx.scheduleActivity<number>('Double', 21);
  const doubled: number = task.result();
  try {
    ctx.callActivity('Fail');
  } catch (e) {
    if (e instanceof ActivityError) return `${greeting} ${doubled}: ${e.message}`;
    throw e;
  }
  return [greeting, doubled];
});

orchestration('Timers', (ctx) => {
  ctx.createTimer(1.5);
  const timer: Task<null> = ctx.timer(60);
  timer.cancel();
  return timer.isDone;
});

orchestration('Events', (ctx) => {
  const first = ctx.waitForEvent<{ carrier: string }>('ShippingReady');
  const next: Task = ctx.event('next');
  return [first.carrier, next.result()];
});

orchestration('Joins', (ctx, n: number) => {
  const all: number[] = ctx.whenAll(
    Array.from({ length: n }, (_, i) => ctx.scheduleActivity<number>('Double', i)),
  );
  const winner = ctx.whenAny([ctx.event('go'), ctx.timer(30)]);
  const how: string = winner.kind === 'event' ? `event ${winner.name}` : `timer ${winner.id}`;
  return [all.reduce((a, b) => a + b, 0), how];
});

orchestration('Children', (ctx, order: Order) => {
  const total = ctx.callSubOrchestration<number>('Price', order.items, { version: '1.0.0' });
  const child = ctx.scheduleSubOrchestration('Ship', order.orderId, { instanceId: `ship-${order.orderId}` });
  ctx.startOrchestration('Audit', `audit-${order.orderId}`, { total });
  try {
    return [total, child.result()];
  } catch (e) {
    if (e instanceof SubOrchestrationError) return e.message;
    throw e;
  }
});

orchestration('Generations', (ctx, generation: number): number => {
  if (generation < 3) ctx.continueAsNew(generation + 1, { version: '1.0.0' });
  return generation;
});

orchestration(
  'Status',
  (ctx: OrchestrationContext) => {
    ctx.setCustomStatus('step1');
    ctx.setCustomStatus({ step: 2 });
    ctx.setCustomStatus(undefined);
    return null;
  },
  { version: '2.0.0' },
);

orchestration('Deterministic', (ctx) => {
  const now: Date = ctx.now();
  const ms: number = ctx.nowMs();
  const guid: string = ctx.newGuid();
  const random: number = ctx.random();
  const big: bigint = ctx.randomU64();
  if (!ctx.isReplaying) ctx.log(`at ${now.toISOString()}`, 'debug');
  ctx.log({ ms });
  return [ms, guid, random, big.toString()];
});

activity('Greet', (ctx: ActivityContext, name: Json) => `Hello, ${name} from ${ctx.instanceId}!`);
activity<number, number>('Double', (ctx, x) => {
  const call: [string, number, string, number, boolean] = [
    ctx.instanceId,
    ctx.executionId,
    ctx.name,
    ctx.attempt,
    ctx.isCancelled(),
  ];
  return call[3] * x * 2;
});
activity('Fail', () => {
  throw new Error('failed');
});

export { orchestrator, activities, component } from './duroxide.js';
