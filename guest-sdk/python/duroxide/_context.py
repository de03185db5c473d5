"""The orchestration context: durable calls that block until the host has
the answer, and replay-safe time, ids, randomness and logging."""

import datetime
import random as _random


from . import _json
from ._bindings import context as host
from ._bindings import types
from ._errors import ActivityError, DuroxideError, SubOrchestrationError

_LEVELS = {
    "trace": types.LogLevel.TRACE,
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "warning": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


class Task:
    """Something the orchestration waits on: an activity, a timer, an
    external event or a child orchestration. `result()` blocks until it
    has finished and returns its value, or raises its failure."""

    __slots__ = ("_ctx", "id", "kind", "name")

    def __init__(self, ctx, task_id, kind, name):
        self._ctx = ctx
        self.id = task_id
        self.kind = kind
        self.name = name

    @property
    def is_done(self):
        """Whether the task has finished (without blocking)."""
        return self.id in self._ctx._outcomes

    def result(self):
        """The task's value; blocks until it has finished."""
        self._ctx._block([self], every=True)
        return self._ctx._value_of(self)

    def cancel(self):
        """Stop waiting for the task: a child is cancelled, an event
        subscription gives its event to the next subscription of that name,
        an activity's or timer's result is ignored."""
        self._ctx._cancel(self)

    def __repr__(self):
        return f"Task({self.kind} {self.name!r}, id={self.id})"


class OrchestrationContext:
    """What an orchestration function receives as its first argument."""

    def __init__(self):
        # task id -> (arrival order, outcome) of every finished task.
        self._outcomes = {}
        self._arrivals = 0
        # Tasks the host has been told to watch and has not answered yet.
        self._watched = set()
        self._random = _random.Random(host.random_u64())

    # Activities -----------------------------------------------------------

    def schedule_activity(self, name, input=None, retry=None):
        """Start activity `name` with the JSON value `input`; returns the
        task at once (for `when_all`, `when_any`). With `retry` (a
        `RetryPolicy`) the host retries failed attempts behind the one
        task, which fails with `activity '<name>' failed after <n>
        attempts: <last error>` when none succeeds."""
        payload = _json.encode(input, f"the input of activity {name}")
        if retry is None:
            task_id = host.schedule_activity(name, payload)
        else:
            task_id = host.schedule_activity_with_retry(name, payload, retry._to_wit())
        return Task(self, task_id, "activity", name)

    def call_activity(self, name, input=None, retry=None):
        """Run activity `name` with `input` (retried as `retry` says, if
        given) and return its output; raises `ActivityError` with the
        activity's error text if it failed."""
        return self.schedule_activity(name, input, retry).result()

    # Timers ---------------------------------------------------------------

    def timer(self, seconds):
        """A durable timer that fires after `seconds` of orchestration time."""
        delay_ms = round(seconds * 1000)
        if delay_ms < 0:
            raise ValueError(f"a timer cannot fire in the past ({seconds} s)")
        return Task(self, host.schedule_timer(delay_ms), "timer", f"{seconds}s")

    def create_timer(self, seconds):
        """Sleep `seconds` of orchestration time, durably."""
        self.timer(seconds).result()

    # External events ------------------------------------------------------

    def event(self, name):
        """A task for the next external event called `name`. Events are
        buffered: one raised before the call is not lost."""
        return Task(self, host.wait_for_event(name), "event", name)

    def wait_for_event(self, name):
        """Block until the next external event called `name` and return its
        data as a JSON value."""
        return self.event(name).result()

    # Orchestrations -------------------------------------------------------

    def schedule_sub_orchestration(self, name, input=None, instance_id=None, version=None):
        """Start orchestration `name` as a child; returns its task."""
        payload = _json.encode(input, f"the input of orchestration {name}")
        task_id = host.schedule_sub_orchestration(name, version, instance_id, payload)
        return Task(self, task_id, "child", name)

    def call_sub_orchestration(self, name, input=None, instance_id=None, version=None):
        """Run orchestration `name` as a child and return its output; raises
        `SubOrchestrationError` if it failed."""
        return self.schedule_sub_orchestration(name, input, instance_id, version).result()

    def start_orchestration(self, name, instance_id, input=None, version=None):
        """Start orchestration `name` as independent instance `instance_id`,
        not waited for."""
        payload = _json.encode(input, f"the input of orchestration {name}")
        host.start_orchestration(name, version, instance_id, payload)

    def continue_as_new(self, input=None, version=None):
        """End this execution and start a new one with `input`; events not
        yet consumed carry over. Never returns."""
        host.continue_as_new(_json.encode(input, "the continue-as-new input"), version)
        raise DuroxideError("continue_as_new returned")  # the host never returns

    # Joins and races ------------------------------------------------------

    def when_all(self, tasks):
        """Wait for every task and return their values in order. If any
        failed, raises the first failure (in `tasks` order) once all ended."""
        tasks = list(tasks)
        self._block(tasks, every=True)
        return [self._value_of(t) for t in tasks]

    def when_any(self, tasks):
        """Wait for the first of `tasks` to finish and return it (call its
        `result()`); the others are cancelled, so a race replays the same."""
        tasks = list(tasks)
        if not tasks:
            raise ValueError("when_any needs at least one task")
        self._block(tasks, every=False)
        winner = min(
            (t for t in tasks if t.id in self._outcomes),
            key=lambda t: self._outcomes[t.id][0],
        )
        for t in tasks:
            if t is not winner and not t.is_done:
                t.cancel()
        return winner

    # Replay-safe values ---------------------------------------------------

    def now(self):
        """The orchestration's current time (UTC): when this turn began."""
        ms = host.now_ms()
        return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)

    def now_ms(self):
        """The orchestration's current time in ms since the Unix epoch."""
        return host.now_ms()

    def new_guid(self):
        """A new UUID string, the same on replay."""
        return host.new_guid()

    def random(self):
        """A float in [0, 1), the same on replay."""
        return self._random.random()

    def random_u64(self):
        """A random 64-bit integer, the same on replay."""
        return host.random_u64()

    @property
    def is_replaying(self):
        """Whether the orchestration is replaying decisions already made."""
        return host.is_replaying()

    def set_custom_status(self, status):
        """The status clients read while it runs: a string as it is, any
        other value as JSON, `None` clears it."""
        if status is not None and not isinstance(status, str):
            status = _json.encode(status, "the custom status")
        host.set_custom_status(status)

    def log(self, message, level="info"):
        """Write a log line once: lines written while replaying are dropped."""
        try:
            wit_level = _LEVELS[level]
        except KeyError:
            raise ValueError(f"unknown log level {level!r}") from None
        host.log(wit_level, str(message))

    # Internals ------------------------------------------------------------

    def _block(self, tasks, every):
        """Take completions from the host until every task (or any, when
        `every` is false) of `tasks` has finished."""
        while True:
            done = [t for t in tasks if t.id in self._outcomes]
            if done and (not every or len(done) == len(tasks)):
                return
            new = [t.id for t in tasks if t.id not in self._outcomes and t.id not in self._watched]
            if new:
                host.watch(new)
                self._watched.update(new)
            completion = host.wait_any()
            self._watched.discard(completion.task)
            self._outcomes[completion.task] = (self._arrivals, completion.outcome)
            self._arrivals += 1

    def _value_of(self, task):
        """The value of finished `task`, or its failure raised."""
        outcome = self._outcomes[task.id][1]
        if isinstance(outcome, types.Outcome_Ok):
            if task.kind == "timer":
                return None
            return _json.decode(outcome.value, f"the result of {task.kind} {task.name}")
        if task.kind == "child":
            raise SubOrchestrationError(outcome.value)
        raise ActivityError(outcome.value)

    def _cancel(self, task):
        if task.id not in self._outcomes:
            host.cancel_task(task.id)
            self._watched.discard(task.id)
