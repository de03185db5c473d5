"""JSON at the boundary: every payload crossing the host is JSON text."""

import json

from ._errors import PayloadError


def decode(text, what):
    """The value `text` holds; an empty payload is `None`."""
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise PayloadError(f"{what} is not JSON: {e}") from None


def encode(value, what):
    """`value` as JSON text."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise PayloadError(f"{what} is not JSON-serialisable: {e}") from None
