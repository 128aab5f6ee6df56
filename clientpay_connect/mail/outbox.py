"""Queueing email: a row in the outbox in the caller's transaction, delivered after commit."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import zope.sqlalchemy
from sqlalchemy import JSON, Select, Table, insert, literal, select, update
from sqlalchemy.orm import Session

from clientpay_connect.db import utcnow
from clientpay_connect.links.models import EMAIL_FAILED, EMAIL_QUEUED, PaymentLink
from clientpay_connect.mail.models import (
    KIND_LINK,
    KIND_PAYMENT_NOTICE,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OutboxMessage,
)
from clientpay_connect.notifications.recipients import subscribers
from clientpay_connect.work import Work

DELIVER_JOB = "mail.deliver"
DELIVER_MANY_JOB = "mail.deliver_many"
SWEEP_JOB = "mail.sweep"
# Messages per mail.deliver_many job: a Send All of 100,000 links is 200 entries in the
# queue rather than 100,000, and still enough jobs for every worker to take some.
DELIVERY_BATCH = 500
OUTBOX_TABLE = cast(Table, OutboxMessage.__table__)

# Sent to the firm when a payment link's email could not be delivered.
KIND_EMAIL_FAILED = "email_failed"
# A notice to the firm's staff whose text travels in its params (nothing secret in them);
# its params name the notification event whose subscribers receive it.
KIND_FIRM_NOTICE = "firm_notice"
# The notification event whose subscribers receive each kind of firm notice.
NOTICE_EVENTS = {KIND_PAYMENT_NOTICE: "payment_received", KIND_EMAIL_FAILED: "email_failed"}
RETRYABLE = (OUTBOX_PENDING, OUTBOX_FAILED)


def queue_email(
    work: Work,
    *,
    firm_id: int,
    kind: str,
    recipients: list[str],
    link_id: int | None = None,
    payment_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Write the message row now; its delivery job is enqueued only if the transaction commits.

    ``params`` must hold nothing secret: the message is rendered from the link and payment
    when it is sent.
    """
    message = OutboxMessage(
        firm_id=firm_id,
        kind=kind,
        recipients=list(recipients),
        link_id=link_id,
        payment_id=payment_id,
        params=dict(params or {}),
    )
    work.dbsession.add(message)
    work.dbsession.flush()
    work.enqueue_after_commit(DELIVER_JOB, message.id)
    return message


def queue_firm_notice(
    work: Work,
    *,
    firm_id: int,
    event: str,
    subject: str,
    lines: list[str],
    path: str,
    link_id: int | None = None,
) -> OutboxMessage | None:
    """A notice to the firm's people who chose ``event`` in Notifications, its text in the
    params, with a link to ``path`` in the app. Addressed now, in the event's transaction,
    to the subscribers of that moment; nothing is written when no one subscribes (a row
    with nowhere to go would only fail in the Outbox). The notifications feature calls this
    ``notify``."""
    recipients = subscribers(work.dbsession, firm_id, event)
    if not recipients:
        return None
    return queue_email(
        work,
        firm_id=firm_id,
        kind=KIND_FIRM_NOTICE,
        recipients=recipients,
        link_id=link_id,
        params={"event": event, "subject": subject, "lines": list(lines), "path": path},
    )


def queue_link_emails(
    work: Work,
    *,
    firm_id: int,
    links: Select[int, list[str]],
) -> int:
    """A payment-link email to each of ``links`` (a select of new links' ``id`` and
    ``emails``, in the order to send), as ``queue_email`` writes them one at a time: one
    INSERT … SELECT writes every row inside the database, and the deliveries are enqueued
    in batches once the transaction commits. Returns how many were queued."""
    queued = write_link_emails(work, firm_id=firm_id, kind=KIND_LINK, links=links)
    deliver_after_commit(work, queued)
    return len(queued)


def write_link_emails(
    work: Work,
    *,
    firm_id: int,
    kind: str,
    links: Select[int, list[str]],
    params: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> list[int]:
    """The outbox rows of a ``kind`` email to each of ``links`` (a select of links' ``id``
    and ``emails``), all with the same ``params``, written by one INSERT … SELECT inside the
    database; their ids, in the select's order. The caller enqueues their delivery
    (``deliver_after_commit``). ``now`` (the caller's clock, if it has one) is when they
    were made and are first due."""
    now = now or utcnow()
    chosen = links.subquery()
    rows = select(
        literal(firm_id, OUTBOX_TABLE.c.firm_id.type),
        literal(kind, OUTBOX_TABLE.c.kind.type),
        chosen.c.id,
        chosen.c.emails,
        literal(dict(params or {}), JSON),
        literal(OUTBOX_PENDING, OUTBOX_TABLE.c.status.type),
        literal(0, OUTBOX_TABLE.c.attempts.type),
        literal(now, OUTBOX_TABLE.c.next_attempt_at.type),
        literal("", OUTBOX_TABLE.c.last_error.type),
        literal("", OUTBOX_TABLE.c.subject.type),
        literal("", OUTBOX_TABLE.c.message_id.type),
        literal(now, OUTBOX_TABLE.c.created_at.type),
    )
    columns = [
        "firm_id", "kind", "link_id", "recipients", "params", "status", "attempts",
        "next_attempt_at", "last_error", "subject", "message_id", "created_at",
    ]  # fmt: skip
    written = work.dbsession.connection().execute(
        insert(OUTBOX_TABLE).from_select(columns, rows).returning(OUTBOX_TABLE.c.id)
    )
    # Core statements go unseen by zope.sqlalchemy: without this the commit would roll back.
    zope.sqlalchemy.mark_changed(work.dbsession)
    # Ids are drawn in the select's order; RETURNING need not list them in it.
    return sorted(written.scalars())


def deliver_after_commit(work: Work, outbox_ids: list[int]) -> None:
    """Enqueue the delivery of ``outbox_ids`` once the transaction commits, ``DELIVERY_BATCH``
    to a job."""
    for start in range(0, len(outbox_ids), DELIVERY_BATCH):
        work.enqueue_after_commit(DELIVER_MANY_JOB, outbox_ids[start : start + DELIVERY_BATCH])


def notification_recipients(dbsession: Session, firm_id: int, event: str) -> list[str]:
    """The addresses of the firm's people who asked to hear of ``event``."""
    return subscribers(dbsession, firm_id, event)


def firm_message(dbsession: Session, firm_id: int, outbox_id: int) -> OutboxMessage | None:
    return dbsession.execute(
        select(OutboxMessage).where(OutboxMessage.id == outbox_id, OutboxMessage.firm_id == firm_id)
    ).scalar_one_or_none()


def retry_now(work: Work, message: OutboxMessage) -> bool:
    """Send a pending or failed message again at once; False if it is not waiting.

    A failed message gets one more attempt (its count is kept, so another failure fails it
    again instead of starting a new series of retries).
    """
    now = utcnow()
    dbsession = work.dbsession
    # Conditional, like a worker's claim: a message a worker took a moment ago (sending)
    # must not be put back to pending under it, or it would go out twice.
    result = dbsession.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.status.in_(RETRYABLE))
        .values(status=OUTBOX_PENDING, next_attempt_at=now, lease_until=None)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    link = (
        dbsession.get(PaymentLink, message.link_id)
        if message.kind == KIND_LINK and message.link_id is not None
        else None
    )
    if link is not None and link.email_status == EMAIL_FAILED:
        link.email_status = EMAIL_QUEUED
    dbsession.flush()
    # Due as of the moment the admin asked, by this machine's clock, whatever the worker's.
    work.enqueue_after_commit(DELIVER_JOB, message.id, now.isoformat())
    return True
