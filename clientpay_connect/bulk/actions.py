"""Send All and Generate Links for Download: an upload's rows become payment links, once.

Once per upload, whatever happens: the first request sets ``BulkUpload.action`` with a
conditional ``UPDATE … WHERE action IS NULL`` (atomic on both databases), so of a double
click or a retried request exactly one makes the links; the other is answered with what the
first made. All or nothing: every link (and for Send All every outbox email) is written in
one transaction, so a failure leaves no link behind and the upload can be tried again.

Small uploads are done in the request. Larger ones (``clientpay.bulk.inline_rows``) go to
the ``bulk.create_links`` job in two phases:

1. preparing: the links' secrets are drawn, hashed and encrypted (the slow, CPU-bound part),
   with the progress committed after each batch in a short transaction of its own;
2. writing: every link, row update and email in one transaction.

Why not write in batches and report progress from a second connection during one long
transaction? On SQLite a writing transaction holds the database's only write lock, so a
second connection's progress update would wait for it to end; the page would see nothing
until the very end. Preparing outside the transaction needs no lock, so progress shows on
both databases, and the writing transaction stays short (about a second for 100,000 links).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import transaction
from pyramid.registry import Registry
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import MerchantAccount
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
    Refused,
    duplicate_warnings,
    outstanding_invoice_numbers,
)
from clientpay_connect.crypto import Encryptor, new_token, sha256_hex
from clientpay_connect.db import get_tm_session, utcnow
from clientpay_connect.jobs import enqueue_after_commit
from clientpay_connect.links.forms import default_message
from clientpay_connect.links.models import (
    EMAIL_NOT_SENT,
    EMAIL_QUEUED,
    SOURCE_BULK,
    STATUS_OUTSTANDING,
    PaymentLink,
)
from clientpay_connect.links.services import expiry_for
from clientpay_connect.mail.models import KIND_LINK
from clientpay_connect.mail.outbox import queue_email

log = logging.getLogger(__name__)

CREATE_LINKS_JOB = "bulk.create_links"
INLINE_ROWS_SETTING = "clientpay.bulk.inline_rows"
ACTIONS = (ACTION_SEND, ACTION_GENERATE)
ACTION_LABELS = {ACTION_SEND: "Send All", ACTION_GENERATE: "Generate Links for Download"}
DONE_STATUS = {ACTION_SEND: UPLOAD_SENT, ACTION_GENERATE: UPLOAD_GENERATED}
# Links per INSERT … RETURNING and progress step of the job.
LINK_BATCH = 5_000
PROGRESS_BATCH = 2_000
# How many problems a refusal lists; the review page and report.csv have them all.
MAX_LISTED = 100
FAILED_MESSAGE = "The links could not be made, so none were. Please try again."


class PreparedSecret(NamedTuple):
    """A new link's secret as stored: its hash and its ciphertext (the secret itself is not
    kept; the URL is rebuilt from the ciphertext when staff need it)."""

    token_hash: str
    token_encrypted: str


class LinkRow(NamedTuple):
    """What a link is made from: the stored row, read with Core."""

    id: int
    row_number: int
    invoice_number: str
    invoice_date: Any
    due_date: Any
    recipient_name: str
    amount_minor: int | None
    emails: list[str]
    message: str
    errors: list[dict[str, str]]


@dataclass(frozen=True)
class Outcome:
    upload: BulkUpload
    # "created": made now; "queued": the job will make them; "existing": made before.
    result: str


@dataclass(frozen=True)
class Work:
    """A unit of work: the session, its transaction manager, the app's registry."""

    dbsession: Session
    tm: transaction.TransactionManager
    registry: Registry

    @property
    def encryptor(self) -> Encryptor:
        encryptor: Encryptor = self.registry["clientpay.encryptor"]
        return encryptor


