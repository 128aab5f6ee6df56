"""Splitting one amount across invoices: oldest due first, never above a balance.

Pure code (no database, no request). The rule, as accounting staff apply it by hand: the
invoice due first is paid first, in full, then the next; an invoice with no due date comes
after every dated one, and ties go by issue date, then by the order given. Amounts are
integer minor units, so the parts add up to the total exactly, to the cent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


class AllocationError(ValueError):
    """The total cannot be allocated (not positive, or above what the invoices owe)."""


@dataclass(frozen=True)
class Owed:
    """What one invoice still owes, and when it was due."""

    key: str
    balance: int
    due_on: dt.date | None = None
    issued_on: dt.date | None = None


def payment_order(invoices: Sequence[Owed]) -> list[int]:
    """Indexes of ``invoices`` in the order a payment fills them."""

    def rank(index: int) -> tuple[bool, dt.date, bool, dt.date, int]:
        owed = invoices[index]
        return (
            owed.due_on is None,
            owed.due_on or dt.date.min,
            owed.issued_on is None,
            owed.issued_on or dt.date.min,
            index,
        )

    return sorted(range(len(invoices)), key=rank)


def allocate_oldest_due_first(total: int, invoices: Sequence[Owed]) -> list[int]:
    """The part of ``total`` that goes to each invoice, in the order given."""
    if total <= 0:
        raise AllocationError("The amount must be more than zero.")
    if any(owed.balance < 0 for owed in invoices):
        raise AllocationError("An invoice's balance cannot be negative.")
    if total > sum(owed.balance for owed in invoices):
        raise AllocationError("The amount is more than the chosen invoices owe.")
    parts = [0] * len(invoices)
    left = total
    for index in payment_order(invoices):
        if left == 0:
            break
        parts[index] = min(left, invoices[index].balance)
        left -= parts[index]
    return parts
