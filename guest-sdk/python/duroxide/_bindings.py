"""The host's interfaces, as the build's world names them. The `workflows`
world has all of duroxide's. An activity-only build (world
`activity-http`) has no orchestration context, and names duroxide's `types`
after its package, since `wasi:http` has a `types` too."""

try:
    from wit_world.imports import types
except ImportError:
    from wit_world.imports import duroxide_orchestration_types as types

try:
    from wit_world.imports import context
except ImportError:
    # An activity-only component: it runs no orchestrations.
    context = None

__all__ = ["context", "types"]
