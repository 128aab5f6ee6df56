"""Check the rows of a bulk upload and turn their text into values.

Every problem of every row is reported at once, as (row number, field, message). Errors stop
a row from becoming a link; warnings (an invoice number used twice) are for the user to judge.

The rules for what people type:

* **Amounts** follow ``money.parse_amount``: the currency sign, spaces and apostrophes are
  dropped; when both "," and "." appear the last one is the decimal separator; a lone ","
  followed by one or two digits is a decimal separator ("1 234,50"), otherwise it groups
  thousands ("1,234"). Zero, negative amounts and more decimals than the currency has
  (two for USD) are errors.
* **Dates** (all optional), read in this order:
  - year first, ``2025-02-13`` (also ``2025/02/13``, ``2025.02.13``);
  - with slashes, always month first as in the US: ``2/13/2025``, ``2/13/25``. A first part
    above 12 is an error that names the likely day/month mix-up;
  - with dots or dashes, day and month are told apart only when one of them is above 12 (or
    both are the same): ``13.02.2025`` is 13 February, ``02.03.2025`` is ambiguous, an error;
  - with a month name: ``13-Feb-2025``, ``13 Feb 25``, ``Feb 13, 2025``;
  - an Excel serial number (the 1900 date system), ``45000`` is 2023-03-15.
  A time of day after the date ("2/13/2025 9:30") is ignored. Two-digit years 00-69 are
  2000-2069 and 70-99 are 1970-1999. Impossible dates (2/30/2025) are errors, and so are
  dates before 1970 or more than ten years after today: those are typing mistakes.
  The due date may not be before the invoice date.
* **Email addresses**: one or more per cell, separated by ";" or ","; each is checked and
  the bad one is named. "Name <address>" is read as the address.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple, Protocol, overload

from clientpay_connect.accounts.services import is_valid_email, normalize_email
from clientpay_connect.bulk.reader import (
    FIELD_LABELS,
    RawRow,
    garbage_collection_paused,
    header_key,
    match_columns,
)
from clientpay_connect.cells import formula_safe
from clientpay_connect.money import MAX_AMOUNT_MINOR, AmountError, minor_digits, parse_amount

MAX_INVOICE_NUMBER_LENGTH = 100
MAX_RECIPIENT_NAME_LENGTH = 200
MAX_MESSAGE_LENGTH = 2000
MAX_EMAILS_PER_ROW = 10
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE_YEARS_AHEAD = 10
# The field of an issue about the row as a whole rather than one of its values.
WHOLE_ROW = "row"
REPORT_ERRORS_COLUMN = "Errors"
REPORT_WARNINGS_COLUMN = "Warnings"

# Excel's 1900 date system counts 1900-02-29, a day that never was, so from March 1900 on a
# serial number is the days since 1899-12-30.
_EXCEL_EPOCH = date(1899, 12, 30)
_TIME_OF_DAY = re.compile(
    r"(?P<date>.+?)(?:[ T]+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?)$"
)
_YEAR_FIRST = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")
_MONTH_FIRST = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}|[0-9]{2})")
_DAY_OR_MONTH_FIRST = re.compile(r"([0-9]{1,2})([.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})")
_DAY_MONTH_NAME = re.compile(r"([0-9]{1,2})[-\s]+([A-Za-z]{3,9})\.?[-\s,]+([0-9]{4}|[0-9]{2})")
_MONTH_NAME_DAY = re.compile(r"([A-Za-z]{3,9})\.?[-\s]+([0-9]{1,2}),?[-\s]+([0-9]{4}|[0-9]{2})")
_EXCEL_SERIAL = re.compile(r"([0-9]{5})(?:\.[0-9]+)?")
_MONTH_NAMES = [name.casefold() for name in calendar.month_name]
_DATE_FORMATS_HINT = "Write dates as 2025-02-13 or 2/13/2025 (month/day/year)."

_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAMED_ADDRESS = re.compile(r"[^<>]*<([^<>]*)>")


class DateError(ValueError):
    """The text is not a date we accept; the message says why."""


@dataclass(frozen=True, slots=True)
class FieldIssue:
    field: str  # one of reader.FIELDS, or WHOLE_ROW
    message: str


@dataclass(slots=True)
class ValidatedRow:
    raw: RawRow
    invoice_number: str
    invoice_date: date | None
    due_date: date | None
    recipient_name: str
    amount_minor: int | None
    emails: tuple[str, ...]
    message: str
    # Tuples, mostly the shared empty one: 100,000 rows make no garbage-collector work.
    errors: tuple[FieldIssue, ...] = ()
    warnings: tuple[FieldIssue, ...] = ()

    @property
    def row_number(self) -> int:
        return self.raw.row_number

    @property
    def is_valid(self) -> bool:
        return not self.errors


def validate_rows(
    rows: Iterable[RawRow],
    *,
    currency: str = "USD",
    require_email: bool,
    existing_invoice_numbers: Collection[str] = frozenset(),
    today: date,
) -> list[ValidatedRow]:
    """Every row checked; errors and warnings on each, duplicates across rows included.

    ``require_email`` is for Send All, which emails every link; ``existing_invoice_numbers``
    are those of the firm's outstanding links.
    """
    checked = CheckedRows(
        rows if isinstance(rows, Sequence) else list(rows),
        currency=currency,
        require_email=require_email,
        existing_invoice_numbers=existing_invoice_numbers,
        today=today,
    )
    with garbage_collection_paused():
        return list(checked)


class CheckedRows(Sequence[ValidatedRow]):
    """validate_rows's rows, each checked when it is first read: a large upload's rows are
    checked while PostgreSQL stores the ones before them (services.insert_rows streams
    them), rather than all of them first while the database waits.

    A row's warnings name the other rows of its invoice number, which only the whole file
    tells: they are worked out first, from the invoice numbers alone (a row's checked number
    is its text single-spaced, and the comparison ignores spacing and case, so the texts
    give the same answer), for the rows that share a number only."""

    def __init__(
        self,
        rows: Sequence[RawRow],
        *,
        currency: str = "USD",
        require_email: bool,
        existing_invoice_numbers: Collection[str] = frozenset(),
        today: date,
    ) -> None:
        self._raw = rows
        self._checker = RowChecker(currency=currency, require_email=require_email, today=today)
        self._warnings = _shared_number_warnings(rows, existing_invoice_numbers)
        self._checked: list[ValidatedRow] = []

    def __len__(self) -> int:
        return len(self._raw)

    def __iter__(self) -> Iterator[ValidatedRow]:
        checked = self._checked
        for index in range(len(self._raw)):
            if index == len(checked):
                checked.append(self._check(index))
            yield checked[index]

    @overload
    def __getitem__(self, index: int) -> ValidatedRow: ...
    @overload
    def __getitem__(self, index: slice) -> list[ValidatedRow]: ...
    def __getitem__(self, index: int | slice) -> ValidatedRow | list[ValidatedRow]:
        if len(self._checked) < len(self._raw):
            for _ in self:  # the rest checked, in order
                pass
        return self._checked[index]

    def _check(self, index: int) -> ValidatedRow:
        row = self._checker.check(self._raw[index])
        warnings = self._warnings.get(index)
        if warnings:
            row.warnings = warnings
        return row


def _shared_number_warnings(
    rows: Sequence[RawRow], existing_invoice_numbers: Collection[str]
) -> dict[int, tuple[FieldIssue, ...]]:
    """flag_duplicate_invoice_numbers's warnings of the rows (by index) whose invoice number
    another row or an outstanding link has, from the rows' texts."""
    outstanding = {_invoice_key(number) for number in existing_invoice_numbers}
    first_with: dict[str, int] = {}
    flagged: set[str] = set()
    for index, row in enumerate(rows):
        key = _invoice_key(row.values[0])
        if not key:
            continue
        if first_with.setdefault(key, index) != index or key in outstanding:
            flagged.add(key)
    if not flagged:
        return {}
    indexes = [i for i, row in enumerate(rows) if _invoice_key(row.values[0]) in flagged]
    sharing = [
        ValidatedRow(
            RawRow(rows[i].row_number, ()),
            _single_spaced(rows[i].values[0]),
            None, None, "", None, (), "",
        )
        for i in indexes
    ]  # fmt: skip
    flag_duplicate_invoice_numbers(sharing, existing_invoice_numbers)
    return {i: row.warnings for i, row in zip(indexes, sharing, strict=True)}


