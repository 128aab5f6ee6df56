"""Sent Pages' export writes its cells by arithmetic and string steps of its own (for speed):
each step gives what the general helper gives (openpyxl's to_excel, format of a Decimal,
cells.xlsx_text), and a whole workbook of any values reads back, through openpyxl, as the
values themselves: typed, formula-safe, every column in its place."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from openpyxl.utils.datetime import to_excel

from clientpay_connect.cells import xlsx_text
from clientpay_connect.links.services import status_label
from clientpay_connect.sent import export as sent_export
from clientpay_connect.sent.export import amount_text, safe_text
from clientpay_connect.sent.present import source_label
from clientpay_connect.sent.xlsx import serial_day, serial_time

ZONE = ZoneInfo("America/New_York")
WORKBOOKS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(st.dates())
@example(dt.date(1900, 2, 28))  # the last day before Excel's February 29th, 1900
@example(dt.date(1900, 3, 1))
@example(dt.date(1899, 12, 30))  # day 0
def test_a_day_is_the_number_openpyxl_gives_it(day):
    assert serial_day(day) == to_excel(day)


@given(st.datetimes())
def test_a_time_is_the_very_number_openpyxl_gives_it(moment):
    assert serial_time(moment) == to_excel(moment)


@given(st.datetimes(timezones=st.just(ZONE)))
def test_a_zoned_time_counts_its_wall_clock(moment):
    assert serial_time(moment) == to_excel(moment.replace(tzinfo=None))


@given(st.integers(min_value=-(10**18), max_value=10**18), st.sampled_from([0, 2, 3]))
@example(-5, 2)
@example(0, 3)
def test_an_amount_is_written_as_its_decimal(minor, digits):
    assert amount_text(minor, digits) == format(Decimal(minor).scaleb(-digits), "f")


@given(st.text())
@example("=1")
@example(" =1")
@example("1\x07")
@example("\uff21bc\u200b")  # a full-width letter first, an invisible one after
def test_safe_text_is_xlsx_text(text):
    assert safe_text(text) == xlsx_text(text)


# --- A whole workbook, read back ---------------------------------------------------------

# Any text XML can carry once xlsx_text has dropped the controls it cannot (no surrogates,
# no non-characters), and the characters XML escapes.
texts = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cs", "Cn")),
        st.sampled_from(["&", "<", ">", "=", "-", "'", '"', "\r", "\n", "\t", " "]),
    ),
    max_size=12,
)
# Whole seconds: openpyxl reads times back to the millisecond only.
moments = st.one_of(
    st.none(),
    st.datetimes(
        min_value=dt.datetime(1901, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.just(dt.UTC),
    ).map(lambda moment: moment.replace(microsecond=0)),
)
days = st.one_of(st.none(), st.dates(min_value=dt.date(1901, 1, 1)))
amounts = st.integers(min_value=0, max_value=10**12)
TIMESTAMPS = (
    "created_at",
    "sent_at",
    "paid_at",
    "expires_at",
    "cancelled_at",
    "first_opened_at",
    "last_opened_at",
)
links = st.fixed_dictionaries(
    {
        "id": st.integers(min_value=1, max_value=2**62),
        "status": st.sampled_from(["outstanding", "paid", "partially_paid", "cancelled"]),
        "source": st.sampled_from(["quick_link", "bulk_upload", "connect", "some_new_one"]),
        "email_status": st.sampled_from(["not_sent", "sent", "failed"]),
        "invoice_number": texts,
        "invoice_date": days,
        "due_date": days,
        "recipient_name": texts,
        "emails": st.lists(texts, max_size=3),
        "message": texts,
        "amount_minor": amounts,
        "amount_paid_minor": amounts,
        "amount_refunded_minor": amounts,
        "currency": st.sampled_from(["USD", "JPY", "KWD", "EUR", "CHF"]),
        "token_encrypted": texts,
        "merchant_account_id": st.sampled_from([1, 2]),
        "created_by_user_id": st.sampled_from([None, 1, 2]),
        "reminders_sent": st.integers(min_value=0, max_value=100),
        **{name: moments for name in TIMESTAMPS},
    }
)
ACCOUNTS = {1: "=Operating", 2: "Trust & Co"}
USERS = {1: "Dana <ap>"}  # user 2 is gone: no name


def as_read(text: str) -> str | None:
    """What a spreadsheet reads of a text cell: nothing for an empty text, line breaks as
    XML reads them."""
    return text.replace("\r\n", "\n").replace("\r", "\n") or None


def expected_row(link: dict[str, Any]) -> list[Any]:
    """What each column of the export should read back as, from the rules alone."""

    def text(value: str) -> str | None:
        return as_read(xlsx_text(value))

    def day(value: dt.date | None) -> dt.datetime | None:
        return None if value is None else dt.datetime.combine(value, dt.time())

    def money(field: str) -> Any:
        digits = {"JPY": 0, "KWD": 3}.get(link["currency"], 2)
        return float(Decimal(link[field]).scaleb(-digits))

    expected = {
        "id": link["id"],
        "status": text(status_label(link["status"])),
        "invoice_number": text(link["invoice_number"]),
        "invoice_date": day(link["invoice_date"]),
        "due_date": day(link["due_date"]),
        "recipient_name": text(link["recipient_name"]),
        "emails": text(", ".join(link["emails"])),
        "amount": money("amount_minor"),
        "amount_paid": money("amount_paid_minor"),
        "amount_refunded": money("amount_refunded_minor"),
        "currency": link["currency"],
        "url": text("https://pay.test/pay/" + link["token_encrypted"][::-1]),
        "source": text(source_label(link["source"])),
        "merchant_account_id": text(ACCOUNTS[link["merchant_account_id"]]),
        "created_by": text(USERS.get(link["created_by_user_id"] or 0, "")),
        "reminders_sent": link["reminders_sent"],
        "email_status": text(link["email_status"].replace("_", " ").capitalize()),
        "message": text(link["message"]),
    }
    for name in TIMESTAMPS:
        moment = link[name]
        expected[name] = None if moment is None else moment.astimezone(ZONE).replace(tzinfo=None)
    return [expected[name] for name in sent_export.EXPORT_COLUMNS]


@WORKBOOKS
@given(st.lists(links, max_size=5))
def test_every_column_reads_back_as_its_value(rows):
    fields = tuple(sent_export.EXPORT_COLUMNS)
    out = io.BytesIO()
    written = sent_export.write_workbook(
        lambda reads: [tuple(link[read] for read in reads) for link in rows],
        lambda token: "https://pay.test/pay/" + token[::-1],  # a stand-in for decrypting
        ZONE,
        out,
        fields,
        sent_export.Names(users=USERS, accounts=ACCOUNTS),
    )

    sheet = load_workbook(io.BytesIO(out.getvalue()))["Sent Pages"]
    read = list(sheet.iter_rows(values_only=True))
    assert written == len(rows)
    assert list(read[0]) == [sent_export.EXPORT_COLUMNS[name].header for name in fields]
    assert [list(row) for row in read[1:]] == [expected_row(link) for link in rows]


@WORKBOOKS
@given(st.lists(links, min_size=1, max_size=3), st.permutations(list(sent_export.EXPORT_COLUMNS)))
def test_the_columns_asked_for_come_in_their_order(rows, order):
    fields = tuple(order[: len(order) // 2 + 1])
    out = io.BytesIO()
    sent_export.write_workbook(
        lambda reads: [tuple(link[read] for read in reads) for link in rows],
        lambda token: "https://pay.test/pay/" + token[::-1],
        ZONE,
        out,
        fields,
        sent_export.Names(users=USERS, accounts=ACCOUNTS),
    )

    sheet = load_workbook(io.BytesIO(out.getvalue()))["Sent Pages"]
    every = list(sent_export.EXPORT_COLUMNS)
    assert [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        [expected_row(link)[every.index(name)] for name in fields] for link in rows
    ]


@WORKBOOKS
@given(links)
def test_tokens_are_decrypted_only_for_the_url_column(link):
    def refuse(_token: str) -> str:
        raise AssertionError("decrypted a token the export does not show")

    out = io.BytesIO()
    fields = tuple(name for name in sent_export.EXPORT_COLUMNS if name != "url")

    written = sent_export.write_workbook(
        lambda reads: [tuple(link[read] for read in reads)], refuse, ZONE, out, fields
    )

    assert written == 1
    assert "token_encrypted" not in sent_export.fields_read(fields)
