"""Write duroxide orchestrations and activities in Python.

Orchestrations are plain functions of a context and a JSON value; their
calls block until the host has the answer, and the host replays them from
history, so they must be deterministic: take time, ids and randomness from
the context, and do side effects in activities. Activities are plain
functions of their context (the call they serve, and whether it is still
wanted) and a JSON value. Payloads are JSON-serialisable values, converted
at the boundary.

    import duroxide

    @duroxide.orchestration("HelloWorld")
    def hello_world(ctx, name):
        return ctx.call_activity("SayHello", name)

    @duroxide.activity("SayHello")
    def say_hello(ctx, name):
        return f"Hello, {name}!"

    # The component's entry points, which the build looks for by name.
    from duroxide.exports import Orchestrator, Activities, Component

Build it into a component with `componentize-py` against the duroxide WIT
contract (world `workflows`); see the project README. An app that exports
no `Orchestrator` is an activity-only component, built with `wasi:http`:
its activities may send HTTP with `duroxide.http`."""

# First: installs the guarded `datetime` classes before user code imports
# them (see `_guard`).
from . import _guard  # noqa: F401, I001
from ._activity import ActivityContext
from ._context import OrchestrationContext, Task
from ._errors import (
    ActivityError,
    DuroxideError,
    NondeterminismError,
    PayloadError,
    SubOrchestrationError,
)
from ._registry import activity, orchestration
from ._retry import RetryPolicy

__all__ = [
    "ActivityContext",
    "ActivityError",
    "DuroxideError",
    "NondeterminismError",
    "OrchestrationContext",
    "PayloadError",
    "RetryPolicy",
    "SubOrchestrationError",
    "Task",
    "activity",
    "orchestration",
]
