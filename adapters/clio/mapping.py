"""Clio's records → our data (clientpay_connect.connect.interfaces), and the fields we ask for.

Clio answers only ``id`` and ``etag`` unless ``fields=`` names more, so each listing names
exactly what the mapping reads; nested resources are one level deep (Clio refuses a second).
Amounts arrive as JSON numbers (doubles) and become integer minor units here, once
(``money.minor_units``: through the float's shortest decimal text, never its binary value).

Trust: Clio's bills tell. ``kind`` is ``trust_kind`` for a trust request (money asked into
trust) and ``destination_account.type`` is ``Trust`` when the bill's payment goes to a trust
bank account; either makes the invoice a trust invoice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from clientpay_connect.connect.interfaces import (
    ACCOUNT_OPERATING,
    ACCOUNT_TRUST,
    Account,
    Client,
    Invoice,
    Matter,
    Permanent,
)
from clientpay_connect.money import AmountError, minor_units

CONTACT_FIELDS = "id,etag,name,primary_email_address"
# A matter's and a bill's client and matters come with what the search shows of them, so a
# result names every client and matter it refers to without another call.
MATTER_FIELDS = "id,etag,display_number,description,client{id,name,primary_email_address}"
BILL_FIELDS = (
    "id,etag,number,issued_at,due_at,total,paid,balance,state,kind,"
    "client{id,name,primary_email_address},matters{id,display_number,description},"
    "currency{code},destination_account{type}"
)


class UnexpectedAnswer(Permanent):
    """Clio answered 2xx with something we cannot read (a field missing, a bad number)."""


def to_minor(value: Any, currency: str) -> int:
    try:
        return minor_units(value if value is not None else 0, currency)
    except AmountError as exc:
        raise UnexpectedAnswer(f"Clio sent {value!r} as an amount") from exc


def to_date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise UnexpectedAnswer(f"Clio sent {value!r} as a date") from exc


def to_client(record: Mapping[str, Any]) -> Client:
    return Client(
        id=str(record["id"]),
        name=record.get("name") or "",
        email=record.get("primary_email_address") or "",
    )


def to_matter(record: Mapping[str, Any], client_id: str = "") -> Matter:
    """A matter listed on its own (its ``client`` nested) or nested in a bill (whose client
    is the matter's: ``client_id``)."""
    client = record.get("client") or {}
    return Matter(
        id=str(record["id"]),
        number=record.get("display_number") or "",
        name=record.get("description") or "",
        client_id=str(client.get("id", client_id)),
    )


def to_invoice(record: Mapping[str, Any], default_currency: str) -> Invoice:
    currency = ((record.get("currency") or {}).get("code") or default_currency).upper()
    client = record.get("client") or {}
    matters = record.get("matters") or []
    balance = to_minor(record.get("balance"), currency)
    return Invoice(
        id=str(record["id"]),
        number=record.get("number") or "",
        client_id=str(client.get("id", "")),
        # A client bill may span several matters; the first stands for the bill.
        matter_id=str(matters[0]["id"]) if matters else "",
        issued_on=to_date(record.get("issued_at")),
        due_on=to_date(record.get("due_at")),
        currency=currency,
        total=to_minor(record.get("total"), currency),
        paid=to_minor(record.get("paid"), currency),
        balance=balance,
        account=account_of(record),
        state=state_of(record.get("state"), balance),
        version=record.get("etag") or "",
    )


def account_of(record: Mapping[str, Any]) -> Account:
    destination = (record.get("destination_account") or {}).get("type")
    if record.get("kind") == "trust_kind" or destination == "Trust":
        return ACCOUNT_TRUST
    return ACCOUNT_OPERATING


def state_of(clio_state: Any, balance: int) -> Any:
    """Only an issued bill awaiting payment with money still owed is open; a paid bill is
    paid; draft, awaiting approval, void and deleted bills cannot take a payment (void)."""
    if clio_state == "awaiting_payment":
        return "open" if balance > 0 else "paid"
    if clio_state == "paid":
        return "paid"
    return "void"


def due_order(invoice: Invoice) -> tuple[dt.date, dt.date, str, str]:
    """Oldest due first; no due date sorts last; then issued, number, id for a stable order."""
    return (
        invoice.due_on or dt.date.max,
        invoice.issued_on or dt.date.max,
        invoice.number,
        invoice.id,
    )
