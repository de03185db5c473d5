"""HTTP from activities, through the host's `wasi:http`: a request reaches
only the origins granted to the component (see the README's Grants).

Only an activity-only component may import this module: one whose app
exports `Activities` and `Component` but no `Orchestrator`, which the build
gives `wasi:http`. Orchestrations reach no network.

    import duroxide
    import duroxide.http

    @duroxide.activity("FetchRate")
    def fetch_rate(ctx, currency):
        response = duroxide.http.get(f"http://rates.internal/{currency}")
        response.raise_for_status()
        return response.json()

    from duroxide.exports import Activities, Component
"""

import json as _json
from urllib.parse import urlsplit

from componentize_py_types import Err

from ._errors import DuroxideError

try:
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as wasi
except ImportError:
    raise ImportError(
        "duroxide.http is only for activity-only components (an app that exports "
        "no Orchestrator): orchestrations reach no network"
    ) from None

__all__ = ["HttpError", "Response", "request", "get", "post"]

# Bytes asked for per read of a response body.
_CHUNK = 64 * 1024


class HttpError(DuroxideError):
    """A request that got no response (the grant refused it, the URL is not
    one, the connection failed or timed out), or, from
    `Response.raise_for_status`, a response whose status is an error. The
    message names the host's error code."""


class Response:
    """A response: `status`, `headers` (a list of `(name, value)` pairs, as
    sent) and `body` (bytes)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        """The first value of header `name` (any case), or None."""
        name = name.lower()
        return next((v for (n, v) in self.headers if n.lower() == name), None)

    def text(self, encoding="utf-8"):
        """The body as text."""
        return self.body.decode(encoding)

    def json(self):
        """The body as a JSON value."""
        return _json.loads(self.body)

    def raise_for_status(self):
        """Raise `HttpError` if the status is 400 or more."""
        if self.status >= 400:
            detail = self.body[:200].decode("utf-8", "replace")
            raise HttpError(f"HTTP {self.status}: {detail}" if detail else f"HTTP {self.status}")


_METHODS = {
    "GET": wasi.Method_Get,
    "HEAD": wasi.Method_Head,
    "POST": wasi.Method_Post,
    "PUT": wasi.Method_Put,
    "DELETE": wasi.Method_Delete,
    "OPTIONS": wasi.Method_Options,
    "PATCH": wasi.Method_Patch,
}


def _method(name):
    known = _METHODS.get(name.upper())
    return known() if known else wasi.Method_Other(name)


def _describe(code):
    """The host's error code as text: its name, and its detail if any."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    detail = getattr(code, "value", None)
    return f"{name} ({detail})" if detail is not None else name


def request(method, url, headers=None, body=None, json=None, timeout=None):
    """Send `method` to `url` with `headers` (a dict or pairs) and `body`
    (bytes or text; or `json`, any JSON value, sent as
    `application/json`), and return its `Response`. `timeout` (seconds)
    bounds connecting and each wait for data. Raises `HttpError` when no
    response came."""
    parts = urlsplit(url)
    schemes = {"http": wasi.Scheme_Http, "https": wasi.Scheme_Https}
    if parts.scheme not in schemes or not parts.netloc:
        raise HttpError(f"not an http or https URL: {url!r}")
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if json is not None:
        body = _json.dumps(json).encode()
        pairs.append(("content-type", "application/json"))
    if isinstance(body, str):
        body = body.encode()
    if body and not any(n.lower() == "content-length" for (n, _) in pairs):
        # Sent with its length, not chunked: every server reads that.
        pairs.append(("content-length", str(len(body))))
    encoded = [(n, v.encode() if isinstance(v, str) else v) for (n, v) in pairs]
    try:
        fields = wasi.Fields.from_list(encoded)
    except Err as e:
        raise HttpError(f"bad header: {type(e.value).__name__.removeprefix('HeaderError_')}") from None

    outgoing = wasi.OutgoingRequest(fields)
    outgoing.set_method(_method(method))
    outgoing.set_scheme(schemes[parts.scheme]())
    outgoing.set_authority(parts.netloc)
    outgoing.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    outgoing_body = outgoing.body()
    options = None
    if timeout is not None:
        ns = round(timeout * 1e9)
        options = wasi.RequestOptions()
        options.set_connect_timeout(ns)
        options.set_first_byte_timeout(ns)
        options.set_between_bytes_timeout(ns)
    try:
        future = outgoing_handler.handle(outgoing, options)
    except Err as e:
        raise HttpError(f"{method} {url}: {_describe(e.value)}") from None
    # The body streams once the request is on its way.
    if body:
        with outgoing_body.write() as stream:
            for offset in range(0, len(body), 4096):
                stream.blocking_write_and_flush(body[offset : offset + 4096])
    wasi.OutgoingBody.finish(outgoing_body, None)

    with future:
        while (got := future.get()) is None:
            with future.subscribe() as ready:
                ready.block()
    # Ok(Ok(response)) or Ok(Err(code)); Err only if asked twice.
    if isinstance(got, Err):
        raise HttpError(f"{method} {url}: the response was already taken")
    outcome = got.value
    if isinstance(outcome, Err):
        raise HttpError(f"{method} {url}: {_describe(outcome.value)}")
    with outcome.value as response:
        status = response.status()
        with response.headers() as fields:
            headers = [(n, v.decode("latin-1")) for (n, v) in fields.entries()]
        incoming = response.consume()
        chunks = []
        with incoming.stream() as stream:
            while True:
                try:
                    chunks.append(stream.blocking_read(_CHUNK))
                except Err as e:
                    if isinstance(e.value, streams.StreamError_Closed):
                        break
                    raise HttpError(f"{method} {url}: the response body failed") from None
        wasi.IncomingBody.finish(incoming)
    return Response(status, headers, b"".join(chunks))


def get(url, **kwargs):
    """`request("GET", url, ...)`."""
    return request("GET", url, **kwargs)


def post(url, **kwargs):
    """`request("POST", url, ...)`."""
    return request("POST", url, **kwargs)
