"""Vendors' amounts (JSON numbers, decimal strings) to integer minor units, once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientpay_connect.money import AmountError, minor_units


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (0.29, "USD", 29),
        (1234.5, "USD", 123450),
        ("1234.56", "USD", 123456),
        (0, "USD", 0),
        ("-12.30", "USD", -1230),
        (100, "JPY", 100),
        ("1.2345", "KWD", 1235),
        ("0.005", "USD", 1),
    ],
)
def test_minor_units(value, currency, expected):
    assert minor_units(value, currency) == expected


@pytest.mark.parametrize("value", [None, True, "", "abc", "NaN", "Infinity", float("inf")])
def test_what_is_not_an_amount(value):
    with pytest.raises(AmountError):
        minor_units(value)


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_a_json_number_of_cents_comes_back_exactly(cents):
    # The vendor's float for "123.45" is not 123.45 in binary; its cents must still be exact.
    as_float = float(Decimal(cents).scaleb(-2))
    assert minor_units(as_float) == cents
    assert minor_units(str(Decimal(cents).scaleb(-2))) == cents
