"""Delivering the outbox: claim a row, render it, send it, record what happened.

Each message is delivered at least once and, in the normal course, exactly once:

- a worker claims a row with a conditional UPDATE (pending and due → sending, with a lease),
  committed before it talks to the mail server, so no two workers send the same message;
- a failure puts the row back to pending with an exponential, jittered ``next_attempt_at``
  and schedules the retry in the queue for that time; after ``max_attempts`` it is failed;
- the periodic sweep re-dispatches whatever the queue lost: overdue pending rows, and rows
  whose worker died mid-send (the lease ran out), which counts as a failed attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import smtplib
from dataclasses import dataclass
from typing import Any

from pyramid_mailer.exceptions import BadHeaders, InvalidMessage
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from clientpay_connect.db import utcnow
from clientpay_connect.jobs import job, periodic_job
from clientpay_connect.links.models import (
    EMAIL_FAILED,
    EMAIL_SENT,
    EMAIL_WITHHELD,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    PaymentLink,
)
from clientpay_connect.links.services import is_past_expiry
from clientpay_connect.mail.compose import MailComposer, PermanentMailError, header_safe
from clientpay_connect.mail.interfaces import IMailDelivery
from clientpay_connect.mail.models import (
    KIND_LINK,
    KIND_REMINDER,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OUTBOX_WITHHELD,
    OutboxMessage,
    is_bounce,
)
from clientpay_connect.mail.outbox import (
    DELIVER_JOB,
    DELIVER_MANY_JOB,
    KIND_EMAIL_FAILED,
    NOTICE_EVENTS,
    SWEEP_JOB,
    notification_recipients,
    queue_email,
)
from clientpay_connect.notifications.services import link_facts, notify_reminder_failed
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
MAX_ERROR_LENGTH = 500
# What deliver() reports, for tests and the worker's log.
SENT, RETRY, FAILED, SKIPPED, WITHHELD = "sent", "retry", "failed", "skipped", "withheld"


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float
    max_attempts: int
    lease_seconds: float
    sweep_grace_seconds: float

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> RetryPolicy:
        return cls(
            base_seconds=float(settings["clientpay.mail.retry_base_seconds"]),
            cap_seconds=float(settings["clientpay.mail.retry_cap_seconds"]),
            max_attempts=int(settings["clientpay.mail.max_attempts"]),
            lease_seconds=float(settings["clientpay.mail.lease_seconds"]),
            sweep_grace_seconds=float(settings["clientpay.mail.sweep_grace_seconds"]),
        )

    def delay(self, attempts: int) -> dt.timedelta:
        """base * 2**(attempts - 1), capped, times a random factor in [0.5, 1]: messages that
        failed together (the server was down) spread out instead of retrying in a herd."""
        exponential = self.base_seconds * 2 ** min(max(attempts - 1, 0), 32)
        factor = random.uniform(0.5, 1.0)  # jitter, not a secret
        return dt.timedelta(seconds=min(self.cap_seconds, exponential) * factor)


# The steps, each in its own transaction.


def claim(
    dbsession: Session, outbox_id: int, due_by: dt.datetime, lease_until: dt.datetime
) -> bool:
    """pending and due → sending, counting the attempt. Atomic on both databases: of any
    number of workers given the same row, exactly one sees it change.

    A message never tried is always due: its next_attempt_at is the web server's clock, and
    a worker whose clock runs a little behind must not leave it to the sweep.
    """
    result = dbsession.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == outbox_id,
            OutboxMessage.status == OUTBOX_PENDING,
            or_(OutboxMessage.next_attempt_at <= due_by, OutboxMessage.attempts == 0),
        )
        .values(
            status=OUTBOX_SENDING,
            lease_until=lease_until,
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def record_sent(dbsession: Session, outbox_id: int, now: dt.datetime) -> None:
    # Unconditional: even if our lease ran out meanwhile, the message did go, and marking it
    # sent stops the other worker from sending it a second time.
    dbsession.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == outbox_id)
        .values(status=OUTBOX_SENT, sent_at=now, lease_until=None, last_error="")
        .execution_options(synchronize_session=False)
    )
    row = dbsession.get(OutboxMessage, outbox_id)
    if row is not None and row.kind == KIND_LINK and row.link_id is not None:
        _set_link_email_status(dbsession, row.link_id, EMAIL_SENT, sent_at=now)


# Why a link's email is not sent after all, by what became of the link meanwhile.
WITHHOLD_REASONS = {
    STATUS_CANCELLED: "Not sent: the link was cancelled before its email went out.",
    STATUS_PAID: "Not sent: the link was paid before its email went out.",
    STATUS_PARTIALLY_PAID: "Not sent: the link was paid in part before its email went out.",
    STATUS_EXPIRED: "Not sent: the link expired before its email went out.",
}


def withhold_reason(dbsession: Session, row: OutboxMessage, now: dt.datetime) -> str:
    """Why ``row`` must not go out now ("" if it should): a link's email is for paying it,
    and a link cancelled, paid or expired while its email waited (the mail server was down,
    say) would only send the client to a page saying it cannot be paid."""
    if row.kind not in (KIND_LINK, KIND_REMINDER) or row.link_id is None:
        return ""
    link = dbsession.get(PaymentLink, row.link_id)
    if link is None:
        return ""
    state = STATUS_EXPIRED if is_past_expiry(link, now) else link.status
    return WITHHOLD_REASONS.get(state, "")


def record_withheld(dbsession: Session, row: OutboxMessage, reason: str) -> None:
    dbsession.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row.id, OutboxMessage.status == OUTBOX_SENDING)
        .values(status=OUTBOX_WITHHELD, lease_until=None, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    # A reminder held back leaves the link's own email as it was.
    if row.kind == KIND_LINK and row.link_id is not None:
        _set_link_email_status(dbsession, row.link_id, EMAIL_WITHHELD)


def record_failure(
    work: Work,
    outbox_id: int,
    lease_until: dt.datetime | None,
    error: str,
    *,
    permanent: bool,
    now: dt.datetime,
) -> str:
    """Back to pending with the next attempt scheduled, or failed for good.

    Only while the row is still ours (sending, under our lease): if the lease ran out and
    the sweep or another worker took over, their outcome stands.
    """
    policy = RetryPolicy.from_settings(work.settings)
    row = work.dbsession.get(OutboxMessage, outbox_id)
    if row is None:
        return SKIPPED
    gives_up = permanent or row.attempts >= policy.max_attempts
    next_attempt = now + policy.delay(row.attempts)
    result = work.dbsession.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == outbox_id,
            OutboxMessage.status == OUTBOX_SENDING,
            OutboxMessage.lease_until == lease_until,
        )
        .values(
            status=OUTBOX_FAILED if gives_up else OUTBOX_PENDING,
            lease_until=None,
            last_error=error,
            next_attempt_at=row.next_attempt_at if gives_up else next_attempt,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return SKIPPED
    if gives_up:
        log.warning("outbox %s failed after %d attempt(s): %s", outbox_id, row.attempts, error)
        _after_giving_up(work, row, error)
        return FAILED
    log.warning(
        "outbox %s attempt %d failed, next at %s: %s",
        outbox_id,
        row.attempts,
        next_attempt.isoformat(timespec="seconds"),
        error,
    )
    work.enqueue_after_commit(DELIVER_JOB, outbox_id, eta=next_attempt)
    return RETRY


def _after_giving_up(work: Work, row: OutboxMessage, error: str) -> None:
    """Tell the firm what a message given up on means for them (in this same transaction):
    a link's email (the client never got the link) or a reminder's (never reminded)."""
    if row.link_id is None or row.kind not in (KIND_LINK, KIND_REMINDER):
        return
    link = work.dbsession.get(PaymentLink, row.link_id)
    if link is None:
        return
    if row.kind == KIND_REMINDER:
        notify_reminder_failed(work, row, link_facts(link), error)
        return
    _set_link_email_status(work.dbsession, row.link_id, EMAIL_FAILED)
    staff = notification_recipients(work.dbsession, row.firm_id, NOTICE_EVENTS[KIND_EMAIL_FAILED])
    if staff:
        queue_email(
            work,
            firm_id=row.firm_id,
            kind=KIND_EMAIL_FAILED,
            recipients=staff,
            link_id=row.link_id,
            params={
                "failed_recipients": list(row.recipients),
                "attempts": row.attempts,
                "error": error,
                "bounced": is_bounce(OUTBOX_FAILED, error),
            },
        )


def _set_link_email_status(
    dbsession: Session, link_id: int, status: str, sent_at: dt.datetime | None = None
) -> None:
    values: dict[str, Any] = {"email_status": status}
    if sent_at is not None:
        values["sent_at"] = sent_at
    dbsession.execute(
        update(PaymentLink)
        .where(PaymentLink.id == link_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def is_permanent(exc: BaseException) -> bool:
    """Errors that another attempt cannot fix. Anything else (server down, timeouts, 4xx,
    a wrong password an admin can correct) is retried."""
    if isinstance(exc, PermanentMailError | BadHeaders | InvalidMessage):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _text in exc.recipients.values())
    return False


def error_text(exc: BaseException, secrets: list[str]) -> str:
    """What the Outbox page and the log may show: one line, short, secrets masked."""
    text = f"{type(exc).__name__}: {exc}"
    # Longest first: the URL goes whole, not as its prefix plus a masked token.
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return header_safe(text)[:MAX_ERROR_LENGTH]


# The jobs.


@job(DELIVER_JOB)
def deliver(work: Work, outbox_id: int, due_by: str | None = None) -> str:
    """Send outbox message ``outbox_id`` if it is due now (or at ``due_by``, the ISO time
    at which the sweep found it due)."""
    policy = RetryPolicy.from_settings(work.settings)
    now = utcnow()
    due = dt.datetime.fromisoformat(due_by) if due_by else now
    lease_until = now + dt.timedelta(seconds=policy.lease_seconds)
    if not claim(work.dbsession, outbox_id, due, lease_until):
        return SKIPPED
    # Committed before the slow part, so that every other worker sees the claim.
    work.checkpoint()
    row = work.dbsession.get(OutboxMessage, outbox_id)
    if row is None:
        return SKIPPED
    reason = withhold_reason(work.dbsession, row, now)
    if reason:
        record_withheld(work.dbsession, row, reason)
        log.info("outbox %s withheld (%s): %s", outbox_id, row.kind, reason)
        return WITHHELD
    try:
        composed = work.find_service(MailComposer).compose(work.dbsession, row, now)
        row.subject = composed.subject
        work.checkpoint()
    except Exception as exc:
        work.rollback_and_begin()
        return record_failure(
            work, outbox_id, lease_until, error_text(exc, []), permanent=is_permanent(exc), now=now
        )
    try:
        work.find_service(IMailDelivery).send(composed.message)
    except Exception as exc:
        error = error_text(exc, composed.secrets)
        return record_failure(
            work, outbox_id, lease_until, error, permanent=is_permanent(exc), now=utcnow()
        )
    record_sent(work.dbsession, outbox_id, utcnow())
    log.info("outbox %s sent (%s)", outbox_id, row.kind)
    return SENT


@job(DELIVER_MANY_JOB)
def deliver_many(work: Work, outbox_ids: list[int]) -> dict[str, int]:
    """``deliver`` each of ``outbox_ids`` in turn (what queue_link_emails enqueues), each
    committed before the next begins: a worker dying halfway loses nothing (the sweep finds
    what it had not reached) and repeats nothing that went."""
    outcomes: dict[str, int] = {}
    for outbox_id in outbox_ids:
        outcome = deliver(work, outbox_id)
        work.checkpoint()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@periodic_job(SWEEP_JOB, minute="*")
def sweep(work: Work, now: dt.datetime | None = None) -> int:
    """Re-dispatch what the queue lost; the number of messages dispatched.

    Rows whose lease ran out (their worker stopped mid-send) count a failed attempt; pending
    rows overdue by more than the grace period (the retry the queue held is evidently gone)
    are enqueued again. A row enqueued twice is harmless: the claim lets one through.
    """
    now = now or utcnow()
    policy = RetryPolicy.from_settings(work.settings)
    for row in _expired_leases(work.dbsession, now):
        record_failure(
            work,
            row.id,
            row.lease_until,
            "Interrupted: the worker stopped before the message was confirmed sent",
            permanent=False,
            now=now,
        )
    overdue = now - dt.timedelta(seconds=policy.sweep_grace_seconds)
    due_ids = work.dbsession.execute(
        select(OutboxMessage.id)
        .where(OutboxMessage.status == OUTBOX_PENDING, OutboxMessage.next_attempt_at <= overdue)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(SWEEP_BATCH)
    ).scalars()
    dispatched = 0
    for outbox_id in due_ids:
        work.enqueue_after_commit(DELIVER_JOB, outbox_id, now.isoformat())
        dispatched += 1
    return dispatched


def _expired_leases(dbsession: Session, now: dt.datetime) -> list[OutboxMessage]:
    return list(
        dbsession.execute(
            select(OutboxMessage)
            .where(OutboxMessage.status == OUTBOX_SENDING, OutboxMessage.lease_until < now)
            .limit(SWEEP_BATCH)
        ).scalars()
    )
