"""While an orchestration runs: the process clock (`time` and `datetime`),
sleeping and module-level randomness raise `NondeterminismError` naming the
replay-safe call to use instead, and printed lines go to the replay-safe
log."""

import datetime
import functools
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


def _refusal(what, instead):
    return NondeterminismError(
        f"{what}() differs on replay and may not be called in an orchestration; use {instead}"
    )


def _refuse(module, name, instead):
    def refused(*_args, **_kwargs):
        raise _refusal(f"{module.__name__}.{name}", instead)

    return refused


# Whether an orchestration is running (the guarded `datetime` classes ask).
_orchestrating = False


class _Guarded(type):
    """The guarded classes' type: a value made by the original class (by C
    code, or before the guard was installed) is still an instance of the
    guarded one."""

    def __instancecheck__(cls, value):
        original = cls.__dict__.get("_original")
        return isinstance(value, original) if original else type.__instancecheck__(cls, value)

    def __subclasscheck__(cls, other):
        original = cls.__dict__.get("_original")
        return issubclass(other, original) if original else type.__subclasscheck__(cls, other)


class _GuardedDate(datetime.date, metaclass=_Guarded):
    """`datetime.date`, whose `today()` is refused in an orchestration."""

    _original = datetime.date

    @classmethod
    def today(cls):
        if _orchestrating:
            raise _refusal("datetime.date.today", "ctx.now().date()")
        return super().today()

    def __repr__(self):
        return "datetime." + super().__repr__()


class _GuardedDatetime(datetime.datetime, metaclass=_Guarded):
    """`datetime.datetime`, whose clock reads are refused in an
    orchestration."""

    _original = datetime.datetime

    @classmethod
    def now(cls, tz=None):
        if _orchestrating:
            raise _refusal("datetime.datetime.now", "ctx.now()")
        return super().now(tz)

    @classmethod
    def utcnow(cls):
        if _orchestrating:
            raise _refusal("datetime.datetime.utcnow", "ctx.now()")
        return super().utcnow()

    @classmethod
    def today(cls):
        if _orchestrating:
            raise _refusal("datetime.datetime.today", "ctx.now()")
        return super().today()

    def __repr__(self):
        return "datetime." + super().__repr__()


_GUARDED = {_GuardedDate._original: _GuardedDate, _GuardedDatetime._original: _GuardedDatetime}
for _original, _guarded in _GUARDED.items():
    _guarded.__name__ = _guarded.__qualname__ = _original.__name__
    _guarded.__module__ = "datetime"
    # The C types cannot be patched; the module's names can. Done when the
    # SDK is imported, so code that imports `datetime` later sees the
    # guarded classes (`guard_earlier_names` mends code that came earlier).
    setattr(datetime, _original.__name__, _guarded)
del _original, _guarded

# Modules whose names for the original classes stay: the implementation's.
_DATETIME_MODULES = {"datetime", "_datetime", "_pydatetime", __name__}


def _refused_while_orchestrating(module, name, instead, original):
    """`original`, which raises while an orchestration runs: for a name the
    app bound before the SDK was imported (`from time import time`), which
    the guard's patching of the module cannot reach."""

    @functools.wraps(original)
    def guarded(*args, **kwargs):
        if _orchestrating:
            raise _refusal(f"{module.__name__}.{name}", instead)
        return original(*args, **kwargs)

    return guarded


# The forbidden functions as their modules held them when the SDK was
# imported, each with its guarded stand-in.
_FUNCTIONS = [
    (getattr(module, name), _refused_while_orchestrating(module, name, instead, getattr(module, name)))
    for (module, name, instead) in _FORBIDDEN
    if hasattr(module, name)
]

# Top-level packages that are not the app's: their own names for the
# functions stay.
_NOT_THE_APP = set(sys.stdlib_module_names) | {
    "duroxide",
    "wit_world",
    "componentize_py_types",
    "componentize_py_runtime",
    "componentize_py_async_support",
    "poll_loop",
}


def guard_earlier_names():
    """Points every loaded module's global that holds the original `date` or
    `datetime` class (`from datetime import datetime` run before the SDK was
    imported) at the guarded one, and every global of the app's modules that
    holds a forbidden function (`from time import time`, `from random import
    random`) at one that raises in orchestrations."""
    for module_name, module in list(sys.modules.items()):
        names = getattr(module, "__dict__", None)
        if module_name in _DATETIME_MODULES or not isinstance(names, dict):
            continue
        the_apps = module_name.partition(".")[0] not in _NOT_THE_APP
        for name, value in list(names.items()):
            if isinstance(value, type) and value in _GUARDED:
                names[name] = _GUARDED[value]
            elif the_apps and callable(value):
                guarded = next((g for (f, g) in _FUNCTIONS if f is value), None)
                if guarded is not None:
                    names[name] = guarded


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


class orchestration_guard:
    """Context manager: the guards above, undone on exit."""

    def __init__(self, log):
        self._log = log
        self._saved = []

    def __enter__(self):
        global _orchestrating
        _orchestrating = True
        for module, name, instead in _FORBIDDEN:
            if hasattr(module, name):
                self._saved.append((module, name, getattr(module, name)))
                setattr(module, name, _refuse(module, name, instead))
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _LogWriter(self._log, "info")
        sys.stderr = _LogWriter(self._log, "warn")
        return self

    def __exit__(self, *_exc):
        global _orchestrating
        _orchestrating = False
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self._streams
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)
        self._saved.clear()
        return False
