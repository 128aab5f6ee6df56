"""Rows of the matter database as the adapter's data, and back: money, dates, codes, ids."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Row

from adapters.sql.mapping import SchemaMapping
from adapters.sql.tables import as_date
from clientpay_connect.connect.interfaces import (
    ACCOUNT_OPERATING,
    ACCOUNT_TRUST,
    Client,
    Invoice,
    Matter,
)
from clientpay_connect.money import minor_digits

INVOICE_FIELDS = (
    "id",
    "number",
    "client_id",
    "matter_id",
    "issued_on",
    "due_on",
    "currency",
    "total",
    "paid",
    "balance",
    "account",
    "state",
    "version",
)


class Converter:
    """Reads rows selected with our column names as labels (``MappedTable.labelled``)."""

    def __init__(self, mapping: SchemaMapping):
        self.mapping = mapping
        # The database's codes -> ours.
        self._states = {code: ours for ours, code in mapping.values["state"].items()}
        self._trust_code = mapping.value("account", "trust")

    def to_minor(self, value: Any, currency: str) -> int:
        if value is None:
            return 0
        if self.mapping.amounts_in == "minor":
            return int(value)
        scaled = Decimal(str(value)).scaleb(minor_digits(currency))
        return int(scaled.to_integral_value(rounding=ROUND_HALF_UP))

    def from_minor(self, amount: int, currency: str) -> int | Decimal:
        if self.mapping.amounts_in == "minor":
            return amount
        return Decimal(amount).scaleb(-minor_digits(currency))

    # Rows come in lists from one statement: their field names are read once per list, which
    # costs a fifth of building each row's dict from its own names (Row._asdict).

    def clients(self, rows: Sequence[Row[Any]]) -> list[Client]:
        return [self.client(values) for values in _as_dicts(rows)]

    def matters(self, rows: Sequence[Row[Any]]) -> list[Matter]:
        return [self.matter(values) for values in _as_dicts(rows)]

    def invoices(self, rows: Sequence[Row[Any]]) -> list[Invoice]:
        return [self.invoice(values) for values in _as_dicts(rows)]

    def client(self, values: Mapping[str, Any]) -> Client:
        return Client(id=str(values["id"]), name=values["name"] or "", email=_text(values, "email"))

    def matter(self, values: Mapping[str, Any]) -> Matter:
        return Matter(
            id=str(values["id"]),
            number=str(values["number"] or ""),
            name=values["name"] or "",
            client_id=str(values["client_id"]),
        )

    def invoice(self, values: Mapping[str, Any]) -> Invoice:
        currency = (_text(values, "currency") or self.mapping.currency).upper()
        total = self.to_minor(values["total"], currency)
        balance = self.to_minor(values["balance"], currency)
        paid = self.to_minor(values["paid"], currency) if "paid" in values else total - balance
        return Invoice(
            id=str(values["id"]),
            number=str(values["number"] or ""),
            client_id=str(values["client_id"]),
            matter_id=str(values["matter_id"]),
            issued_on=as_date(values.get("issued_on")),
            due_on=as_date(values.get("due_on")),
            currency=currency,
            total=total,
            paid=paid,
            balance=balance,
            account=self.account(values.get("account")),
            state=self.state(values.get("state"), balance, "state" in values),
            version=_text(values, "version"),
        )

    def account(self, code: Any) -> Any:
        return ACCOUNT_TRUST if str(code) == self._trust_code else ACCOUNT_OPERATING

    def state(self, code: Any, balance: int, mapped: bool) -> Any:
        """Our state for the database's code; where there is no state column (or a code the
        mapping does not know), the balance decides: open while something is owed."""
        ours = self._states.get(str(code)) if mapped else None
        if ours is None:
            return "open" if balance > 0 else "paid"
        return ours


def _as_dicts(rows: Sequence[Row[Any]]) -> Iterator[dict[str, Any]]:
    if not rows:
        return
    fields = rows[0]._fields
    for row in rows:
        yield dict(zip(fields, row, strict=True))


def _text(values: Any, name: str) -> str:
    value = values.get(name)
    return "" if value is None else str(value)
