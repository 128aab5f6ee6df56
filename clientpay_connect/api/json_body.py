"""Reading a JSON request body, and how much it may hold, before the body is validated.

What is not UTF-8 JSON is a 400 of our own: the OpenAPI library failed (500) to describe a
body that is not UTF-8, and Python's parser raises RecursionError on a body nested deep enough.

A body is already capped in size (body_limits), but validating it costs time per value: 64 KB
of small values (a long array of wrong types) kept jsonschema busy for seconds. No request of
the API needs more than a few hundred values or more than a few levels of nesting, so a body
beyond these bounds is refused at once, before the OpenAPI validation looks at it.
"""

from __future__ import annotations

import json
from typing import Any

from pyramid.request import Request

from clientpay_connect.api.errors import ApiError, FieldErrors

# The largest request (cancelling 500 links) holds about 500 values.
MAX_VALUES = 2500
MAX_DEPTH = 32
NUL_MESSAGE = "Text cannot contain the NUL character (\\u0000)."


def is_json(request: Request) -> bool:
    media_type = (request.content_type or "").lower()
    return media_type == "application/json" or media_type.endswith("+json")


def read_json_body(request: Request) -> Any:
    """The body, parsed: ApiError 400 when it is not UTF-8 JSON, FieldErrors (422) when it
    holds more than the API takes (see refuse_unbounded)."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_json("The request body is not UTF-8 text.") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise _not_json("The request body is not valid JSON.") from None
    refuse_unbounded(value)
    return value


def refuse_unbounded(value: Any) -> None:
    """FieldErrors (422) when ``value`` holds more than MAX_VALUES values, nests arrays and
    objects more than MAX_DEPTH deep, or has a text with the NUL character (no database text
    column takes one: PostgreSQL refuses it, so it would fail late, as a 500); walked
    without recursion."""
    pending: list[tuple[Any, int, str]] = [(value, 1, "")]
    seen = 0
    while pending:
        item, depth, path = pending.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise _refused(f"The request holds more than {MAX_VALUES} values.")
        if isinstance(item, str):
            if "\x00" in item:
                raise FieldErrors([{"field": path, "message": NUL_MESSAGE}])
            continue
        if isinstance(item, dict):
            if any("\x00" in key for key in item):
                raise FieldErrors([{"field": path, "message": NUL_MESSAGE}])
            children: Any = [(child, _joined(path, key)) for key, child in item.items()]
        elif isinstance(item, list):
            children = [(child, _joined(path, str(n))) for n, child in enumerate(item)]
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        pending.extend((child, depth + 1, where) for child, where in children)


def _joined(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _not_json(message: str) -> ApiError:
    return ApiError(400, "invalid_json", message)


def _too_deep() -> FieldErrors:
    return _refused(f"The request nests deeper than {MAX_DEPTH} levels.")


def _refused(message: str) -> FieldErrors:
    return FieldErrors([{"field": "", "message": message}], message)
