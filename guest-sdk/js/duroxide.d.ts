// Type declarations of the duroxide JavaScript guest SDK (duroxide.js).

/** A JSON value: what payloads, outputs and event data are. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Base of the errors the SDK raises. */
export class DuroxideError extends Error {}
/** An activity failed; the message is the activity's error text. */
export class ActivityError extends DuroxideError {}
/** A child orchestration failed; the message is its error text. */
export class SubOrchestrationError extends DuroxideError {}
/** A payload is not JSON, or a value cannot be written as JSON. */
export class PayloadError extends DuroxideError {}
/** Orchestration code reached for something that differs on replay. */
export class NondeterminismError extends DuroxideError {}

/** What kind of thing a task waits on. */
export type TaskKind = 'activity' | 'timer' | 'event' | 'child';

/** Something an orchestration waits on. */
export class Task<T = Json> {
  /** The host's number for the task. */
  readonly id: bigint;
  /** What it waits on. */
  readonly kind: TaskKind;
  /** The activity, event or orchestration name, or the timer's delay. */
  readonly name: string;
  /** Whether the task has finished (without blocking). */
  readonly isDone: boolean;
  /** The task's value; blocks until it has finished, throws its failure. */
  result(): T;
  /** Stop waiting for the task. */
  cancel(): void;
}

/** Options of a child or detached orchestration. */
export interface StartOptions {
  /** The orchestration's version; the latest when absent. */
  version?: string;
}

/** Options of a child orchestration. */
export interface ChildOptions extends StartOptions {
  /** The child's instance id; derived from the parent's when absent. */
  instanceId?: string;
}

/** How the host retries a failing activity. After failed attempt n (from
 * 1) it waits `initialBackoff * backoffCoefficient ** (n - 1)` seconds,
 * capped at `maxBackoff`, on a durable timer, then tries again. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 3; 0 counts as 1). */
  maxAttempts?: number;
  /** Seconds to wait after the first failed attempt (default 1). */
  initialBackoff?: number;
  /** Factor each further wait grows by (default 2): finite, not negative. */
  backoffCoefficient?: number;
  /** Longest wait between attempts, in seconds (default 60). */
  maxBackoff?: number;
  /** Fail (and cancel) an attempt still running after this many seconds. */
  attemptTimeout?: number;
  /** Start no attempt whose backoff would end later than this many
   * seconds after the first attempt started. */
  totalTimeout?: number;
}

/** Options of an activity call. */
export interface ActivityOptions {
  /** Retry failed attempts as this says; the task fails with
   * `activity '<name>' failed after <n> attempts: <last error>`. */
  retry?: RetryPolicy;
}

/** Log levels of `ctx.log`. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** What an orchestration function receives as its first argument. Every
 * call is durable and replays identically; calls that wait block. */
export class OrchestrationContext {
  scheduleActivity<T = Json>(name: string, input?: Json, options?: ActivityOptions): Task<T>;
  callActivity<T = Json>(name: string, input?: Json, options?: ActivityOptions): T;
  timer(seconds: number): Task<null>;
  createTimer(seconds: number): void;
  event<T = Json>(name: string): Task<T>;
  waitForEvent<T = Json>(name: string): T;
  scheduleSubOrchestration<T = Json>(name: string, input?: Json, options?: ChildOptions): Task<T>;
  callSubOrchestration<T = Json>(name: string, input?: Json, options?: ChildOptions): T;
  startOrchestration(name: string, instanceId: string, input?: Json, options?: StartOptions): void;
  continueAsNew(input?: Json, options?: StartOptions): never;
  whenAll<T = Json>(tasks: Iterable<Task<T>>): T[];
  whenAny<T = Json>(tasks: Iterable<Task<T>>): Task<T>;
  now(): Date;
  nowMs(): number;
  newGuid(): string;
  random(): number;
  randomU64(): bigint;
  readonly isReplaying: boolean;
  setCustomStatus(status: Json | undefined): void;
  log(message: unknown, level?: LogLevel): void;
}

/** Register `fn` as orchestration `name` (at version 1.0.0 unless given). */
export function orchestration<I = Json, O = Json>(
  name: string,
  fn: (ctx: OrchestrationContext, input: I) => O,
  options?: { version?: string },
): void;

/** The call an activity attempt serves, and whether its result is still
 * wanted; passed to every activity as its first argument. */
export class ActivityContext {
  /** The instance whose orchestration scheduled the activity. */
  readonly instanceId: string;
  /** That orchestration's execution. */
  readonly executionId: number;
  /** The activity's name. */
  readonly name: string;
  /** The attempt, from 1: a later one follows an attempt that ended
   * without a result (its worker crashed, say). */
  readonly attempt: number;
  /** Whether the result is no longer wanted (the orchestration stopped
   * waiting for it, or the host is stopping); what it returns then is
   * ignored. */
  isCancelled(): boolean;
}

/** Register `fn` as activity `name`. */
export function activity<I = Json, O = Json>(
  name: string,
  fn: (ctx: ActivityContext, input: I) => O,
): void;

/** The component's exports; re-export them from the app module. */
export const orchestrator: { run(name: string, version: string, input: string): string };
export const activities: { run(name: string, input: string): string };
export const component: {
  describe(): { orchestrations: { name: string; version: string }[]; activities: string[] };
};
