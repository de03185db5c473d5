// Write duroxide orchestrations and activities in JavaScript.
//
// Orchestrations are plain functions of a context and a JSON value; their
// calls block until the host has the answer (no `await` needed), and the
// host replays them from history, so they must be deterministic: take time,
// ids and randomness from the context, and do side effects in activities.
// Activities are plain functions of their context (the call they serve, and
// whether it is still wanted) and a JSON value. Payloads are JSON values,
// converted at the boundary.
//
//   import { orchestration, activity } from 'duroxide';
//   orchestration('HelloWorld', (ctx, name) => ctx.callActivity('SayHello', name));
//   activity('SayHello', (ctx, name) => `Hello, ${name}!`);
//   export { orchestrator, activities, component } from 'duroxide';

import * as host from 'duroxide:orchestration/context@0.2.1';
import * as activityHost from 'duroxide:orchestration/activity-context@0.2.1';

const DEFAULT_VERSION = '1.0.0';
const orchestrations = new Map(); // `${name}@${version}` -> fn(ctx, input)
const activityFns = new Map(); // name -> fn(ctx, input)

/** Base of the errors the SDK raises. */
export class DuroxideError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}
/** An activity failed; the message is the activity's error text. */
export class ActivityError extends DuroxideError {}
/** A child orchestration failed; the message is its error text. */
export class SubOrchestrationError extends DuroxideError {}
/** A payload is not JSON, or a value cannot be written as JSON. */
export class PayloadError extends DuroxideError {}
/** Orchestration code reached for something that differs on replay. */
export class NondeterminismError extends DuroxideError {}

/** Register `fn(ctx, input)` as orchestration `name` at `options.version`. */
export function orchestration(name, fn, options = {}) {
  const key = `${name}@${options.version ?? DEFAULT_VERSION}`;
  if (orchestrations.has(key)) throw new Error(`orchestration ${key} is registered twice`);
  orchestrations.set(key, { name, version: options.version ?? DEFAULT_VERSION, fn });
}

/** Register `fn(ctx, input)` as activity `name`; `ctx` is its
 * `ActivityContext`. */
export function activity(name, fn) {
  if (activityFns.has(name)) throw new Error(`activity ${name} is registered twice`);
  activityFns.set(name, fn);
}

function decode(text, what) {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new PayloadError(`${what} is not JSON: ${e.message}`);
  }
}

function encode(value, what) {
  let text;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (e) {
    throw new PayloadError(`${what} is not JSON-serialisable: ${e.message}`);
  }
  if (text === undefined) throw new PayloadError(`${what} is not JSON-serialisable`);
  return text;
}

/** Something an orchestration waits on. `result()` blocks until it has
 * finished and returns its value, or throws its failure. */
export class Task {
  constructor(ctx, id, kind, name) {
    this._ctx = ctx;
    this.id = id;
    this.kind = kind;
    this.name = name;
  }
  /** Whether the task has finished (without blocking). */
  get isDone() {
    return this._ctx._outcomes.has(this.id);
  }
  /** The task's value; blocks until it has finished. */
  result() {
    this._ctx._block([this], true);
    return this._ctx._valueOf(this);
  }
  /** Stop waiting for the task (a child is cancelled, an event goes to the
   * next subscription of its name). */
  cancel() {
    this._ctx._cancel(this);
  }
}

const LEVELS = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', error: 'error' };

/** Whole milliseconds of `seconds` (absent stays absent), checked. */
function millis(seconds, what) {
  if (seconds == null) return undefined;
  const ms = Math.round(seconds * 1000);
  if (typeof seconds !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) {
    throw new RangeError(`${what} must be a number of seconds of at least 0, not ${seconds}`);
  }
  return BigInt(ms);
}

/** A retry policy (durations in seconds, defaults as documented in
 * duroxide.d.ts) as the contract carries it. */
function retryPolicy(retry) {
  const maxAttempts = retry.maxAttempts ?? 3;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 0 || maxAttempts > 0xffffffff) {
    throw new RangeError(`maxAttempts must be a whole number of at least 0, not ${maxAttempts}`);
  }
  const backoffCoefficient = retry.backoffCoefficient ?? 2;
  if (typeof backoffCoefficient !== 'number' || !Number.isFinite(backoffCoefficient) || backoffCoefficient < 0) {
    throw new RangeError(`backoffCoefficient must be finite and not negative, not ${backoffCoefficient}`);
  }
  return {
    maxAttempts,
    initialBackoffMs: millis(retry.initialBackoff ?? 1, 'initialBackoff'),
    backoffCoefficient,
    maxBackoffMs: millis(retry.maxBackoff ?? 60, 'maxBackoff'),
    attemptTimeoutMs: millis(retry.attemptTimeout, 'attemptTimeout'),
    totalTimeoutMs: millis(retry.totalTimeout, 'totalTimeout'),
  };
}

