// Must fail type checking: a timer's delay is a number of seconds.
import { orchestration } from './duroxide.js';

orchestration('WrongArgument', (ctx) => {
  ctx.createTimer('5 seconds');
  return null;
});
