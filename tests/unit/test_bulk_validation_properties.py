"""Properties of validation for any text: it never raises, and it agrees with money.py."""

from __future__ import annotations

import csv
import io
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from clientpay_connect.bulk.reader import FIELDS, RawRow
from clientpay_connect.bulk.validation import (
    WHOLE_ROW,
    CheckedRows,
    RowChecker,
    error_report_csv,
    flag_duplicate_invoice_numbers,
    validate_rows,
)
from clientpay_connect.money import AmountError, parse_amount

any_text = st.text(max_size=40)
# Text shaped like amounts, so that the rare paths (groupings, signs, decimals) are reached.
amount_like = st.text(st.sampled_from("0123456789.,$€ -'"), max_size=16)
date_like = st.text(st.sampled_from("0123456789/-. :TAPMaprJunFebSep"), max_size=20)


@st.composite
def raw_rows(draw):
    count = draw(st.integers(min_value=0, max_value=4))
    rows = []
    for number in range(2, 2 + count):
        values = {field: draw(any_text) for field in FIELDS}
        values["amount"] = draw(st.one_of(any_text, amount_like))
        values["invoice_date"] = draw(st.one_of(any_text, date_like))
        values["due_date"] = draw(st.one_of(any_text, date_like))
        values["invoice_number"] = draw(st.sampled_from(["", "A", "a ", "B"]) | any_text)
        row = RawRow.from_fields(number, values)
        overflow = tuple(draw(st.lists(any_text.filter(str.strip), max_size=2)))
        rows.append(row._replace(cells=row.values + overflow, overflow=overflow))
    return rows


@settings(max_examples=150, deadline=None)
@given(
    raw_rows(),
    st.sampled_from(["USD", "JPY", "KWD", "XYZ"]),
    st.booleans(),
    st.sets(st.sampled_from(["A", "b", "", " a"]) | any_text, max_size=3),
    st.dates(min_value=date(1971, 1, 1), max_value=date(2200, 1, 1)),
)
def test_any_rows_of_text_are_validated_without_raising(
    rows, currency, require_email, existing, today
):
    results = validate_rows(
        rows,
        currency=currency,
        require_email=require_email,
        existing_invoice_numbers=existing,
        today=today,
    )
    assert [r.row_number for r in results] == [r.row_number for r in rows]
    for result in results:
        for issue in (*result.errors, *result.warnings):
            assert issue.field in (*FIELDS, WHOLE_ROW)
            assert issue.message.strip()
        fields_in_error = {issue.field for issue in result.errors}
        assert (result.amount_minor is None) == ("amount" in fields_in_error)
        assert result.amount_minor is None or result.amount_minor > 0
        if result.is_valid:
            assert result.recipient_name
            assert result.emails or not require_email
            if result.invoice_date and result.due_date:
                assert result.invoice_date <= result.due_date
    # The report of any such rows is a CSV with one line per row, errors and warnings last.
    report = error_report_csv(["Amount", "Name"], results).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(report, newline="")))
    assert lines[0][-2:] == ["Errors", "Warnings"]
    assert len([line for line in lines[1:] if line]) == len(results)


@settings(max_examples=500, deadline=None)
@given(amount_like | any_text, st.sampled_from(["USD", "JPY", "KWD"]))
def test_amounts_are_exactly_what_parse_amount_says(text, currency):
    result = validate_rows(
        [RawRow.from_fields(2, {"recipient_name": "A", "amount": text})],
        currency=currency,
        require_email=False,
        today=date(2025, 6, 1),
    )[0]
    amount_errors = [issue.message for issue in result.errors if issue.field == "amount"]
    try:
        expected = parse_amount(text.strip(), currency)
    except AmountError as exc:
        assert (result.amount_minor, amount_errors) == (None, [str(exc)])
    else:
        assert (result.amount_minor, amount_errors) == (expected, [])


@settings(max_examples=300, deadline=None)
@given(
    raw_rows(),
    st.sets(st.sampled_from(["A", "b", "", " a"]) | any_text, max_size=3),
    st.integers(min_value=0, max_value=4),
)
def test_rows_checked_as_they_are_read_are_the_rows_checked_all_at_once(rows, existing, read):
    """CheckedRows works out the shared invoice numbers' warnings from the texts, before any
    row is checked: the same rows, errors and warnings as checking every row first and then
    flagging the numbers they share."""
    today = date(2025, 6, 1)
    checker = RowChecker(currency="USD", require_email=False, today=today)
    at_once = [checker.check(row) for row in rows]
    flag_duplicate_invoice_numbers(at_once, existing)
    checked = CheckedRows(rows, require_email=False, existing_invoice_numbers=existing, today=today)
    assert len(checked) == len(rows)
    # Some read one by one (as they are stored), then all of them again, in any order.
    first = [row for row, _ in zip(checked, range(read), strict=False)]
    assert first == at_once[:read]
    assert list(checked) == at_once
    assert list(reversed(checked)) == at_once[::-1]
