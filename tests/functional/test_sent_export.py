"""GET /api/v1/links/export.xlsx: a real workbook of every matching link, opened with openpyxl
and read back cell by cell."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.cells import xlsx_text as neutralize
from clientpay_connect.links.models import (
    SOURCE_BULK,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
)
from clientpay_connect.links.services import link_token
from clientpay_connect.sent.export import XLSX_TYPE, amount_format
from tests.factories import FirmFactory, MerchantAccountFactory
from tests.support.sent import T0, make_link

URL = "/api/v1/links/export.xlsx"
HEADERS = [
    "Status",
    "Invoice Number",
    "Invoice Date",
    "Due Date",
    "Recipient",
    "Emails",
    "Amount",
    "Amount Paid",
    "Currency",
    "Created",
    "Sent",
    "Paid",
    "Expires",
    "Link URL",
    "Source",
]


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


def export(testapp: Any, auth: dict[str, str], **params: Any) -> Worksheet:
    response = testapp.get(URL, params, headers=auth)
    assert response.content_type == XLSX_TYPE
    assert response.headers["Content-Disposition"].startswith('attachment; filename="sent-pages-')
    workbook = load_workbook(io.BytesIO(response.body))
    assert workbook.sheetnames == ["Sent Pages"]
    sheet: Worksheet = workbook["Sent Pages"]
    return sheet


def rows_of(sheet: Worksheet) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == HEADERS
    return [dict(zip(HEADERS, row, strict=True)) for row in rows[1:]]


def cell(sheet: Worksheet, row: int, header: str) -> Any:
    return sheet.cell(row=row, column=HEADERS.index(header) + 1)


def test_a_link_becomes_a_row_of_typed_cells(testapp, dbsession, app, staff_auth, account):
    settings = dbsession.get(FirmSettings, account.firm_id)
    settings.time_zone = "America/New_York"
    link = make_link(
        dbsession,
        app,
        account,
        amount_minor=123_450,
        invoice_number="INV-1001",
        invoice_date=dt.date(2025, 3, 1),
        due_date=dt.date(2025, 3, 31),
        recipient_name="Dana Client",
        emails=["dana@example.test", "ap@example.test"],
        source=SOURCE_BULK,
        status=STATUS_PAID,
        amount_paid_minor=100_000,
        created_at=T0,
        sent_at=T0 + dt.timedelta(minutes=5),
        paid_at=T0 + dt.timedelta(days=2),
        expires_at=T0 + dt.timedelta(days=30),
    )

    sheet = export(testapp, staff_auth)
    [row] = rows_of(sheet)

    token = link_token(app.registry["clientpay.encryptor"], link)
    assert row == {
        "Status": "Payment Received",
        "Invoice Number": "INV-1001",
        # openpyxl reads a date cell back as a midnight datetime.
        "Invoice Date": dt.datetime(2025, 3, 1),
        "Due Date": dt.datetime(2025, 3, 31),
        "Recipient": "Dana Client",
        "Emails": "dana@example.test, ap@example.test",
        "Amount": 1234.5,
        "Amount Paid": 1000,
        "Currency": "USD",
        # 15:30 UTC on March 1st is 10:30 in New York (EST).
        "Created": dt.datetime(2025, 3, 1, 10, 30),
        "Sent": dt.datetime(2025, 3, 1, 10, 35),
        "Paid": dt.datetime(2025, 3, 3, 10, 30),
        # Daylight saving time has begun by then: 15:30 UTC is 11:30 EDT.
        "Expires": dt.datetime(2025, 3, 31, 11, 30),
        "Link URL": f"http://localhost/pay/{token}",
        "Source": "Bulk Upload",
    }
    assert cell(sheet, 2, "Amount").data_type == "n"
    assert cell(sheet, 2, "Amount").number_format == '"$"#,##0.00'
    assert cell(sheet, 2, "Amount Paid").number_format == '"$"#,##0.00'
    assert cell(sheet, 2, "Due Date").is_date
    assert cell(sheet, 2, "Due Date").number_format == "yyyy-mm-dd"
    assert cell(sheet, 2, "Created").is_date
    assert cell(sheet, 2, "Created").number_format == "yyyy-mm-dd hh:mm"


def test_empty_values_are_empty_cells(testapp, dbsession, app, staff_auth, account):
    make_link(dbsession, app, account)

    [row] = rows_of(export(testapp, staff_auth))

    assert row["Status"] == "Outstanding"
    for header in ("Invoice Number", "Recipient", "Emails"):
        assert row[header] is None, header  # openpyxl writes "" as no cell at all
    for header in ("Invoice Date", "Due Date", "Sent", "Paid"):
        assert row[header] is None, header
    assert row["Amount Paid"] == 0


@pytest.mark.parametrize(
    ("typed", "exported"),
    [
        ('=HYPERLINK("http://evil.test","Pay")', '\'=HYPERLINK("http://evil.test","Pay")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("\nLF", "'\nLF"),
        ("  \n =1", "'  \n =1"),
        ("INV=1", "INV=1"),
        ("Dana", "Dana"),
    ],
)
def test_text_that_would_run_as_a_formula_is_neutralized(
    testapp, dbsession, app, staff_auth, account, typed, exported
):
    make_link(dbsession, app, account, invoice_number=typed, recipient_name=typed, emails=[typed])

    sheet = export(testapp, staff_auth)
    [row] = rows_of(sheet)

    # XML reads a carriage return back as a line feed; the apostrophe in front is what counts.
    exported = exported.replace("\r", "\n")
    assert row["Invoice Number"] == exported
    assert row["Recipient"] == exported
    assert row["Emails"] == exported
    assert cell(sheet, 2, "Invoice Number").data_type == "s"  # never "f", a formula


def test_characters_a_workbook_cannot_hold_are_dropped(
    testapp, dbsession, app, staff_auth, account
):
    make_link(
        dbsession, app, account, recipient_name="Dana\x07\x0b Client", invoice_number="\x01=1"
    )

    [row] = rows_of(export(testapp, staff_auth))

    assert row["Recipient"] == "Dana Client"
    assert row["Invoice Number"] == "'=1"


def test_every_matching_row_is_exported_not_one_page(testapp, dbsession, app, staff_auth, account):
    links = [
        make_link(dbsession, app, account, amount_minor=100 * (n + 1), invoice_number=f"E-{n:03}")
        for n in range(130)
    ]

    # limit is accepted (the same parameters as the list) and does not cut the export.
    rows = rows_of(export(testapp, staff_auth, sort="amount", limit=10))

    assert [row["Invoice Number"] for row in rows] == [link.invoice_number for link in links]


def test_the_export_follows_the_query(testapp, dbsession, app, staff_auth, account):
    paid = make_link(dbsession, app, account, invoice_number="JOB-2", status=STATUS_PAID)
    in_flight = make_link(dbsession, app, account, invoice_number="JOB-1", status=STATUS_PROCESSING)
    make_link(dbsession, app, account, invoice_number="JOB-3", source=SOURCE_BULK)
    make_link(dbsession, app, account, invoice_number="OTHER")

    def invoices(**params: Any) -> list[str]:
        return [row["Invoice Number"] for row in rows_of(export(testapp, staff_auth, **params))]

    assert invoices(q="job", sort="invoice_number") == ["JOB-1", "JOB-2", "JOB-3"]
    assert invoices(q="job", sort="-invoice_number") == ["JOB-3", "JOB-2", "JOB-1"]
    assert invoices(status="paid") == [paid.invoice_number]
    assert invoices(status="outstanding", q="job", sort="invoice_number") == [
        in_flight.invoice_number,
        "JOB-3",
    ]
    assert invoices(**{"filter[source]": "bulk_upload"}) == ["JOB-3"]


def test_a_partially_paid_link_is_exported_as_such(testapp, dbsession, app, staff_auth, account):
    make_link(dbsession, app, account, invoice_number="FULL", status=STATUS_PAID)
    make_link(
        dbsession,
        app,
        account,
        invoice_number="PART",
        status=STATUS_PARTIALLY_PAID,
        amount_paid_minor=2_500,
    )

    rows = rows_of(export(testapp, staff_auth, status="partially_paid"))

    assert [(r["Invoice Number"], r["Status"], r["Amount Paid"]) for r in rows] == [
        ("PART", "Partially Paid", 25)
    ]


def test_another_firms_links_are_not_exported(testapp, dbsession, app, staff_auth, account):
    make_link(dbsession, app, account, invoice_number="MINE")
    other_account = MerchantAccountFactory(firm=FirmFactory())
    make_link(dbsession, app, other_account, invoice_number="THEIRS")

    rows = rows_of(export(testapp, staff_auth))

    assert [row["Invoice Number"] for row in rows] == ["MINE"]


def test_an_empty_export_still_has_its_headers(testapp, staff_auth):
    assert rows_of(export(testapp, staff_auth)) == []


def test_amounts_keep_their_currencys_digits(testapp, dbsession, app, staff, staff_auth):
    yen = MerchantAccountFactory(firm=staff.firm, currency="JPY")
    euro = MerchantAccountFactory(firm=staff.firm, currency="EUR")
    make_link(dbsession, app, yen, amount_minor=5_000, invoice_number="Y")
    make_link(dbsession, app, euro, amount_minor=5_000, invoice_number="E")

    sheet = export(testapp, staff_auth, sort="invoice_number")
    rows = rows_of(sheet)

    assert [(r["Invoice Number"], r["Amount"], r["Currency"]) for r in rows] == [
        ("E", 50, "EUR"),
        ("Y", 5000, "JPY"),
    ]
    assert cell(sheet, 2, "Amount").number_format == '"€"#,##0.00'
    assert cell(sheet, 3, "Amount").number_format == '#,##0 "JPY"'


@pytest.mark.parametrize(
    "params",
    [{"limit": "501"}, {"cursor": "nonsense"}, {"filter[colour]": "red"}, {"sort": "message"}],
)
def test_a_wrong_parameter_is_422_as_for_the_list(testapp, staff_auth, params):
    body = testapp.get(URL, params, headers=staff_auth, status=422).json
    assert body["error"] == "validation_error"


def test_the_export_needs_credentials(testapp):
    assert testapp.get(URL, status=401).json["error"] == "unauthenticated"


def test_the_export_is_not_read_as_a_link_id(testapp, staff_auth):
    # /links/{id} takes digits only, so "export.xlsx" reaches the export, never a 404.
    response = testapp.get(URL, headers=staff_auth, status=200)
    assert response.body[:2] == b"PK"  # a zip archive, as every .xlsx is


# --- The helpers, on their own -------------------------------------------------------------


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", "\n", " =", "\n-"])
def test_neutralize_quotes_every_formula_start(start):
    assert neutralize(start + "1") == "'" + start + "1"


def test_amount_format_follows_the_currency():
    assert amount_format("USD") == '"$"#,##0.00'
    assert amount_format("GBP") == '"£"#,##0.00'
    assert amount_format("KWD") == '#,##0.000 "KWD"'


# --- The grid's columns ------------------------------------------------------------------


def test_columns_choose_and_order_the_export(testapp, dbsession, app, staff, staff_auth, account):
    link = make_link(
        dbsession,
        app,
        account,
        amount_minor=2_500,
        invoice_number="=CMD()",
        recipient_name="Dana",
        reminders_sent=2,
        first_opened_at=T0,
        creator=staff,
    )

    response = testapp.get(
        URL,
        {
            "columns": "recipient_name,amount,merchant_account_id,created_by,reminders_sent,"
            "first_opened_at,invoice_number,id,recipient_name"
        },
        headers=staff_auth,
    )
    sheet = load_workbook(io.BytesIO(response.body))["Sent Pages"]
    rows = list(sheet.iter_rows(values_only=True))

    assert list(rows[0]) == [
        "Recipient",
        "Amount",
        "Merchant Account",
        "Created By",
        "Reminders Sent",
        "First Opened",
        "Invoice Number",
        "Link ID",
    ]
    assert list(rows[1]) == [
        "Dana",
        25,
        "Operating",
        staff.name,
        2,
        dt.datetime(2025, 3, 1, 10, 30),  # the firm is in New York (the factory)
        "'=CMD()",
        link.id,
    ]
    assert sheet.cell(row=2, column=2).data_type == "n"
    assert sheet.cell(row=2, column=6).is_date


def test_the_columns_follow_the_filters_and_sort(testapp, dbsession, app, staff_auth, account):
    for minor in (500, 3_000, 1_500, 9_000):
        make_link(dbsession, app, account, amount_minor=minor, invoice_number=f"A-{minor}")

    response = testapp.get(
        URL,
        {"columns": "invoice_number", "sort": "-amount", "filter[amount_min]": "10"},
        headers=staff_auth,
    )
    rows = list(load_workbook(io.BytesIO(response.body))["Sent Pages"].iter_rows(values_only=True))

    assert rows == [("Invoice Number",), ("A-9000",), ("A-3000",), ("A-1500",)]


@pytest.mark.parametrize("columns", ["amount,colour", "amount,,status", "message;amount"])
def test_an_unknown_column_is_422(testapp, staff_auth, columns):
    body = testapp.get(URL, {"columns": columns}, headers=staff_auth, status=422).json
    assert [e["field"] for e in body["errors"]] == ["columns"]
