"""Send All and Generate Links for Download as a signed-in person takes them, on the API and
the pages alike: refused unless every row can become a link, claimed once, audited.

Once per upload, whatever happens: the first request sets ``BulkUpload.action`` with a
conditional ``UPDATE … WHERE action IS NULL`` (atomic on both databases), so of a double
click or a retried request exactly one makes the links; the other is answered with what the
first made. All or nothing: every link (and for Send All every outbox email) is written in
one transaction (writer.py), so a failure leaves no link behind and the upload can be tried
again. Small uploads are done in the request; larger ones (``clientpay.bulk.inline_rows``)
go to the ``bulk.create_links`` job (tasks.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyramid.registry import Registry
from pyramid.request import Request
from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import audit
from clientpay_connect.bulk.models import (
    ACTION_GENERATE,
    ACTION_SEND,
    UPLOAD_FAILED,
    UPLOAD_GENERATED,
    UPLOAD_PROCESSING,
    UPLOAD_REVIEW,
    UPLOAD_SENT,
    BulkRow,
    BulkUpload,
)
from clientpay_connect.bulk.services import (
    Counts,
    Refused,
    counts,
    counts_to_keep,
    duplicate_warnings,
    live_rows,
    outstanding_invoice_numbers,
)
from clientpay_connect.bulk.uploads import upload_or_404
from clientpay_connect.bulk.writer import live_row_ids, make_links, upload_account
from clientpay_connect.db import utcnow
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

CREATE_LINKS_JOB = "bulk.create_links"
INLINE_ROWS_SETTING = "clientpay.bulk.inline_rows"
ACTIONS = (ACTION_SEND, ACTION_GENERATE)
ACTION_LABELS = {ACTION_SEND: "Send All", ACTION_GENERATE: "Generate Links for Download"}
# How many problems a refusal lists; the review page and report.csv have them all.
MAX_LISTED = 100


@dataclass(frozen=True)
class Outcome:
    upload: BulkUpload
    # "created": made now; "queued": the job will make them; "existing": made before.
    result: str


def take_action(
    work: Work, upload: BulkUpload, action: str, *, user_id: int | None, confirm_warnings: bool
) -> Outcome:
    """Start Send All or Generate on ``upload`` (locked by the caller), or answer a repeat."""
    if upload.action is not None:
        return _repeat(upload, action)
    upload_account(work.dbsession, upload)
    tally = refuse_unready(work.dbsession, upload, action, confirm_warnings)
    if not _claim(work.dbsession, upload, action, tally):
        work.dbsession.refresh(upload)
        return _repeat(upload, action)
    work.dbsession.refresh(upload)
    if tally.rows > inline_rows(work.registry):
        work.enqueue_after_commit(CREATE_LINKS_JOB, upload.id, user_id)
        return Outcome(upload, "queued")
    row_ids = live_row_ids(work.dbsession, upload.id)
    make_links(work, upload, row_ids, [], user_id)
    return Outcome(upload, "created")


def act(request: Request, action: str, confirm_warnings: bool) -> Outcome:
    """Shared with the page: lock the upload, take the action (or answer a repeat), audit."""
    upload = upload_or_404(request, lock=True)
    work = Work.from_request(request)
    outcome = take_action(
        work, upload, action, user_id=request.user.id, confirm_warnings=confirm_warnings
    )
    if outcome.result != "existing":
        audit(request, f"bulk_upload.{action}", upload, rows=upload.progress_total)
    return outcome


def inline_rows(registry: Registry) -> int:
    return int(registry.settings.get(INLINE_ROWS_SETTING) or 2000)


def _repeat(upload: BulkUpload, action: str) -> Outcome:
    if upload.action == action:
        return Outcome(upload, "existing")
    raise Refused(
        "other_action_taken",
        f"The links of this upload were already made with "
        f"{ACTION_LABELS.get(upload.action or '', '')}: an upload makes its links once.",
        action=upload.action,
    )


def _claim(dbsession: Session, upload: BulkUpload, action: str, tally: Counts) -> bool:
    result = dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload.id, BulkUpload.action.is_(None))
        .values(
            action=action,
            status=UPLOAD_PROCESSING,
            progress_done=0,
            progress_total=tally.rows,
            progress_at=utcnow(),
            error_message="",
            claimed_counts=counts_to_keep(tally),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# --- what must hold before any link is made -----------------------------------------------------


def refuse_unready(
    dbsession: Session, upload: BulkUpload, action: str, confirm_warnings: bool
) -> Counts:
    """Raise ``Refused`` unless every row can become a link now; the rows' counts.

    The counts come from one aggregate query; rows are read only to name the problems.
    """
    tally = counts(dbsession, upload.id)
    if not tally.rows:
        raise Refused("no_rows", "There are no invoice rows left to make links from.")
    if tally.rows_with_errors:
        _refuse_errors(dbsession, upload, tally.rows_with_errors)
    if action == ACTION_SEND and tally.rows_without_email:
        _refuse_missing_emails(dbsession, upload, tally.rows_without_email)
    if not confirm_warnings:
        _refuse_unconfirmed_duplicates(dbsession, upload)
    return tally


def _first_rows(dbsession: Session, upload: BulkUpload, condition: Any, *columns: Any) -> Any:
    return dbsession.execute(
        select(BulkRow.row_number, *columns)
        .where(live_rows(upload.id), condition)
        .order_by(BulkRow.row_number)
        .limit(MAX_LISTED)
    )


def _refuse_errors(dbsession: Session, upload: BulkUpload, count: int) -> None:
    records = _first_rows(
        dbsession, upload, func.json_array_length(BulkRow.errors) > 0, BulkRow.errors
    )
    raise Refused(
        "rows_have_errors",
        f"{_rows(count)} still {_have(count)} errors: fix or delete {_them(count)} first.",
        _listed(
            (f"rows.{number}.{issue['field']}", issue["message"])
            for number, errors in records
            for issue in errors
        ),
    )


def _refuse_missing_emails(dbsession: Session, upload: BulkUpload, count: int) -> None:
    records = _first_rows(dbsession, upload, func.json_array_length(BulkRow.emails) == 0)
    raise Refused(
        "emails_missing",
        f"{_rows(count)} {_have(count)} no email address, and Send All emails every link. "
        "Add the addresses, or choose Generate Links for Download.",
        _listed(
            (f"rows.{number}.email", "Enter an email address: Send All emails it.")
            for (number,) in records
        ),
    )


def _refuse_unconfirmed_duplicates(dbsession: Session, upload: BulkUpload) -> None:
    # Checked again now: a link made since the upload may share an invoice number.
    numbered = dbsession.execute(
        select(BulkRow.row_number, BulkRow.invoice_number)
        .where(live_rows(upload.id))
        .order_by(BulkRow.row_number)
    ).all()
    warnings = duplicate_warnings(
        [(number, invoice) for number, invoice in numbered],
        outstanding_invoice_numbers(dbsession, upload.firm_id),
    )
    flagged = [
        (number, issues)
        for (number, _invoice), issues in zip(numbered, warnings, strict=True)
        if issues
    ]
    if flagged:
        raise Refused(
            "warnings_need_confirmation",
            f"{_rows(len(flagged))} {_have(len(flagged))} an invoice number used more than once. "
            'Check them, then confirm ("confirm_warnings": true) to make the links anyway.',
            _listed(
                (f"rows.{number}.{issue.field}", issue.message)
                for number, issues in flagged
                for issue in issues
            ),
        )


def _listed(problems: Any) -> list[dict[str, str]]:
    listed: list[dict[str, str]] = []
    for field, message in problems:
        if len(listed) == MAX_LISTED:
            break
        listed.append({"field": field, "message": message})
    return listed


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count:,} rows"


def _have(count: int) -> str:
    return "has" if count == 1 else "have"


def _them(count: int) -> str:
    return "it" if count == 1 else "them"


def is_done(upload: BulkUpload) -> bool:
    return upload.status in (UPLOAD_SENT, UPLOAD_GENERATED)


def is_reviewing(upload: BulkUpload) -> bool:
    return upload.action is None and upload.status in (UPLOAD_REVIEW, UPLOAD_FAILED)
