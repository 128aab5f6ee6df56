"""No file we write holds a cell a spreadsheet would run as a formula, for any text.

The rule (clientpay_connect/cells.py) on its own, then every writer of a CSV or a workbook fed
hostile text in each field a person or an uploaded file chose, its output read back the way a
spreadsheet reads it and checked cell by cell. The check is an independent reading of the
rule: whatever blanks, line breaks or invisible characters come first, the first visible
character of a cell is not = + - @ (nor their full-width forms) unless the cell starts with
an apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from clientpay_connect.bulk.exports import LinkLine, links_csv, links_xlsx
from clientpay_connect.bulk.reader import FIELDS, RawRow
from clientpay_connect.bulk.templates_csv import TEMPLATE_HEADERS
from clientpay_connect.bulk.validation import FieldIssue, ReportLine, error_report_csv
from clientpay_connect.cells import formula_safe, xlsx_text
from clientpay_connect.postings.models import Posting
from clientpay_connect.reports import export as reconciliation_export
from clientpay_connect.reports.reconciliation import Group, Line, Period, Report, blank_figures
from clientpay_connect.sent import export as sent_export

UTC = dt.UTC
ZONE = ZoneInfo("America/Chicago")
RUNS = re.compile(
    r"[\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2060\ufeff]*[=+\-@\uff1d\uff0b\uff0d\uff20]"
)
STARTS = ["=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20"]
BLANKS = [" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\xa0", "\u2028", "\u3000", "\u200b"]
BLANKS += ["\ufeff"]


def is_safe(cell: str) -> bool:
    """How a spreadsheet would take the cell, read independently of cells.py."""
    if cell.startswith("'"):
        return True
    return not cell.startswith(("\t", "\r")) and RUNS.match(cell) is None


# What a person or a file may put in a cell (no surrogates: they cannot be written).
plain = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)
hostile = st.builds(
    lambda blanks, start, rest: "".join(blanks) + start + rest,
    st.lists(st.sampled_from(BLANKS), max_size=3),
    st.sampled_from(STARTS),
    plain,
)
cell_text = st.one_of(hostile, plain)
EXAMPLES = [" =1+1", "\n=1+1", "\t=1+1", "\r=1+1", "\r\n@SUM(A1)", "\u3000=1", "\u200b+1"]


# --- The rule ----------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.one_of(hostile, st.text(max_size=30)))
@example(" =1+1")
@example("\n=1+1")
@example("\t-2")
@example("\x00=1")
def test_any_text_comes_out_safe_and_otherwise_unchanged(text):
    safe = formula_safe(text)
    assert safe in (text, "'" + text)
    assert is_safe(safe)
    assert formula_safe(safe) == safe


@given(hostile)
def test_a_formula_after_blanks_and_line_breaks_is_quoted(text):
    assert formula_safe(text) == "'" + text


@given(st.text(st.characters(categories=("L", "N")), min_size=1), plain)
def test_text_that_starts_visibly_with_a_letter_or_digit_is_left_alone(first, rest):
    assert formula_safe(first + rest) == first + rest


@given(st.text(max_size=30))
def test_xlsx_text_is_safe_and_drops_only_what_xml_cannot_carry(text):
    safe = xlsx_text(text)
    assert is_safe(safe)
    kept = safe[1:] if safe.startswith("'") and not text.startswith("'") else safe
    assert all(char in text for char in kept)


# --- Every writer --------------------------------------------------------------------------


def csv_cells(body: bytes, delimiter: str = ",") -> list[str]:
    rows = csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=delimiter)
    return [cell for row in rows for cell in row]


def workbook_cells(body: bytes) -> list[Any]:
    book = load_workbook(io.BytesIO(body))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    return [cell.value for cell in cells]


def assert_all_safe(values: Iterable[Any]) -> None:
    unsafe = [value for value in values if isinstance(value, str) and not is_safe(value)]
    assert unsafe == []


WRITERS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@WRITERS
@given(st.lists(st.tuples(cell_text, cell_text, cell_text, cell_text), min_size=1, max_size=4))
def test_the_bulk_links_csv_and_xlsx(texts):
    lines = [
        LinkLine(n + 2, n + 1, number, name, 1000 + n, "USD", [email], "outstanding", "")
        for n, (number, name, email, _url) in enumerate(texts)
    ]
    urls = {line.link_id: url for line, (*_, url) in zip(lines, texts, strict=True)}

    def url_of(line: LinkLine) -> str:
        return urls[line.link_id]

    written = csv_cells(links_csv(lines, url_of))
    assert_all_safe(written)
    for number, name, email, url in texts:
        for text in (number, name, email, url):
            assert formula_safe(text) in written
    assert_all_safe(workbook_cells(links_xlsx(lines, url_of)))


@WRITERS
@given(
    st.lists(st.lists(cell_text, min_size=1, max_size=8), min_size=1, max_size=4),
    cell_text,
    cell_text,
    st.sampled_from([",", "\t", ";"]),
)
def test_the_bulk_report_csv(rows, extra_header, message, delimiter):
    headers = (*TEMPLATE_HEADERS, extra_header)
    lines = [
        ReportLine(
            RawRow(number + 2, ("",) * len(FIELDS), tuple(cells)),
            [FieldIssue("amount", message)],
            [FieldIssue("row", message)],
        )
        for number, cells in enumerate(rows)
    ]
    written = csv_cells(error_report_csv(headers, lines, delimiter=delimiter), delimiter)
    assert_all_safe(written)
    for cells in rows:
        for cell in cells:
            assert formula_safe(cell) in written


def link_fields(texts: tuple[str, str, str]) -> dict[str, Any]:
    """A link's fields as the export reads them from the database."""
    number, name, email = texts
    when = dt.datetime(2026, 3, 1, 12, tzinfo=UTC)
    return {
        "id": 1,
        "status": "outstanding",
        "source": "bulk_upload",
        "email_status": "not_sent",
        "invoice_number": number,
        "invoice_date": dt.date(2026, 3, 1),
        "due_date": None,
        "recipient_name": name,
        "emails": [email],
        "message": name,
        "amount_minor": 12_345,
        "amount_paid_minor": 0,
        "amount_refunded_minor": 0,
        "currency": "USD",
        "token_encrypted": "not decrypted here",
        "merchant_account_id": 1,
        "created_by_user_id": 1,
        "reminders_sent": 0,
        "created_at": when,
        "sent_at": when,
        "paid_at": None,
        "expires_at": None,
        "cancelled_at": None,
        "first_opened_at": None,
        "last_opened_at": None,
    }


