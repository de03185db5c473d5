"""The orchestrations and activities a component provides, by name."""

DEFAULT_VERSION = "1.0.0"

# (name, version) -> function(ctx, input)
orchestrations = {}
# name -> function(ctx, input)
activities = {}


def orchestration(name=None, version=DEFAULT_VERSION):
    """Register the decorated function as orchestration `name` (the
    function's name when absent) at semantic `version`."""

    def register(fn):
        key = (name or fn.__name__, version)
        if key in orchestrations:
            raise ValueError(f"orchestration {key[0]} {key[1]} is registered twice")
        orchestrations[key] = fn
        return fn

    return register


def activity(name=None):
    """Register the decorated function as activity `name` (the function's
    name when absent). It is called with an `ActivityContext` and the
    input."""

    def register(fn):
        key = name or fn.__name__
        if key in activities:
            raise ValueError(f"activity {key} is registered twice")
        activities[key] = fn
        return fn

    return register
