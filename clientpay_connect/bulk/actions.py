"""Send All and Generate Links for Download: an upload's rows become payment links, once.

Once per upload, whatever happens: the first request sets ``BulkUpload.action`` with a
conditional ``UPDATE … WHERE action IS NULL`` (atomic on both databases), so of a double
click or a retried request exactly one makes the links; the other is answered with what the
first made. All or nothing: every link (and for Send All every outbox email) is written in
one transaction, so a failure leaves no link behind and the upload can be tried again.

Small uploads are done in the request. Larger ones (``clientpay.bulk.inline_rows``) go to
the ``bulk.create_links`` job in two phases:

1. preparing: the links' secrets are drawn, hashed and encrypted, with the progress
   committed (at most every half second) in a short transaction of its own;
2. writing: every link and email in one transaction; meanwhile the page shows
   the preparation complete and says the links are being saved.

Why not write in batches and report progress from a second connection during one long
transaction? On SQLite a writing transaction holds the database's only write lock, so a
second connection's progress update would wait for it to end: the page would see nothing
until the very end. Preparing outside the transaction needs no lock, so progress shows on
both databases, and the writing transaction holds only the writes (a few seconds for
100,000 links: the secrets go to a temporary table by the driver's bulk path in fastwrite.py,
then one INSERT … SELECT makes the links from the rows inside the database).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from pyramid.registry import Registry
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.bulk.fastwrite import TableWriter, larger_page_cache, wrote_with_core
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
from clientpay_connect.bulk.reader import garbage_collection_paused
from clientpay_connect.bulk.services import (
    Refused,
    counts,
    duplicate_warnings,
    live_rows,
    outstanding_invoice_numbers,
)
from clientpay_connect.crypto import new_token, sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.links.forms import default_message
from clientpay_connect.links.models import (
    EMAIL_NOT_SENT,
    EMAIL_QUEUED,
    SOURCE_BULK,
    STATUS_OUTSTANDING,
    PaymentLink,
)
from clientpay_connect.links.services import expiry_for
from clientpay_connect.mail.outbox import queue_link_emails
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

CREATE_LINKS_JOB = "bulk.create_links"
INLINE_ROWS_SETTING = "clientpay.bulk.inline_rows"
ACTIONS = (ACTION_SEND, ACTION_GENERATE)
ACTION_LABELS = {ACTION_SEND: "Send All", ACTION_GENERATE: "Generate Links for Download"}
DONE_STATUS = {ACTION_SEND: UPLOAD_SENT, ACTION_GENERATE: UPLOAD_GENERATED}
# Links prepared between two progress reports of the job.
PROGRESS_BATCH = 2_000
# The share of the links' secrets the job prepares before it starts writing, reporting
# progress, by database. PostgreSQL writes in its own process, so the secrets are better
# prepared meanwhile, on the other core (100,000 links: 4.1 s end to end instead of 4.6).
# SQLite writes in ours: measured, overlapping gains nothing there, and one statement for
# all the rows beats chunks, so everything is prepared first.
UPFRONT_SHARE = {"postgresql": 0.0}
UPFRONT_SHARE_DEFAULT = 1.0
# Links written per INSERT … SELECT while secrets are still being prepared: while the
# database writes one chunk, the next one's secrets are prepared.
WRITE_CHUNK = 10_000
# How often, at most, the job commits its progress.
PROGRESS_SECONDS = 0.5
# How many problems a refusal lists; the review page and report.csv have them all.
MAX_LISTED = 100
LINKS_TABLE = cast(Table, PaymentLink.__table__)
FAILED_MESSAGE = "The links could not be made, so none were. Please try again."


class PreparedSecret(NamedTuple):
    """A new link's secret as stored: its hash and its ciphertext (the secret itself is not
    kept; the URL is rebuilt from the ciphertext when staff need it)."""

    token_hash: str
    token_encrypted: str


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
    _merchant_account(work.dbsession, upload)
    total = refuse_unready(work.dbsession, upload, action, confirm_warnings)
    if not _claim(work.dbsession, upload, action, total):
        work.dbsession.refresh(upload)
        return _repeat(upload, action)
    work.dbsession.refresh(upload)
    if total > inline_rows(work.registry):
        work.enqueue_after_commit(CREATE_LINKS_JOB, upload.id, user_id)
        return Outcome(upload, "queued")
    row_ids = live_row_ids(work.dbsession, upload.id)
    make_links(work, upload, row_ids, [], user_id)
    return Outcome(upload, "created")


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
            progress_at=utcnow(),
            error_message="",
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# --- what must hold before any link is made -----------------------------------------------------


def refuse_unready(
    dbsession: Session, upload: BulkUpload, action: str, confirm_warnings: bool
) -> int:
    """Raise ``Refused`` unless every row can become a link now; the number of rows.

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
    return tally.rows


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


