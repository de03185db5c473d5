"""A Python guest that reaches outside its sandbox: activities that read
granted environment variables and files (tests/tests/language_grants.rs),
and orchestrations that try the same, open sockets and read the clock
through `datetime`, which their sandbox refuses."""

# Imported before duroxide, as a sorted import list has it: the SDK points
# these names at its guarded classes.
import datetime as dt
import encodings.idna  # noqa: F401 - how `socket` encodes a host name
import os
import socket
import time
from datetime import date, datetime

import duroxide


@duroxide.orchestration("Call")
def call(ctx, request):
    """Calls activity `request["activity"]` and reports how it ended."""
    try:
        return {"ok": ctx.call_activity(request["activity"], request["input"])}
    except duroxide.ActivityError as e:
        return {"err": str(e)}


@duroxide.orchestration("Probe")
def probe(ctx, request):
    """Looks for a file and a variable itself: what an orchestration's
    sandbox holds."""
    try:
        with open(request["file"]) as f:
            found = f.read()
    except OSError as e:
        found = f"{type(e).__name__}"
    return {"file": found, "var": os.environ.get(request["var"]), "vars": len(os.environ)}


@duroxide.orchestration("Connect")
def connect(ctx, address):
    """Tries to resolve a name and to connect to `address` ("host:port")."""
    host, port = address.rsplit(":", 1)
    outcome = {}
    try:
        socket.getaddrinfo("localhost", int(port))
        outcome["lookup"] = "resolved"
    except OSError as e:
        outcome["lookup"] = f"{type(e).__name__}: {e}"
    try:
        # An address, not a name: no lookup on the way to the socket.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect((host, int(port)))
            outcome["connect"] = "connected"
    except OSError as e:
        outcome["connect"] = f"{type(e).__name__}: {e}"
    return outcome


@duroxide.orchestration("ContextNow")
def context_now(ctx, _):
    """The replay-safe time, through the guarded `datetime`."""
    now = ctx.now()
    return [now.isoformat(), isinstance(now, datetime), ctx.now_ms()]


# Each reads the process clock through `datetime`: refused.


@duroxide.orchestration("DatetimeNow")
def datetime_now(ctx, _):
    return datetime.now().isoformat()


@duroxide.orchestration("DatetimeUtcnow")
def datetime_utcnow(ctx, _):
    return dt.datetime.utcnow().isoformat()


@duroxide.orchestration("DatetimeToday")
def datetime_today(ctx, _):
    return datetime.today().isoformat()


@duroxide.orchestration("DateToday")
def date_today(ctx, _):
    return date.today().isoformat()


@duroxide.activity("ReadEnv")
def read_env(ctx, name):
    """The variable `name` and how many the activity sees."""
    if name not in os.environ:
        raise KeyError(f"no variable {name} (of {len(os.environ)})")
    return f"{os.environ[name]} (of {len(os.environ)})"


@duroxide.activity("ReadFile")
def read_file(ctx, path):
    with open(path) as f:
        return f.read()


@duroxide.activity("WriteFile")
def write_file(ctx, request):
    with open(request["path"], "w") as f:
        return f.write(request["text"])


@duroxide.activity("ListDir")
def list_dir(ctx, path):
    return sorted(os.listdir(path))


@duroxide.activity("Connect")
def connect_activity(ctx, address):
    host, port = address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((host, int(port)))
        return "connected"


@duroxide.activity("Clock")
def clock(ctx, _):
    """The process clock, which activities keep: both readings in ms."""
    return [int(time.time() * 1000), int(datetime.now().timestamp() * 1000)]


from duroxide.exports import Activities, Component, Orchestrator  # noqa: E402,F401
