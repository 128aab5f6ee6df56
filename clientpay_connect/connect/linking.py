"""Making one link for several invoices of the matter system (Connect).

Balances are read again from the matter system when the link is made, not taken from the
page: an invoice paid elsewhere since the search must not be asked for twice. One set of
rules serves the API and the Connect page; every problem is reported at once, on the field
it concerns (``invoices.<index>.amount``), as Quick Link does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import KIND_TRUST, MerchantAccount
from clientpay_connect.connect.allocation import AllocationError, Owed, allocate_oldest_due_first
from clientpay_connect.connect.interfaces import ACCOUNT_TRUST, Invoice
from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.links.forms import LinkInput, check_link_input
from clientpay_connect.links.models import SOURCE_CONNECT, PaymentLink
from clientpay_connect.links.services import NewLink
from clientpay_connect.money import AmountError, format_amount, parse_amount

MAX_INVOICE_LABEL = 100
TRUST_NOT_ALLOCATED = "Trust money is never allocated for you: type each invoice's amount."
FieldError = dict[str, str]


@dataclass
class ConnectInput:
    """What was sent, as sent (strings or None), from the page or a JSON body."""

    merchant_account_id: Any = None
    invoices: list[dict[str, Any]] = field(default_factory=list)
    amount: Any = None
    payer_name: Any = ""
    emails: list[Any] = field(default_factory=list)
    message: Any = ""
    send_email: bool = False
    due_date: Any = None
    locale: Any = "en"
    # The page's "type each amount" choice: every invoice needs its own amount, and a blank
    # one is an error on that invoice (never a switch to allocating a total).
    each_typed: bool = False


@dataclass(frozen=True)
class Names:
    """The client and matter names to keep beside each invoice (for pages and emails)."""

    clients: dict[str, str] = field(default_factory=dict)
    matters: dict[str, str] = field(default_factory=dict)


@dataclass
class Planned:
    """A checked Connect link: the link's details and each invoice with its amount."""

    new: NewLink
    invoices: list[tuple[Invoice, int]]


