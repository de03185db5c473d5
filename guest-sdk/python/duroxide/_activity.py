"""The activity context: the call an activity attempt serves, and whether
its result is still wanted."""

from wit_world.imports import activity_context as host


class ActivityContext:
    """Passed to every activity as its first argument. The call's details
    are asked of the host once, when first read."""

    __slots__ = ("_info",)

    def __init__(self):
        self._info = None

    def _call(self):
        if self._info is None:
            self._info = host.info()
        return self._info

    @property
    def instance_id(self):
        """The instance whose orchestration scheduled the activity."""
        return self._call().instance_id

    @property
    def execution_id(self):
        """That orchestration's execution."""
        return self._call().execution_id

    @property
    def name(self):
        """The activity's name."""
        return self._call().name

    @property
    def attempt(self):
        """The attempt, from 1: a later one follows an attempt that ended
        without a result (its worker crashed, say)."""
        return self._call().attempt

    def is_cancelled(self):
        """Whether the result is no longer wanted: the orchestration stopped
        waiting for it (it lost a race, or the instance ended), or the host
        is stopping. A long activity checks it now and then to stop early;
        what it returns then is ignored."""
        return host.cancelled()
