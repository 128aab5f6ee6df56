"""Sent Pages to Excel: every link the query matches (not one page), as a real .xlsx.

The rows stream from the database (only the fields the chosen columns show) into the
workbook's deflate stream (sent/xlsx.py), so a firm's whole history never sits in memory.
Amounts are numbers with their currency's format, dates are dates, timestamps are the
firm's wall-clock time (Excel has no time zones), and no text cell can start a formula: a
value a payer or an uploaded file chose ("=HYPERLINK(…)") gets a leading apostrophe
(clientpay_connect/cells.py, as every file we write).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import IO, Any
from zoneinfo import ZoneInfo

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from pyramid.response import FileIter, Response

from clientpay_connect.cells import xlsx_text
from clientpay_connect.links.services import status_label
from clientpay_connect.money import minor_digits
from clientpay_connect.sent.present import source_label
from clientpay_connect.sent.xlsx import CellWriter, RowCell, SheetColumn, StreamingSheet

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET_TITLE = "Sent Pages"
DATE_FORMAT = "yyyy-mm-dd"
TIMESTAMP_FORMAT = "yyyy-mm-dd hh:mm"
WHOLE_NUMBER_FORMAT = "0"
# An export stays in memory up to this size and moves to a temporary file beyond it.
EXPORT_SPOOL_BYTES = 16 * 1024 * 1024
# A column of labels (statuses, sources) has a handful of values: each one's label is kept.
LABELS_KEPT = 64
CURRENCY_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "GBP": "£", "EUR": "€"}


@dataclass(frozen=True)
class Names:
    """What a row shows by name but a link holds by id: its creator and merchant account.
    Read once per export (a firm has few of each), not once per row."""

    users: dict[int, str]
    accounts: dict[int, str]


@dataclass(frozen=True)
class RowContext:
    """What the cells of an export need besides the row."""

    url_for: Callable[[str], str]  # a link's encrypted token → the payer's URL
    zone: ZoneInfo
    names: Names
    at: Mapping[str, int]  # where each field the columns read is in a fetched row


# A column's cell writer for one export: made once (from the sheet's writers of its column and
# the context), then called for every row with the row and its number.
CellMaker = Callable[[SheetColumn, RowContext], RowCell]


@dataclass(frozen=True)
class Column:
    header: str
    width: int  # in characters
    reads: tuple[str, ...]  # the link's fields (PaymentLink attributes) the cell is made of
    cell: CellMaker


def _text(field: str, shown: Callable[[Any], str] | None = None) -> CellMaker:
    """A text cell: the field, or what ``shown`` makes of it, made formula-safe."""

    def make(sheet: SheetColumn, context: RowContext) -> RowCell:
        text, i = sheet.text(), context.at[field]
        if shown is None:
            return lambda row, ref: text(safe_text(row[i]), ref)
        show = shown
        return lambda row, ref: text(safe_text(show(row[i])), ref)

    return make


def _label(field: str, label: Callable[[str], str]) -> CellMaker:
    """A text cell of one of a few values (a status, a source): each label made once."""

    def make(sheet: SheetColumn, context: RowContext) -> RowCell:
        text, i = sheet.text(), context.at[field]
        shown = lru_cache(maxsize=LABELS_KEPT)(lambda value: xlsx_text(label(value)))
        return lambda row, ref: text(shown(row[i]), ref)

    return make


def _named(field: str, names: Callable[[Names], dict[int, str]]) -> CellMaker:
    """A text cell naming what the link holds by id (its creator, its merchant account)."""

    def make(sheet: SheetColumn, context: RowContext) -> RowCell:
        text, i = sheet.text(), context.at[field]
        safe = {key: xlsx_text(name) for key, name in names(context.names).items()}
        return lambda row, ref: text(safe.get(row[i]), ref)

    return make


def _url(sheet: SheetColumn, context: RowContext) -> RowCell:
    # Only an export with this column decrypts the tokens (the costliest cell there is).
    text, i, url_for = sheet.text(), context.at["token_encrypted"], context.url_for
    return lambda row, ref: text(safe_text(url_for(row[i])), ref)


def _as_is(field: str, writer: Callable[[SheetColumn], CellWriter]) -> CellMaker:
    """A cell of the field's value itself (a number, a date), as ``writer`` writes it."""

    def make(sheet: SheetColumn, context: RowContext) -> RowCell:
        cell, i = writer(sheet), context.at[field]
        return lambda row, ref: cell(row[i], ref)

    return make


def _date(field: str) -> CellMaker:
    return _as_is(field, lambda sheet: sheet.date(DATE_FORMAT))


def _number(field: str) -> CellMaker:
    return _as_is(field, lambda sheet: sheet.number(WHOLE_NUMBER_FORMAT))


def _timestamp(field: str) -> CellMaker:
    """The firm's wall-clock time of a UTC timestamp (Excel has no time zones)."""

    def make(sheet: SheetColumn, context: RowContext) -> RowCell:
        stamp, i, zone = sheet.timestamp(TIMESTAMP_FORMAT), context.at[field], context.zone

        def cell(row: Sequence[Any], ref: str) -> str:
            value = row[i]
            return "" if value is None else stamp(value.astimezone(zone), ref)

        return cell

    return make


