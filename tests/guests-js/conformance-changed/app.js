// A changed build of the JavaScript conformance guest's Changing
// orchestration, under the same name and version: its first decision
// differs, so instances started on the first build must fail on replay.
import { orchestration, activity } from './duroxide.js';

orchestration('Changing', (ctx) => {
  const doubled = ctx.callActivity('Double', 1);
  return [doubled, ctx.waitForEvent('go')];
});
activity('Double', (ctx, x) => x * 2);

export { orchestrator, activities, component } from './duroxide.js';
