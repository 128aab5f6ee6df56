"""db.json_loads (how PostgreSQL's JSON values are read): orjson's speed, the standard
library's answer, for any JSON text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from clientpay_connect.db import json_loads

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0, but not as JSON's answer)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(VALUES, st.booleans())
def test_the_answer_is_the_standard_librarys(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    assert same(json_loads(text), json.loads(text))


def test_what_orjson_alone_would_read_otherwise():
    for text in (
        b"18446744073709551616",  # beyond 64 bits: orjson makes a float of it
        b"-9223372036854775809",
        b'{"id": 123456789012345678901234567890}',
        b"[NaN, Infinity, -Infinity]",  # orjson refuses these
        b"1e400",
        b'{"a": 1, "a": 2}',
    ):
        expected = json.loads(text)
        answer = json_loads(text)
        assert repr(answer) == repr(expected), text