class RowChecker:
    """Checks one row at a time; remembers the dates and amounts it has read, as a file
    repeats them (one invoice date for every row, a handful of fees)."""

    def __init__(self, *, currency: str = "USD", require_email: bool, today: date) -> None:
        self.currency = currency
        self.require_email = require_email
        self.latest_date = date(today.year + LATEST_DATE_YEARS_AHEAD, 12, 31)
        self._digits = minor_digits(currency)
        self._dates: dict[str, date | str] = {}
        self._amounts: dict[str, int | str] = {}

    def check(self, row: RawRow) -> ValidatedRow:
        (
            invoice_number_text,
            invoice_date_text,
            due_date_text,
            name_text,
            amount_text,
            email_text,
            message_text,
        ) = row.values
        errors: list[FieldIssue] = []
        # A line break or a run of spaces inside a name or number is formatting, not content.
        invoice_number = _single_spaced(invoice_number_text)
        recipient_name = _single_spaced(name_text)
        message = _multi_line(message_text)
        if not recipient_name:
            errors.append(FieldIssue("recipient_name", "Enter the recipient's name."))
        # A quick look at the three texts together (isprintable is the fast, usual answer);
        # the precise messages only when it finds something.
        texts = invoice_number + recipient_name + message
        if (
            len(invoice_number) > MAX_INVOICE_NUMBER_LENGTH
            or len(recipient_name) > MAX_RECIPIENT_NAME_LENGTH
            or len(message) > MAX_MESSAGE_LENGTH
            or (not texts.isprintable() and _CONTROL_CHARACTERS.search(texts))
        ):
            _check_text(errors, "invoice_number", invoice_number, MAX_INVOICE_NUMBER_LENGTH)
            _check_text(errors, "recipient_name", recipient_name, MAX_RECIPIENT_NAME_LENGTH)
            _check_text(errors, "message", message, MAX_MESSAGE_LENGTH)
        invoice_date = self._date(errors, "invoice_date", invoice_date_text)
        due_date = self._date(errors, "due_date", due_date_text)
        if invoice_date and due_date and due_date < invoice_date:
            errors.append(
                FieldIssue(
                    "due_date",
                    f"The due date ({due_date_text}) is before the invoice date "
                    f"({invoice_date_text}).",
                )
            )
        amount_minor = self._amount(errors, amount_text)
        emails = self._emails(errors, email_text)
        if row.overflow:
            errors.append(FieldIssue(WHOLE_ROW, _overflow_message(row.overflow)))
        return ValidatedRow(
            row,
            invoice_number,
            invoice_date,
            due_date,
            recipient_name,
            amount_minor,
            emails,
            message,
            tuple(errors),
        )

    def _date(self, errors: list[FieldIssue], field_name: str, text: str) -> date | None:
        if not text:
            return None
        found = self._dates.get(text)
        if found is None:
            try:
                found = parse_date(text, latest=self.latest_date)
            except DateError as exc:
                found = str(exc)
            self._dates[text] = found
        if isinstance(found, str):
            errors.append(FieldIssue(field_name, found))
            return None
        return found

    def _amount(self, errors: list[FieldIssue], text: str) -> int | None:
        found = self._amounts.get(text)
        if found is None:
            found = _plain_amount(text, self._digits)
            if found is None:
                try:
                    found = parse_amount(text, self.currency)
                except AmountError as exc:
                    found = str(exc)
            self._amounts[text] = found
        if isinstance(found, str):
            errors.append(FieldIssue("amount", found))
            return None
        return found

    def _emails(self, errors: list[FieldIssue], text: str) -> tuple[str, ...]:
        emails, problems = parse_emails(text)
        errors.extend(FieldIssue("email", problem) for problem in problems)
        if not emails and not problems and self.require_email:
            errors.append(
                FieldIssue("email", "Enter an email address: Send All emails every link.")
            )
        return emails


