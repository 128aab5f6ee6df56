"""The list cursor: what goes in comes back out, for every kind of sort value; and it is
URL-safe text that says nothing a client should rely on."""

from __future__ import annotations

import datetime as dt

import pytest

from clientpay_connect.sent.cursor import CursorError, decode_cursor, encode_cursor

VALUES = [
    ("int", 123_450),
    ("int", 0),
    ("date", dt.date(2025, 3, 31)),
    ("datetime", dt.datetime(2025, 3, 1, 15, 30, 0, 123_456, tzinfo=dt.UTC)),
    ("text", "inv-00?/+ ünïcode"),
    ("text", None),
    ("date", None),
]


@pytest.mark.parametrize(("kind", "value"), VALUES)
def test_a_cursor_gives_back_what_it_was_made_of(kind, value):
    token = encode_cursor("-field", kind, value, 42)

    cursor = decode_cursor(token, "-field", kind)

    assert (cursor.sort, cursor.value, cursor.id, cursor.token) == ("-field", value, 42, token)


@pytest.mark.parametrize(("kind", "value"), VALUES)
def test_a_cursor_is_url_safe_without_padding(kind, value):
    token = encode_cursor("field", kind, value, 2**31 - 1)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_timestamp_in_another_zone_comes_back_as_the_same_instant_in_utc():
    eastern = dt.timezone(dt.timedelta(hours=-5))
    value = dt.datetime(2025, 3, 1, 10, 30, tzinfo=eastern)

    cursor = decode_cursor(encode_cursor("s", "datetime", value, 1), "s", "datetime")

    assert cursor.value == value and cursor.value.tzinfo == dt.UTC


def test_a_cursor_of_another_sort_is_refused():
    token = encode_cursor("amount", "int", 5, 1)
    with pytest.raises(CursorError, match="another sort"):
        decode_cursor(token, "-amount", "int")


def test_booleans_are_not_ids_or_amounts():
    # JSON true is a Python int subclass; a cursor we made never holds one.
    token = encode_cursor("amount", "int", True, 1)
    with pytest.raises(CursorError):
        decode_cursor(token, "amount", "int")