/** What an orchestration function receives as its first argument. */
export class OrchestrationContext {
  constructor() {
    this._outcomes = new Map(); // task id -> { order, outcome }
    this._arrivals = 0;
    this._watched = new Set();
    this._seed = host.randomU64();
  }

  /** Start activity `name` with `input`; returns its task at once. With
   * `options.retry` the host retries failed attempts behind the one task. */
  scheduleActivity(name, input = null, options = {}) {
    const payload = encode(input, `the input of activity ${name}`);
    const id = options.retry == null
      ? host.scheduleActivity(name, payload)
      : host.scheduleActivityWithRetry(name, payload, retryPolicy(options.retry));
    return new Task(this, id, 'activity', name);
  }
  /** Run activity `name` and return its output; throws `ActivityError`. */
  callActivity(name, input = null, options = {}) {
    return this.scheduleActivity(name, input, options).result();
  }
  /** A durable timer firing after `seconds` of orchestration time. */
  timer(seconds) {
    const ms = Math.round(seconds * 1000);
    if (!(ms >= 0)) throw new RangeError(`a timer cannot fire in the past (${seconds} s)`);
    return new Task(this, host.scheduleTimer(BigInt(ms)), 'timer', `${seconds}s`);
  }
  /** Sleep `seconds` of orchestration time, durably. */
  createTimer(seconds) {
    this.timer(seconds).result();
  }
  /** A task for the next external event `name` (events are buffered). */
  event(name) {
    return new Task(this, host.waitForEvent(name), 'event', name);
  }
  /** Block until the next external event `name`; returns its data. */
  waitForEvent(name) {
    return this.event(name).result();
  }
  /** Start orchestration `name` as a child; returns its task. */
  scheduleSubOrchestration(name, input = null, options = {}) {
    const id = host.scheduleSubOrchestration(
      name,
      options.version,
      options.instanceId,
      encode(input, `the input of orchestration ${name}`),
    );
    return new Task(this, id, 'child', name);
  }
  /** Run orchestration `name` as a child; throws `SubOrchestrationError`. */
  callSubOrchestration(name, input = null, options = {}) {
    return this.scheduleSubOrchestration(name, input, options).result();
  }
  /** Start orchestration `name` as independent instance `instanceId`. */
  startOrchestration(name, instanceId, input = null, options = {}) {
    host.startOrchestration(name, options.version, instanceId, encode(input, `the input of orchestration ${name}`));
  }
  /** End this execution and start a new one with `input`. Never returns. */
  continueAsNew(input = null, options = {}) {
    host.continueAsNew(encode(input, 'the continue-as-new input'), options.version);
    throw new DuroxideError('continueAsNew returned');
  }
  /** Wait for every task; their values in order, or the first failure. */
  whenAll(tasks) {
    tasks = [...tasks];
    this._block(tasks, true);
    return tasks.map((t) => this._valueOf(t));
  }
  /** Wait for the first task to finish and return it; the others are
   * cancelled, so the race replays the same. */
  whenAny(tasks) {
    tasks = [...tasks];
    if (tasks.length === 0) throw new RangeError('whenAny needs at least one task');
    this._block(tasks, false);
    let winner = null;
    for (const t of tasks) {
      const done = this._outcomes.get(t.id);
      if (done && (winner === null || done.order < this._outcomes.get(winner.id).order)) winner = t;
    }
    for (const t of tasks) if (t !== winner && !t.isDone) t.cancel();
    return winner;
  }
  /** The orchestration's current time: when this turn began. */
  now() {
    return new RealDate(Number(host.nowMs()));
  }
  /** The orchestration's current time in ms since the Unix epoch. */
  nowMs() {
    return Number(host.nowMs());
  }
  /** A new UUID string, the same on replay. */
  newGuid() {
    return host.newGuid();
  }
  /** A number in [0, 1), the same on replay. */
  random() {
    // splitmix64 over the execution's seed: a fixed sequence per execution.
    this._seed = BigInt.asUintN(64, this._seed + 0x9e3779b97f4a7c15n);
    let z = this._seed;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z = z ^ (z >> 31n);
    return Number(z >> 11n) / 2 ** 53;
  }
  /** A random 64-bit integer (a BigInt), the same on replay. */
  randomU64() {
    return host.randomU64();
  }
  /** Whether the orchestration is replaying decisions already made. */
  get isReplaying() {
    return host.isReplaying();
  }
  /** The status clients read: a string as it is, other values as JSON,
   * `null` clears it. */
  setCustomStatus(status) {
    host.setCustomStatus(status == null ? undefined : typeof status === 'string' ? status : encode(status, 'the custom status'));
  }
  /** Write a log line once (lines written while replaying are dropped). */
  log(message, level = 'info') {
    const wit = LEVELS[level];
    if (!wit) throw new RangeError(`unknown log level ${level}`);
    host.log(wit, String(message));
  }

