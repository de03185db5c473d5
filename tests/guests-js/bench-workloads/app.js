// Benchmark guest in JavaScript: the shapes of the Rust benchmark guest
// (tests/guests/bench-workloads), for the workload benchmark's JS runs.
import { orchestration, activity } from './duroxide.js';

orchestration('Sequence', (ctx, n) => {
  for (let i = 0; i < n; i++) ctx.callActivity('Noop', i);
  return n;
});
orchestration('Parked', (ctx) => ctx.waitForEvent('never'));
activity('Noop', (ctx, value) => value);

export { orchestrator, activities, component } from './duroxide.js';
