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
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
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
DATE_FORMAT = "yyyy-mm-dd"
TIMESTAMP_FORMAT = "yyyy-mm-dd hh:mm"
WHOLE_NUMBER_FORMAT = "0"
# An export stays in memory up to this size and moves to a temporary file beyond it.
EXPORT_SPOOL_BYTES = 16 * 1024 * 1024
CURRENCY_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "GBP": "£", "EUR": "€"}


@dataclass(frozen=True)
class Names:
    """What a row shows by name but a link holds by id: its creator and merchant account.
    Read once per export (a firm has few of each), not once per row."""

    users: dict[int, str]
    accounts: dict[int, str]


@dataclass(frozen=True)
class RowContext:
    url_for: Callable[[PaymentLink], str]
    zone: ZoneInfo
    names: Names


Cell = Callable[[PaymentLink, RowContext], Any]


def _text(value: Callable[[PaymentLink], str]) -> Cell:
    return lambda link, _context: xlsx_text(value(link))


def _date(field: str) -> Cell:
    return lambda link, _context: formatted(getattr(link, field), DATE_FORMAT)


def _timestamp(field: str) -> Cell:
    return lambda link, c: formatted(local_naive(getattr(link, field), c.zone), TIMESTAMP_FORMAT)


def _money(minor: Callable[[PaymentLink], int]) -> Cell:
    return lambda link, _context: formatted(
        decimal_amount(minor(link), link.currency), amount_format(link.currency)
    )


def _number(field: str) -> Cell:
    return lambda link, _context: formatted(getattr(link, field), WHOLE_NUMBER_FORMAT)


@dataclass(frozen=True)
class Column:
    header: str
    width: int  # in characters
    cell: Cell


# Every column the export can have, by the link object's field it shows; ``columns`` picks and
# orders them (the grid's visible columns), DEFAULT_COLUMNS when it is not given.
EXPORT_COLUMNS: dict[str, Column] = {
    "id": Column("Link ID", 10, _number("id")),
    "status": Column("Status", 18, _text(lambda link: status_label(link.status))),
    "invoice_number": Column("Invoice Number", 18, _text(lambda link: link.invoice_number)),
    "invoice_date": Column("Invoice Date", 13, _date("invoice_date")),
    "due_date": Column("Due Date", 13, _date("due_date")),
    "recipient_name": Column("Recipient", 26, _text(lambda link: link.recipient_name)),
    "emails": Column("Emails", 34, _text(lambda link: ", ".join(link.emails))),
    "amount": Column("Amount", 14, _money(lambda link: link.amount_minor)),
    "amount_paid": Column("Amount Paid", 14, _money(lambda link: link.amount_paid_minor)),
    "amount_refunded": Column(
        "Amount Refunded", 14, _money(lambda link: link.amount_refunded_minor)
    ),
    "currency": Column("Currency", 10, _text(lambda link: link.currency)),
    "created_at": Column("Created", 18, _timestamp("created_at")),
    "sent_at": Column("Sent", 18, _timestamp("sent_at")),
    "paid_at": Column("Paid", 18, _timestamp("paid_at")),
    "expires_at": Column("Expires", 18, _timestamp("expires_at")),
    "cancelled_at": Column("Cancelled", 18, _timestamp("cancelled_at")),
    "url": Column("Link URL", 50, lambda link, c: xlsx_text(c.url_for(link))),
    "source": Column("Source", 13, _text(lambda link: source_label(link.source))),
    "merchant_account_id": Column(
        "Merchant Account",
        22,
        lambda link, c: xlsx_text(c.names.accounts.get(link.merchant_account_id, "")),
    ),
    "created_by": Column(
        "Created By",
        22,
        lambda link, c: xlsx_text(c.names.users.get(link.created_by_user_id or 0, "")),
    ),
    "reminders_sent": Column("Reminders Sent", 10, _number("reminders_sent")),
    "first_opened_at": Column("First Opened", 18, _timestamp("first_opened_at")),
    "last_opened_at": Column("Last Opened", 18, _timestamp("last_opened_at")),
    "email_status": Column(
        "Email", 12, _text(lambda link: link.email_status.replace("_", " ").capitalize())
    ),
    "message": Column("Message", 40, _text(lambda link: link.message)),
}
DEFAULT_COLUMNS = (
    "status",
    "invoice_number",
    "invoice_date",
    "due_date",
    "recipient_name",
    "emails",
    "amount",
    "amount_paid",
    "currency",
    "created_at",
    "sent_at",
    "paid_at",
    "expires_at",
    "url",
    "source",
)
MAX_COLUMNS_PARAM = 1000


def parse_columns(text: str | None) -> tuple[tuple[str, ...], str | None]:
    """The ``columns`` parameter: the fields in order (each once), and what was wrong."""
    if text is None or not text.strip():
        return DEFAULT_COLUMNS, None
    if len(text) > MAX_COLUMNS_PARAM:
        return DEFAULT_COLUMNS, f"Use at most {MAX_COLUMNS_PARAM} characters."
    fields = [part.strip() for part in text.split(",")]
    unknown = [name for name in fields if name not in EXPORT_COLUMNS]
    if unknown:
        return DEFAULT_COLUMNS, (
            f"{', '.join(repr(name) for name in unknown)}: use fields of "
            f"{', '.join(EXPORT_COLUMNS)}, separated by commas."
        )
    return tuple(dict.fromkeys(fields)), None


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
    fields: tuple[str, ...] = DEFAULT_COLUMNS,
    names: Names | None = None,
) -> int:
    """Write the links to ``target`` as an .xlsx, in the columns of ``fields``; the number of
    links written. Streamed (sent/xlsx.py): a hundred thousand links in seconds, without
    holding them."""
    columns = [EXPORT_COLUMNS[name] for name in fields]
    sheet = StreamingSheet(
        target, SHEET_TITLE, [(column.header, column.width) for column in columns]
    )
    context = RowContext(url_for, zone, names or Names({}, {}))
    written = 0
    for link in links:
        sheet.append([column.cell(link, context) for column in columns])
        written += 1
    sheet.close()
    return written


def set_up_sheet(sheet: WriteOnlyWorksheet, columns: list[tuple[str, int]]) -> None:
    """Column widths, and a bold header row that stays in view."""
    # Widths and frozen header must be set before the first row is written.
    for index, (_header, width) in enumerate(columns, start=1):
        # Worksheet._setup gives write-only sheets their column_dimensions; the stubs miss it.
        sheet.column_dimensions[get_column_letter(index)].width = width  # type: ignore[attr-defined]
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title, _width in columns:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)


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
