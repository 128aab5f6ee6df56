"""Postings: made when a Connect payment succeeds, and what staff do with them.

A posting is made in the payment's own transaction, so a payment is never without its
posting. Its allocations are the link's invoices scaled to what was paid: the full amounts
when paid in full; a partial payment fills the invoices oldest due first (on a trust
account a partial payment waits, incomplete, until staff allocate it by hand: trust money
is never allocated for them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import KIND_TRUST, MerchantAccount
from clientpay_connect.connect.allocation import Owed, allocate_oldest_due_first
from clientpay_connect.connect.linking import link_invoices
from clientpay_connect.connect.models import Connection, LinkInvoice
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import SOURCE_CONNECT, PaymentLink
from clientpay_connect.pay.models import Payment
from clientpay_connect.postings.models import (
    POSTING_FAILED,
    POSTING_INCOMPLETE,
    POSTING_MANUAL,
    POSTING_PENDING,
    POSTING_POSTED,
    POSTING_QUEUED,
    POSTING_REMOVED,
    POSTING_STATUSES,
    Posting,
    PostingAttempt,
)
from clientpay_connect.sent.present import firm_zone
from clientpay_connect.work import Work

SYNC_JOB = "postings.sync"
SWEEP_JOB = "postings.sweep"
TRUST_PARTIAL = (
    "A partial payment into a trust account is allocated by hand: choose the invoices "
    "and amounts it pays."
)


class PostingRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def posting_key(payment: Payment) -> str:
    """Deterministic per payment, and readable where it lands (a note in the matter
    system): the payment's receipt number, which the payer also holds."""
    return f"CPC-{payment.receipt_number or payment.id}"


def firm_date(dbsession: Session, firm_id: int, moment: dt.datetime) -> dt.date:
    return moment.astimezone(firm_zone(dbsession, firm_id)).date()


def allocation(row: LinkInvoice, amount: int) -> dict[str, Any]:
    return {
        "invoice_id": row.invoice_id,
        "invoice_number": row.invoice_number,
        "amount": amount,
        "external_id": None,
    }


def allocations_for_payment(
    rows: Sequence[LinkInvoice], paid: int, trust: bool
) -> tuple[list[dict[str, Any]], str]:
    """The allocations of ``paid`` across the link's invoices, and the reason it cannot be
    allocated by itself ("" when it can)."""
    asked = sum(row.amount_minor for row in rows)
    if paid >= asked:
        return [allocation(row, row.amount_minor) for row in rows], ""
    if trust:
        return [], TRUST_PARTIAL
    owed = [Owed(row.invoice_id, row.amount_minor, row.due_on, row.issued_on) for row in rows]
    parts = allocate_oldest_due_first(paid, owed)
    return [allocation(row, part) for row, part in zip(rows, parts, strict=True) if part], ""


def create_posting_for_payment(work: Work, payment: Payment, link: PaymentLink) -> Posting | None:
    """The posting of a succeeded Connect payment (None for other links), in the caller's
    transaction; queued at once when its connection posts automatically."""
    if link.source != SOURCE_CONNECT or link.connection_id is None:
        return None
    dbsession = work.dbsession
    connection = dbsession.get(Connection, link.connection_id)
    account = dbsession.get(MerchantAccount, link.merchant_account_id)
    trust = account is not None and account.kind == KIND_TRUST
    allocations, reason = allocations_for_payment(
        link_invoices(dbsession, link.id), payment.amount_minor, trust
    )
    automatic = connection is not None and connection.post_automatically
    status = POSTING_INCOMPLETE if reason else (POSTING_QUEUED if automatic else POSTING_PENDING)
    posting = Posting(
        firm_id=link.firm_id,
        connection_id=link.connection_id,
        link_id=link.id,
        payment_id=payment.id,
        key=posting_key(payment),
        status=status,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        received_on=firm_date(dbsession, link.firm_id, payment.completed_at or utcnow()),
        allocations=allocations,
        external_ids={},
        reason=reason,
        next_attempt_at=utcnow() if status == POSTING_QUEUED else None,
    )
    dbsession.add(posting)
    dbsession.flush()
    record_attempt(dbsession, posting, "created", reason or _created_message(status))
    if status == POSTING_QUEUED:
        work.enqueue_after_commit(SYNC_JOB, posting.id)
    return posting


def _created_message(status: str) -> str:
    if status == POSTING_QUEUED:
        return "Payment received; queued to be posted automatically."
    return "Payment received; waiting for staff to post it."


def record_attempt(
    dbsession: Session,
    posting: Posting,
    outcome: str,
    message: str,
    external_ids: dict[str, str] | None = None,
    user_id: int | None = None,
) -> None:
    dbsession.add(
        PostingAttempt(
            posting_id=posting.id,
            at=utcnow(),
            outcome=outcome,
            message=message[:2000],
            external_ids=dict(external_ids or {}),
            user_id=user_id,
        )
    )


# Finding postings.


def firm_posting(dbsession: Session, firm_id: int, posting_id: int) -> Posting | None:
    posting = dbsession.get(Posting, posting_id)
    return posting if posting is not None and posting.firm_id == firm_id else None


