"""Money as integer minor units plus an ISO currency; never floats.

``parse_amount`` reads what people type ("1234.5", "$1,234.50", "1 234,50"); ``format_amount``
writes the API's decimal string ("1234.50"); ``allocate`` splits an amount by weights with the
largest-remainder method, so the parts always add up to the whole.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Minor digits per currency (ISO 4217). Currencies not listed have two.
MINOR_DIGITS: dict[str, int] = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "JOD": 3}
CURRENCY_SYMBOLS = "$€£¥"
MAX_AMOUNT_MINOR = 10**13  # ten billion in a two-digit currency: beyond any invoice


class AmountError(ValueError):
    """The text is not an amount we accept; the message says why, for the person who typed it."""


def minor_digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency.upper(), 2)


def _normalize(text: str) -> str:
    """Strip currency signs and grouping; return a plain "1234.50" style number.

    The rule: spaces, apostrophes and the currency sign are dropped. When both "," and "."
    appear, the one that comes last is the decimal separator. A lone "," followed by exactly
    one or two digits at the end is a decimal separator ("1 234,50"); otherwise it groups
    thousands ("1,234").
    """
    cleaned = text.strip()
    for symbol in CURRENCY_SYMBOLS:
        cleaned = cleaned.replace(symbol, "")
    cleaned = re.sub(
        r"^(USD|CAD|EUR|GBP|AUD)\s*|\s*(USD|CAD|EUR|GBP|AUD)$", "", cleaned, flags=re.I
    )
    cleaned = re.sub(r"[\s\u00a0\u202f']", "", cleaned)
    if "," in cleaned and "." in cleaned:
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    elif "," in cleaned:
        if re.fullmatch(r"-?\d+,\d{1,2}", cleaned):
            cleaned = cleaned.replace(",", ".")
        elif re.fullmatch(r"-?\d{1,3}(,\d{3})+", cleaned):
            cleaned = cleaned.replace(",", "")
        else:
            raise AmountError(f"{text.strip()!r} is not an amount")
    return cleaned


def parse_amount(text: str, currency: str = "USD") -> int:
    """The amount in minor units. Raises AmountError for zero, negative or too many decimals."""
    if text is None or not str(text).strip():
        raise AmountError("Enter an amount.")
    normalized = _normalize(str(text))
    if not re.fullmatch(r"-?\d+(\.\d*)?|-?\.\d+", normalized):
        raise AmountError(f"{str(text).strip()!r} is not an amount.")
    try:
        value = Decimal(normalized)
    except InvalidOperation as exc:
        raise AmountError(f"{str(text).strip()!r} is not an amount.") from exc
    digits = minor_digits(currency)
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > digits:
        raise AmountError(f"An amount in {currency} has at most {digits} decimals.")
    if value <= 0:
        raise AmountError("The amount must be more than zero.")
    minor = int(value.scaleb(digits))
    if minor > MAX_AMOUNT_MINOR:
        raise AmountError("That amount is too large.")
    return minor


def minor_units(value: object, currency: str = "USD") -> int:
    """A vendor's amount (a JSON number, a decimal string or an integer, in major units) in
    minor units, rounded half up to the currency's digits. Unlike ``parse_amount`` (what people
    type), zero and negative amounts pass: a vendor reports unpaid and credited invoices too.
    """
    if value is None or isinstance(value, bool):
        raise AmountError(f"{value!r} is not an amount")
    try:
        # str() first: a float's shortest repr ("1234.1") is the number the vendor meant,
        # where Decimal(1234.1) would carry the binary error into the rounding.
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise AmountError(f"{value!r} is not an amount") from exc
    if not number.is_finite():
        raise AmountError(f"{value!r} is not an amount")
    scaled = number.scaleb(minor_digits(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_amount(minor: int, currency: str = "USD") -> str:
    """Minor units as the API's decimal string: 123450 → "1234.50", -5 → "-0.05"."""
    return amount_writer(currency)(minor)


@functools.lru_cache(maxsize=64)
def amount_writer(currency: str) -> Callable[[int], str]:
    """format_amount for one currency, its digits looked up once: a page of links writes
    three amounts a link, most of them nothing paid and nothing refunded.

    The integer's digits with the point put in, rather than through Decimal
    (tests/unit/test_api_values.py holds this to Decimal's answer)."""
    digits = minor_digits(currency)
    if not digits:
        return str
    zero = "0." + "0" * digits

    def write(minor: int) -> str:
        if not minor:
            return zero
        if minor < 0:
            return "-" + write(-minor)
        text = str(minor).rjust(digits + 1, "0")
        return f"{text[:-digits]}.{text[-digits:]}"

    return write


def display_amount(minor: int, currency: str = "USD") -> str:
    """For people: "$1,234.50" (USD, CAD, AUD), else "1,234.50 EUR"."""
    digits = minor_digits(currency)
    number = f"{Decimal(minor).scaleb(-digits):,.{digits}f}"
    symbols = {"USD": "$", "CAD": "$", "AUD": "$", "GBP": "£", "EUR": "€"}
    symbol = symbols.get(currency.upper())
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder); parts sum to total."""
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("allocate takes non-negative amounts")
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0 for _ in weights]
    shares = [total * w // weight_sum for w in weights]
    remainders = [(total * w % weight_sum, -i) for i, w in enumerate(weights)]
    leftover = total - sum(shares)
    for _remainder, negative_index in sorted(remainders, reverse=True)[:leftover]:
        shares[-negative_index] += 1
    return shares