# --- making the links ---------------------------------------------------------------------------


def live_row_ids(dbsession: Session, upload_id: int) -> list[int]:
    """The ids of the rows under review, in row order: one link each."""
    query = select(BulkRow.id).where(live_rows(upload_id)).order_by(BulkRow.row_number)
    return list(dbsession.connection().execute(query).scalars())


def prepare_secrets(registry: Registry, count: int) -> list[PreparedSecret]:
    """New link secrets, hashed and encrypted: what ``create_link`` makes one at a time,
    made for the whole batch in one tight loop. Encryption stays the library's own
    (MultiFernet through the app's Encryptor): no hand-composed cryptography."""
    encrypt = registry["clientpay.encryptor"].encrypt
    with garbage_collection_paused():
        secrets = []
        for _ in range(count):
            token = new_token()
            secrets.append(PreparedSecret(sha256_hex(token), encrypt(token)))
        return secrets


# Each row's secret, for the statement that makes the links: a temporary table (this
# connection's own), filled by the driver's bulk path and dropped before the commit.
SECRETS_TABLE = Table(
    "bulk_link_secrets",
    MetaData(),
    Column("row_id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("token_encrypted", Text, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def make_links(
    work: Work,
    upload: BulkUpload,
    row_ids: Sequence[int],
    ready: Sequence[PreparedSecret],
    user_id: int | None,
) -> int:
    """Insert a link per row (and for Send All queue its email), all in ``work``'s
    transaction; mark the upload done. Returns how many links were made.

    The links are made WRITE_CHUNK rows at a time by an INSERT … SELECT from the rows, so
    the database copies the rows' values itself: none of them travels to Python and back.
    The first rows take the secrets ``ready``; the others' are prepared in a thread while
    the database writes (see _secrets_in_chunks)."""
    dbsession = work.dbsession
    account = _merchant_account(dbsession, upload)
    sending = upload.action == ACTION_SEND
    connection = dbsession.connection()
    SECRETS_TABLE.create(connection)
    secrets_writer = TableWriter(
        dbsession, SECRETS_TABLE, ("row_id", "token_hash", "token_encrypted")
    )
    shared = _shared_values(dbsession, upload, account, sending, user_id)
    # A blank message is the firm's own words, fixed now (as Quick Link does), so that
    # reminders and the link's page show what the payer received.
    fallback = default_message(dbsession, upload.firm_id)
    from_rows = {
        "token_hash": SECRETS_TABLE.c.token_hash,
        "token_encrypted": SECRETS_TABLE.c.token_encrypted,
        "amount_minor": BulkRow.amount_minor,
        "invoice_number": BulkRow.invoice_number,
        "invoice_date": BulkRow.invoice_date,
        "due_date": BulkRow.due_date,
        "recipient_name": BulkRow.recipient_name,
        "emails": BulkRow.emails,
        "message": func.coalesce(func.nullif(BulkRow.message, ""), fallback),
        "bulk_row_id": BulkRow.id,
    }
    values = {
        **from_rows,
        **{name: literal(value, LINKS_TABLE.c[name].type) for name, value in shared.items()},
    }
    source = (
        select(*values.values())
        .join(SECRETS_TABLE, SECRETS_TABLE.c.row_id == BulkRow.id)
        .where(
            live_rows(upload.id),
            # The chunk's span of ids, so that each chunk reads its own rows, not the
            # upload's every row (the join alone decides which rows take part).
            BulkRow.id.between(bindparam("first_id"), bindparam("last_id")),
        )
        .order_by(BulkRow.row_number)
    )
    make = insert(LINKS_TABLE).from_select(list(values), source)
    wrote_with_core(dbsession)
    with larger_page_cache(connection):
        for chunk_ids, secrets in _secrets_in_chunks(work.registry, row_ids, ready):
            secrets_writer.insert(
                (row_id, secret.token_hash, secret.token_encrypted)
                for row_id, secret in zip(chunk_ids, secrets, strict=True)
            )
            # The join with this chunk's secrets makes this chunk's links, in row order.
            connection.execute(make, {"first_id": min(chunk_ids), "last_id": max(chunk_ids)})
            connection.execute(delete(SECRETS_TABLE))
    SECRETS_TABLE.drop(connection)
    if sending:
        _queue_emails(work, upload)
    # A link per row: the rows cannot change meanwhile (the upload is locked and no longer
    # under review), and each row has its secret.
    _finish(dbsession, upload, len(row_ids))
    return len(row_ids)


def _secrets_in_chunks(
    registry: Registry, row_ids: Sequence[int], ready: Sequence[PreparedSecret]
) -> Iterator[tuple[Sequence[int], list[PreparedSecret]]]:
    """``row_ids`` WRITE_CHUNK at a time, each chunk with its secrets: those ``ready`` first,
    then new ones. A chunk's missing secrets are prepared in a thread while the caller has
    the database write the chunk before: SQLite's engine and PostgreSQL's server work
    without holding Python's interpreter lock, so the encryption and the writing share the
    machine's cores instead of taking turns."""

    # Every secret ready: one statement for all the rows.
    chunk = WRITE_CHUNK if len(ready) < len(row_ids) else max(len(row_ids), 1)

    def secrets_for(pool: ThreadPoolExecutor, start: int) -> Future[list[PreparedSecret]]:
        end = min(start + chunk, len(row_ids))
        have = list(ready[start:end])
        missing = end - start - len(have)
        return pool.submit(lambda: have + prepare_secrets(registry, missing) if missing else have)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="link-secrets") as pool:
        upcoming = secrets_for(pool, 0) if row_ids else None
        for start in range(0, len(row_ids), chunk):
            assert upcoming is not None
            current = upcoming.result()
            following = start + chunk
            upcoming = secrets_for(pool, following) if following < len(row_ids) else None
            yield row_ids[start:following], current


