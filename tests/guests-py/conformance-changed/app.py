"""A changed build of the Python conformance guest's Changing
orchestration, under the same name and version: its first decision
differs, so instances started on the first build must fail on replay."""

import duroxide


@duroxide.orchestration("Changing")
def changing(ctx, name):
    doubled = ctx.call_activity("Double", 1)
    return [doubled, ctx.wait_for_event("go")]


@duroxide.activity("Double")
def double(ctx, x):
    return x * 2


from duroxide.exports import Activities, Component, Orchestrator  # noqa: E402,F401
