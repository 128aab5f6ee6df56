"""The sync job's work: write one posting to the matter system, once.

The steps, each for a reason:
1. Claim the posting with a conditional update (status queued, no live lease) and a lease
   token, and commit: two workers holding the same id cannot both go on, and a worker that
   dies lets its lease expire for the sweep to queue the posting again.
2. Call the matter system outside any database transaction (on SQLite a transaction that
   writes holds the whole database; a vendor may take seconds).
3. Ask ``find_payment`` first: a write whose answer was lost (a timeout after the vendor
   recorded it, a worker killed mid-call) is found by its key and never written again.
   Then re-read the invoices that are still to be written: one closed, voided, unknown or
   owing less than its allocation makes the posting incomplete, with the reason.
4. ``record_payment`` with the allocations already written marked, so a one-invoice-per-call
   system (MyCase) writes only the rest; and only while the lease will outlast the writes
   (``WriteWindow``), since after it another worker may take the posting.
5. Record the outcome if the lease is still ours. Rate limits wait for Retry-After without
   using up an attempt; transient failures back off exponentially with full jitter up to
   ``clientpay.postings.max_attempts``, then the posting fails and the admins are told.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import secrets
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select, update
from sqlalchemy.orm import Session

from clientpay_connect.connect.interfaces import (
    AdapterError,
    Allocation,
    Conflict,
    Invoice,
    ManualSlip,
    Permanent,
    PostingRequest,
    PostResult,
    RateLimited,
    ReauthorizationRequired,
    Transient,
)
from clientpay_connect.connect.linking import link_invoices
from clientpay_connect.connect.models import CONNECTION_CONNECTED, Connection
from clientpay_connect.connect.services import (
    open_adapter,
    record_reauthorization_needed,
    release_adapter,
)
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.outbox import queue_firm_notice
from clientpay_connect.money import display_amount
from clientpay_connect.pay.models import Payment
from clientpay_connect.postings.models import (
    POSTING_FAILED,
    POSTING_INCOMPLETE,
    POSTING_MANUAL,
    POSTING_POSTED,
    POSTING_QUEUED,
    Posting,
)
from clientpay_connect.postings.services import SYNC_JOB, record_attempt
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

FAILED_EVENT = "posting_failed"


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    lease: dt.timedelta
    backoff_base: float
    backoff_cap: float
    sweep_grace: dt.timedelta
    # The longest one call to the matter system may take (its timeout and its rate waits).
    call_limit: dt.timedelta

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Policy:
        return cls(
            max_attempts=int(settings["clientpay.postings.max_attempts"]),
            lease=dt.timedelta(seconds=float(settings["clientpay.postings.lease_seconds"])),
            backoff_base=float(settings["clientpay.postings.backoff_base_seconds"]),
            backoff_cap=float(settings["clientpay.postings.backoff_cap_seconds"]),
            sweep_grace=dt.timedelta(
                seconds=float(settings["clientpay.postings.sweep_grace_seconds"])
            ),
            call_limit=dt.timedelta(seconds=float(settings["clientpay.http_timeout"])),
        )

    def backoff(self, attempt: int) -> float:
        """Full jitter (AWS's "exponential backoff and jitter"): spreads the retries of many
        postings that failed together, instead of returning them all at once."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Claimed:
    token: str
    connection: Connection
    request: PostingRequest


def claim(dbsession: Session, posting_id: int, now: dt.datetime, lease: dt.timedelta) -> str | None:
    token = secrets.token_hex(8)
    won = dbsession.execute(
        update(Posting)
        .where(
            Posting.id == posting_id,
            Posting.status == POSTING_QUEUED,
            or_(Posting.lease_until.is_(None), Posting.lease_until <= now),
            or_(Posting.next_attempt_at.is_(None), Posting.next_attempt_at <= now),
        )
        .values(
            lease_until=now + lease,
            lease_token=token,
            attempt_count=Posting.attempt_count + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return token if won.rowcount == 1 else None  # type: ignore[attr-defined]


def posting_request(dbsession: Session, posting: Posting) -> PostingRequest:
    payment = dbsession.get(Payment, posting.payment_id)
    link = dbsession.get(PaymentLink, posting.link_id)
    rows = link_invoices(dbsession, posting.link_id)
    first = rows[0] if rows else None
    return PostingRequest(
        key=posting.key,
        received_on=posting.received_on,
        currency=posting.currency,
        allocations=tuple(
            Allocation(
                invoice_id=str(a["invoice_id"]),
                invoice_number=str(a.get("invoice_number") or ""),
                amount=int(a["amount"]),
                external_id=a.get("external_id"),
            )
            for a in posting.allocations
        ),
        reference=(payment.receipt_number or "") if payment else "",
        payer_name=(payment.payer_name if payment else "") or (link.recipient_name if link else ""),
        method=payment.method if payment else "",
        client_id=first.client_id if first else "",
        matter_id=first.matter_id if first else "",
    )


def sync_posting(work: Work, posting_id: int, now: dt.datetime | None = None) -> str:
    """Try to write posting ``posting_id``; return what became of it (for logs and tests)."""
    policy = Policy.from_settings(work.settings)
    now = now or utcnow()
    token = claim(work.dbsession, posting_id, now, policy.lease)
    if token is None:
        return "not_claimed"
    posting = work.dbsession.get(Posting, posting_id)
    assert posting is not None
    connection = (
        work.dbsession.get(Connection, posting.connection_id) if posting.connection_id else None
    )
    if connection is None or connection.status != CONNECTION_CONNECTED:
        return _wait_for_connection(work, posting, connection)
    request = posting_request(work.dbsession, posting)
    lease_until = now + policy.lease
    # Let go of the database while the matter system answers.
    work.checkpoint()
    try:
        result = write_once(work, connection, request, WriteWindow(lease_until, policy.call_limit))
    except AdapterError as error:
        return _record_error(work, posting_id, token, error, policy, connection)
    except Exception as error:  # a bug must not lose the posting: it is retried, and logged
        log.exception("posting %s: unexpected error", posting_id)
        return _record_error(work, posting_id, token, error, policy, connection)
    return _record_result(work, posting_id, token, result, policy)


@dataclass(frozen=True)
class WriteWindow:
    """Writes start only while the lease will outlast them: once it has run out, another
    worker may take the posting, and two writers would both find nothing written yet. Each
    write may take up to the call limit plus the adapter's rate waits."""

    lease_until: dt.datetime
    call_limit: dt.timedelta

    def writes_that_fit(self, adapter: Any) -> int:
        rate_wait = dt.timedelta(seconds=float(getattr(adapter, "max_rate_wait", 0.0)))
        per_write = self.call_limit + rate_wait
        left = self.lease_until - utcnow()
        if per_write <= dt.timedelta(0):
            return 1 if left > dt.timedelta(0) else 0
        return max(0, int(left / per_write))


def write_once(
    work: Work, connection: Connection, request: PostingRequest, window: WriteWindow
) -> PostResult:
    adapter = open_adapter(work, connection)
    try:
        found = dict(adapter.find_payment(request))
        allocations = tuple(
            replace(a, external_id=a.external_id or found.get(a.invoice_id))
            for a in request.allocations
        )
        written = {a.invoice_id: a.external_id for a in allocations if a.external_id}
        remaining = [a for a in allocations if not a.external_id]
        if not remaining:
            return PostResult("posted", external_ids=written, message="Found already written.")
        invoices = {i.id: i for i in adapter.get_invoices([a.invoice_id for a in remaining])}
        problems = [p for p in (_conflict(a, invoices.get(a.invoice_id)) for a in remaining) if p]
        if problems:
            raise _PartlyWritten(Conflict(" ".join(problems)), written)
        fits = window.writes_that_fit(adapter)
        if fits <= 0:
            raise _PartlyWritten(
                Transient(
                    "The matter system answered too slowly to write within this attempt's "
                    "lease; it will be tried again."
                ),
                written,
            )
        batch = allocations
        if not _one_call(adapter) and fits < len(remaining):
            # One call per invoice: what fits in the lease now, the rest next time.
            now_written = {a.invoice_id for a in remaining[:fits]}
            batch = tuple(a for a in allocations if a.external_id or a.invoice_id in now_written)
        try:
            result: PostResult = adapter.record_payment(replace(request, allocations=batch))
        except AdapterError as error:
            raise _PartlyWritten(error, written) from error
        result = replace(result, external_ids={**written, **dict(result.external_ids)})
        if len(batch) < len(allocations) and result.outcome == "posted":
            result = replace(
                result,
                outcome="partially_posted",
                message=f"Wrote {fits} of the {len(remaining)} invoices left within this "
                "attempt's lease; the rest on the next attempt.",
            )
        return result
    except ReauthorizationRequired as error:
        record_reauthorization_needed(work.registry, connection.id, str(error))
        raise
    finally:
        release_adapter(work.registry, adapter)


def _one_call(adapter: Any) -> bool:
    """Whether the adapter writes all of a posting's invoices in one call (and one
    transaction, unique on the key): such a write is never split."""
    capabilities = getattr(adapter, "capabilities", None)
    return bool(getattr(capabilities, "multi_invoice", False))


class _PartlyWritten(AdapterError):
    """An adapter error, with what is already known to be written."""

    def __init__(self, error: AdapterError, written: dict[str, str]):
        super().__init__(str(error))
        self.error = error
        self.written = written


def _conflict(allocation: Allocation, invoice: Invoice | None) -> str:
    label = allocation.invoice_number or allocation.invoice_id
    if invoice is None:
        return f"Invoice {label} is unknown to the matter system."
    if invoice.state != "open":
        return f"Invoice {label} is {invoice.state}."
    if invoice.balance < allocation.amount:
        return (
            f"Invoice {label} now owes {display_amount(invoice.balance, invoice.currency)}, "
            f"less than the {display_amount(allocation.amount, invoice.currency)} allocated to it."
        )
    return ""


def _ours(dbsession: Session, posting_id: int, token: str) -> Posting | None:
    """The posting, locked, if our lease still holds it (else another worker has it)."""
    posting = dbsession.execute(
        select(Posting).where(Posting.id == posting_id).with_for_update()
    ).scalar_one_or_none()
    if posting is None or posting.lease_token != token or posting.status != POSTING_QUEUED:
        return None
    return posting


def _release(posting: Posting) -> None:
    posting.lease_until = None
    posting.lease_token = ""


def _mark_written(posting: Posting, external_ids: dict[str, str]) -> None:
    if not external_ids:
        return
    posting.external_ids = {**(posting.external_ids or {}), **external_ids}
    posting.allocations = [
        {**a, "external_id": a.get("external_id") or external_ids.get(str(a["invoice_id"]))}
        for a in posting.allocations
    ]


def _record_result(
    work: Work, posting_id: int, token: str, result: PostResult, policy: Policy
) -> str:
    posting = _ours(work.dbsession, posting_id, token)
    if posting is None:
        return "lease_lost"
    _release(posting)
    _mark_written(posting, dict(result.external_ids))
    now = utcnow()
    if result.outcome == "posted":
        posting.status = POSTING_POSTED
        posting.posted_at = now
        posting.reason = ""
        posting.next_attempt_at = None
    elif result.outcome == "manual_required":
        posting.status = POSTING_MANUAL
        posting.slip = slip_json(result.slip) if result.slip else None
        posting.reason = result.message or "This matter system takes payments by hand."
        posting.next_attempt_at = None
    elif result.outcome == "rejected":
        _fail(work, posting, result.message or "The matter system refused the payment.")
    else:  # partially_posted, or pending (accepted; confirmed by find_payment next time)
        posting.tracking_id = result.tracking_id or posting.tracking_id
        return _retry_later(work, posting, result.outcome, result.message, policy, now)
    record_attempt(
        work.dbsession, posting, result.outcome, result.message, dict(result.external_ids)
    )
    return posting.status


def _record_error(
    work: Work,
    posting_id: int,
    token: str,
    error: Exception,
    policy: Policy,
    connection: Connection,
) -> str:
    posting = _ours(work.dbsession, posting_id, token)
    if posting is None:
        return "lease_lost"
    _release(posting)
    if isinstance(error, _PartlyWritten):
        _mark_written(posting, error.written)
        error = error.error
    now = utcnow()
    if isinstance(error, RateLimited):
        # The vendor's pace, not a failure: it does not use up an attempt.
        posting.attempt_count -= 1
        posting.next_attempt_at = now + dt.timedelta(seconds=max(error.retry_after, 0.1))
        record_attempt(work.dbsession, posting, "rate_limited", str(error))
        work.enqueue_after_commit(SYNC_JOB, posting.id, eta=posting.next_attempt_at)
        return "rate_limited"
    if isinstance(error, ReauthorizationRequired):
        posting.attempt_count -= 1
        return _wait(work, posting, connection.name)
    if isinstance(error, Conflict):
        posting.status = POSTING_INCOMPLETE
        posting.reason = str(error)
        posting.next_attempt_at = None
        record_attempt(work.dbsession, posting, "incomplete", posting.reason)
        return POSTING_INCOMPLETE
    if isinstance(error, Permanent):
        _fail(work, posting, f"The matter system refused it: {error}")
        record_attempt(work.dbsession, posting, "rejected", str(error))
        return POSTING_FAILED
    return _retry_later(work, posting, "transient", str(error) or type(error).__name__, policy, now)


def _retry_later(
    work: Work, posting: Posting, outcome: str, message: str, policy: Policy, now: dt.datetime
) -> str:
    record_attempt(work.dbsession, posting, outcome, message)
    if posting.attempt_count >= policy.max_attempts:
        _fail(work, posting, f"Gave up after {posting.attempt_count} attempts: {message}")
        return POSTING_FAILED
    posting.reason = message[:1000]
    posting.next_attempt_at = now + dt.timedelta(seconds=policy.backoff(posting.attempt_count))
    work.enqueue_after_commit(SYNC_JOB, posting.id, eta=posting.next_attempt_at)
    return "retry"


def _wait_for_connection(work: Work, posting: Posting, connection: Connection | None) -> str:
    posting.attempt_count -= 1
    _release(posting)
    return _wait(work, posting, connection.name if connection else "the matter system")


def _wait(work: Work, posting: Posting, name: str) -> str:
    """Park the posting until its connection is connected again (the sweep resumes it)."""
    posting.next_attempt_at = None
    posting.reason = f"Waiting for {name} to be connected again (Admin > Connections)."
    record_attempt(work.dbsession, posting, "waiting", posting.reason)
    return "waiting"


def _fail(work: Work, posting: Posting, reason: str) -> None:
    posting.status = POSTING_FAILED
    posting.reason = reason[:1000]
    posting.next_attempt_at = None
    queue_firm_notice(
        work,
        firm_id=posting.firm_id,
        event=FAILED_EVENT,
        subject=f"A payment could not be posted ({posting.key})",
        lines=[
            f"The payment {posting.key} of "
            f"{display_amount(posting.amount_minor, posting.currency)} received on "
            f"{posting.received_on.isoformat()} could not be written to the matter system.",
            f"Reason: {posting.reason}",
            "Open Manage Postings, Failed, to retry it or remove it.",
        ],
        path="/postings?status=failed",
    )


def slip_json(slip: ManualSlip) -> dict[str, Any]:
    return {
        "client": slip.client,
        "matter": slip.matter,
        "date": slip.date.isoformat(),
        "reference": slip.reference,
        "currency": slip.currency,
        "lines": [{"invoice_number": n, "amount": a} for n, a in slip.lines],
    }


def requeue_for_sweep(
    dbsession: Session,
    now: dt.datetime,
    grace: dt.timedelta,
    queue_idle: bool,
    limit: int = 1000,
) -> list[int]:
    """The queued postings the queue has lost, marked as queued again now; the caller
    enqueues them after its commit. Lost, on a connection that is connected:

    - one that waited for its connection, which is back;
    - one whose lease ran out: its worker died while writing it (or took longer than the
      lease, and may no longer write: see WriteWindow);
    - one due and untouched for ``grace``, when the queue holds nothing (``queue_idle``):
      its enqueue was lost after the commit, or its worker died after taking it from the
      queue and before claiming it. While the queue holds tasks, such a posting may simply
      be waiting its turn among them: queueing it again would only add work.

    The mark (``updated_at``, a lease cleared, ``next_attempt_at`` for one that waited)
    keeps the next sweep, in this process or another, from queueing it again for another
    ``grace``; and a posting queued twice is still written once, since the job claims it."""
    stale = now - grace
    forgotten = and_(
        Posting.lease_until.is_(None),
        Posting.next_attempt_at <= stale,
        Posting.updated_at <= stale,
    )
    lost = (
        Posting.status == POSTING_QUEUED,
        or_(
            and_(Posting.next_attempt_at.is_(None), Posting.lease_until.is_(None)),
            Posting.lease_until <= now,
            forgotten if queue_idle else false(),
        ),
    )
    candidates = list(
        dbsession.execute(
            select(Posting.id)
            .join(Connection, Connection.id == Posting.connection_id)
            .where(*lost, Connection.status == CONNECTION_CONNECTED)
            .order_by(Posting.id)
            .limit(limit)
        ).scalars()
    )
    if not candidates:
        return []
    # Conditional, so that of two sweeps racing for a posting only one queues it again.
    marked = dbsession.execute(
        update(Posting)
        .where(Posting.id.in_(candidates), *lost)
        .values(
            reason=case((Posting.next_attempt_at.is_(None), ""), else_=Posting.reason),
            next_attempt_at=func.coalesce(Posting.next_attempt_at, now),
            lease_until=None,
            updated_at=now,
        )
        .returning(Posting.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(marked.scalars())
