"""The Connect page's form: what was typed, the search results grouped the way staff read
them (client, then matter, then its open invoices), where each error goes, and the preview of
how much each ticked invoice is asked for.

No rules live here: the link is checked by ``linking.plan_connect_link`` and a total is split
by ``allocation.allocate_oldest_due_first``; this module only turns the page's fields into
their inputs and their answers back into the page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clientpay_connect.connect.allocation import (
    AllocationError,
    Owed,
    allocate_oldest_due_first,
)
from clientpay_connect.connect.interfaces import Invoice, SearchResult
from clientpay_connect.connect.linking import (
    TRUST_NOT_ALLOCATED,
    ConnectInput,
    FieldError,
    is_past_due,
)
from clientpay_connect.money import AmountError, display_amount, format_amount, parse_amount

# How the amounts are given: one per ticked invoice, or one total spread oldest due first.
EACH = "each"
TOTAL = "total"
# The page's field names for one invoice (the vendor's id follows the colon).
AMOUNT_FIELD = "invoice_amount:"
OWED_FIELD = "owed:"
# Where an error of a field that has no input on the page is shown (and linked to).
FORM_ANCHOR = "connect-form"
RESULTS_ANCHOR = "connect-results"
FIELD_LABELS = {
    "merchant_account_id": "Merchant account",
    "amount": "Total to allocate",
    "invoices": "Invoices",
    "recipient_name": "Payer's name",
    "emails": "Email address",
    "message": "Message to payer",
    "locale": "Language",
    "due_date": "Due date",
    "invoice_number": "Invoice numbers",
}


def dom_key(invoice_id: str) -> str:
    """A safe HTML id for a vendor's invoice id (which may hold any character)."""
    return hashlib.sha256(invoice_id.encode("utf-8")).hexdigest()[:12]


def amount_anchor(invoice_id: str) -> str:
    return f"amount-{dom_key(invoice_id)}"


@dataclass
class ConnectForm:
    """The page's form as shown: values as typed, ticked invoices, errors by field.

    Errors of one invoice are kept under ``invoice:<id>``, the others under the field's name.
    """

    values: dict[str, str]
    chosen: list[str] = field(default_factory=list)
    amounts: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, merchant_account_id: str = "") -> ConnectForm:
        return cls(
            values={
                "merchant_account_id": merchant_account_id,
                "allocation": EACH,
                "amount": "",
                "recipient_name": "",
                "emails": "",
                "message": "",
                "locale": "en",
                "send_email": "yes",
            }
        )

    @classmethod
    def posted(cls, params: Any) -> ConnectForm:
        form = cls.blank()
        for name in form.values:
            if name in params:
                form.values[name] = str(params.get(name, ""))
        if form.values["allocation"] not in (EACH, TOTAL):
            form.values["allocation"] = EACH
        form.values["send_email"] = "no" if params.get("send_email") == "no" else "yes"
        form.chosen = list(dict.fromkeys(str(i) for i in params.getall("invoice")))
        form.amounts = {
            key[len(AMOUNT_FIELD) :]: str(value)
            for key, value in params.items()
            if key.startswith(AMOUNT_FIELD)
        }
        return form

    @property
    def allocating(self) -> bool:
        return self.values["allocation"] == TOTAL

    def connect_input(self, sending: bool) -> ConnectInput:
        values = self.values
        if self.allocating:
            invoices = [{"id": invoice_id} for invoice_id in self.chosen]
        else:
            invoices = [{"id": i, "amount": self.amounts.get(i, "")} for i in self.chosen]
        # Generate Link leaves out the email half of the form (shown too when scripts are off).
        return ConnectInput(
            merchant_account_id=values["merchant_account_id"],
            invoices=invoices,
            amount=values["amount"] if self.allocating else None,
            payer_name=values["recipient_name"] if sending else "",
            emails=[values["emails"]] if sending else [],
            message=values["message"] if sending else "",
            send_email=sending,
            locale=values["locale"],
            each_typed=not self.allocating,
        )

    def place_errors(self, errors: Sequence[FieldError]) -> None:
        """Put each of the service's errors beside what it concerns."""
        for error in errors:
            name, message = error["field"], error["message"]
            key = self._key(name)
            self.errors[key] = f"{self.errors[key]} {message}" if key in self.errors else message

    def _key(self, name: str) -> str:
        parts = name.split(".")
        if parts[0] == "invoices" and len(parts) == 3 and parts[1].isdigit():
            index = int(parts[1])
            if index < len(self.chosen):
                return f"invoice:{self.chosen[index]}"
        if parts[0] == "emails":
            # One box holds every address; the service names them one by one.
            return "emails"
        return name

    def invoice_error(self, invoice_id: str) -> str | None:
        return self.errors.get(f"invoice:{invoice_id}")

    def amount_value(self, invoice: Invoice) -> str:
        """What the invoice's amount box shows: what was typed, else its balance."""
        typed = self.amounts.get(invoice.id)
        return typed if typed is not None else format_amount(invoice.balance, invoice.currency)

    def summary(self, numbers: Mapping[str, str], shown: set[str]) -> list[tuple[str, str, str]]:
        """(anchor, label, message) for the error summary; an invoice's error links to its
        amount box when the invoice is on the page."""
        items = []
        for key, message in self.errors.items():
            if key.startswith("invoice:"):
                invoice_id = key.split(":", 1)[1]
                anchor = amount_anchor(invoice_id) if invoice_id in shown else RESULTS_ANCHOR
                items.append((anchor, f"Invoice {numbers.get(invoice_id, invoice_id)}", message))
            elif key in FIELD_LABELS:
                anchor = RESULTS_ANCHOR if key == "invoices" else key
                if key in ("due_date", "invoice_number"):
                    anchor = FORM_ANCHOR
                items.append((anchor, FIELD_LABELS[key], message))
            else:
                items.append((FORM_ANCHOR, key, message))
        return items


