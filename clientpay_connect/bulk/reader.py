"""Read a bulk-upload file the way Excel and Google Sheets actually write it.

The rules (the tests pin each one down):

* **Encoding.** A byte-order mark decides: UTF-8, or UTF-16 LE/BE (Excel's "Unicode Text").
  Without one, UTF-16 is recognised by its pattern of NUL bytes; otherwise the file is read
  as strict UTF-8 and, failing that, as Windows-1252 (Excel's "CSV (Comma delimited)").
* **Delimiter.** Comma, semicolon or tab: whichever makes the most header names recognisable
  (a comma on ties). Quoted values may hold delimiters, quotes ("") and line breaks.
* **Header row.** The first non-blank row names the columns. Names are matched without regard
  to case, spacing, punctuation or anything in brackets ("E-mail Address", "AMOUNT ($)"), in
  any order; ``HEADER_ALIASES`` lists the synonyms. Recipient Name and Amount are required.
  Other columns are ignored and listed once in ``ParsedFile.ignored_columns``.
* **Two columns for one field.** When exactly one of them has the template's name ("Custom
  Message" beside "Notes"), that one is read and the others are ignored: listed in
  ``ignored_columns`` and, with the column read instead, in ``ParsedFile.set_aside``.
  Otherwise (two synonyms, or the template's name twice) nobody can tell which one is meant:
  the file is refused.
* **Row numbers** are the ones a spreadsheet shows for the file: the header is row 1 when the
  file starts with it, a quoted value spanning lines stays one row, and blank rows are skipped
  but still counted.

Whatever cannot be read this way (binary data, a workbook renamed .csv, an empty file, no
header row, no invoice rows, too big, a quote never closed) raises ``UnreadableFile`` with one
message for the person who uploaded it; nothing else escapes.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

FIELDS: tuple[str, ...] = (
    "invoice_number",
    "invoice_date",
    "due_date",
    "recipient_name",
    "amount",
    "email",
    "message",
)
FIELD_INDEX: dict[str, int] = {field: position for position, field in enumerate(FIELDS)}
# The template's headers, also used to name a field in messages.
FIELD_LABELS: dict[str, str] = {
    "invoice_number": "Invoice Number",
    "invoice_date": "Invoice Date",
    "due_date": "Due Date",
    "recipient_name": "Recipient Name",
    "amount": "Amount",
    "email": "Email Address",
    "message": "Custom Message",
}
REQUIRED_COLUMNS: tuple[str, ...] = ("recipient_name", "amount")

HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "invoice_number": (
        "Invoice Number",
        "Invoice #",
        "Invoice No",
        "Invoice Num",
        "Invoice ID",
        "Invoice",
        "Inv Number",
        "Inv No",
        "Inv #",
        "Inv",
        "Bill Number",
        "Bill No",
    ),
    "invoice_date": ("Invoice Date", "Inv Date", "Date", "Bill Date", "Issue Date", "Date Issued"),
    "due_date": ("Due Date", "Due", "Date Due", "Due By", "Payment Due", "Payment Due Date"),
    "recipient_name": (
        "Recipient Name",
        "Recipient",
        "Name",
        "Full Name",
        "Client Name",
        "Client",
        "Payer Name",
        "Payer",
        "Customer Name",
        "Customer",
        "Bill To",
    ),
    "amount": (
        "Amount",
        "Amount Due",
        "Total",
        "Total Due",
        "Balance",
        "Balance Due",
        "Invoice Amount",
        "Invoice Total",
        "Amount Owed",
    ),
    "email": (
        "Email Address",
        "Email Addresses",
        "Email",
        "Emails",
        "Recipient Email",
        "Client Email",
        "Payer Email",
    ),
    "message": (
        "Custom Message",
        "Message",
        "Email Message",
        "Personal Message",
        "Note",
        "Notes",
        "Memo",
        "Comment",
        "Comments",
    ),
}

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000

DELIMITER_NAMES: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab"}
ENCODING_LABELS: dict[str, str] = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with BOM)",
    "utf-16": "UTF-16 (with BOM)",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "cp1252": "Windows-1252",
}

# The error report adds these columns; a corrected report uploaded again is the expected way
# to fix rows, so they are dropped without being reported as ignored.
REPORT_COLUMNS: tuple[str, ...] = ("Errors", "Warnings")

# Enough for the header row of any real file, small enough to parse three times.
_SAMPLE_BYTES = 64 * 1024
_SAVE_AS_HINT = (
    'In Excel or Google Sheets, save or download the sheet as "CSV" (or Excel\'s '
    '"Unicode Text") and upload that file.'
)
_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")
# C0 and C1 control characters other than tab, line feed and carriage return.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Windows-1252 leaves these five bytes undefined: text in that encoding never has them.
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_BLANK_HEADER_CHARACTERS = ' \t\r\n,;"\ufeff'
# Appended after the file: if a quote is never closed, the mark ends up inside the last value
# instead of forming its own row, which is how an unclosed quote is told from a clean end.
_END_MARK = "\ufdd0clientpay-end-of-file\ufdd0"


class UnreadableFile(ValueError):
    """The file as a whole cannot be read; ``message`` says why, for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RawRow(NamedTuple):
    """One invoice row as text. A NamedTuple: 100,000 of them must stay small and quick."""

    row_number: int
    # The stripped cell of each field, in FIELDS order; "" when the file has no such column.
    values: tuple[str, ...]
    # The cells exactly as in the file, every column included, for the error report.
    cells: tuple[str, ...] = ()
    # Non-blank cells to the right of the last header: usually a value holding an unquoted
    # delimiter ("$1,234.50" in a comma file) that shifted the row.
    overflow: tuple[str, ...] = ()

    def get(self, field: str) -> str:
        return self.values[FIELD_INDEX[field]]

    @property
    def fields(self) -> dict[str, str]:
        return dict(zip(FIELDS, self.values, strict=True))

    @classmethod
    def from_fields(cls, row_number: int, fields: Mapping[str, str]) -> RawRow:
        """A row typed in by hand (the review page's "add a row"), in the file's shape."""
        values = tuple(str(fields.get(field, "") or "").strip() for field in FIELDS)
        return cls(row_number, values)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    rows: list[RawRow]
    headers: tuple[str, ...]
    # Field → index of its column in ``headers``; only fields the file has.
    columns: dict[str, int]
    ignored_columns: tuple[str, ...]
    encoding: str  # a Python codec name; ``encoding_label`` is for people
    delimiter: str
    header_row_number: int = 1
    # Columns ignored because another column holds their field under the template's name.
    set_aside: tuple[SetAside, ...] = ()

    @property
    def encoding_label(self) -> str:
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES[self.delimiter]

    @property
    def ignored_columns_message(self) -> str | None:
        if not self.ignored_columns:
            return None
        names = _human_list([self._ignored_and_why(name) for name in self.ignored_columns])
        noun = "This column was" if len(self.ignored_columns) == 1 else "These columns were"
        return f"{noun} ignored: {names}."

    def _ignored_and_why(self, name: str) -> str:
        for column in self.set_aside:
            if column.name == name:
                return set_aside_text(column)
        return _quoted(name)