def flag_duplicate_invoice_numbers(
    rows: Sequence[ValidatedRow], existing_invoice_numbers: Collection[str] = frozenset()
) -> None:
    """Warn on rows sharing an invoice number, with each other or with an outstanding link.

    Numbers are compared without regard to case and spacing. Warnings from an earlier call
    are replaced, so the review page can call this again after rows are added or removed.
    """
    first_with: dict[str, ValidatedRow] = {}
    sharing_number: dict[str, list[ValidatedRow]] = {}
    for row in rows:
        if row.warnings:
            row.warnings = tuple(i for i in row.warnings if i.field != "invoice_number")
        if not row.invoice_number:
            continue
        key = _invoice_key(row.invoice_number)
        first = first_with.setdefault(key, row)
        if first is not row:
            sharing_number.setdefault(key, [first]).append(row)
    for sharing in sharing_number.values():
        leading = sharing[: _ROWS_NAMED + 1]
        for row in sharing:
            # Named: the first few others only, so a number shared by every row stays linear.
            others = [other.row_number for other in leading if other is not row][:_ROWS_NAMED]
            row.warnings += (
                FieldIssue(
                    "invoice_number",
                    f"Invoice number {row.invoice_number} is also in "
                    f"{_row_list(others, len(sharing) - 1)}.",
                ),
            )
    outstanding = {_invoice_key(number) for number in existing_invoice_numbers}
    for key in outstanding & first_with.keys():
        for row in sharing_number.get(key, [first_with[key]]):
            row.warnings += (
                FieldIssue(
                    "invoice_number",
                    f"Invoice number {row.invoice_number} already has an outstanding payment link.",
                ),
            )


