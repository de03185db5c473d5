// The conformance orchestrations in JavaScript: the same names, inputs and
// outputs as the Rust and Python guests (tests/tests/languages.rs).
import { orchestration, activity, ActivityError, SubOrchestrationError } from './duroxide.js';

orchestration('Hello', (ctx, name) => ctx.callActivity('Greet', name));

orchestration('Sequence', (ctx, n) => {
  const out = [];
  for (let i = 0; i < n; i++) out.push(ctx.callActivity('Double', i));
  return out;
});

orchestration('FanOut', (ctx, n) =>
  ctx.whenAll(Array.from({ length: n }, (_, i) => ctx.scheduleActivity('Double', i))).reduce((a, b) => a + b, 0));

orchestration('ErrorHandled', (ctx, message) => {
  try {
    ctx.callActivity('Fail', message);
    return 'not failed';
  } catch (e) {
    if (!(e instanceof ActivityError)) throw e;
    return `handled: ${e.message}`;
  }
});

// The retries every language asks of the host: 10 ms backoff, doubling.
const retryPolicy = (maxAttempts) => ({ maxAttempts, initialBackoff: 0.01, backoffCoefficient: 2, maxBackoff: 1 });

orchestration('RetryFlaky', (ctx, value) => ctx.callActivity('Flaky', value, { retry: retryPolicy(5) }));

orchestration('RetryExhausted', (ctx, message) => {
  try {
    ctx.callActivity('Fail', message, { retry: retryPolicy(3) });
    return 'not failed';
  } catch (e) {
    if (!(e instanceof ActivityError)) throw e;
    return `handled: ${e.message}`;
  }
});

orchestration('TimerRace', (ctx, seconds) => {
  const winner = ctx.whenAny([ctx.event('go'), ctx.timer(seconds)]);
  return winner.kind === 'event' ? `event:${winner.result()}` : 'timer';
});

orchestration('BufferedEvents', (ctx) => [ctx.waitForEvent('a'), ctx.waitForEvent('b')]);

orchestration('Child', (ctx, n) => {
  if (n < 0) throw new RangeError(`negative input ${n}`);
  return n * 10;
});

orchestration('Parent', (ctx, n) => {
  const ok = ctx.callSubOrchestration('Child', n);
  try {
    ctx.callSubOrchestration('Child', -n);
    return [ok, 'no failure'];
  } catch (e) {
    if (!(e instanceof SubOrchestrationError)) throw e;
    return [ok, `failed: ${e.message}`];
  }
});

orchestration('Detached', (ctx, instanceId) => {
  ctx.startOrchestration('Hello', instanceId, 'detached');
  return 'started';
});

orchestration('Generations', (ctx, generation) => {
  if (generation < 3) ctx.continueAsNew(generation + 1);
  return `${ctx.waitForEvent('done')} at ${generation}`;
});

orchestration('Status', (ctx) => {
  ctx.setCustomStatus('step1');
  ctx.waitForEvent('next');
  ctx.setCustomStatus({ step: 2 });
  return 'ok';
});

orchestration('Deterministic', (ctx) => {
  const values = [ctx.nowMs(), ctx.newGuid(), ctx.randomU64().toString()];
  ctx.setCustomStatus(values);
  ctx.waitForEvent('again');
  return values;
});

orchestration('EchoPayload', (ctx, payload) => ctx.callActivity('Echo', payload));

orchestration('WaitForever', (ctx) => ctx.waitForEvent('never'));

orchestration('Changing', (ctx, name) => {
  const greeting = ctx.callActivity('Greet', name);
  return [greeting, ctx.waitForEvent('go')];
});

orchestration('AskWhoAmI', (ctx) => ctx.callActivity('WhoAmI'));

// An activity that never returns, raced against a short timer; then another
// activity, which runs only once the loser was stopped and freed its slot.
orchestration('RaceSpin', (ctx) => {
  const winner = ctx.whenAny([ctx.scheduleActivity('Spin'), ctx.timer(0.05)]);
  return [winner.kind === 'timer' ? 'timer' : 'spin', ctx.callActivity('Greet', 'after')];
});

// Bad guests: each fails its instance with a reason naming the JS error.
orchestration('Raises', () => {
  throw new TypeError('missing-key');
});
orchestration('ReadsClock', () => Date.now());
orchestration('ReadsRandom', () => Math.random());
orchestration('ReturnsNonJson', () => 10n);

activity('Greet', (ctx, name) => `Hello, ${name}!`);
activity('Double', (ctx, x) => x * 2);
activity('Fail', (ctx, message) => {
  throw new Error(message);
});
activity('Echo', (ctx, payload) => payload);
// The call the activity serves, as it sees it.
activity('WhoAmI', (ctx) => [ctx.instanceId, ctx.executionId, ctx.name, ctx.attempt, ctx.isCancelled()]);
// Spins for ever, asking nothing of the host.
activity('Spin', () => {
  let spins = 0;
  while (spins >= 0) spins++;
  return spins;
});

export { orchestrator, activities, component } from './duroxide.js';