def take_action(
    work: Work, upload: BulkUpload, action: str, *, user_id: int | None, confirm_warnings: bool
) -> Outcome:
    """Start Send All or Generate on ``upload`` (locked by the caller), or answer a repeat."""
    if upload.action is not None:
        return _repeat(upload, action)
    _merchant_account(work.dbsession, upload)
    rows = link_rows(work.dbsession, upload.id)
    refuse_unready(work.dbsession, upload, rows, action, confirm_warnings)
    if not _claim(work.dbsession, upload, action, len(rows)):
        work.dbsession.refresh(upload)
        return _repeat(upload, action)
    work.dbsession.refresh(upload)
    if len(rows) > inline_rows(work.registry):
        enqueue_after_commit(work.tm, work.registry, CREATE_LINKS_JOB, upload.id, user_id)
        return Outcome(upload, "queued")
    secrets = prepare_secrets(work.encryptor, len(rows))
    make_links(work, upload, rows, secrets, user_id)
    return Outcome(upload, "created")


def inline_rows(registry: Registry) -> int:
    return int(registry.settings.get(INLINE_ROWS_SETTING) or 2000)


def _repeat(upload: BulkUpload, action: str) -> Outcome:
    if upload.action == action:
        return Outcome(upload, "existing")
    raise Refused(
        "other_action_taken",
        f"This upload was already used for {ACTION_LABELS.get(upload.action or '', '')}; "
        "its links exist once.",
        action=upload.action,
    )


def _merchant_account(dbsession: Session, upload: BulkUpload) -> MerchantAccount:
    account = (
        dbsession.get(MerchantAccount, upload.merchant_account_id)
        if upload.merchant_account_id is not None
        else None
    )
    if account is None or not account.active or account.firm_id != upload.firm_id:
        raise Refused(
            "merchant_account_inactive",
            "The upload's merchant account is no longer active. Upload the file again and "
            "choose another account.",
        )
    return account


