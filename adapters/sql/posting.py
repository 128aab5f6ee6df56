"""Write-back: a payment becomes rows of the staging table and lower invoice balances, in one
transaction.

The staging table holds one row per allocation, unique on (posting key, invoice id); each
row's id is that allocation's external id. The firm's system imports the rows from there.
Each invoice is lowered by a conditional UPDATE (still open, same currency, balance at least
the amount), so a payment is never taken twice from the same balance whatever runs beside it;
the staging rows are inserted first, so that a second writer of the same key waits on the
unique key and fails there, before touching a balance.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, case, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.types import DateTime, String

from adapters.sql.convert import INVOICE_FIELDS, Converter
from adapters.sql.mapping import SchemaMapping
from adapters.sql.search import open_condition
from adapters.sql.tables import MappedTables, key_for, python_type
from clientpay_connect.connect.interfaces import (
    Allocation,
    Conflict,
    Invoice,
    Permanent,
    PostingRequest,
)
from clientpay_connect.money import display_amount

# Staging columns holding the matter database's ids (stored as its own columns store them).
ID_COLUMNS = frozenset({"invoice_id", "client_id", "matter_id"})


def check_allocations(allocations: list[Allocation]) -> None:
    seen: set[str] = set()
    for allocation in allocations:
        if allocation.amount <= 0:
            raise Permanent(f"The amount for invoice {allocation.invoice_number} is not positive.")
        if allocation.invoice_id in seen:
            raise Permanent(f"Invoice {allocation.invoice_number} is allocated twice.")
        seen.add(allocation.invoice_id)


class PostingWriter:
    def __init__(self, tables: MappedTables, mapping: SchemaMapping, converter: Converter):
        self.t = tables
        self.mapping = mapping
        self.convert = converter

    def staged(self, connection: Connection, key: str) -> dict[str, str]:
        """invoice id -> staging row id, for every row written under ``key``."""
        payments = self.t.payments
        rows = connection.execute(
            select(payments["invoice_id"], payments["id"]).where(payments["posting_key"] == key)
        ).all()
        return {str(invoice_id): str(row_id) for invoice_id, row_id in rows}

    def write(
        self, connection: Connection, posting: PostingRequest, pending: list[Allocation]
    ) -> dict[str, str]:
        """Stage and apply ``pending``; raises Conflict (the caller rolls back) when an
        invoice cannot take its amount."""
        key_length = getattr(self.t.payments["posting_key"].type, "length", None)
        if key_length and len(posting.key) > key_length:
            raise Permanent(f"The posting key is longer than the staging table's {key_length}.")
        invoices = self._invoices(connection, [a.invoice_id for a in pending])
        for allocation in pending:
            self._refuse_if_conflicting(invoices.get(allocation.invoice_id), allocation, posting)
        connection.execute(
            insert(self.t.payments.table),
            [self._staging_row(posting, a, invoices[a.invoice_id]) for a in pending],
        )
        # Always the same order, so two payments to the same invoices cannot deadlock.
        for allocation in sorted(pending, key=lambda a: a.invoice_id):
            if not self._lower_balance(connection, posting, allocation):
                now = self._invoices(connection, [allocation.invoice_id])
                self._refuse_if_conflicting(now.get(allocation.invoice_id), allocation, posting)
                raise Conflict(f"Invoice {allocation.invoice_number} changed while posting.")
        return self.staged(connection, posting.key)

    def _invoices(self, connection: Connection, ids: list[str]) -> dict[str, Invoice]:
        invoices = self.t.invoices
        keys = [k for k in (invoices.key("id", i) for i in ids) if k is not None]
        rows = connection.execute(
            select(*invoices.labelled(*INVOICE_FIELDS)).where(invoices["id"].in_(keys))
        ).all()
        return {invoice.id: invoice for invoice in self.convert.invoices(rows)}

    def _refuse_if_conflicting(
        self, invoice: Invoice | None, allocation: Allocation, posting: PostingRequest
    ) -> None:
        reason = conflict_reason(invoice, allocation, posting.currency)
        if reason:
            raise Conflict(reason)

    def _staging_row(
        self, posting: PostingRequest, allocation: Allocation, invoice: Invoice
    ) -> dict[str, Any]:
        payments = self.t.payments
        ours = {
            "posting_key": posting.key,
            "invoice_id": invoice.id,
            "invoice_number": invoice.number,
            "client_id": invoice.client_id,
            "matter_id": invoice.matter_id,
            "amount": self.convert.from_minor(allocation.amount, posting.currency),
            "currency": posting.currency,
            "received_on": posting.received_on,
            "reference": posting.reference,
            "payer_name": posting.payer_name,
            "method": posting.method,
        }
        row: dict[str, Any] = {}
        for name, value in ours.items():
            if payments.has(name):
                column = payments[name]
                if name in ID_COLUMNS:
                    row[column.key] = key_for(column, value)
                elif name == "posting_key":
                    row[column.key] = value  # never cut: it must find this row again
                else:
                    row[column.key] = fitted(column, value)
        if payments.has("created_at"):
            row[payments["created_at"].key] = now_for(payments["created_at"])
        return row

    def _lower_balance(
        self, connection: Connection, posting: PostingRequest, allocation: Allocation
    ) -> bool:
        invoices = self.t.invoices
        amount = self.convert.from_minor(allocation.amount, posting.currency)
        balance = invoices["balance"]
        # MySQL assigns left to right, each seeing the ones before: state goes first, while
        # balance is still the old one.
        assignments: list[tuple[Column[Any], Any]] = []
        if invoices.has("state"):
            paid_code = self.mapping.value("state", "paid")
            assignments.append(
                (invoices["state"], case((balance == amount, paid_code), else_=invoices["state"]))
            )
        if invoices.has("paid"):
            assignments.append((invoices["paid"], invoices["paid"] + amount))
        assignments.append((balance, balance - amount))
        if invoices.has("version") and python_type(invoices["version"]) is int:
            assignments.append((invoices["version"], invoices["version"] + 1))
        if invoices.has("updated_at"):
            assignments.append((invoices["updated_at"], now_for(invoices["updated_at"])))
        conditions = [
            invoices["id"] == invoices.key("id", allocation.invoice_id),
            balance >= amount,
            *open_condition(invoices, self.mapping),
        ]
        if invoices.has("currency"):
            conditions.append(invoices["currency"] == posting.currency)
        statement = update(invoices.table).where(*conditions).ordered_values(*assignments)
        return connection.execute(statement).rowcount == 1


def conflict_reason(invoice: Invoice | None, allocation: Allocation, currency: str) -> str | None:
    """Why ``invoice`` cannot take ``allocation`` now, for staff; None when it can."""
    number = allocation.invoice_number or allocation.invoice_id
    if invoice is None:
        return f"Invoice {number} is not in the matter system."
    if invoice.state == "void":
        return f"Invoice {invoice.number} is void."
    if invoice.state != "open" or invoice.balance <= 0:
        return f"Invoice {invoice.number} is closed (already paid)."
    if invoice.currency != currency.upper():
        return f"Invoice {invoice.number} is in {invoice.currency}, the payment in {currency}."
    if invoice.balance < allocation.amount:
        return (
            f"Invoice {invoice.number}'s balance is now"
            f" {display_amount(invoice.balance, currency)}, below the"
            f" {display_amount(allocation.amount, currency)} allocated to it."
        )
    return None


def fitted(column: Column[Any], value: Any) -> Any:
    """Text cut to the column's length, where a server would refuse it whole."""
    length = getattr(column.type, "length", None)
    if isinstance(column.type, String) and isinstance(value, str) and length:
        return value[:length]
    return value


def now_for(column: Column[Any]) -> dt.datetime:
    """Now in UTC; naive for a column without a time zone (stored as UTC)."""
    now = dt.datetime.now(dt.UTC)
    if isinstance(column.type, DateTime) and column.type.timezone:
        return now
    return now.replace(tzinfo=None)
