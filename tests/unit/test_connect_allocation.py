"""Allocating a total across invoices, oldest due first (hypothesis, 10,000 examples)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clientpay_connect.connect.allocation import (
    AllocationError,
    Owed,
    allocate_oldest_due_first,
    payment_order,
)

DAY = dt.date(2026, 1, 1)

owed = st.builds(
    Owed,
    key=st.text(min_size=1, max_size=4),
    balance=st.integers(min_value=0, max_value=10**9),
    due_on=st.one_of(st.none(), st.integers(0, 60).map(lambda d: DAY + dt.timedelta(days=d))),
    issued_on=st.one_of(st.none(), st.integers(0, 60).map(lambda d: DAY + dt.timedelta(days=d))),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[int, list[Owed]]:
    invoices = draw(st.lists(owed, min_size=1, max_size=12))
    owed_total = sum(i.balance for i in invoices)
    if owed_total == 0:
        invoices[0] = Owed("x", 1)
        owed_total = 1
    total = draw(st.integers(min_value=1, max_value=owed_total))
    return total, invoices


@settings(max_examples=10_000, deadline=None)
@given(cases())
def test_parts_sum_to_the_total_within_balances_oldest_due_filled_first(
    case: tuple[int, list[Owed]],
) -> None:
    total, invoices = case
    parts = allocate_oldest_due_first(total, invoices)
    assert sum(parts) == total
    assert all(0 <= part <= inv.balance for part, inv in zip(parts, invoices, strict=True))
    # An invoice gets something only once every invoice before it in payment order is full.
    order = payment_order(invoices)
    seen_short = False
    for index in order:
        if seen_short:
            assert parts[index] == 0
        if parts[index] < invoices[index].balance:
            seen_short = True


def test_the_invoice_due_first_is_paid_first_whatever_the_order_given() -> None:
    later = Owed("later", 50_00, due_on=dt.date(2026, 3, 1))
    earlier = Owed("earlier", 30_00, due_on=dt.date(2026, 2, 1))
    undated = Owed("undated", 99_00)
    assert allocate_oldest_due_first(60_00, [later, undated, earlier]) == [30_00, 0, 30_00]
    assert allocate_oldest_due_first(179_00, [later, undated, earlier]) == [50_00, 99_00, 30_00]


@pytest.mark.parametrize("total", [0, -1, 80_01])
def test_a_total_that_cannot_be_allocated_is_refused(total: int) -> None:
    with pytest.raises(AllocationError):
        allocate_oldest_due_first(total, [Owed("a", 50_00), Owed("b", 30_00)])
