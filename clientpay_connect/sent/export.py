"""Sent Pages to Excel: every link the query matches (not one page), as a real .xlsx.

openpyxl's write-only mode streams rows to disk as they come, so a firm's whole history
never sits in memory as cells. Amounts are numbers with their currency's format, dates are
dates, timestamps are the firm's wall-clock time (Excel has no time zones), and no text cell
can start a formula: a value a payer or an uploaded file chose ("=HYPERLINK(…)") gets a
leading apostrophe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import status_label
from clientpay_connect.money import minor_digits
from clientpay_connect.sent.present import local_naive, source_label

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET_TITLE = "Sent Pages"
# (header, column width in characters)
COLUMNS: list[tuple[str, int]] = [
    ("Status", 18),
    ("Invoice Number", 18),
    ("Invoice Date", 13),
    ("Due Date", 13),
    ("Recipient", 26),
    ("Emails", 34),
    ("Amount", 14),
    ("Amount Paid", 14),
    ("Currency", 10),
    ("Created", 18),
    ("Sent", 18),
    ("Paid", 18),
    ("Expires", 18),
    ("Link URL", 50),
    ("Source", 13),
]
DATE_FORMAT = "yyyy-mm-dd"
TIMESTAMP_FORMAT = "yyyy-mm-dd hh:mm"
# What spreadsheet programs read as the start of a formula (OWASP's CSV-injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CURRENCY_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "GBP": "£", "EUR": "€"}


def neutralize(text: str) -> str:
    """Text that cannot run as a formula when the sheet is opened, without the control
    characters XML cannot carry (openpyxl refuses them, which would fail the whole export)."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def amount_format(currency: str) -> str:
    """Excel's number format for ``currency``: "$"#,##0.00, or #,##0 "JPY"."""
    digits = minor_digits(currency)
    number = "#,##0" + ("." + "0" * digits if digits else "")
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    return f'"{symbol}"{number}' if symbol else f'{number} "{currency.upper()}"'


def write_workbook(
    links: Iterable[PaymentLink],
    url_for: Callable[[PaymentLink], str],
    zone: ZoneInfo,
    target: IO[bytes],
) -> int:
    """Write the links to ``target`` as an .xlsx; the number of links written."""
    workbook = Workbook(write_only=True)
    sheet: WriteOnlyWorksheet = workbook.create_sheet(SHEET_TITLE)
    _set_up(sheet)
    written = 0
    for link in links:
        sheet.append(_row(sheet, link, url_for(link), zone))
        written += 1
    workbook.save(target)
    return written


def _set_up(sheet: WriteOnlyWorksheet) -> None:
    # Widths and frozen header must be set before the first row is written.
    for index, (_header, width) in enumerate(COLUMNS):
        letter = chr(ord("A") + index)
        # Worksheet._setup gives write-only sheets their column_dimensions; the stubs miss it.
        sheet.column_dimensions[letter].width = width  # type: ignore[attr-defined]
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title, _width in COLUMNS:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)


def _row(sheet: WriteOnlyWorksheet, link: PaymentLink, url: str, zone: ZoneInfo) -> list[Any]:
    money = amount_format(link.currency)
    return [
        neutralize(status_label(link.status)),
        neutralize(link.invoice_number),
        _formatted(sheet, link.invoice_date, DATE_FORMAT),
        _formatted(sheet, link.due_date, DATE_FORMAT),
        neutralize(link.recipient_name),
        neutralize(", ".join(link.emails)),
        _formatted(sheet, _decimal(link.amount_minor, link.currency), money),
        _formatted(sheet, _decimal(link.amount_paid_minor, link.currency), money),
        neutralize(link.currency),
        _formatted(sheet, local_naive(link.created_at, zone), TIMESTAMP_FORMAT),
        _formatted(sheet, local_naive(link.sent_at, zone), TIMESTAMP_FORMAT),
        _formatted(sheet, local_naive(link.paid_at, zone), TIMESTAMP_FORMAT),
        _formatted(sheet, local_naive(link.expires_at, zone), TIMESTAMP_FORMAT),
        neutralize(url),
        neutralize(source_label(link.source)),
    ]


def _formatted(sheet: WriteOnlyWorksheet, value: Any, number_format: str) -> Any:
    if value is None:
        return None
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = number_format
    return cell


def _decimal(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_digits(currency))


def export_filename(today: dt.date) -> str:
    return f"sent-pages-{today.isoformat()}.xlsx"
