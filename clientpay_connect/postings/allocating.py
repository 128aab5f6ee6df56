"""Staff allocating an incomplete posting by hand, checked against the matter system now."""

from __future__ import annotations

from typing import Any

from clientpay_connect.connect.models import Connection
from clientpay_connect.connect.workflow import read_invoices
from clientpay_connect.money import AmountError, format_amount, parse_amount
from clientpay_connect.postings.models import Posting
from clientpay_connect.work import Work

MAX_ALLOCATIONS = 100


class AllocationRefused(Exception):
    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("the allocations were refused")
        self.errors = errors


def checked_allocations(
    work: Work, connection: Connection, posting: Posting, wanted: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``wanted`` (``[{"invoice_id", "amount"}]``) as allocations, if every invoice is open
    in the matter system, owes at least its amount, and they add up to the payment."""
    errors: list[dict[str, str]] = []
    amounts: list[tuple[str, int]] = []
    for index, entry in enumerate(wanted[:MAX_ALLOCATIONS]):
        invoice_id = str(entry.get("invoice_id") or "").strip()
        try:
            amount = parse_amount(str(entry.get("amount") or ""), posting.currency)
        except AmountError as error:
            errors.append({"field": f"allocations.{index}.amount", "message": str(error)})
            continue
        if any(invoice_id == seen for seen, _ in amounts):
            errors.append({"field": f"allocations.{index}.invoice_id", "message": "Listed twice."})
            continue
        amounts.append((invoice_id, amount))
    if not wanted:
        errors.append({"field": "allocations", "message": "Allocate the payment to an invoice."})
    total = sum(amount for _, amount in amounts)
    if not errors and total != posting.amount_minor:
        errors.append(
            {
                "field": "allocations",
                "message": f"The amounts add up to {format_amount(total, posting.currency)}; "
                f"the payment is {format_amount(posting.amount_minor, posting.currency)}.",
            }
        )
    if errors:
        raise AllocationRefused(errors)
    # Let go of the database while the matter system answers.
    work.checkpoint()
    found, _names = read_invoices(work, connection, [invoice_id for invoice_id, _ in amounts])
    by_id = {invoice.id: invoice for invoice in found}
    allocations = []
    for index, (invoice_id, amount) in enumerate(amounts):
        invoice = by_id.get(invoice_id)
        where = f"allocations.{index}.invoice_id"
        if invoice is None:
            errors.append({"field": where, "message": "The matter system has no such invoice."})
        elif invoice.state != "open" or invoice.balance < amount:
            errors.append(
                {
                    "field": where,
                    "message": f"Invoice {invoice.number} owes "
                    f"{format_amount(max(invoice.balance, 0), posting.currency)}.",
                }
            )
        else:
            allocations.append(
                {"invoice_id": invoice.id, "invoice_number": invoice.number, "amount": amount}
            )
    if errors:
        raise AllocationRefused(errors)
    return allocations
