"""The API's amounts and timestamps: the quick ways links are formatted give exactly what
the general ways give (Decimal for amounts; astimezone and isoformat for timestamps)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given
from hypothesis import strategies as st

from clientpay_connect.api.plain_json import OPTIONS
from clientpay_connect.links.services import in_utc, timestamp_json
from clientpay_connect.money import MINOR_DIGITS, format_amount, minor_digits

CURRENCIES = st.one_of(
    st.sampled_from([*MINOR_DIGITS, "USD", "EUR", "GBP", "jpy", "kwd"]),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
)
# Well past any amount (MAX_AMOUNT_MINOR is 10**13), within Decimal's 28 digits.
MINOR = st.integers(min_value=-(10**20), max_value=10**20)
UTC_ZONES = [dt.UTC, dt.timezone(dt.timedelta(0)), ZoneInfo("UTC"), ZoneInfo("Etc/UTC")]
# Zero offset in winter only, and zones never at zero: the quick way and the general one.
OTHER_ZONES = [
    ZoneInfo("Europe/London"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kolkata"),
    dt.timezone(dt.timedelta(hours=-5, minutes=-30)),
]
# Away from the ends of the calendar, where astimezone itself overflows.
TIMESTAMPS = st.datetimes(
    min_value=dt.datetime(2, 1, 1),
    max_value=dt.datetime(9998, 12, 31),
    timezones=st.sampled_from(UTC_ZONES + OTHER_ZONES),
)


def decimal_amount(minor: int, currency: str) -> str:
    digits = minor_digits(currency)
    return str(Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)))


def general_timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@given(MINOR, CURRENCIES)
def test_an_amount_is_formatted_as_decimal_formats_it(minor, currency):
    assert format_amount(minor, currency) == decimal_amount(minor, currency)


@given(st.integers(min_value=0, max_value=10**4), st.sampled_from(["USD", "JPY", "KWD"]))
def test_small_amounts_keep_their_leading_zeros(minor, currency):
    # Below one unit, the amounts whose digits the quick way has to pad.
    assert format_amount(minor, currency) == decimal_amount(minor, currency)


def test_amounts_by_their_currencys_digits():
    assert format_amount(5, "USD") == "0.05"
    assert format_amount(-123450, "usd") == "-1234.50"
    assert format_amount(5, "JPY") == "5"
    assert format_amount(5, "KWD") == "0.005"


@given(TIMESTAMPS)
def test_a_timestamp_is_written_as_isoformat_writes_it_in_utc(value):
    assert timestamp_json(value) == general_timestamp(value)


def test_timestamps_in_utc_and_elsewhere():
    moment = dt.datetime(2025, 3, 31, 19, 4, 5, 999_999, tzinfo=dt.UTC)
    assert timestamp_json(moment) == "2025-03-31T19:04:05Z"
    assert timestamp_json(moment.astimezone(ZoneInfo("America/New_York"))) == (
        "2025-03-31T19:04:05Z"
    )
    assert timestamp_json(dt.datetime(9, 1, 2, tzinfo=ZoneInfo("Etc/UTC"))) == (
        "0009-01-02T00:00:00Z"
    )
    assert timestamp_json(None) is None


@given(TIMESTAMPS)
def test_orjson_writes_a_timestamp_in_utc_as_timestamp_json_writes_it(value):
    # The list of links leaves its timestamps to orjson (links.services.link_values).
    assert orjson.dumps(in_utc(value), option=OPTIONS) == orjson.dumps(timestamp_json(value))


@given(st.dates(min_value=dt.date(1, 1, 1)))
def test_orjson_writes_a_date_as_isoformat_writes_it(value):
    assert orjson.dumps(value, option=OPTIONS) == orjson.dumps(value.isoformat())


def test_in_utc_keeps_a_utc_timestamp_and_moves_any_other():
    moment = dt.datetime(2025, 3, 31, 19, 4, 5, tzinfo=ZoneInfo("Etc/UTC"))
    assert in_utc(moment) is moment
    elsewhere = moment.astimezone(ZoneInfo("America/New_York"))
    assert in_utc(elsewhere) == moment and in_utc(elsewhere).utcoffset() == dt.timedelta(0)
    assert in_utc(None) is None
