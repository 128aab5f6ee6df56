"""The link writer: an upload's rows become payment links, in the caller's transaction.

The secrets are drawn, hashed and encrypted in Python (prepare_secrets); everything else a
link holds the database copies from its row. Why not write in batches and report progress
from a second connection during one long transaction? On SQLite a writing transaction holds
the database's only write lock, so a second connection's progress update would wait for it
to end: the page would see nothing until the very end. Preparing outside the transaction
needs no lock, so progress shows on both databases (tasks.py), and the writing transaction
holds only the writes (a few seconds for 100,000 links: the secrets go to a temporary table
by the driver's bulk path in fastwrite.py, then one INSERT … SELECT makes the links from the
rows inside the database).

On PostgreSQL a large upload's links are written on two connections at once (make_links,
_write_beside): the database's work is its indexes' (Sent Pages sorts by every column), one
backend can use only one of the machine's cores, and two wrote 100,000 links in about three
quarters of the time. The second connection's transaction commits just before the caller's,
once both halves are written: a failure before then leaves nothing; a crash between the two
commits leaves that half's links with the upload still processing, and the job the sweep
queues again makes the links of the rows that have none (tasks.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, cast

from pyramid.registry import Registry
from sqlalchemy import (
    BigInteger,
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
    select,
    update,
)
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.bulk.fastwrite import (
    TableWriter,
    is_postgresql,
    larger_page_cache,
    more_sort_memory,
    refresh_statistics,
    wrote_with_core,
)
from clientpay_connect.bulk.models import (
    ACTION_GENERATE,
    ACTION_SEND,
    UPLOAD_GENERATED,
    UPLOAD_SENT,
    BulkRow,
    BulkUpload,
)
from clientpay_connect.bulk.reader import garbage_collection_paused
from clientpay_connect.bulk.services import Refused, live_rows
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

DONE_STATUS = {ACTION_SEND: UPLOAD_SENT, ACTION_GENERATE: UPLOAD_GENERATED}
# Links written per INSERT … SELECT while secrets are still being prepared: while the
# database writes one chunk, the next one's secrets are prepared.
WRITE_CHUNK = 10_000
# From this many links on, the tables' statistics are gathered before the commit: the first
# page of links must not be planned as if the tables were as small as before.
ANALYZE_AFTER_LINKS = 10_000
# From this many links on (a setting, so that tests can write a few that way), a job on
# PostgreSQL writes them on two connections (_write_beside).
BESIDE_SETTING = "clientpay.bulk.links_beside_from"
BESIDE_FROM = 20_000
LINKS_TABLE = cast(Table, PaymentLink.__table__)
# The columns the pages of an upload find its links by (exports.py, services.py): those
# whose statistics the links' job refreshes (refresh_statistics). The rows' were gathered when
# they were stored (services.store_upload), and the review changes a few rows at most.
LOOKED_UP_BY = {LINKS_TABLE: ("bulk_row_id", "firm_id")}


class PreparedSecret(NamedTuple):
    """A new link's secret as stored: its hash and its ciphertext (the secret itself is not
    kept; the URL is rebuilt from the ciphertext when staff need it)."""

    token_hash: str
    token_encrypted: str


def upload_account(dbsession: Session, upload: BulkUpload) -> MerchantAccount:
    """The upload's merchant account; Refused once it takes no payments."""
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


def live_row_ids(dbsession: Session, upload_id: int) -> list[int]:
    """The ids of the rows under review, in row order: one link each."""
    return _row_ids(dbsession, live_rows(upload_id))


def live_rows_without_links(dbsession: Session, upload_id: int) -> list[int]:
    """live_row_ids less the rows that have their link already: those a job cut short
    between its two commits made (see the module's docstring)."""
    made = select(PaymentLink.id).where(PaymentLink.bulk_row_id == BulkRow.id)
    return _row_ids(dbsession, live_rows(upload_id), ~made.exists())