@WRITERS
@given(st.lists(st.tuples(cell_text, cell_text, cell_text), min_size=1, max_size=4), cell_text)
def test_the_sent_pages_export(texts, url):
    links = [link_fields(t) for t in texts]
    account, creator = texts[0][1], texts[0][2]
    out = io.BytesIO()
    sent_export.write_workbook(
        lambda fields: [tuple(link[f] for f in fields) for link in links],
        lambda _token: url,
        ZONE,
        out,
        tuple(sent_export.EXPORT_COLUMNS),  # every column, each text one among them
        sent_export.Names(users={1: creator}, accounts={1: account}),
    )
    assert_all_safe(workbook_cells(out.getvalue()))


@WRITERS
@given(st.lists(st.tuples(cell_text, cell_text, cell_text, cell_text), min_size=1, max_size=3))
def test_the_reconciliation_workbook(texts):
    period = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    account_name, connection_name, _payer, _reason = texts[0]
    group = Group(1, account_name, "operating", 2, connection_name, "USD", blank_figures())
    report = Report(
        period, [group], {"USD": blank_figures()}, {1: account_name}, {2: connection_name}
    )
    lines = [
        Line(
            Posting(
                id=n + 1,
                key=key,
                status="removed",
                amount_minor=5_000,
                currency="USD",
                received_on=dt.date(2026, 3, 2),
                allocations=[{"invoice_id": "7", "invoice_number": number, "amount": 5_000}],
                connection_id=2,
                reason="",
                removed_reason=reason,
                posted_at=None,
            ),
            1,
            payer,
            number,
        )
        for n, (number, payer, key, reason) in enumerate(texts)
    ]
    out = io.BytesIO()
    reconciliation_export.write_workbook(report, lines, ZONE, out)
    assert_all_safe(workbook_cells(out.getvalue()))


def test_the_examples_the_attacker_used_are_quoted_in_every_writer():
    """The cells of issue 12, item 16, written out and read back, each in a plain example."""
    for text in EXAMPLES:
        assert formula_safe(text) == "'" + text
        assert is_safe(xlsx_text(text)) and xlsx_text(text).startswith("'")