class SetAside(NamedTuple):
    """A column not read because another holds its field under the template's own name."""

    name: str  # its header, as in the file
    field: str
    used: str  # the header of the column read instead


def set_aside_text(column: SetAside) -> str:
    """'"Notes" (the Custom Message is read from "Custom Message")', for messages."""
    label = FIELD_LABELS[column.field]
    return f"{_quoted(column.name)} (the {label} is read from {_quoted(column.used)})"


class ColumnMatch(NamedTuple):
    columns: dict[str, int]
    ignored: tuple[str, ...]
    # Fields named by more than one column, none of them alone by the template's name:
    # field → every index naming it.
    conflicts: dict[str, list[int]]
    set_aside: tuple[SetAside, ...] = ()


def header_key(name: str) -> str:
    """What is left of a header name to compare: no case, spacing, punctuation or (notes)."""
    key = _NOT_ALPHANUMERIC.sub("", _BRACKETED.sub("", name).casefold())
    # A name that is all brackets keeps its inside rather than vanishing.
    return key or _NOT_ALPHANUMERIC.sub("", name.casefold())


_FIELD_BY_KEY: dict[str, str] = {
    header_key(alias): field for field, aliases in HEADER_ALIASES.items() for alias in aliases
}
_QUIET_KEYS = frozenset(header_key(name) for name in REPORT_COLUMNS) | {""}