def lock_firm_posting(dbsession: Session, firm_id: int, posting_id: int) -> Posting | None:
    return dbsession.execute(
        select(Posting)
        .where(Posting.id == posting_id, Posting.firm_id == firm_id)
        .with_for_update()
    ).scalar_one_or_none()


def status_counts(dbsession: Session, firm_id: int) -> dict[str, int]:
    rows = dbsession.execute(
        select(Posting.status, func.count())
        .where(Posting.firm_id == firm_id)
        .group_by(Posting.status)
    ).all()
    counts = dict.fromkeys(POSTING_STATUSES, 0)
    counts.update({status: int(count) for status, count in rows})
    counts["all"] = sum(counts[s] for s in POSTING_STATUSES)
    return counts


# What staff do.


@dataclass
class Batch:
    queued: list[int]
    skipped: list[dict[str, Any]]


def post_postings(work: Work, firm_id: int, ids: Sequence[int], user_id: int | None) -> Batch:
    """Queue the chosen postings for the sync job: pending ones, and failed ones again
    (Retry: a fresh set of attempts). Anything else is skipped with its reason, never
    written twice."""
    batch = Batch([], [])
    now = utcnow()
    for posting_id in dict.fromkeys(ids):
        posting = lock_firm_posting(work.dbsession, firm_id, posting_id)
        if posting is None:
            batch.skipped.append({"id": posting_id, "reason": "not_found"})
            continue
        if posting.status not in (POSTING_PENDING, POSTING_FAILED):
            batch.skipped.append({"id": posting_id, "reason": posting.status})
            continue
        retry = posting.status == POSTING_FAILED
        posting.status = POSTING_QUEUED
        posting.attempt_count = 0
        posting.next_attempt_at = now
        posting.reason = ""
        record_attempt(
            work.dbsession,
            posting,
            "queued",
            "Queued again by staff." if retry else "Queued by staff.",
            user_id=user_id,
        )
        batch.queued.append(posting_id)
        work.enqueue_after_commit(SYNC_JOB, posting_id)
    return batch


def remove_posting(work: Work, posting: Posting, reason: str, user_id: int | None) -> None:
    """Staff will not have it posted (entered by hand elsewhere, or not to be posted)."""
    if posting.status == POSTING_POSTED:
        raise PostingRefused("already_posted", "It is already in the matter system.")
    if posting.status == POSTING_REMOVED:
        raise PostingRefused("already_removed", "It was already removed.")
    if posting.status == POSTING_QUEUED and _leased(posting, utcnow()):
        raise PostingRefused("being_posted", "It is being posted right now; try again shortly.")
    if not reason.strip():
        raise PostingRefused("reason_required", "Say why it is removed.")
    posting.status = POSTING_REMOVED
    posting.removed_reason = reason.strip()[:1000]
    posting.removed_at = utcnow()
    posting.removed_by_user_id = user_id
    posting.next_attempt_at = None
    record_attempt(work.dbsession, posting, "removed", posting.removed_reason, user_id=user_id)


def mark_entered_by_hand(work: Work, posting: Posting, user_id: int | None) -> None:
    """Staff entered a manual posting's slip in the matter system themselves."""
    if posting.status != POSTING_MANUAL:
        raise PostingRefused("not_manual", "Only a posting entered by hand can be marked so.")
    posting.status = POSTING_POSTED
    posting.entered_by_hand = True
    posting.posted_at = utcnow()
    posting.reason = ""
    record_attempt(work.dbsession, posting, "entered_by_hand", "Entered by hand.", user_id=user_id)


def reallocate(
    work: Work, posting: Posting, allocations: list[dict[str, Any]], user_id: int | None
) -> None:
    """New allocations for an incomplete posting (checked by the caller against the matter
    system); it goes back to pending, for staff to post."""
    if posting.status != POSTING_INCOMPLETE:
        raise PostingRefused("not_incomplete", "Only an incomplete posting is re-allocated.")
    if sum(int(a["amount"]) for a in allocations) != posting.amount_minor:
        raise PostingRefused("sum_mismatch", "The allocations must add up to the payment.")
    posting.allocations = [{**a, "external_id": a.get("external_id")} for a in allocations]
    posting.status = POSTING_PENDING
    posting.reason = ""
    posting.attempt_count = 0
    record_attempt(work.dbsession, posting, "reallocated", "Allocated by staff.", user_id=user_id)


def _leased(posting: Posting, now: dt.datetime) -> bool:
    return posting.lease_until is not None and posting.lease_until > now


def resume_connection_postings(work: Work, connection_id: int) -> int:
    """Queue again, now, the postings that waited for ``connection_id`` to be reconnected."""
    now = utcnow()
    waiting = list(
        work.dbsession.execute(
            select(Posting.id).where(
                Posting.connection_id == connection_id,
                Posting.status == POSTING_QUEUED,
                Posting.next_attempt_at.is_(None),
            )
        ).scalars()
    )
    if waiting:
        work.dbsession.execute(
            update(Posting)
            .where(Posting.id.in_(waiting))
            .values(next_attempt_at=now, reason="")
            .execution_options(synchronize_session=False)
        )
        for posting_id in waiting:
            work.enqueue_after_commit(SYNC_JOB, posting_id)
    return len(waiting)
