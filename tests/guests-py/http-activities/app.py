"""Test guest: an activity-only Python component, which the build gives
`wasi:http`; its activities reach the origins granted to it."""

import duroxide
import duroxide.http


@duroxide.activity("PyFetch")
def fetch(ctx, request):
    """GETs `request["url"]`: "<status>: <body>", or "err: <error>"."""
    try:
        response = duroxide.http.get(request["url"], timeout=request.get("timeout"))
        return f"{response.status}: {response.text()}"
    except duroxide.http.HttpError as e:
        return f"err: {e}"


@duroxide.activity("PyPost")
def post(ctx, request):
    """POSTs `request["data"]` as JSON to `request["url"]`."""
    response = duroxide.http.post(request["url"], json=request["data"])
    response.raise_for_status()
    return {"status": response.status, "type": response.header("content-type"), "body": response.text()}


from duroxide.exports import Activities, Component  # noqa: E402,F401