_TEMPLATE_KEYS: dict[str, str] = {field: header_key(label) for field, label in FIELD_LABELS.items()}


def match_columns(headers: Sequence[str]) -> ColumnMatch:
    """Which column holds which field: the one column naming it, or, among several, the one
    with the template's name; the first one while several remain (a conflict)."""
    columns: dict[str, int] = {}
    positions: dict[str, list[int]] = {}
    unread: list[int] = []
    for index, name in enumerate(headers):
        key = header_key(name)
        field = _FIELD_BY_KEY.get(key)
        if field is not None:
            columns.setdefault(field, index)
            positions.setdefault(field, []).append(index)
        elif key not in _QUIET_KEYS:
            unread.append(index)
    conflicts: dict[str, list[int]] = {}
    set_aside: list[SetAside] = []
    for field, found in positions.items():
        if len(found) == 1:
            continue
        exact = [i for i in found if header_key(headers[i]) == _TEMPLATE_KEYS[field]]
        if len(exact) != 1:
            conflicts[field] = found
            continue
        columns[field] = exact[0]
        others = [i for i in found if i != exact[0]]
        unread.extend(others)
        used = headers[exact[0]].strip()
        set_aside.extend(SetAside(headers[i].strip(), field, used) for i in others)
    # Each name once, in the file's order.
    ignored = dict.fromkeys(headers[i].strip() for i in sorted(unread))
    return ColumnMatch(columns, tuple(ignored), conflicts, tuple(set_aside))


