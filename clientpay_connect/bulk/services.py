"""Bulk uploads under review: storing a checked file's rows, reading them back, and the
review's changes (delete a row, add one by hand), each followed by a fresh duplicate check.

A file may hold 100,000 invoices: rows are written by the driver in bulk (fastwrite.py) and
read with Core queries, never as ORM objects one by one. Each row keeps the file's own cells
(``raw``), from which its typed values and the error report are rebuilt with the upload's
header. Every lookup starts from an upload of the asking firm; rows are only ever reached
through their upload.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, Text, and_, bindparam, case, func, literal, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.bulk.fastwrite import (
    TableWriter,
    is_postgresql,
    json_strings,
    json_text,
    refresh_statistics,
    wrote_with_core,
)
from clientpay_connect.bulk.models import (
    UPLOAD_FAILED,
    UPLOAD_PROCESSING,
    UPLOAD_REVIEW,
    BulkRow,
    BulkUpload,
)
from clientpay_connect.bulk.reader import (
    FIELDS,
    ParsedFile,
    RawRow,
    SetAside,
    garbage_collection_paused,
    match_columns,
    read_invoice_file,
)
from clientpay_connect.bulk.validation import (
    MAX_INVOICE_NUMBER_LENGTH,
    MAX_RECIPIENT_NAME_LENGTH,
    CheckedRows,
    FieldIssue,
    ReportLine,
    RowChecker,
    ValidatedRow,
    error_report_csv,
    flag_duplicate_invoice_numbers,
)
from clientpay_connect.db import possible_id, utcnow
from clientpay_connect.links.forms import active_accounts
from clientpay_connect.links.models import STATUS_OUTSTANDING, PaymentLink

MAX_FILENAME = 255
ROWS_TABLE = cast(Table, BulkRow.__table__)
# From this many rows on, an upload's rows have their statistics gathered before the commit
# (refresh_statistics): the review's first page must not be planned for an empty table.
ANALYZE_AFTER_ROWS = 10_000
# The columns every page of an upload finds its rows by (the review, the counts, the links).
ROWS_LOOKED_UP_BY = {ROWS_TABLE: ("upload_id", "deleted", "row_number")}
# Only rows under review may change; once Send All or Generate has begun they are the links'.
EDITABLE_STATUSES = (UPLOAD_REVIEW, UPLOAD_FAILED)


class Refused(Exception):
    """The upload's state does not allow this (an API 409); ``code`` names the reason."""

    def __init__(
        self,
        code: str,
        message: str,
        errors: list[dict[str, str]] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors or []
        self.extra = extra


class RowView(NamedTuple):
    """One invoice row as the review shows it, whether just validated or read back."""

    row_number: int
    typed: tuple[str, ...]  # the texts as written, in reader.FIELDS order
    invoice_number: str
    invoice_date: dt.date | None
    due_date: dt.date | None
    recipient_name: str
    amount_minor: int | None
    emails: tuple[str, ...]
    message: str
    errors: tuple[FieldIssue, ...]
    warnings: tuple[FieldIssue, ...]
    added_by_hand: bool = False
    link_id: int | None = None
    id: int | None = None

    @property
    def typed_fields(self) -> dict[str, str]:
        return dict(zip(FIELDS, self.typed, strict=True))


@dataclass(frozen=True)
class Counts:
    rows: int
    rows_with_errors: int
    error_count: int
    rows_with_warnings: int
    warning_count: int
    rows_without_email: int
    links: int
    amount_minor: int
    # Rows whose email cell holds something that is no address (errors, not "without").
    rows_with_invalid_email: int


# --- choosing the account, reading the file ---------------------------------------------------


def choose_account(dbsession: Session, firm_id: int, value: Any) -> MerchantAccount:
    """The account the links will use; with only one, it needs no choosing.

    Raises ``ValueError`` with a message for the person choosing.
    """
    accounts = active_accounts(dbsession, firm_id)
    text = "" if value is None else str(value).strip()
    if not accounts:
        raise ValueError("Your firm has no active merchant account, so no link can be made yet.")
    if not text:
        if len(accounts) == 1:
            return accounts[0]
        raise ValueError("Choose a merchant account.")
    for account in accounts:
        if str(account.id) == text:
            return account
    # Another firm's account reads exactly like a missing one.
    raise ValueError("Choose one of your firm's active merchant accounts.")


def clean_filename(name: Any) -> str:
    """The file's own name, without the folders some browsers send along."""
    text = name if isinstance(name, str) else ""
    base = os.path.basename(text.replace("\\", "/"))
    return re.sub(r"[\x00-\x1f\x7f]", "", base).strip()[:MAX_FILENAME] or "upload.csv"


def today() -> dt.date:
    return utcnow().date()


def check_file(
    data: bytes, *, currency: str, outstanding: Iterable[str]
) -> tuple[ParsedFile, CheckedRows]:
    """Read the file, and the rows to check; ``UnreadableFile`` when it cannot be read at all.

    The rows are checked as they are first read (CheckedRows): on PostgreSQL by
    store_upload, while the server stores the rows before them.

    Email addresses are not required here: Generate needs none, and Send All checks that
    every row has one when it is pressed.
    """
    parsed = read_invoice_file(data)
    rows = CheckedRows(
        parsed.rows,
        currency=currency,
        require_email=False,
        existing_invoice_numbers=frozenset(outstanding),
        today=today(),
    )
    return parsed, rows


def outstanding_invoice_numbers(dbsession: Session, firm_id: int) -> set[str]:
    return set(
        dbsession.execute(
            select(PaymentLink.invoice_number)
            .where(
                PaymentLink.firm_id == firm_id,
                PaymentLink.status == STATUS_OUTSTANDING,
                PaymentLink.invoice_number != "",
            )
            .distinct()
        ).scalars()
    )


# --- storing ----------------------------------------------------------------------------------


def store_upload(
    dbsession: Session,
    *,
    firm_id: int,
    user_id: int | None,
    account: MerchantAccount,
    filename: str,
    parsed: ParsedFile,
    rows: Sequence[ValidatedRow],
) -> BulkUpload:
    rows = _checked_before_writing(dbsession, rows)
    upload = BulkUpload(
        firm_id=firm_id,
        merchant_account_id=account.id,
        created_by_user_id=user_id,
        filename=filename,
        status=UPLOAD_REVIEW,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        header_row_number=parsed.header_row_number,
        headers=list(parsed.headers),
        ignored_columns=list(parsed.ignored_columns),
        progress_total=len(rows),
    )
    dbsession.add(upload)
    dbsession.flush()
    insert_rows(dbsession, upload.id, rows)
    # Planned with the statistics of before the load, the review's page of 100 rows sorted
    # all 100,000 (58 ms; 0.1 ms once analyzed, which takes 30 ms), and so did every page
    # after it, and each chunk of the links' job read the index entries of every row.
    if len(rows) >= ANALYZE_AFTER_ROWS:
        refresh_statistics(dbsession, ROWS_LOOKED_UP_BY)
    return upload


def _checked_before_writing(
    dbsession: Session, rows: Sequence[ValidatedRow]
) -> Sequence[ValidatedRow]:
    """``rows`` checked now, before the upload's first write, on SQLite: it writes in this
    process, so checking the rows as they are stored (CheckedRows) overlaps nothing there,
    and would only hold the database's one write lock for as long as the checks take.
    PostgreSQL's server stores the rows meanwhile: there they are checked as they go."""
    if is_postgresql(dbsession):
        return rows
    with garbage_collection_paused():
        return list(rows)


ROW_COLUMNS = (
    "upload_id",
    "row_number",
    "raw",
    "invoice_number",
    "invoice_date",
    "due_date",
    "recipient_name",
    "amount_minor",
    "emails",
    "message",
    "errors",
    "warnings",
    "added_by_hand",
    "deleted",
)


def insert_rows(
    dbsession: Session, upload_id: int, rows: Sequence[ValidatedRow], by_hand: bool = False
) -> None:
    """Every row at the driver's speed (a file may hold 100,000)."""
    writer = TableWriter(dbsession, ROWS_TABLE, ROW_COLUMNS)
    date = writer.memoized("invoice_date")
    shared = (writer.value("added_by_hand", by_hand), writer.value("deleted", False))
    empty = json_text([])

    def values(row: ValidatedRow) -> tuple[Any, ...]:
        raw = row.raw
        return (
            upload_id,
            raw.row_number,
            _raw_json(raw),
            # The columns are bounded and PostgreSQL text holds no NUL; a value too long or
            # with a control character is an error of the row already, and "raw" keeps it.
            _storable(row.invoice_number, MAX_INVOICE_NUMBER_LENGTH),
            date(row.invoice_date),
            date(row.due_date),
            _storable(row.recipient_name, MAX_RECIPIENT_NAME_LENGTH),
            row.amount_minor,
            json_strings(row.emails) if row.emails else empty,
            row.message.replace("\x00", ""),
            json_text(issues_json(row.errors)) if row.errors else empty,
            json_text(issues_json(row.warnings)) if row.warnings else empty,
            *shared,
        )

    writer.insert(map(values, rows))


def _raw_json(raw: RawRow) -> str:
    # The file's own cells (the values are read from them again with the header); a row
    # typed by hand has no cells, so its values are kept instead.
    if raw.cells:
        return '{"cells": ' + json_strings(raw.cells) + "}"
    return '{"values": ' + json_strings(raw.values) + "}"


def _storable(text: str, limit: int) -> str:
    return text.replace("\x00", "")[:limit]


def issues_json(issues: Iterable[FieldIssue]) -> list[dict[str, str]]:
    # Plain dicts: the JSON column's shape, and the API's.
    return [{"field": issue.field, "message": issue.message} for issue in issues]


def _issues(items: Iterable[Mapping[str, str]] | None) -> tuple[FieldIssue, ...]:
    return tuple(FieldIssue(item["field"], item["message"]) for item in items or ())


# --- reading back -----------------------------------------------------------------------------


def firm_upload(
    dbsession: Session, firm_id: int, upload_id: int, *, lock: bool = False
) -> BulkUpload | None:
    """The firm's upload, row-locked until commit when ``lock`` (PostgreSQL; SQLite's writers
    take turns anyway), so that review changes and Send All queue behind one another."""
    if not possible_id(upload_id):
        return None
    query = select(BulkUpload).where(BulkUpload.id == upload_id, BulkUpload.firm_id == firm_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return dbsession.execute(query).scalar_one_or_none()


def recent_uploads(dbsession: Session, firm_id: int, limit: int = 20) -> list[BulkUpload]:
    return list(
        dbsession.execute(
            select(BulkUpload)
            .where(BulkUpload.firm_id == firm_id)
            .order_by(BulkUpload.created_at.desc(), BulkUpload.id.desc())
            .limit(limit)
        ).scalars()
    )


_VIEW_COLUMNS = (
    BulkRow.id,
    BulkRow.row_number,
    BulkRow.raw,
    BulkRow.invoice_number,
    BulkRow.invoice_date,
    BulkRow.due_date,
    BulkRow.recipient_name,
    BulkRow.amount_minor,
    BulkRow.emails,
    BulkRow.message,
    BulkRow.errors,
    BulkRow.warnings,
    BulkRow.added_by_hand,
    PaymentLink.id.label("link_id"),
)
# Each row with its link, once made (the link names its row).
_ROWS_AND_LINKS = BulkRow.__table__.outerjoin(
    PaymentLink.__table__, PaymentLink.bulk_row_id == BulkRow.id
)


def _view_rows() -> Any:
    return select(*_VIEW_COLUMNS).select_from(_ROWS_AND_LINKS)


def live_rows(upload_id: int) -> Any:
    """The condition on BulkRow of the rows of ``upload_id`` still under review."""
    return and_(BulkRow.upload_id == upload_id, BulkRow.deleted.is_(False))


def row_views(
    dbsession: Session,
    upload: BulkUpload,
    *,
    offset: int = 0,
    limit: int | None = None,
    after: int | None = None,
    problems_only: bool = False,
) -> list[RowView]:
    query = _view_rows().where(live_rows(upload.id)).order_by(BulkRow.row_number)
    if problems_only:
        query = query.where(_has_problem())
    if after is not None:
        query = query.where(BulkRow.row_number > after)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    layout = RawLayout.of(upload)
    return [_view(record, layout) for record in dbsession.execute(query)]


def count_rows(dbsession: Session, upload_id: int, *, problems_only: bool = False) -> int:
    query = select(func.count()).select_from(BulkRow).where(live_rows(upload_id))
    if problems_only:
        query = query.where(_has_problem())
    return int(dbsession.execute(query).scalar_one())


def _has_problem() -> Any:
    return (func.json_array_length(BulkRow.errors) > 0) | (
        func.json_array_length(BulkRow.warnings) > 0
    )


def one_row(dbsession: Session, upload: BulkUpload, row_number: int) -> RowView | None:
    if not possible_id(row_number):
        return None
    record = dbsession.execute(
        _view_rows().where(live_rows(upload.id), BulkRow.row_number == row_number)
    ).one_or_none()
    return _view(record, RawLayout.of(upload)) if record is not None else None


def set_aside_columns(upload: BulkUpload) -> tuple[SetAside, ...]:
    """The upload's columns not read because another holds their field under the template's
    name: its header read again, as the error report does."""
    return match_columns(list(upload.headers or [])).set_aside


@dataclass(frozen=True)
class RawLayout:
    """How a stored row's cells map to its fields: the file's header, read again."""

    columns: dict[str, int]
    width: int

    @classmethod
    def of(cls, upload: BulkUpload) -> RawLayout:
        headers = list(upload.headers or [])
        named = [index for index, name in enumerate(headers) if str(name).strip()]
        return cls(match_columns(headers).columns, (max(named) + 1) if named else 0)

    def raw_row(self, row_number: int, raw: Mapping[str, Any] | None) -> RawRow:
        """The row as the reader made it (``RawRow``), from what was stored."""
        raw = raw or {}
        if "cells" not in raw:
            values = tuple(raw.get("values") or ())
            return RawRow(row_number, (values + ("",) * len(FIELDS))[: len(FIELDS)])
        cells = tuple(raw["cells"])
        values = tuple(_cell(cells, self.columns.get(name, -1)) for name in FIELDS)
        overflow = tuple(cell.strip() for cell in cells[self.width :] if cell.strip())
        return RawRow(row_number, values, cells, overflow)


def _cell(cells: Sequence[str], index: int) -> str:
    # A short row (or a field the file has no column for) reads as blank, as in the reader.
    return cells[index].strip() if 0 <= index < len(cells) else ""


def _view(record: Any, layout: RawLayout) -> RowView:
    return RowView(
        row_number=record.row_number,
        typed=layout.raw_row(record.row_number, record.raw).values,
        invoice_number=record.invoice_number,
        invoice_date=record.invoice_date,
        due_date=record.due_date,
        recipient_name=record.recipient_name,
        amount_minor=record.amount_minor,
        emails=tuple(record.emails or ()),
        message=record.message,
        errors=_issues(record.errors),
        warnings=_issues(record.warnings),
        added_by_hand=record.added_by_hand,
        link_id=record.link_id,
        id=record.id,
    )


def validated_view(row: ValidatedRow, by_hand: bool = False) -> RowView:
    return RowView(
        row_number=row.row_number,
        typed=row.raw.values,
        invoice_number=row.invoice_number,
        invoice_date=row.invoice_date,
        due_date=row.due_date,
        recipient_name=row.recipient_name,
        amount_minor=row.amount_minor,
        emails=row.emails,
        message=row.message,
        errors=row.errors,
        warnings=row.warnings,
        added_by_hand=by_hand,
    )


def _has_email_error() -> Any:
    """Whether a row's errors name its email cell. The errors are written by json.dumps as
    {"field": …, "message": …} (_issues_json, fastwrite's json_text), and every database
    here gives that text back as written (PostgreSQL's json type keeps it; SQLite and
    MariaDB store text), so a match on the text is exact and needs no JSON functions that
    differ between them."""
    return sql_cast(BulkRow.errors, Text).like('%{"field": "email", %')


def counts(dbsession: Session, upload_id: int, *, links: bool = True) -> Counts:
    """One pass over the rows in the database (the page polls this while links are made).

    ``links=False`` counts no links (0) and leaves the links out of the query: for an upload
    whose links are being made, which has none yet (its links are committed with its new
    status, or, on PostgreSQL, half of them a moment before; writer.py) or, after a job cut
    short between those two commits, half of them. Its polls then stay off the index the job
    is filling:
    on PostgreSQL each poll otherwise checked the visibility of every link not yet
    committed, a second of the database's time per poll for 100,000 links.

    ``json_array_length`` exists under that name on SQLite and on PostgreSQL alike.
    """
    errors = func.json_array_length(BulkRow.errors)
    warnings = func.json_array_length(BulkRow.warnings)
    emails = func.json_array_length(BulkRow.emails)
    email_wrong = _has_email_error()
    record = dbsession.execute(
        select(
            func.count(),
            func.sum(case((errors > 0, 1), else_=0)),
            func.sum(errors),
            func.sum(case((warnings > 0, 1), else_=0)),
            func.sum(warnings),
            # Blank only: a row whose address is wrong has an email of sorts, and an error.
            func.sum(case((and_(emails == 0, ~email_wrong), 1), else_=0)),
            func.count(PaymentLink.id) if links else literal(0),
            func.sum(BulkRow.amount_minor),
            func.sum(case((email_wrong, 1), else_=0)),
        )
        .select_from(_ROWS_AND_LINKS if links else ROWS_TABLE)
        .where(live_rows(upload_id))
    ).one()
    return Counts(*(int(value or 0) for value in record))


def upload_counts(dbsession: Session, upload: BulkUpload) -> Counts:
    """``counts`` as the pages and the API show them. While the links are being made, the
    counts kept when the action was claimed (claimed_counts): the rows cannot change until
    the job ends, and there are no links yet."""
    processing = upload.status == UPLOAD_PROCESSING
    if processing and upload.claimed_counts is not None:
        return Counts(**upload.claimed_counts)
    # An upload claimed before the counts were kept: counted, its links aside.
    return counts(dbsession, upload.id, links=not processing)


def counts_to_keep(tally: Counts) -> dict[str, int]:
    """``tally`` as claimed_counts keeps it: no links (they are made after the claim)."""
    return asdict(replace(tally, links=0))


def row_counts(dbsession: Session, upload_ids: Sequence[int]) -> dict[int, int]:
    """How many rows each upload has under review (for the list of uploads)."""
    if not upload_ids:
        return {}
    records = dbsession.execute(
        select(BulkRow.upload_id, func.count())
        .where(BulkRow.upload_id.in_(upload_ids), BulkRow.deleted.is_(False))
        .group_by(BulkRow.upload_id)
    )
    return {upload_id: int(count) for upload_id, count in records}


# --- the review's changes -----------------------------------------------------------------------


def refuse_changes(upload: BulkUpload) -> None:
    if upload.action is not None or upload.status not in EDITABLE_STATUSES:
        raise Refused(
            "upload_closed",
            "Links are being made (or were made) from this upload; its rows can no longer change.",
            status=upload.status,
        )


def delete_row(dbsession: Session, upload: BulkUpload, row_number: int) -> bool:
    """Remove a row from the review; False if there is no such row (or it is gone already)."""
    refuse_changes(upload)
    if not possible_id(row_number):
        return False
    result = dbsession.execute(
        update(BulkRow)
        .where(live_rows(upload.id), BulkRow.row_number == row_number)
        .values(deleted=True)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    refresh_warnings(dbsession, upload)
    return True


def check_typed_row(
    dbsession: Session, upload: BulkUpload, row_number: int, fields: Mapping[str, Any]
) -> ValidatedRow:
    """The same checks as a row of the file (duplicates are flagged once it is stored)."""
    account = dbsession.get(MerchantAccount, upload.merchant_account_id)
    currency = account.currency if account is not None else "USD"
    checker = RowChecker(currency=currency, require_email=False, today=today())
    typed = {name: _text(fields.get(name)) for name in FIELDS}
    return checker.check(RawRow.from_fields(row_number, typed))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def next_row_number(dbsession: Session, upload: BulkUpload) -> int:
    """After every row the upload ever had (deleted ones keep their numbers)."""
    last = dbsession.execute(
        select(func.max(BulkRow.row_number)).where(BulkRow.upload_id == upload.id)
    ).scalar_one()
    return int(last or upload.header_row_number) + 1


def add_row(
    dbsession: Session,
    upload: BulkUpload,
    fields: Mapping[str, Any],
    *,
    replaces: int | None = None,
    keep_if_invalid: bool = True,
) -> tuple[RowView, bool]:
    """Add a row typed by hand, or fix row ``replaces`` (its values rewritten in its place).

    Returns the row and whether it was stored: the API keeps a row with errors (they are
    listed beside it, as for a row of the file); the page sends it back to be corrected.
    """
    refuse_changes(upload)
    if replaces is not None:
        return _fix_row(dbsession, upload, replaces, fields, keep_if_invalid)
    checked = check_typed_row(dbsession, upload, next_row_number(dbsession, upload), fields)
    if checked.errors and not keep_if_invalid:
        return validated_view(checked, by_hand=True), False
    insert_rows(dbsession, upload.id, [checked], by_hand=True)
    refresh_warnings(dbsession, upload)
    stored = one_row(dbsession, upload, checked.row_number)
    assert stored is not None  # inserted just above, in this transaction
    return stored, True


def _fix_row(
    dbsession: Session,
    upload: BulkUpload,
    row_number: int,
    fields: Mapping[str, Any],
    keep_if_invalid: bool,
) -> tuple[RowView, bool]:
    """A fixed row keeps its number and place (a person fixing row 3 of their spreadsheet
    still finds it as row 3), and whether it came from the file."""
    current = one_row(dbsession, upload, row_number)
    if current is None:
        raise LookupError(f"There is no row {row_number} to replace.")
    checked = check_typed_row(dbsession, upload, row_number, fields)
    if checked.errors and not keep_if_invalid:
        return validated_view(checked, by_hand=current.added_by_hand), False
    dbsession.execute(
        update(BulkRow)
        .where(live_rows(upload.id), BulkRow.row_number == row_number)
        .values(
            raw={"values": list(checked.raw.values)},
            invoice_number=_storable(checked.invoice_number, MAX_INVOICE_NUMBER_LENGTH),
            invoice_date=checked.invoice_date,
            due_date=checked.due_date,
            recipient_name=_storable(checked.recipient_name, MAX_RECIPIENT_NAME_LENGTH),
            amount_minor=checked.amount_minor,
            emails=list(checked.emails),
            message=checked.message.replace("\x00", ""),
            errors=issues_json(checked.errors),
        )
        .execution_options(synchronize_session=False)
    )
    refresh_warnings(dbsession, upload)
    stored = one_row(dbsession, upload, row_number)
    assert stored is not None  # rewritten just above, in this transaction
    return stored, True


def refresh_warnings(dbsession: Session, upload: BulkUpload) -> None:
    """Flag duplicate invoice numbers again after the rows changed; rewrite only the rows
    whose warnings are different now."""
    records = dbsession.execute(
        select(BulkRow.id, BulkRow.row_number, BulkRow.invoice_number, BulkRow.warnings)
        .where(live_rows(upload.id))
        .order_by(BulkRow.row_number)
    ).all()
    flagged = duplicate_warnings(
        [(r.row_number, r.invoice_number) for r in records],
        outstanding_invoice_numbers(dbsession, upload.firm_id),
    )
    changed = [
        {"b_id": record.id, "b_warnings": issues_json(warnings)}
        for record, warnings in zip(records, flagged, strict=True)
        if _issues(record.warnings) != warnings
    ]
    if changed:
        wrote_with_core(dbsession)
        dbsession.execute(
            update(ROWS_TABLE)
            .where(ROWS_TABLE.c.id == bindparam("b_id"))
            .values(warnings=bindparam("b_warnings")),
            changed,
        )


def duplicate_warnings(
    rows: Sequence[tuple[int, str]], outstanding: Iterable[str]
) -> list[tuple[FieldIssue, ...]]:
    """The warnings of each (row number, invoice number), in the order given."""
    validated = [
        ValidatedRow(RawRow(number, ()), invoice, None, None, "", None, (), "")
        for number, invoice in rows
    ]
    flag_duplicate_invoice_numbers(validated, frozenset(outstanding))
    return [row.warnings for row in validated]


# --- the error report ------------------------------------------------------------------------


def report_csv(dbsession: Session, upload: BulkUpload) -> bytes:
    """The rows under review as the file had them, with Errors and Warnings columns."""
    records = dbsession.execute(
        select(BulkRow.row_number, BulkRow.raw, BulkRow.errors, BulkRow.warnings)
        .where(live_rows(upload.id))
        .order_by(BulkRow.row_number)
    )
    layout = RawLayout.of(upload)
    lines = [
        ReportLine(layout.raw_row(r.row_number, r.raw), _issues(r.errors), _issues(r.warnings))
        for r in records
    ]
    return error_report_csv(
        upload.headers,
        lines,
        delimiter=upload.delimiter or ",",
        header_row_number=upload.header_row_number,
    )