# --- dates -----------------------------------------------------------------------------------


def parse_date(text: str, *, latest: date) -> date:
    """A date as people type it into a spreadsheet (the rules are in the module's docstring)."""
    original = text.strip()
    timed = _TIME_OF_DAY.fullmatch(original)
    text = timed.group("date").strip() if timed else original
    value = _read_date(original, text)
    if value < EARLIEST_DATE:
        raise DateError(
            f"{original} is too far in the past: dates from {EARLIEST_DATE:%Y} on are accepted."
        )
    if value > latest:
        raise DateError(
            f"{original} is too far in the future: dates up to {latest.isoformat()} are accepted."
        )
    return value


def _read_date(original: str, text: str) -> date:
    if match := _YEAR_FIRST.fullmatch(text):
        year, _separator, month, day = match.groups()
        return _make_date(original, int(year), int(month), int(day))
    if match := _MONTH_FIRST.fullmatch(text):
        month, day, year = (int(part) for part in match.groups())
        if month > 12:
            raise DateError(_day_month_mix_up(original, month, day, _full_year(year)))
        return _make_date(original, _full_year(year), month, day)
    if match := _DAY_OR_MONTH_FIRST.fullmatch(text):
        first, _separator, second, year_text = match.groups()
        return _day_or_month_first(original, int(first), int(second), _full_year(int(year_text)))
    if match := _DAY_MONTH_NAME.fullmatch(text):
        day, month_name, year = match.groups()
        month = _month_number(original, month_name)
        return _make_date(original, _full_year(int(year)), month, int(day))
    if match := _MONTH_NAME_DAY.fullmatch(text):
        month_name, day, year = match.groups()
        month = _month_number(original, month_name)
        return _make_date(original, _full_year(int(year)), month, int(day))
    if match := _EXCEL_SERIAL.fullmatch(text):
        return _EXCEL_EPOCH + timedelta(days=int(match.group(1)))
    raise DateError(f"{original} is not a date. {_DATE_FORMATS_HINT}")


def _day_month_mix_up(original: str, first: int, second: int, year: int) -> str:
    problem = (
        f"{original} is not a valid month/day/year date: there is no month {first}. Dates "
        "with slashes are read month first."
    )
    try:
        meant = _make_date(original, year, second, first)
    except DateError:
        return f"{problem} {_DATE_FORMATS_HINT}"
    return (
        f"{problem} If you meant {_spelled(meant)} (day/month/year), write "
        f"{meant.month}/{meant.day}/{meant.year} or {meant.isoformat()}."
    )


def _spelled(value: date) -> str:
    return f"{value.day} {calendar.month_name[value.month]} {value.year}"


def _day_or_month_first(original: str, first: int, second: int, year: int) -> date:
    if first == second or (first > 12 and second <= 12):
        return _make_date(original, year, second, first)
    if second > 12 and first <= 12:
        return _make_date(original, year, first, second)
    if first > 12:
        raise DateError(f"{original} is not a date. {_DATE_FORMATS_HINT}")
    day_first = _make_date(original, year, second, first)
    month_first = _make_date(original, year, first, second)
    raise DateError(
        f"{original} is ambiguous: it could be {_spelled(day_first)} or {_spelled(month_first)}. "
        f"Write it as {day_first.isoformat()} or {month_first.isoformat()}."
    )