def read_invoice_file(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_rows: int = DEFAULT_MAX_ROWS
) -> ParsedFile:
    """The invoice rows of an uploaded CSV/TXT file, or ``UnreadableFile`` saying why not."""
    _check_size(data, max_bytes)
    _reject_known_formats(data)
    encoding = _detect_encoding(data)
    sample = _decode_sample(data, encoding)
    _reject_binary_text(sample)
    layout = _detect_layout(sample, whole_file=len(data) <= _SAMPLE_BYTES)
    match = match_columns(layout.headers)
    _check_columns(layout, match)
    with garbage_collection_paused():
        rows = _read_rows(data, encoding, layout, match.columns, max_rows)
    if not rows:
        raise UnreadableFile(
            "The file has a header row but no invoice rows under it. Add one row per invoice "
            "and upload it again."
        )
    return ParsedFile(
        rows=rows,
        headers=layout.headers,
        columns=match.columns,
        ignored_columns=match.ignored,
        encoding=encoding,
        delimiter=layout.delimiter,
        header_row_number=layout.header_row_number,
        set_aside=match.set_aside,
    )


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a file's rows are built.

    Each full collection walks every object of the process, and 100,000 new rows set off
    several of them, which costs about a third of the reading time. The rows form no cycles,
    so there is nothing for the collector to find; it runs again as soon as they are built.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def column_letter(index: int) -> str:
    """A spreadsheet's name for the column at ``index`` (0 → "A", 26 → "AA")."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


# --- the whole file --------------------------------------------------------------------------


def _check_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise UnreadableFile("The file is empty.")
    if len(data) > max_bytes:
        raise UnreadableFile(
            f"The file is {_size(len(data))}; the limit is {_size(max_bytes)}. "
            "Split it into smaller files."
        )


def _reject_known_formats(data: bytes) -> None:
    kind = _known_format(data[:4096])
    if kind is not None:
        raise UnreadableFile(f"This file is {kind}, not a CSV or TXT file. {_SAVE_AS_HINT}")


def _known_format(head: bytes) -> str | None:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if b"[Content_Types].xml" in head or b"xl/" in head:
            return "an Excel workbook (.xlsx)"
        if b"opendocument.spreadsheet" in head:
            return "an OpenDocument spreadsheet (.ods)"
        return "a zip archive (perhaps a workbook)"
    signatures = (
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
        (b"%PDF", "a PDF document"),
        (b"{\\rtf", "a rich-text (RTF) document"),
        (b"\x1f\x8b", "a compressed (gzip) file"),
        (b"\x89PNG", "an image"),
        (b"\xff\xd8\xff", "an image"),
        (b"GIF8", "an image"),
    )
    for signature, kind in signatures:
        if head.startswith(signature):
            return kind
    return None


def _detect_encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # the codec reads the mark and drops it
    unmarked_utf16 = _utf16_by_nul_pattern(data[:4096])
    if unmarked_utf16 is not None:
        return unmarked_utf16
    if b"\x00" in data:
        raise UnreadableFile(f"This is not a text file (it holds binary data). {_SAVE_AS_HINT}")
    if _is_utf8(data):
        return "utf-8"
    if _CP1252_UNDEFINED.search(data) is None:
        return "cp1252"
    raise UnreadableFile(
        "The file's characters could not be read: it is not UTF-8, UTF-16 or Windows-1252 text. "
        + _SAVE_AS_HINT
    )


def _utf16_by_nul_pattern(head: bytes) -> str | None:
    """UTF-16 without a BOM: delimiters, line breaks and Latin letters all have a NUL byte,
    always on the same side of the pair; binary data scatters its NULs on both sides."""
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > 2 and even * 10 < odd:
        return "utf-16-le"
    if even > 2 and odd * 10 < even:
        return "utf-16-be"
    return None


def _is_utf8(data: bytes) -> bool:
    # Checked in slices so that a large file is never held twice, as bytes and as text.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _SAMPLE_BYTES):
            decoder.decode(view[start : start + _SAMPLE_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _decode_sample(data: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        return decoder.decode(data[:_SAMPLE_BYTES], final=len(data) <= _SAMPLE_BYTES)
    except UnicodeDecodeError as exc:
        raise _undecodable(encoding) from exc


def _undecodable(encoding: str) -> UnreadableFile:
    return UnreadableFile(
        f"The file could not be read as {ENCODING_LABELS[encoding]} text: it is damaged or "
        f"not text. {_SAVE_AS_HINT}"
    )


def _reject_binary_text(sample: str) -> None:
    controls = len(_CONTROL_CHARACTERS.findall(sample))
    # A stray control character happens in real text; binary data is full of them.
    if "\x00" in sample or controls > max(1, len(sample) // 100):
        raise UnreadableFile(f"This is not a text file (it holds binary data). {_SAVE_AS_HINT}")


# --- the header row --------------------------------------------------------------------------


class _Layout(NamedTuple):
    delimiter: str
    header_row_number: int
    headers: tuple[str, ...]


def _detect_layout(sample: str, *, whole_file: bool) -> _Layout:
    best: tuple[tuple[int, int], _Layout] | None = None
    for delimiter in DELIMITER_NAMES:
        found = _first_nonblank_record(sample, delimiter)
        if found is None:
            continue
        row_number, cells = found
        recognised = {_FIELD_BY_KEY.get(header_key(cell)) for cell in cells} - {None}
        score = (len(recognised), sum(1 for cell in cells if cell.strip()))
        if best is None or score > best[0]:
            best = (score, _Layout(delimiter, row_number, tuple(cells)))
    if best is None:
        if whole_file:
            raise UnreadableFile("The file is empty: it has no text in it.")
        raise UnreadableFile("No header row was found at the start of the file.")
    return best[1]


def _first_nonblank_record(sample: str, delimiter: str) -> tuple[int, list[str]] | None:
    records = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    try:
        for row_number, cells in enumerate(records, start=1):
            # Not the header: a row of nothing but delimiters, whichever delimiter it is.
            if "".join(cells).strip(_BLANK_HEADER_CHARACTERS):
                return row_number, cells
    except csv.Error:
        return None
    return None


def _check_columns(layout: _Layout, match: ColumnMatch) -> None:
    missing = [FIELD_LABELS[field] for field in REQUIRED_COLUMNS if field not in match.columns]
    if not match.columns:
        raise UnreadableFile(
            f"No column headers were recognised in row {layout.header_row_number}, the first "
            f"row with text. It has {_found_headers(layout.headers)}. The first row must name "
            f"the columns, and {_human_list(missing)} are required; the template shows them."
        )
    if missing:
        noun = "column is" if len(missing) == 1 else "columns are"
        raise UnreadableFile(
            f"The {_human_list(missing)} {noun} missing. Required: "
            f"{_human_list([FIELD_LABELS[f] for f in REQUIRED_COLUMNS])}. The header row (row "
            f"{layout.header_row_number}) has {_found_headers(layout.headers)}."
        )
    for field, indexes in match.conflicts.items():
        named = _human_list(
            [f"{_quoted(layout.headers[i])} (column {column_letter(i)})" for i in indexes]
        )
        raise UnreadableFile(
            f"More than one column holds the {FIELD_LABELS[field]}: {named}. Keep one of them "
            "and upload the file again."
        )


def _found_headers(headers: Sequence[str]) -> str:
    names = [_quoted(name) for name in headers if name.strip()]
    if len(names) > 10:
        names = [*names[:10], f"{len(names) - 10} more"]
    return _human_list(names)


# --- the rows --------------------------------------------------------------------------------


def _read_rows(
    data: bytes, encoding: str, layout: _Layout, columns: dict[str, int], max_rows: int
) -> list[RawRow]:
    width = _last_named_column(layout.headers) + 1
    # Padded, a row has every column of the header and ends with "", which fields the file
    # has no column for read (index -1).
    padding = [""] * (width + 1)
    pick = itemgetter(*(columns.get(field, -1) for field in FIELDS))
    rows: list[RawRow] = []
    row_number = 0
    try:
        for row_number, cells in enumerate(_records(data, encoding, layout.delimiter), start=1):
            if row_number <= layout.header_row_number:
                continue
            if len(cells) == 1 and cells[0] == _END_MARK:
                return rows
            if not "".join(cells).strip():
                continue
            if len(rows) == max_rows:
                raise UnreadableFile(
                    f"The file has more than {max_rows:,} invoice rows. Split it into files of "
                    f"at most {max_rows:,} rows."
                )
            values = tuple(map(str.strip, pick(cells + padding)))
            overflow = _overflow(cells, width)
            kept = tuple(cells)
            # A file laid out as the template has its values as its cells: one tuple for
            # both (rows are held until stored: 10 MB fewer for 100,000 of them).
            rows.append(RawRow(row_number, values, values if kept == values else kept, overflow))
    except csv.Error as exc:
        raise _damaged_row(row_number + 1, exc) from exc
    except UnicodeDecodeError as exc:
        raise _undecodable(encoding) from exc
    raise UnreadableFile(
        f'Row {row_number}: a quotation mark (") opens a value that is never closed, so the '
        "rest of the file cannot be read. Close the quote, or remove it, and upload again."
    )


def _records(data: bytes, encoding: str, delimiter: str) -> Iterator[list[str]]:
    # Decoded as it is read, so a large file is never held in full as text.
    lines = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
    return csv.reader(itertools.chain(lines, ("\n", _END_MARK + "\n")), delimiter=delimiter)


def _last_named_column(headers: Sequence[str]) -> int:
    # Spreadsheets often write empty header cells after the last real one.
    return max((i for i, name in enumerate(headers) if name.strip()), default=0)


def _overflow(cells: list[str], width: int) -> tuple[str, ...]:
    if len(cells) <= width:
        return ()
    return tuple(cell.strip() for cell in cells[width:] if cell.strip())


def _damaged_row(row_number: int, exc: csv.Error) -> UnreadableFile:
    reason = str(exc)
    if "field larger than field limit" in reason:
        return UnreadableFile(
            f"Row {row_number}: a value is longer than {csv.field_size_limit():,} characters, "
            'usually because a quotation mark (") is never closed. Fix that row and upload '
            "again."
        )
    return UnreadableFile(f"Row {row_number} could not be read ({reason}).")


# --- wording ---------------------------------------------------------------------------------


def _quoted(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return f'"{text[:limit]}..."' if len(text) > limit else f'"{text}"'


def _human_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _size(size: int) -> str:
    if size < 1024 * 1024:
        return f"{-(-size // 1024)} KB"  # rounded up: 1 byte over a 1 KB limit is "2 KB"
    return f"{size / (1024 * 1024):.1f} MB"
