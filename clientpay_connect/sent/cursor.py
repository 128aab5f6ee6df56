"""The opaque ``cursor`` of a list: where the previous page stopped, as (sort value, id).

It is URL-safe base64 of a small JSON object. Clients must not build or read it; we check
every part of it, since it comes back from outside and ends up in a WHERE clause.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from clientpay_connect.db import possible_id

MAX_CURSOR_LENGTH = 1000
MAX_INT = 2**63 - 1


class CursorError(ValueError):
    """The cursor is not one we gave out (or not for this sort)."""


@dataclass(frozen=True)
class Cursor:
    sort: str
    value: Any  # None, int, date, aware datetime or str, per the sort's kind
    id: int
    token: str  # the text it was read from, to hand back in a URL


def encode_cursor(sort: str, kind: str, value: Any, row_id: int) -> str:
    payload = {"s": sort, "v": _value_json(kind, value), "id": row_id}
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str, sort: str, kind: str) -> Cursor:
    payload = _payload(text)
    if payload.get("s") != sort:
        raise CursorError("This cursor belongs to another sort order; start again without it.")
    link_id = payload.get("id")
    if type(link_id) is not int or not possible_id(link_id):
        raise CursorError("This is not a cursor we gave out.")
    value = _value_from_json(kind, payload.get("v"))
    # A cursor given out before totals were exact on every page also carries "t" (the first
    # page's count): ignored, as every page now counts.
    return Cursor(sort, value, link_id, text)


def _payload(text: str) -> dict[str, Any]:
    if len(text) > MAX_CURSOR_LENGTH:
        raise CursorError("This is not a cursor we gave out.")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError and JSON errors too
        raise CursorError("This is not a cursor we gave out.") from exc
    if not isinstance(payload, dict):
        raise CursorError("This is not a cursor we gave out.")
    return payload


def _value_json(kind: str, value: Any) -> Any:
    if value is None or kind in ("int", "text"):
        return value
    return value.isoformat()


def _value_from_json(kind: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        return _PARSERS[kind](value)
    except (TypeError, ValueError) as exc:
        raise CursorError("This is not a cursor we gave out.") from exc


def _int(value: Any) -> int:
    if type(value) is not int or abs(value) > MAX_INT:
        raise ValueError("not an integer in range")
    return value


def _date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise TypeError("a date is a string")
    return dt.date.fromisoformat(value)


def _datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError("a timestamp is a string")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a timestamp needs its zone")
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError as exc:  # "0001-01-01T00:00+05:00" is before year 1 in UTC
        raise ValueError("out of range") from exc


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    if "\x00" in value:
        raise ValueError("PostgreSQL refuses NUL in text")
    return value


_PARSERS = {"int": _int, "date": _date, "datetime": _datetime, "text": _text}