class Refused(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__("the Connect link was refused")
        self.errors = errors


def requested_ids(data: ConnectInput) -> list[str]:
    return [str(entry.get("id", "")).strip() for entry in data.invoices]


def firm_account(dbsession: Session, firm_id: int, value: Any) -> MerchantAccount | None:
    text = "" if value is None else str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 2**31:
        return None
    return dbsession.execute(
        select(MerchantAccount).where(
            MerchantAccount.id == int(text),
            MerchantAccount.firm_id == firm_id,
            MerchantAccount.active.is_(True),
        )
    ).scalar_one_or_none()


def plan_connect_link(
    dbsession: Session, firm_id: int, data: ConnectInput, found: Sequence[Invoice], names: Names
) -> Planned:
    """Check ``data`` against the invoices as the matter system holds them now (``found``)."""
    errors: list[FieldError] = []
    account = firm_account(dbsession, firm_id, data.merchant_account_id)
    chosen = _chosen_invoices(data, found, account, errors)
    parts = _amounts(data, chosen, account, errors) if chosen else None
    total = sum(parts) if parts else None
    details = check_link_input(
        dbsession,
        firm_id,
        LinkInput(
            merchant_account_id=data.merchant_account_id,
            amount=format_amount(total, account.currency if account else "USD") if total else "1",
            invoice_number=invoice_label([invoice.number for invoice in chosen]),
            due_date=data.due_date or _earliest_due(chosen),
            recipient_name=(str(data.payer_name or "").strip() or _client_name(chosen, names)),
            message=data.message,
            emails=list(data.emails),
            send_email=data.send_email,
            locale=data.locale,
        ),
    )
    errors.extend(e for e in details.errors if e["field"] != "amount" or total is not None)
    if errors or details.new is None or parts is None:
        raise Refused(errors)
    details.new.source = SOURCE_CONNECT
    return Planned(details.new, list(zip(chosen, parts, strict=True)))


def _chosen_invoices(
    data: ConnectInput,
    found: Sequence[Invoice],
    account: MerchantAccount | None,
    errors: list[FieldError],
) -> list[Invoice]:
    if not data.invoices:
        errors.append({"field": "invoices", "message": "Choose at least one invoice."})
        return []
    by_id = {invoice.id: invoice for invoice in found}
    ids = requested_ids(data)
    chosen = []
    for index, invoice_id in enumerate(ids):
        where = f"invoices.{index}.id"
        invoice = by_id.get(invoice_id)
        if ids.index(invoice_id) != index:
            errors.append({"field": where, "message": "This invoice is chosen twice."})
        elif invoice is None:
            errors.append({"field": where, "message": "The matter system has no such invoice."})
        elif invoice.state != "open" or invoice.balance <= 0:
            errors.append(
                {"field": where, "message": f"Invoice {invoice.number} has nothing left to pay."}
            )
        else:
            chosen.append(invoice)
    if chosen and account is not None:
        _check_accounts(chosen, account, errors)
    return chosen if len(chosen) == len(ids) else []


def _check_accounts(
    chosen: list[Invoice], account: MerchantAccount, errors: list[FieldError]
) -> None:
    currencies = {invoice.currency.upper() for invoice in chosen}
    if currencies != {account.currency.upper()}:
        errors.append(
            {
                "field": "merchant_account_id",
                "message": f"The invoices are in {', '.join(sorted(currencies))}; "
                f"this merchant account takes {account.currency}.",
            }
        )
    # Trust money and operating money never share an account: a trust invoice is paid into
    # a trust account, and an operating one into an operating account.
    trust = {invoice.account == ACCOUNT_TRUST for invoice in chosen}
    if len(trust) > 1:
        errors.append(
            {"field": "invoices", "message": "Send trust and operating invoices in separate links."}
        )
    elif trust != {account.kind == KIND_TRUST}:
        kind = "trust" if True in trust else "operating"
        errors.append(
            {
                "field": "merchant_account_id",
                "message": f"These are {kind} invoices: choose a {kind} merchant account.",
            }
        )


def _amounts(
    data: ConnectInput,
    chosen: list[Invoice],
    account: MerchantAccount | None,
    errors: list[FieldError],
) -> list[int] | None:
    currency = account.currency if account else "USD"
    typed = [entry.get("amount") not in (None, "") for entry in data.invoices]
    if data.each_typed or all(typed):
        return _typed_amounts(data, chosen, currency, errors)
    if any(typed):
        errors.append(
            {"field": "amount", "message": "Type an amount for every invoice, or for none."}
        )
        return None
    if not may_allocate(account):
        errors.append({"field": "amount", "message": TRUST_NOT_ALLOCATED})
        return None
    try:
        total = parse_amount("" if data.amount is None else str(data.amount), currency)
        owed = [Owed(i.id, i.balance, i.due_on, i.issued_on) for i in chosen]
        return allocate_oldest_due_first(total, owed)
    except (AmountError, AllocationError) as error:
        errors.append({"field": "amount", "message": str(error)})
        return None


def may_allocate(account: MerchantAccount | None) -> bool:
    """Whether a total may be spread over invoices for this account: never for trust money,
    which is applied to the invoices the client names."""
    return account is None or account.kind != KIND_TRUST


def _typed_amounts(
    data: ConnectInput, chosen: list[Invoice], currency: str, errors: list[FieldError]
) -> list[int] | None:
    parts: list[int] = []
    for index, (entry, invoice) in enumerate(zip(data.invoices, chosen, strict=True)):
        where = f"invoices.{index}.amount"
        try:
            amount = parse_amount(str(entry.get("amount") or ""), currency)
        except AmountError as error:
            errors.append({"field": where, "message": str(error)})
            continue
        if amount > invoice.balance:
            errors.append(
                {
                    "field": where,
                    "message": f"Invoice {invoice.number} owes "
                    f"{format_amount(invoice.balance, currency)}; ask for at most that.",
                }
            )
            continue
        parts.append(amount)
    return parts if len(parts) == len(chosen) else None


def invoice_label(numbers: list[str]) -> str:
    """The link's one invoice-number field: every number when they fit, else a count."""
    joined = ", ".join(numbers)
    if len(joined) <= MAX_INVOICE_LABEL:
        return joined
    first = numbers[0][: MAX_INVOICE_LABEL - 20]
    return f"{first} + {len(numbers) - 1} more"


def _earliest_due(chosen: list[Invoice]) -> str | None:
    dates = [invoice.due_on for invoice in chosen if invoice.due_on is not None]
    return min(dates).isoformat() if dates else None


def _client_name(chosen: list[Invoice], names: Names) -> str:
    clients = {names.clients.get(invoice.client_id, "") for invoice in chosen}
    return clients.pop() if len(clients) == 1 else ""


def record_link_invoices(
    dbsession: Session, link: PaymentLink, planned: Planned, names: Names
) -> list[LinkInvoice]:
    rows = [
        LinkInvoice(
            firm_id=link.firm_id,
            link_id=link.id,
            position=position,
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            client_id=invoice.client_id,
            client_name=names.clients.get(invoice.client_id, "")[:200],
            matter_id=invoice.matter_id,
            matter_name=names.matters.get(invoice.matter_id, "")[:300],
            issued_on=invoice.issued_on,
            due_on=invoice.due_on,
            account=invoice.account,
            balance_minor=invoice.balance,
            amount_minor=amount,
        )
        for position, (invoice, amount) in enumerate(planned.invoices)
    ]
    dbsession.add_all(rows)
    dbsession.flush()
    return rows


def link_invoices(dbsession: Session, link_id: int) -> list[LinkInvoice]:
    return list(
        dbsession.execute(
            select(LinkInvoice).where(LinkInvoice.link_id == link_id).order_by(LinkInvoice.position)
        ).scalars()
    )


def link_invoices_json(rows: list[LinkInvoice], currency: str) -> list[dict[str, Any]]:
    return [
        {
            "id": row.invoice_id,
            "number": row.invoice_number,
            "amount": format_amount(row.amount_minor, currency),
            "client_name": row.client_name,
            "matter_name": row.matter_name,
            "due_on": row.due_on.isoformat() if row.due_on else None,
            "account": row.account,
        }
        for row in rows
    ]


def is_past_due(invoice: Invoice, today: dt.date) -> bool:
    return invoice.due_on is not None and invoice.due_on < today
