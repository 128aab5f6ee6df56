"""Sent Pages to Excel: every link the query matches (not one page), as a real .xlsx.

openpyxl's write-only mode streams rows to disk as they come, so a firm's whole history
never sits in memory as cells. Amounts are numbers with their currency's format, dates are
dates, timestamps are the firm's wall-clock time (Excel has no time zones), and no text cell
can start a formula: a value a payer or an uploaded file chose ("=HYPERLINK(…)") gets a
leading apostrophe (clientpay_connect/cells.py, as every file we write).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from pyramid.response import FileIter, Response

from clientpay_connect.cells import xlsx_text
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import status_label
from clientpay_connect.money import minor_digits
from clientpay_connect.sent.present import local_naive, source_label
from clientpay_connect.sent.xlsx import Formatted, StreamingSheet

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
# An export stays in memory up to this size and moves to a temporary file beyond it.
EXPORT_SPOOL_BYTES = 16 * 1024 * 1024
CURRENCY_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "GBP": "£", "EUR": "€"}


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
    """Write the links to ``target`` as an .xlsx; the number of links written. Streamed
    (sent/xlsx.py): a hundred thousand links in seconds, without holding them."""
    sheet = StreamingSheet(target, SHEET_TITLE, COLUMNS)
    written = 0
    for link in links:
        sheet.append(_row(link, url_for(link), zone))
        written += 1
    sheet.close()
    return written


def set_up_sheet(sheet: WriteOnlyWorksheet, columns: list[tuple[str, int]]) -> None:
    """Column widths, and a bold header row that stays in view."""
    # Widths and frozen header must be set before the first row is written.
    for index, (_header, width) in enumerate(columns):
        letter = chr(ord("A") + index)
        # Worksheet._setup gives write-only sheets their column_dimensions; the stubs miss it.
        sheet.column_dimensions[letter].width = width  # type: ignore[attr-defined]
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title, _width in columns:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)


def _row(link: PaymentLink, url: str, zone: ZoneInfo) -> list[Any]:
    money = amount_format(link.currency)
    return [
        xlsx_text(status_label(link.status)),
        xlsx_text(link.invoice_number),
        formatted(link.invoice_date, DATE_FORMAT),
        formatted(link.due_date, DATE_FORMAT),
        xlsx_text(link.recipient_name),
        xlsx_text(", ".join(link.emails)),
        formatted(decimal_amount(link.amount_minor, link.currency), money),
        formatted(decimal_amount(link.amount_paid_minor, link.currency), money),
        xlsx_text(link.currency),
        formatted(local_naive(link.created_at, zone), TIMESTAMP_FORMAT),
        formatted(local_naive(link.sent_at, zone), TIMESTAMP_FORMAT),
        formatted(local_naive(link.paid_at, zone), TIMESTAMP_FORMAT),
        formatted(local_naive(link.expires_at, zone), TIMESTAMP_FORMAT),
        xlsx_text(url),
        xlsx_text(source_label(link.source)),
    ]


def formatted(value: Any, number_format: str) -> Formatted | None:
    return None if value is None else (value, number_format)


def typed_cell(sheet: WriteOnlyWorksheet, value: Any, number_format: str) -> Any:
    if value is None:
        return None
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = number_format
    return cell


def decimal_amount(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_digits(currency))


def export_filename(today: dt.date) -> str:
    return f"sent-pages-{today.isoformat()}.xlsx"


def xlsx_response(write: Callable[[IO[bytes]], object], filename: str) -> Response:
    """A workbook download: ``write`` writes it into a file that stays in memory up to a size
    and moves to disk beyond it."""
    spool, size = _spooled(write)
    response = Response(
        app_iter=FileIter(spool), content_type=XLSX_TYPE, content_length=size, charset=None
    )
    response.content_disposition = f'attachment; filename="{filename}"'
    return response


def _spooled(write: Callable[[IO[bytes]], object]) -> tuple[IO[bytes], int]:
    """What ``write`` wrote, in a file rewound for reading, and its size; whoever reads it
    closes it (the response's FileIter does, once it has been sent)."""
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL_BYTES)  # noqa: SIM115
    try:
        write(spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size