def _make_date(original: str, year: int, month: int, day: int) -> date:
    if not 1 <= month <= 12:
        raise DateError(f"{original} is not a real date: there is no month {month}.")
    if not 1 <= year <= 9999:
        raise DateError(f"{original} is not a real date.")
    days_in_month = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        raise DateError(
            f"{original} is not a real date: {calendar.month_name[month]} {year} has "
            f"{days_in_month} days."
        )
    return date(year, month, day)


def _full_year(year: int) -> int:
    if year >= 100:
        return year
    return 2000 + year if year < 70 else 1900 + year


def _month_number(original: str, name: str) -> int:
    wanted = name.casefold()
    for number, month_name in enumerate(_MONTH_NAMES):
        if number and month_name.startswith(wanted):
            return number
    raise DateError(f"{original} is not a date: {name!r} is not a month. {_DATE_FORMATS_HINT}")


# --- amounts, emails, text -------------------------------------------------------------------


_PLAIN_AMOUNT = re.compile(r"\$?([0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,13})(?:\.([0-9]{1,20}))?")


def _plain_amount(text: str, digits: int) -> int | None:
    """The common shapes ("1234.50", "$1,234.50") without parse_amount's general machinery;
    None for anything else, including amounts parse_amount must refuse with its message."""
    match = _PLAIN_AMOUNT.fullmatch(text)
    if match is None:
        return None
    whole, fraction = match.groups()
    fraction = (fraction or "").rstrip("0")
    if len(fraction) > digits:
        return None
    minor = int(whole.replace(",", "")) * 10**digits + int(fraction.ljust(digits, "0") or "0")
    return minor if 0 < minor <= MAX_AMOUNT_MINOR else None


def parse_emails(text: str) -> tuple[tuple[str, ...], list[str]]:
    """The addresses in a cell (normalized, each once) and a message for each bad one."""
    if ";" not in text and "," not in text and "<" not in text:
        # The usual cell: one plain address (or none).
        address = normalize_email(text)
        # The cell's own string when it was written normalized: lower() always copies.
        address = text if address == text else address
        if not address:
            return (), []
        if is_valid_email(address):
            return (address,), []
    emails: list[str] = []
    problems: list[str] = []
    for part in text.replace(",", ";").split(";"):
        candidate = part.strip()
        if not candidate:
            continue
        named = _NAMED_ADDRESS.fullmatch(candidate) if "<" in candidate else None
        address = normalize_email(named.group(1) if named else candidate)
        if is_valid_email(address):
            if address not in emails:
                emails.append(address)
        else:
            problems.append(_bad_email_message(candidate))
    if len(emails) > MAX_EMAILS_PER_ROW:
        problems.append(
            f"{len(emails)} email addresses; at most {MAX_EMAILS_PER_ROW} can be sent one link."
        )
    return tuple(emails), problems


def _bad_email_message(candidate: str) -> str:
    shown = candidate if len(candidate) <= 60 else candidate[:60] + "..."
    if candidate.count("@") > 1 and any(space.isspace() for space in candidate):
        return f'"{shown}" is not a valid email address: separate addresses with ";" or ",".'
    return f'"{shown}" is not a valid email address.'


def _single_spaced(text: str) -> str:
    """``text`` with every run of spaces and line breaks made one space. The file's own
    string when that changes nothing (nearly always): a copy per row of a 100,000-row file
    is six megabytes held until its rows are stored."""
    spaced = " ".join(text.split())
    return text if spaced == text else spaced


def _multi_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip() if text else text


_WHAT = {"invoice_number": "invoice number", "recipient_name": "name", "message": "message"}


def _check_text(errors: list[FieldIssue], field_name: str, text: str, limit: int) -> None:
    what = _WHAT[field_name]
    if len(text) > limit:
        errors.append(
            FieldIssue(field_name, f"The {what} has {len(text):,} characters; at most {limit:,}.")
        )
    if _CONTROL_CHARACTERS.search(text):
        errors.append(
            FieldIssue(
                field_name, f"The {what} holds a control character that cannot be sent; retype it."
            )
        )


