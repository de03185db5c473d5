"""The component's entry points. An app module imports these three names
(`from duroxide.exports import Orchestrator, Activities, Component`), which
is where the build looks for them."""

import sys

from componentize_py_types import Err
from wit_world import exports

from . import _json, _registry
from ._activity import ActivityContext
from ._bindings import types
from ._context import OrchestrationContext
from ._guard import guard_earlier_names, orchestration_guard


def _failure(error):
    """What a raised exception fails its instance or activity with: the
    language-level error's type and message."""
    return f"{type(error).__name__}: {error}"


def _seal_imports():
    """Every module the guest can use was loaded when the component was
    built (the files it came from are not in the sandbox at run time): with
    no path to search, a later import of anything else raises
    `ModuleNotFoundError` naming the module, and never reads a granted
    directory."""
    sys.path[:] = []
    sys.path_importer_cache.clear()


# The app imports this module last, when its own modules are loaded.
guard_earlier_names()


# An activity-only build's world exports no orchestrator.
if hasattr(exports, "Orchestrator"):

    class Orchestrator(exports.Orchestrator):
        """Runs a registered orchestration from its beginning."""

        def run(self, name, version, input):
            _seal_imports()
            fn = _registry.orchestrations.get((name, version))
            if fn is None:
                raise Err(f"this component has no orchestration named '{name}' at version {version}")
            ctx = OrchestrationContext()
            try:
                with orchestration_guard(ctx.log):
                    value = _json.decode(input, f"the input of orchestration {name}")
                    output = fn(ctx, value)
                    return _json.encode(output, f"the output of orchestration {name}")
            except Exception as e:  # noqa: BLE001 - every guest error fails the instance
                raise Err(_failure(e)) from None


elif _registry.orchestrations:
    raise ImportError(
        "this app registers orchestrations, but it is built as an activity-only "
        "component (it exports no Orchestrator); export Orchestrator, or move "
        "them to a component of their own"
    )


class Activities(exports.Activities):
    """Runs a registered activity once."""

    def run(self, name, input):
        _seal_imports()
        fn = _registry.activities.get(name)
        if fn is None:
            raise Err(f"this component has no activity named '{name}'")
        try:
            value = _json.decode(input, f"the input of activity {name}")
            return _json.encode(fn(ActivityContext(), value), f"the output of activity {name}")
        except Exception as e:  # noqa: BLE001 - every guest error fails the attempt
            raise Err(_failure(e)) from None


class Component(exports.Component):
    """Describes the registered orchestrations and activities."""

    def describe(self):
        return types.Manifest(
            [types.OrchestrationInfo(n, v) for (n, v) in sorted(_registry.orchestrations)],
            sorted(_registry.activities),
        )