def _claim(dbsession: Session, upload: BulkUpload, action: str, total: int) -> bool:
    result = dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload.id, BulkUpload.action.is_(None))
        .values(
            action=action,
            status=UPLOAD_PROCESSING,
            progress_done=0,
            progress_total=total,
            error_message="",
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# --- what must hold before any link is made -----------------------------------------------------


def refuse_unready(
    dbsession: Session,
    upload: BulkUpload,
    rows: Sequence[LinkRow],
    action: str,
    confirm_warnings: bool,
) -> None:
    """Raise ``Refused`` unless every row can become a link now."""
    if not rows:
        raise Refused("no_rows", "There are no invoice rows left to make links from.")
    with_errors = [row for row in rows if row.errors]
    if with_errors:
        raise Refused(
            "rows_have_errors",
            f"{_rows(len(with_errors))} still {_have(len(with_errors))} errors: fix or delete "
            f"{_them(len(with_errors))} first.",
            _listed(
                (f"rows.{row.row_number}.{issue['field']}", issue["message"])
                for row in with_errors
                for issue in row.errors
            ),
        )
    if action == ACTION_SEND:
        _refuse_missing_emails(rows)
    if not confirm_warnings:
        _refuse_unconfirmed_duplicates(dbsession, upload, rows)


def _refuse_missing_emails(rows: Sequence[LinkRow]) -> None:
    missing = [row for row in rows if not row.emails]
    if missing:
        raise Refused(
            "emails_missing",
            f"{_rows(len(missing))} {_have(len(missing))} no email address, and Send All emails "
            "every link. Add the addresses, or choose Generate Links for Download.",
            _listed(
                (f"rows.{row.row_number}.email", "Enter an email address: Send All emails it.")
                for row in missing
            ),
        )


def _refuse_unconfirmed_duplicates(
    dbsession: Session, upload: BulkUpload, rows: Sequence[LinkRow]
) -> None:
    # Checked again now: a link made since the upload may share an invoice number.
    warnings = duplicate_warnings(
        [(row.row_number, row.invoice_number) for row in rows],
        outstanding_invoice_numbers(dbsession, upload.firm_id),
    )
    flagged = [(row, issues) for row, issues in zip(rows, warnings, strict=True) if issues]
    if flagged:
        raise Refused(
            "warnings_need_confirmation",
            f"{_rows(len(flagged))} {_have(len(flagged))} an invoice number used more than once. "
            'Check them, then confirm ("confirm_warnings": true) to make the links anyway.',
            _listed(
                (f"rows.{row.row_number}.{issue.field}", issue.message)
                for row, issues in flagged
                for issue in issues
            ),
        )


def _listed(problems: Any) -> list[dict[str, str]]:
    listed = []
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


# --- making the links ---------------------------------------------------------------------------


def link_rows(dbsession: Session, upload_id: int) -> list[LinkRow]:
    records = dbsession.execute(
        select(
            BulkRow.id,
            BulkRow.row_number,
            BulkRow.invoice_number,
            BulkRow.invoice_date,
            BulkRow.due_date,
            BulkRow.recipient_name,
            BulkRow.amount_minor,
            BulkRow.emails,
            BulkRow.message,
            BulkRow.errors,
        )
        .where(BulkRow.upload_id == upload_id, BulkRow.deleted.is_(False))
        .order_by(BulkRow.row_number)
    )
    return [LinkRow(*record) for record in records]


def prepare_secrets(encryptor: Encryptor, count: int) -> list[PreparedSecret]:
    """New link secrets, hashed and encrypted, as ``create_link`` makes them one at a time."""
    prepared = []
    for _ in range(count):
        token = new_token()
        prepared.append(PreparedSecret(sha256_hex(token), encryptor.encrypt(token)))
    return prepared


def make_links(
    work: Work,
    upload: BulkUpload,
    rows: Sequence[LinkRow],
    secrets: Sequence[PreparedSecret],
    user_id: int | None,
) -> list[int]:
    """Insert a link per row (and for Send All queue its email), all in ``work``'s
    transaction; mark the upload done. Returns the new links' ids in row order."""
    dbsession = work.dbsession
    account = _merchant_account(dbsession, upload)
    sending = upload.action == ACTION_SEND
    template = _link_template(dbsession, upload, account, sending, user_id)
    fallback = default_message(dbsession, upload.firm_id)
    link_ids: list[int] = []
    table = PaymentLink.__table__
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    for start in range(0, len(rows), LINK_BATCH):
        params = [
            _link_params(template, row, secret, fallback)
            for row, secret in zip(
                rows[start : start + LINK_BATCH], secrets[start : start + LINK_BATCH], strict=True
            )
        ]
        link_ids.extend(dbsession.execute(statement, params).scalars())
    _attach_links(dbsession, [row.id for row in rows], link_ids)
    if sending:
        for row, link_id in zip(rows, link_ids, strict=True):
            queue_email(
                dbsession,
                work.tm,
                work.registry,
                firm_id=upload.firm_id,
                kind=KIND_LINK,
                recipients=list(row.emails),
                link_id=link_id,
            )
    _finish(dbsession, upload, len(link_ids))
    return link_ids


def _link_template(
    dbsession: Session,
    upload: BulkUpload,
    account: MerchantAccount,
    sending: bool,
    user_id: int | None,
) -> dict[str, Any]:
    """The values every link of the upload shares."""
    now = utcnow()
    return {
        "firm_id": upload.firm_id,
        "merchant_account_id": account.id,
        "source": SOURCE_BULK,
        "amount_paid_minor": 0,
        "currency": account.currency,
        "locale": "en",
        "status": STATUS_OUTSTANDING,
        # Queued now, in the same transaction as the outbox row; the mail job marks it sent.
        "email_status": EMAIL_QUEUED if sending else EMAIL_NOT_SENT,
        "created_at": now,
        "created_by_user_id": user_id,
        "sent_at": None,
        "expires_at": expiry_for(dbsession, upload.firm_id, now),
        "paid_at": None,
        "cancelled_at": None,
        "processing_started_at": None,
        "reminders_sent": 0,
        "parent_link_id": None,
    }


def _link_params(
    template: dict[str, Any], row: LinkRow, secret: PreparedSecret, fallback_message: str
) -> dict[str, Any]:
    return {
        **template,
        "token_hash": secret.token_hash,
        "token_encrypted": secret.token_encrypted,
        "amount_minor": row.amount_minor,
        "invoice_number": row.invoice_number,
        "invoice_date": row.invoice_date,
        "due_date": row.due_date,
        "recipient_name": row.recipient_name,
        "emails": row.emails,
        # A blank message is the firm's own words, fixed now (as Quick Link does), so that
        # reminders and the link's page show what the payer received.
        "message": row.message or fallback_message,
    }


def _attach_links(dbsession: Session, row_ids: Sequence[int], link_ids: Sequence[int]) -> None:
    """Point each row at its link. PostgreSQL does it in one statement from two arrays (an
    UPDATE per row would be 100,000 round trips); SQLite's executemany runs in C, in-process."""
    table = BulkRow.__table__
    if dbsession.get_bind().dialect.name == "postgresql":
        dbsession.execute(
            text(
                "UPDATE bulk_rows SET link_id = pairs.link_id FROM "
                "(SELECT unnest(CAST(:row_ids AS integer[])) AS id, "
                "unnest(CAST(:link_ids AS integer[])) AS link_id) AS pairs "
                "WHERE bulk_rows.id = pairs.id"
            ),
            {"row_ids": list(row_ids), "link_ids": list(link_ids)},
        )
        return
    dbsession.execute(
        update(table).where(table.c.id == bindparam("b_id")).values(link_id=bindparam("b_link")),
        [{"b_id": r, "b_link": k} for r, k in zip(row_ids, link_ids, strict=True)],
    )


def _finish(dbsession: Session, upload: BulkUpload, made: int) -> None:
    dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload.id)
        .values(
            status=DONE_STATUS[upload.action or ACTION_GENERATE],
            progress_done=made,
            progress_total=made,
            completed_at=utcnow(),
            error_message="",
        )
        .execution_options(synchronize_session=False)
    )
    dbsession.expire(upload)


