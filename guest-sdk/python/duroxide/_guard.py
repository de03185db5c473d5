"""While an orchestration runs: the process clock, sleeping and module-level
randomness raise `NondeterminismError` naming the replay-safe call to use
instead, and printed lines go to the replay-safe log."""

import os
import random
import sys
import time
import uuid

from ._errors import NondeterminismError

# (module, attribute, what to use instead)
_FORBIDDEN = [
    (time, "time", "ctx.now()"),
    (time, "time_ns", "ctx.now_ms()"),
    (time, "monotonic", "ctx.now()"),
    (time, "monotonic_ns", "ctx.now_ms()"),
    (time, "perf_counter", "ctx.now()"),
    (time, "perf_counter_ns", "ctx.now_ms()"),
    (time, "sleep", "ctx.create_timer(seconds)"),
    (os, "urandom", "ctx.random_u64()"),
    (uuid, "uuid1", "ctx.new_guid()"),
    (uuid, "uuid4", "ctx.new_guid()"),
] + [
    (random, name, "ctx.random()")
    for name in (
        "random", "randint", "randrange", "choice", "choices", "shuffle",
        "sample", "uniform", "getrandbits", "randbytes", "gauss",
    )
]


def _refuse(module, name, instead):
    def refused(*_args, **_kwargs):
        raise NondeterminismError(
            f"{module.__name__}.{name}() differs on replay and may not be called "
            f"in an orchestration; use {instead}"
        )

    return refused


class _LogWriter:
    """A text stream that writes each line to the replay-safe log."""

    def __init__(self, log, level):
        self._log = log
        self._level = level
        self._pending = ""

    def write(self, text):
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._log(line, self._level)
        return len(text)

    def flush(self):
        if self._pending:
            self._log(self._pending, self._level)
            self._pending = ""


class _Discard:
    """A text stream that drops what it is given."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass


class orchestration_guard:
    """Context manager: the guards above, undone on exit."""

    def __init__(self, log):
        self._log = log
        self._saved = []

    def __enter__(self):
        for module, name, instead in _FORBIDDEN:
            if hasattr(module, name):
                self._saved.append((module, name, getattr(module, name)))
                setattr(module, name, _refuse(module, name, instead))
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _LogWriter(self._log, "info")
        sys.stderr = _LogWriter(self._log, "warn")
        return self

    def __exit__(self, *_exc):
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self._streams
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)
        self._saved.clear()
        return False


class activity_streams:
    """Context manager: an activity's printed output is dropped (the
    component is built without WASI, so there is no stream to write to)."""

    def __enter__(self):
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = sys.stderr = _Discard()
        return self

    def __exit__(self, *_exc):
        sys.stdout, sys.stderr = self._streams
        return False