# The results, grouped.


@dataclass
class InvoiceRow:
    invoice: Invoice
    key: str
    past_due: bool
    checked: bool
    amount: str
    error: str | None

    @property
    def owed(self) -> str:
        """What the preview needs of this invoice, carried in the page (see ``preview``)."""
        invoice = self.invoice
        return "|".join(
            [
                str(invoice.balance),
                invoice.due_on.isoformat() if invoice.due_on else "",
                invoice.issued_on.isoformat() if invoice.issued_on else "",
                invoice.currency,
                invoice.number,
            ]
        )


@dataclass
class MatterGroup:
    id: str
    label: str
    rows: list[InvoiceRow] = field(default_factory=list)


@dataclass
class ClientGroup:
    id: str
    name: str
    email: str
    matters: list[MatterGroup] = field(default_factory=list)

    @property
    def invoice_count(self) -> int:
        return sum(len(matter.rows) for matter in self.matters)


def group_results(result: SearchResult, today: dt.date, form: ConnectForm) -> list[ClientGroup]:
    """Clients in the order found, each with its matters and their open invoices (oldest due
    first, as the adapter gives them). An invoice found by its number whose client or matter
    was not among the matches still shows, under its client's and matter's ids."""
    clients: dict[str, ClientGroup] = {
        c.id: ClientGroup(c.id, c.name, c.email) for c in result.clients
    }
    matters: dict[tuple[str, str], MatterGroup] = {}
    for matter in result.matters:
        client = _client(clients, matter.client_id)
        label = f"{matter.number} {matter.name}".strip() if matter.number else matter.name
        matters[(matter.client_id, matter.id)] = MatterGroup(matter.id, label)
        client.matters.append(matters[(matter.client_id, matter.id)])
    for invoice in result.invoices:
        key = (invoice.client_id, invoice.matter_id)
        if key not in matters:
            matters[key] = MatterGroup(invoice.matter_id, f"Matter {invoice.matter_id}")
            _client(clients, invoice.client_id).matters.append(matters[key])
        matters[key].rows.append(
            InvoiceRow(
                invoice=invoice,
                key=dom_key(invoice.id),
                past_due=is_past_due(invoice, today),
                checked=invoice.id in form.chosen,
                amount=form.amount_value(invoice),
                error=form.invoice_error(invoice.id),
            )
        )
    return list(clients.values())


def _client(clients: dict[str, ClientGroup], client_id: str) -> ClientGroup:
    if client_id not in clients:
        clients[client_id] = ClientGroup(client_id, f"Client {client_id}", "")
    return clients[client_id]


def only_client(groups: list[ClientGroup]) -> ClientGroup | None:
    """The client whose invoices are listed, when there is exactly one."""
    with_invoices = [group for group in groups if group.invoice_count]
    return with_invoices[0] if len(with_invoices) == 1 else None


# The preview of what each ticked invoice is asked for.


@dataclass
class PreviewLine:
    number: str
    balance: str
    amount: str
    left: str
    # Asked for more than it owes (the link will refuse it; the preview says so beside it).
    over: bool = False


@dataclass
class Preview:
    lines: list[PreviewLine] = field(default_factory=list)
    total: str = ""
    problem: str = ""


def preview(form: ConnectForm, params: Any, may_allocate: bool) -> Preview:
    """How much each ticked invoice is asked for, from the balances the page was given (the
    link itself re-reads them from the matter system when it is made)."""
    owed = [_owed(invoice_id, params.get(OWED_FIELD + invoice_id)) for invoice_id in form.chosen]
    known = [item for item in owed if item is not None]
    if not known:
        return Preview()
    currencies = {currency for _, currency, _ in known}
    if len(currencies) > 1:
        return Preview(problem="The ticked invoices are in different currencies.")
    currency = currencies.pop()
    try:
        parts = _parts(form, known, currency, may_allocate)
    except (AmountError, AllocationError) as error:
        return Preview(problem=str(error))
    lines = [
        PreviewLine(
            number=number,
            balance=display_amount(item.balance, currency),
            amount=display_amount(part, currency),
            left=display_amount(max(item.balance - part, 0), currency),
            over=part > item.balance,
        )
        for (item, _currency, number), part in zip(known, parts, strict=True)
    ]
    return Preview(lines=lines, total=display_amount(sum(parts), currency))


def _parts(
    form: ConnectForm, known: list[tuple[Owed, str, str]], currency: str, may_allocate: bool
) -> list[int]:
    if form.allocating:
        if not may_allocate:
            raise AllocationError(TRUST_NOT_ALLOCATED)
        total = parse_amount(form.values["amount"], currency)
        return allocate_oldest_due_first(total, [item for item, _, _ in known])
    parts = []
    for item, _currency, number in known:
        try:
            parts.append(parse_amount(form.amounts.get(item.key, ""), currency))
        except AmountError as error:
            raise AmountError(f"Invoice {number}: {error}") from error
    return parts


def _owed(invoice_id: str, packed: str | None) -> tuple[Owed, str, str] | None:
    if not packed:
        return None
    try:
        balance, due, issued, currency, number = packed.split("|", 4)
        return (
            Owed(
                invoice_id,
                int(balance),
                dt.date.fromisoformat(due) if due else None,
                dt.date.fromisoformat(issued) if issued else None,
            ),
            currency,
            number,
        )
    except ValueError:
        return None