# --- the job's two phases -----------------------------------------------------------------------


@contextmanager
def unit_of_work(registry: Registry) -> Iterator[Work]:
    """A transaction of its own, committed when the block ends (aborted if it raises)."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        yield Work(get_tm_session(registry["dbsession_factory"], tm), tm, registry)


def make_links_in_background(registry: Registry, upload_id: int, user_id: int | None) -> str:
    """The job: prepare the secrets with progress, then write everything at once."""
    with unit_of_work(registry) as work:
        upload = work.dbsession.get(BulkUpload, upload_id)
        if upload is None or upload.status != UPLOAD_PROCESSING:
            # Done already (a job delivered twice), or given up: nothing to do.
            return "skipped"
        total = upload.progress_total
    try:
        secrets = _prepare_with_progress(registry, upload_id, total)
        return _write_links(registry, upload_id, secrets, user_id)
    except Exception:
        log.exception("bulk upload %s: making the links failed", upload_id)
        _mark_failed(registry, upload_id)
        return "failed"


def _prepare_with_progress(registry: Registry, upload_id: int, total: int) -> list[PreparedSecret]:
    encryptor: Encryptor = registry["clientpay.encryptor"]
    secrets: list[PreparedSecret] = []
    while len(secrets) < total:
        secrets.extend(prepare_secrets(encryptor, min(PROGRESS_BATCH, total - len(secrets))))
        _publish_progress(registry, upload_id, len(secrets))
    return secrets


def _publish_progress(registry: Registry, upload_id: int, done: int) -> None:
    with unit_of_work(registry) as work:
        work.dbsession.execute(
            update(BulkUpload)
            .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
            .values(progress_done=done)
            .execution_options(synchronize_session=False)
        )


def _write_links(
    registry: Registry, upload_id: int, secrets: list[PreparedSecret], user_id: int | None
) -> str:
    with unit_of_work(registry) as work:
        upload = work.dbsession.execute(
            select(BulkUpload).where(BulkUpload.id == upload_id).with_for_update()
        ).scalar_one_or_none()
        if upload is None or upload.status != UPLOAD_PROCESSING:
            return "skipped"
        rows = link_rows(work.dbsession, upload_id)
        if len(secrets) < len(rows):
            secrets += prepare_secrets(work.encryptor, len(rows) - len(secrets))
        make_links(work, upload, rows, secrets[: len(rows)], user_id)
    return "done"


def _mark_failed(registry: Registry, upload_id: int) -> None:
    """Back to review with a message: nothing was made, and the action may be taken again."""
    with unit_of_work(registry) as work:
        work.dbsession.execute(
            update(BulkUpload)
            .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
            .values(status=UPLOAD_FAILED, action=None, progress_done=0, error_message=FAILED_MESSAGE)
            .execution_options(synchronize_session=False)
        )


def is_done(upload: BulkUpload) -> bool:
    return upload.status in (UPLOAD_SENT, UPLOAD_GENERATED)


def is_reviewing(upload: BulkUpload) -> bool:
    return upload.action is None and upload.status in (UPLOAD_REVIEW, UPLOAD_FAILED)