def _shared_values(
    dbsession: Session,
    upload: BulkUpload,
    account: MerchantAccount,
    sending: bool,
    user_id: int | None,
) -> dict[str, Any]:
    """The columns every link of the upload has alike."""
    now = utcnow()
    return {
        "firm_id": upload.firm_id,
        "merchant_account_id": account.id,
        "source": SOURCE_BULK,
        "amount_paid_minor": 0,
        "currency": account.currency,
        "locale": "en",
        "status": STATUS_OUTSTANDING,
        # Queued now, in the same transaction as the outbox rows; the mail job marks it sent.
        "email_status": EMAIL_QUEUED if sending else EMAIL_NOT_SENT,
        "created_at": now,
        "created_by_user_id": user_id,
        "expires_at": expiry_for(dbsession, upload.firm_id, now),
        "reminders_sent": 0,
        "reminders_off": False,
    }


def _queue_emails(work: Work, upload: BulkUpload) -> None:
    queue_link_emails(
        work,
        firm_id=upload.firm_id,
        links=select(PaymentLink.id, PaymentLink.emails)
        .join(BulkRow, PaymentLink.bulk_row_id == BulkRow.id)
        .where(live_rows(upload.id))
        .order_by(BulkRow.row_number),
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


def make_links_in_background(work: Work, upload_id: int, user_id: int | None) -> str:
    """The job: prepare the secrets with progress, then write everything at once. Each
    step ends with a checkpoint: the page must see the progress while the links are
    prepared, and no transaction may stay open (on SQLite, holding the write lock) meanwhile."""
    upload = work.dbsession.get(BulkUpload, upload_id)
    if upload is None or upload.status != UPLOAD_PROCESSING:
        # Done already (a job delivered twice), or given up: nothing to do.
        return "skipped"
    total = upload.progress_total
    work.checkpoint()
    try:
        secrets = _prepare_with_progress(work, upload_id, total)
        return _write_links(work, upload_id, secrets, user_id)
    except Exception:
        log.exception("bulk upload %s: making the links failed", upload_id)
        work.rollback_and_begin()
        _mark_failed(work, upload_id)
        return "failed"


def _prepare_with_progress(work: Work, upload_id: int, total: int) -> list[PreparedSecret]:
    """The secrets to prepare before writing (UPFRONT_SHARE), with progress; any others are
    prepared while the links are written (make_links). Progress then shows the total,
    which the page reads as "saving the links"."""
    dialect = work.registry["dbengine"].dialect.name
    upfront = round(total * UPFRONT_SHARE.get(dialect, UPFRONT_SHARE_DEFAULT))
    secrets: list[PreparedSecret] = []
    published = time.monotonic()
    while len(secrets) < upfront:
        secrets.extend(prepare_secrets(work.registry, min(PROGRESS_BATCH, upfront - len(secrets))))
        # The page asks once a second; a commit per batch would be most of the work.
        if time.monotonic() - published >= PROGRESS_SECONDS:
            _publish_progress(work, upload_id, len(secrets))
            published = time.monotonic()
    _publish_progress(work, upload_id, total)
    return secrets


def _publish_progress(work: Work, upload_id: int, done: int) -> None:
    work.dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
        .values(progress_done=done, progress_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    work.checkpoint()


def _write_links(
    work: Work, upload_id: int, secrets: list[PreparedSecret], user_id: int | None
) -> str:
    upload = work.dbsession.execute(
        select(BulkUpload).where(BulkUpload.id == upload_id).with_for_update()
    ).scalar_one_or_none()
    if upload is None or upload.status != UPLOAD_PROCESSING:
        return "skipped"
    row_ids = live_row_ids(work.dbsession, upload_id)
    make_links(work, upload, row_ids, secrets[: len(row_ids)], user_id)
    # Here, not when the job returns: a failed commit is a failure like any other.
    work.checkpoint()
    return "done"


def _mark_failed(work: Work, upload_id: int) -> None:
    """Back to review with a message: nothing was made, and the action may be taken again."""
    work.dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
        .values(status=UPLOAD_FAILED, action=None, progress_done=0, error_message=FAILED_MESSAGE)
        .execution_options(synchronize_session=False)
    )


def resume_stuck_uploads(work: Work, now: dt.datetime, quiet_for: dt.timedelta) -> list[int]:
    """Queue the links' job again for every upload whose job has said nothing for
    ``quiet_for``: its worker died, or the queue lost it. Safe if the first job is merely
    slow: the links are written once, by whichever job locks the upload first; the other
    finds it done and skips it."""
    stuck = work.dbsession.execute(
        select(BulkUpload.id, BulkUpload.created_by_user_id).where(
            BulkUpload.status == UPLOAD_PROCESSING,
            or_(BulkUpload.progress_at.is_(None), BulkUpload.progress_at < now - quiet_for),
        )
    ).all()
    resumed = []
    for upload_id, user_id in stuck:
        # Conditional, and it restarts the clock: one new job per quiet period, not one per
        # sweep, and none if the upload finished meanwhile.
        restarted = work.dbsession.execute(
            update(BulkUpload)
            .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
            .values(progress_at=now)
            .execution_options(synchronize_session=False)
        )
        if restarted.rowcount == 1:  # type: ignore[attr-defined]
            log.warning("bulk upload %s: its job went quiet; queued it again", upload_id)
            work.enqueue_after_commit(CREATE_LINKS_JOB, upload_id, user_id)
            resumed.append(upload_id)
    return resumed


def is_done(upload: BulkUpload) -> bool:
    return upload.status in (UPLOAD_SENT, UPLOAD_GENERATED)


def is_reviewing(upload: BulkUpload) -> bool:
    return upload.action is None and upload.status in (UPLOAD_REVIEW, UPLOAD_FAILED)
