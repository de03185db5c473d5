"""The conformance orchestrations in Python: the same names, inputs and
outputs as the Rust and JavaScript guests (tests/tests/languages.rs)."""

# Bound before the SDK is imported: the guard must reach these names too.
from random import random as random_bound_early
from time import time as time_bound_early

import duroxide


@duroxide.orchestration("Hello")
def hello(ctx, name):
    return ctx.call_activity("Greet", name)


@duroxide.orchestration("Sequence")
def sequence(ctx, n):
    return [ctx.call_activity("Double", i) for i in range(n)]


@duroxide.orchestration("FanOut")
def fan_out(ctx, n):
    return sum(ctx.when_all([ctx.schedule_activity("Double", i) for i in range(n)]))


@duroxide.orchestration("ErrorHandled")
def error_handled(ctx, message):
    try:
        ctx.call_activity("Fail", message)
        return "not failed"
    except duroxide.ActivityError as e:
        return f"handled: {e}"


def _retry_policy(max_attempts):
    """The retries every language asks of the host: 10 ms backoff, doubling."""
    return duroxide.RetryPolicy(
        max_attempts=max_attempts, initial_backoff=0.01, backoff_coefficient=2.0, max_backoff=1.0
    )


@duroxide.orchestration("RetryFlaky")
def retry_flaky(ctx, value):
    return ctx.call_activity("Flaky", value, retry=_retry_policy(5))


@duroxide.orchestration("RetryExhausted")
def retry_exhausted(ctx, message):
    try:
        ctx.call_activity("Fail", message, retry=_retry_policy(3))
        return "not failed"
    except duroxide.ActivityError as e:
        return f"handled: {e}"


@duroxide.orchestration("TimerRace")
def timer_race(ctx, seconds):
    winner = ctx.when_any([ctx.event("go"), ctx.timer(seconds)])
    if winner.kind == "event":
        return f"event:{winner.result()}"
    return "timer"


@duroxide.orchestration("BufferedEvents")
def buffered_events(ctx, _):
    return [ctx.wait_for_event("a"), ctx.wait_for_event("b")]


@duroxide.orchestration("Child")
def child(ctx, n):
    if n < 0:
        raise ValueError(f"negative input {n}")
    return n * 10


@duroxide.orchestration("Parent")
def parent(ctx, n):
    ok = ctx.call_sub_orchestration("Child", n)
    try:
        ctx.call_sub_orchestration("Child", -n)
        return [ok, "no failure"]
    except duroxide.SubOrchestrationError as e:
        return [ok, f"failed: {e}"]


@duroxide.orchestration("Detached")
def detached(ctx, instance_id):
    ctx.start_orchestration("Hello", instance_id, "detached")
    return "started"


@duroxide.orchestration("Generations")
def generations(ctx, generation):
    if generation < 3:
        ctx.continue_as_new(generation + 1)
    return f"{ctx.wait_for_event('done')} at {generation}"


@duroxide.orchestration("Status")
def status(ctx, _):
    ctx.set_custom_status("step1")
    ctx.wait_for_event("next")
    ctx.set_custom_status({"step": 2})
    return "ok"


@duroxide.orchestration("Deterministic")
def deterministic(ctx, _):
    values = [ctx.now_ms(), ctx.new_guid(), str(ctx.random_u64())]
    ctx.set_custom_status(values)
    ctx.wait_for_event("again")
    return values


@duroxide.orchestration("EchoPayload")
def echo_payload(ctx, payload):
    return ctx.call_activity("Echo", payload)


@duroxide.orchestration("WaitForever")
def wait_forever(ctx, _):
    return ctx.wait_for_event("never")


@duroxide.orchestration("Changing")
def changing(ctx, name):
    greeting = ctx.call_activity("Greet", name)
    return [greeting, ctx.wait_for_event("go")]


@duroxide.orchestration("AskWhoAmI")
def ask_who_am_i(ctx, _):
    return ctx.call_activity("WhoAmI")


@duroxide.orchestration("RaceSpin")
def race_spin(ctx, _):
    """An activity that never returns, raced against a short timer; then
    another activity, which runs only once the loser was stopped and freed
    its slot."""
    winner = ctx.when_any([ctx.schedule_activity("Spin"), ctx.timer(0.05)])
    first = "timer" if winner.kind == "timer" else "spin"
    return [first, ctx.call_activity("Greet", "after")]


# Bad guests: each fails its instance with a reason naming the Python error.


@duroxide.orchestration("Raises")
def raises(ctx, _):
    raise KeyError("missing-key")


@duroxide.orchestration("ImportsMissing")
def imports_missing(ctx, _):
    import requests  # noqa: F401 - not in the component

    return "imported"


@duroxide.orchestration("ReadsClock")
def reads_clock(ctx, _):
    import time

    return time.time()


@duroxide.orchestration("ReadsRandom")
def reads_random(ctx, _):
    import random

    return random.random()


@duroxide.orchestration("ReadsClockBoundEarly")
def reads_clock_bound_early(ctx, _):
    return time_bound_early()


@duroxide.orchestration("ReadsRandomBoundEarly")
def reads_random_bound_early(ctx, _):
    return random_bound_early()


@duroxide.orchestration("ActivityReadsClockBoundEarly")
def activity_reads_clock_bound_early(ctx, _):
    return ctx.call_activity("ClockBoundEarly")


@duroxide.orchestration("ReturnsNonJson")
def returns_non_json(ctx, _):
    return {1, 2, 3}


@duroxide.activity("Greet")
def greet(ctx, name):
    return f"Hello, {name}!"


@duroxide.activity("Double")
def double(ctx, x):
    return x * 2


@duroxide.activity("Fail")
def fail(ctx, message):
    raise ValueError(message)


@duroxide.activity("Echo")
def echo(ctx, payload):
    return payload


@duroxide.activity("ClockBoundEarly")
def clock_bound_early(ctx, _):
    """Activities read the real clock, by any name."""
    return time_bound_early() > 1_600_000_000


@duroxide.activity("WhoAmI")
def who_am_i(ctx, _):
    """The call the activity serves, as it sees it."""
    return [ctx.instance_id, ctx.execution_id, ctx.name, ctx.attempt, ctx.is_cancelled()]


@duroxide.activity("Spin")
def spin(ctx, _):
    """Spins for ever, asking nothing of the host."""
    spins = 0
    while spins >= 0:
        spins += 1
    return spins


from duroxide.exports import Activities, Component, Orchestrator  # noqa: E402,F401