  _block(tasks, every) {
    for (;;) {
      const done = tasks.filter((t) => this._outcomes.has(t.id)).length;
      if (done > 0 && (!every || done === tasks.length)) return;
      const fresh = tasks.filter((t) => !this._outcomes.has(t.id) && !this._watched.has(t.id)).map((t) => t.id);
      if (fresh.length > 0) {
        host.watch(new BigUint64Array(fresh));
        for (const id of fresh) this._watched.add(id);
      }
      const c = host.waitAny();
      this._watched.delete(c.task);
      this._outcomes.set(c.task, { order: this._arrivals++, outcome: c.outcome });
    }
  }
  _valueOf(task) {
    const { outcome } = this._outcomes.get(task.id);
    if (outcome.tag === 'ok') {
      return task.kind === 'timer' ? null : decode(outcome.val, `the result of ${task.kind} ${task.name}`);
    }
    if (task.kind === 'child') throw new SubOrchestrationError(outcome.val);
    throw new ActivityError(outcome.val);
  }
  _cancel(task) {
    if (!this._outcomes.has(task.id)) {
      host.cancelTask(task.id);
      this._watched.delete(task.id);
    }
  }
}

const RealDate = globalThis.Date;

// While an orchestration runs: the clock and Math.random throw, naming the
// replay-safe call to use, and console lines go to the replay-safe log.
function guarded(ctx, run) {
  const refuse = (what, instead) => () => {
    throw new NondeterminismError(`${what} differs on replay and may not be called in an orchestration; use ${instead}`);
  };
  class GuardedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) refuse('new Date()', 'ctx.now()')();
      super(...args);
    }
  }
  GuardedDate.now = refuse('Date.now()', 'ctx.nowMs()');
  const saved = { Date: globalThis.Date, random: Math.random, console: globalThis.console };
  globalThis.Date = GuardedDate;
  Math.random = refuse('Math.random()', 'ctx.random()');
  const line = (level) => (...args) => ctx.log(args.map(String).join(' '), level);
  globalThis.console = { log: line('info'), info: line('info'), debug: line('debug'), warn: line('warn'), error: line('error') };
  try {
    return run();
  } finally {
    globalThis.Date = saved.Date;
    Math.random = saved.random;
    globalThis.console = saved.console;
  }
}

function failure(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `Error: ${String(e)}`;
}

/** The `orchestrator` export: runs a registered orchestration. */
export const orchestrator = {
  run(name, version, input) {
    const entry = orchestrations.get(`${name}@${version}`);
    if (!entry) throw `this component has no orchestration named '${name}' at version ${version}`;
    const ctx = new OrchestrationContext();
    try {
      return guarded(ctx, () => {
        const output = entry.fn(ctx, decode(input, `the input of orchestration ${name}`));
        if (output && typeof output.then === 'function') {
          throw new DuroxideError('an orchestration returns its output, not a Promise: its calls block, so it needs no async');
        }
        return encode(output, `the output of orchestration ${name}`);
      });
    } catch (e) {
      throw failure(e);
    }
  },
};

/** Passed to every activity as its first argument: the call it serves
 * (asked of the host once, when first read) and whether its result is still
 * wanted. */
export class ActivityContext {
  #info = null;

  #call() {
    if (this.#info === null) this.#info = activityHost.info();
    return this.#info;
  }

  /** The instance whose orchestration scheduled the activity. */
  get instanceId() {
    return this.#call().instanceId;
  }

  /** That orchestration's execution. */
  get executionId() {
    return Number(this.#call().executionId);
  }

  /** The activity's name. */
  get name() {
    return this.#call().name;
  }

  /** The attempt, from 1: a later one follows an attempt that ended without
   * a result (its worker crashed, say). */
  get attempt() {
    return this.#call().attempt;
  }

  /** Whether the result is no longer wanted: the orchestration stopped
   * waiting for it (it lost a race, or the instance ended), or the host is
   * stopping. A long activity checks it now and then to stop early; what it
   * returns then is ignored. */
  isCancelled() {
    return activityHost.cancelled();
  }
}

/** The `activities` export: runs a registered activity once. */
export const activities = {
  run(name, input) {
    const fn = activityFns.get(name);
    if (!fn) throw `this component has no activity named '${name}'`;
    try {
      const output = fn(new ActivityContext(), decode(input, `the input of activity ${name}`));
      if (output && typeof output.then === 'function') {
        throw new DuroxideError('an activity returns its output, not a Promise');
      }
      return encode(output, `the output of activity ${name}`);
    } catch (e) {
      throw failure(e);
    }
  },
};

/** The `component` export: what the component provides. */
export const component = {
  describe() {
    return {
      orchestrations: [...orchestrations.values()].map(({ name, version }) => ({ name, version })),
      activities: [...activityFns.keys()],
    };
  },
};