def _money(field: str) -> CellMaker:
    """An amount in minor units, as a number in its currency's format (the row's currency)."""

    def make(sheet: SheetColumn, context: RowContext) -> RowCell:
        i, c = context.at[field], context.at["currency"]
        # A few currencies per firm: each one's format and digits are looked up once.
        by_currency: dict[str, tuple[CellWriter, int]] = {}

        def cell(row: Sequence[Any], ref: str) -> str:
            currency = row[c]
            known = by_currency.get(currency)
            if known is None:
                number = sheet.number(amount_format(currency))
                known = by_currency[currency] = (number, minor_digits(currency))
            number, digits = known
            return number(amount_text(row[i], digits), ref)

        return cell

    return make


# Every column the export can have, by the link's field it shows; ``columns`` picks and
# orders them (the grid's visible columns), DEFAULT_COLUMNS when it is not given.
EXPORT_COLUMNS: dict[str, Column] = {
    "id": Column("Link ID", 10, ("id",), _number("id")),
    "status": Column("Status", 18, ("status",), _label("status", status_label)),
    "invoice_number": Column("Invoice Number", 18, ("invoice_number",), _text("invoice_number")),
    "invoice_date": Column("Invoice Date", 13, ("invoice_date",), _date("invoice_date")),
    "due_date": Column("Due Date", 13, ("due_date",), _date("due_date")),
    "recipient_name": Column("Recipient", 26, ("recipient_name",), _text("recipient_name")),
    "emails": Column("Emails", 34, ("emails",), _text("emails", ", ".join)),
    "amount": Column("Amount", 14, ("amount_minor", "currency"), _money("amount_minor")),
    "amount_paid": Column(
        "Amount Paid", 14, ("amount_paid_minor", "currency"), _money("amount_paid_minor")
    ),
    "amount_refunded": Column(
        "Amount Refunded",
        14,
        ("amount_refunded_minor", "currency"),
        _money("amount_refunded_minor"),
    ),
    "currency": Column("Currency", 10, ("currency",), _label("currency", str)),
    "created_at": Column("Created", 18, ("created_at",), _timestamp("created_at")),
    "sent_at": Column("Sent", 18, ("sent_at",), _timestamp("sent_at")),
    "paid_at": Column("Paid", 18, ("paid_at",), _timestamp("paid_at")),
    "expires_at": Column("Expires", 18, ("expires_at",), _timestamp("expires_at")),
    "cancelled_at": Column("Cancelled", 18, ("cancelled_at",), _timestamp("cancelled_at")),
    "url": Column("Link URL", 50, ("token_encrypted",), _url),
    "source": Column("Source", 13, ("source",), _label("source", source_label)),
    "merchant_account_id": Column(
        "Merchant Account",
        22,
        ("merchant_account_id",),
        _named("merchant_account_id", lambda names: names.accounts),
    ),
    "created_by": Column(
        "Created By",
        22,
        ("created_by_user_id",),
        _named("created_by_user_id", lambda names: names.users),
    ),
    "reminders_sent": Column("Reminders Sent", 10, ("reminders_sent",), _number("reminders_sent")),
    "first_opened_at": Column(
        "First Opened", 18, ("first_opened_at",), _timestamp("first_opened_at")
    ),
    "last_opened_at": Column("Last Opened", 18, ("last_opened_at",), _timestamp("last_opened_at")),
    "email_status": Column(
        "Email",
        12,
        ("email_status",),
        _label("email_status", lambda status: status.replace("_", " ").capitalize()),
    ),
    "message": Column("Message", 40, ("message",), _text("message")),
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


def fields_read(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The link's fields the export of these columns reads, each once, in a fixed order."""
    return tuple(dict.fromkeys(read for name in fields for read in EXPORT_COLUMNS[name].reads))


def write_workbook(
    fetch: Callable[[tuple[str, ...]], Iterable[Sequence[Any]]],
    url_for: Callable[[str], str],
    zone: ZoneInfo,
    target: IO[bytes],
    fields: tuple[str, ...] = DEFAULT_COLUMNS,
    names: Names | None = None,
) -> int:
    """Write the links to ``target`` as an .xlsx, in the columns of ``fields``; the number of
    links written. ``fetch`` gives the matching links, in order, as rows of the fields asked
    for (fields_read: only those the columns show, so a link's token is decrypted only when
    its URL is shown). Streamed (sent/xlsx.py): a hundred thousand links in seconds, without
    holding them."""
    columns = [EXPORT_COLUMNS[name] for name in fields]
    reads = fields_read(fields)
    sheet = StreamingSheet(
        target, SHEET_TITLE, [(column.header, column.width) for column in columns]
    )
    context = RowContext(
        url_for, zone, names or Names({}, {}), {read: n for n, read in enumerate(reads)}
    )
    cells = [column.cell(sheet.column(n), context) for n, column in enumerate(columns)]
    written = sheet.write_rows(fetch(reads), cells)
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


def typed_cell(sheet: WriteOnlyWorksheet, value: Any, number_format: str) -> Any:
    if value is None:
        return None
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = number_format
    return cell


def decimal_amount(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_digits(currency))


def amount_text(minor: int, digits: int) -> str:
    """``minor`` units as the decimal number they are, in SpreadsheetML's text: 1234.50 for
    123450 with two digits (what format(decimal_amount(…), "f") gives, in integer steps)."""
    if not digits:
        return str(minor)
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{'-' if minor < 0 else ''}{whole}.{fraction:0{digits}d}"


def safe_text(text: str) -> str:
    """xlsx_text(text), the common case first: a text that starts with a letter or a digit
    and has no control or invisible character can neither run as a formula nor hold what XML
    cannot carry, so it is kept as it is without xlsx_text's character by character look."""
    if text[:1].isalnum() and text.isprintable():
        return text
    return xlsx_text(text)


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
