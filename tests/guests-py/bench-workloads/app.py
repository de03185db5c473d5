"""Benchmark guest in Python: the shapes of the Rust benchmark guest
(tests/guests/bench-workloads), for the workload benchmark's Python runs."""

import duroxide


@duroxide.orchestration("Sequence")
def sequence(ctx, n):
    for i in range(n):
        ctx.call_activity("Noop", i)
    return n


@duroxide.orchestration("Parked")
def parked(ctx, _):
    return ctx.wait_for_event("never")


@duroxide.activity("Noop")
def noop(ctx, value):
    return value


from duroxide.exports import Activities, Component, Orchestrator  # noqa: E402,F401
