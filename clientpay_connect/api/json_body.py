"""How much a JSON request body may hold, checked before the body is validated.

A body is already capped in size (body_limits), but validating it costs time per value: 64 KB
of small values (a long array of wrong types) kept jsonschema busy for seconds. No request of
the API needs more than a few hundred values or more than a few levels of nesting, so a body
beyond these bounds is refused at once, before the OpenAPI validation looks at it.
"""

from __future__ import annotations

from typing import Any

from clientpay_connect.api.errors import FieldErrors

# The largest request (cancelling 500 links) holds about 500 values.
MAX_VALUES = 2500
MAX_DEPTH = 32


def refuse_unbounded(value: Any) -> None:
    """FieldErrors (422) when ``value`` holds more than MAX_VALUES values or nests arrays and
    objects more than MAX_DEPTH deep; walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while pending:
        item, depth = pending.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise _refused(f"The request holds more than {MAX_VALUES} values.")
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise _refused(f"The request nests deeper than {MAX_DEPTH} levels.")
        pending.extend((child, depth + 1) for child in children)


def _refused(message: str) -> FieldErrors:
    return FieldErrors([{"field": "", "message": message}], message)
