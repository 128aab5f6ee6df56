"""MyCase's JSON records as the interface's data: the one place amounts, dates and ids are
converted (amounts are JSON numbers in major units there, integer minor units here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from clientpay_connect.connect.interfaces import (
    ACCOUNT_OPERATING,
    ACCOUNT_TRUST,
    Client,
    Invoice,
    Matter,
    PostingRequest,
)
from clientpay_connect.money import format_amount, minor_units

Json = Mapping[str, Any]

# A payment in these states did not happen; any other (success, pending, timeout) may have,
# and is never written a second time.
PAYMENT_NOT_WRITTEN = frozenset({"failure", "error"})


def ref_id(value: object) -> str:
    """The id of a nested reference (``{"id": 7}``) as a string; "" when there is none."""
    if isinstance(value, Mapping) and value.get("id") is not None:
        return str(value["id"])
    return ""


def parse_date(value: object) -> dt.date | None:
    """MyCase's ISO 8601 dates; a timestamp's date part (MyCase writes them in UTC)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def client_name(raw: Json) -> str:
    parts = (raw.get("first_name"), raw.get("middle_name"), raw.get("last_name"))
    return " ".join(str(p).strip() for p in parts if p and str(p).strip())


def client_from(raw: Json) -> Client:
    return Client(id=str(raw["id"]), name=client_name(raw), email=str(raw.get("email") or ""))


def primary_client_id(case: Json) -> str:
    """The client a case's invoices belong to: its billing contact when that is one of its
    clients (it may be a company, which this adapter does not read), else its first client."""
    client_ids = [ref_id(c) for c in case.get("clients") or [] if ref_id(c)]
    billing = ref_id(case.get("billing_contact"))
    if billing and billing in client_ids:
        return billing
    return client_ids[0] if client_ids else ""


def matter_from(case: Json) -> Matter:
    return Matter(
        id=str(case["id"]),
        number=str(case.get("case_number") or ""),
        name=str(case.get("name") or ""),
        client_id=primary_client_id(case),
    )


def invoice_from(raw: Json, client_of_case: Mapping[str, str], currency: str) -> Invoice:
    total = minor_units(raw.get("total_amount") or 0, currency)
    paid = minor_units(raw.get("paid_amount") or 0, currency)
    balance = max(total - paid, 0)
    account_type = ref_account_type(raw.get("bank_account"))
    matter_id = ref_id(raw.get("case"))
    return Invoice(
        id=str(raw["id"]),
        number=str(raw.get("invoice_number") or ""),
        client_id=client_of_case.get(matter_id, ""),
        matter_id=matter_id,
        issued_on=parse_date(raw.get("invoice_date")),
        due_on=parse_date(raw.get("due_date")),
        currency=currency,
        total=total,
        paid=paid,
        balance=balance,
        account=ACCOUNT_TRUST if account_type == "trust" else ACCOUNT_OPERATING,
        state="paid" if balance == 0 or raw.get("status") == "paid" else "open",
        version=str(raw.get("updated_at") or ""),
    )


def ref_account_type(bank_account: object) -> str:
    if isinstance(bank_account, Mapping):
        return str(bank_account.get("account_type") or "").strip().lower()
    return ""


def is_payable(raw: Json) -> bool:
    """An invoice staff may ask a client to pay: issued (not a draft) with a balance."""
    return raw.get("status") != "draft"


def key_marker(key: str) -> str:
    """What a payment's notes carry so that it can be found again: MyCase takes no
    idempotency key. Bracketed, so that key "p-1" is never found inside "[clientpay:p-10]"."""
    return f"[clientpay:{key}]"


def payment_notes(posting: PostingRequest) -> str:
    said = ["ClientPay"]
    if posting.reference:
        said.append(f"receipt {posting.reference}")
    if posting.method:
        said.append(posting.method)
    if posting.payer_name:
        said.append(f"paid by {posting.payer_name}")
    return f"{' · '.join(said)} {key_marker(posting.key)}"


def payment_body(posting: PostingRequest, amount: int) -> dict[str, Any]:
    return {
        # MyCase takes a JSON number; a float's repr of "1234.50" is exactly 1234.5.
        "amount": float(format_amount(amount, posting.currency)),
        "date": posting.received_on.isoformat(),
        "notes": payment_notes(posting),
    }


def payment_written(raw: Json, key: str, invoice_id: str) -> bool:
    """Whether ``raw`` is this posting's payment to this invoice, and counts as made."""
    paid_invoice = ref_id(raw.get("invoice"))
    return (
        key_marker(key) in str(raw.get("notes") or "")
        and paid_invoice in ("", invoice_id)
        and str(raw.get("status") or "").lower() not in PAYMENT_NOT_WRITTEN
    )