def _overflow_message(overflow: Sequence[str]) -> str:
    extra = ", ".join(f'"{cell[:40]}"' for cell in overflow[:3])
    return (
        f"This row has more values than there are column headers (extra: {extra}). A value "
        "with a comma or semicolon in it, such as $1,234.50, was probably not in quotes and "
        "split in two."
    )


def _invoice_key(number: str) -> str:
    return " ".join(number.split()).casefold()


_ROWS_NAMED = 5


def _row_list(shown: Sequence[int], total: int) -> str:
    """Row numbers for a message: "row 4", "rows 4 and 9", "rows 4, 9, 12, 15, 20 and 37 more"."""
    names = [str(number) for number in shown]
    if total > len(shown):
        names.append(f"{total - len(shown)} more")
    if len(names) == 1:
        return f"row {names[0]}"
    return f"rows {', '.join(names[:-1])} and {names[-1]}"


# --- the downloadable report -----------------------------------------------------------------


class ReportRow(Protocol):
    @property
    def raw(self) -> RawRow: ...
    @property
    def errors(self) -> Sequence[FieldIssue]: ...
    @property
    def warnings(self) -> Sequence[FieldIssue]: ...


class ReportLine(NamedTuple):
    """A row for the report when it is rebuilt from stored rows rather than validated now."""

    raw: RawRow
    errors: Sequence[FieldIssue]
    warnings: Sequence[FieldIssue]


def error_report_csv(
    headers: Sequence[str],
    rows: Iterable[ReportRow],
    *,
    delimiter: str = ",",
    header_row_number: int = 1,
) -> bytes:
    """The uploaded rows with "Errors" and "Warnings" columns added, as CSV (UTF-8 with BOM).

    Row numbers stay those of the uploaded file (blank rows are written back as blank), so
    "row 7" in a message is row 7 of the report. The file's own delimiter is used, so it
    opens in the spreadsheet it came from; a corrected report can be uploaded again.
    """
    # The Errors and Warnings of a report uploaded again are replaced, not repeated.
    dropped = {i for i, name in enumerate(headers) if header_key(name) in _REPORT_KEYS}
    columns = match_columns(headers).columns
    labels = {name: headers[index].strip() for name, index in columns.items()}
    ordered = sorted(rows, key=lambda row: row.raw.row_number)
    width = max([len(headers), *(len(row.raw.cells) for row in ordered)])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    for _ in range(header_row_number - 1):
        writer.writerow([])
    writer.writerow(
        _report_line(_padded(headers, width), dropped, REPORT_ERRORS_COLUMN, REPORT_WARNINGS_COLUMN)
    )
    previous = header_row_number
    for row in ordered:
        for _ in range(row.raw.row_number - previous - 1):
            writer.writerow([])
        previous = max(previous, row.raw.row_number)
        cells = _padded(_cells_of(row.raw, columns), width)
        writer.writerow(
            _report_line(
                cells, dropped, _issues_text(row.errors, labels), _issues_text(row.warnings, labels)
            )
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


_REPORT_KEYS = frozenset({header_key(REPORT_ERRORS_COLUMN), header_key(REPORT_WARNINGS_COLUMN)})


def _cells_of(raw: RawRow, columns: dict[str, int]) -> Sequence[str]:
    if raw.cells:
        return raw.cells
    # A row added by hand has no cells of the file: its values go under their headers.
    placed = [""] * (max(columns.values(), default=0) + 1)
    for name, index in columns.items():
        placed[index] = raw.get(name)
    return placed


def _padded(cells: Sequence[str], width: int) -> list[str]:
    return [*cells, *([""] * (width - len(cells)))]


def _report_line(cells: list[str], dropped: set[int], errors: str, warnings: str) -> list[str]:
    if dropped:
        cells = [cell for index, cell in enumerate(cells) if index not in dropped]
    return [formula_safe(cell) for cell in (*cells, errors, warnings)]


def _issues_text(issues: Sequence[FieldIssue], labels: dict[str, str]) -> str:
    parts = []
    for issue in issues:
        if issue.field == WHOLE_ROW:
            parts.append(issue.message)
        else:
            label = labels.get(issue.field) or FIELD_LABELS.get(issue.field, issue.field)
            parts.append(f"{label}: {issue.message}")
    return "; ".join(parts)