def _row_ids(dbsession: Session, *where: Any) -> list[int]:
    query = select(BulkRow.id).where(*where).order_by(BulkRow.row_number)
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
    # The link's id, when drawn beforehand (_write_beside); else the column's default.
    Column("link_id", BigInteger, nullable=True),
    Column("token_hash", String(64), nullable=False),
    Column("token_encrypted", Text, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def upload_has_links(dbsession: Session, upload_id: int) -> bool:
    """Whether any of the upload's rows has its link."""
    query = select(
        select(PaymentLink.id)
        .join(BulkRow, BulkRow.id == PaymentLink.bulk_row_id)
        .where(BulkRow.upload_id == upload_id)
        .exists()
    )
    return bool(dbsession.connection().execute(query).scalar())


def make_links(
    work: Work,
    upload: BulkUpload,
    row_ids: Sequence[int],
    ready: Sequence[PreparedSecret],
    user_id: int | None,
    *,
    beside: bool = False,
) -> int:
    """Insert a link per row (and for Send All queue its email) in ``work``'s transaction;
    mark the upload done. Returns how many links were made. With ``beside`` (the links'
    job, whose upload and rows are committed), a large upload on PostgreSQL has half of
    them written in a transaction of their own alongside (_write_beside).

    The links are made WRITE_CHUNK rows at a time by an INSERT … SELECT from the rows, so
    the database copies the rows' values itself: none of them travels to Python and back.
    The first rows take the secrets ``ready``; the others' are prepared in a thread while
    the database writes (see _secrets_in_chunks)."""
    dbsession = work.dbsession
    account = upload_account(dbsession, upload)
    plan = LinkPlan.of(dbsession, upload, account, user_id)
    if beside and is_postgresql(dbsession) and len(row_ids) >= beside_from(work.registry):
        half = len(row_ids) // 2
        # Drawn now, in row order: two connections drawing as they insert would interleave
        # the halves' ids, and a page sorted by time (ties by id) would mix the file's rows.
        ids = reserve_link_ids(dbsession, len(row_ids))
        _write_beside(
            work,
            plan,
            Part(row_ids[:half], ready[:half], ids[:half]),
            Part(row_ids[half:], ready[half:], ids[half:]),
        )
    else:
        _write_rows(work, plan, Part(row_ids, ready, None))
    if len(row_ids) >= ANALYZE_AFTER_LINKS:
        refresh_statistics(dbsession, LOOKED_UP_BY)
    _finish(dbsession, upload)
    return len(row_ids)


def reserve_link_ids(dbsession: Session, count: int) -> list[int]:
    """``count`` new ids from payment_links' own sequence (PostgreSQL), in ascending order."""
    drawn = dbsession.connection().exec_driver_sql(
        "SELECT nextval(pg_get_serial_sequence('payment_links', 'id')) AS id"
        " FROM generate_series(1, %(count)s) ORDER BY id",
        {"count": count},
    )
    return [int(link_id) for (link_id,) in drawn]


def beside_from(registry: Registry) -> int:
    return int(registry.settings.get(BESIDE_SETTING) or BESIDE_FROM)


class LinkPlan(NamedTuple):
    """What makes a chunk's links from its rows and secrets, and what names them after."""

    firm_id: int
    sending: bool
    make: Any
    # The same, with the ids drawn beforehand (the secrets' link_id).
    make_with_ids: Any
    made: Any

    @classmethod
    def of(
        cls, dbsession: Session, upload: BulkUpload, account: MerchantAccount, user_id: int | None
    ) -> LinkPlan:
        sending = upload.action == ACTION_SEND
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
        # The chunk's links, in row order: those whose secret the chunk's table holds.
        made = (
            select(PaymentLink.id, PaymentLink.emails)
            .join(SECRETS_TABLE, SECRETS_TABLE.c.token_hash == PaymentLink.token_hash)
            .join(BulkRow, BulkRow.id == PaymentLink.bulk_row_id)
            .order_by(BulkRow.row_number)
        )
        make = insert(LINKS_TABLE).from_select(list(values), source)
        with_ids = {"id": SECRETS_TABLE.c.link_id, **values}
        make_with_ids = insert(LINKS_TABLE).from_select(
            list(with_ids), source.with_only_columns(*with_ids.values())
        )
        return cls(upload.firm_id, sending, make, make_with_ids, made)


class Part(NamedTuple):
    """Rows to make links for, the secrets ready for the first of them, and (beside) the
    links' ids drawn for them."""

    row_ids: Sequence[int]
    ready: Sequence[PreparedSecret]
    link_ids: Sequence[int] | None


def _write_beside(work: Work, plan: LinkPlan, first: Part, second: Part) -> None:
    """``first`` in ``work``'s transaction, ``second`` at the same time in one of its own on
    another connection, which commits once both are written: just before ``work``'s, so
    that the upload is never marked done without every link (the module's docstring says
    what a crash between the two commits leaves). Either half's failure undoes both."""
    with (
        Work.fresh(work.registry) as alongside,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="links-beside") as pool,
    ):
        later = pool.submit(_write_rows, alongside, plan, second)
        try:
            _write_rows(work, plan, first)
        finally:
            # Waited for whatever happened here; its own failure is raised from here.
            later.result()


def _write_rows(work: Work, plan: LinkPlan, part: Part) -> None:
    """A link per row (and for Send All its email), a chunk at a time, in ``work``'s
    transaction."""
    dbsession = work.dbsession
    connection = dbsession.connection()
    SECRETS_TABLE.create(connection)
    secrets_writer = TableWriter(
        dbsession, SECRETS_TABLE, ("row_id", "link_id", "token_hash", "token_encrypted")
    )
    make = plan.make if part.link_ids is None else plan.make_with_ids
    link_ids = iter(part.link_ids) if part.link_ids is not None else None
    wrote_with_core(dbsession)
    more_sort_memory(connection)
    with larger_page_cache(connection):
        for chunk_ids, secrets in _secrets_in_chunks(work.registry, part.row_ids, part.ready):
            secrets_writer.insert(
                (row_id, next(link_ids) if link_ids else None, *secret)
                for row_id, secret in zip(chunk_ids, secrets, strict=True)
            )
            # The join with this chunk's secrets makes this chunk's links, in row order.
            connection.execute(make, {"first_id": min(chunk_ids), "last_id": max(chunk_ids)})
            if plan.sending:
                queue_link_emails(work, firm_id=plan.firm_id, links=plan.made)
            connection.execute(delete(SECRETS_TABLE))
    SECRETS_TABLE.drop(connection)


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


def _finish(dbsession: Session, upload: BulkUpload) -> None:
    """Done: a link per live row, counted when the action was claimed (progress_total). The
    rows cannot change meanwhile (the upload is locked and no longer under review), each
    has its secret, and the links a job cut short made count too."""
    dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload.id)
        .values(
            status=DONE_STATUS[upload.action or ACTION_GENERATE],
            progress_done=BulkUpload.progress_total,
            completed_at=utcnow(),
            error_message="",
        )
        .execution_options(synchronize_session=False)
    )
    dbsession.expire(upload)
