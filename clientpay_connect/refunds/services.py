"""Refunding a link's payment, whole or part, never more than was paid.

The payment's own discipline (DESIGN.md, "paid at most once"): a refund first claims its
amount on the link with a conditional update that never lets what is claimed pass what was
paid (``refunds_claimed_minor``), and is recorded, pending, in that same transaction, which
is committed; the processor is asked outside any transaction of ours, with the refund's own
idempotency key; its answer is then settled, conditionally on the refund still pending, so
that whoever settles it second (the request, Stripe's webhook) writes nothing.

Money paid into a trust account is never refunded from it: the firm pays such a refund from
its operating account, outside this application.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import ROLE_ADMIN, User
from clientpay_connect.accounts.services import record
from clientpay_connect.admin.models import KIND_TRUST
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import STATUS_PROCESSING, USED_UP, PaymentLink
from clientpay_connect.links.services import timestamp_json
from clientpay_connect.mail.models import KIND_REFUND_NOTICE
from clientpay_connect.mail.outbox import KIND_FIRM_NOTICE, queue_email
from clientpay_connect.money import AmountError, display_amount, format_amount, parse_amount
from clientpay_connect.pay.interfaces import IPaymentProcessor
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from clientpay_connect.pay.processor import (
    REFUND_KEY_METADATA,
    Processor,
    ProcessorAccount,
    ProcessorUnavailable,
    RefundRefused,
    RefundResult,
)
from clientpay_connect.pay.services import processor_account
from clientpay_connect.refunds.models import (
    ORIGIN_PROCESSOR,
    REFUND_FAILED,
    REFUND_PENDING,
    REFUND_SUCCEEDED,
    Dispute,
    Refund,
)
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

Row = TypeVar("Row", Refund, Dispute)

# The metadata name under which Stripe keeps our refund's key: how its webhook tells a
# refund we made from one made in its dashboard, even before we heard Stripe's answer.
METADATA_KEY = REFUND_KEY_METADATA

NOT_PAID = "not_paid"
TRUST_ACCOUNT = "trust_account"
PAYMENT_IN_PROGRESS = "payment_in_progress"
NOTHING_LEFT = "fully_refunded"
PROCESSOR_REFUSED = "refund_refused"

TRUST_MESSAGE = (
    "This payment was paid into a trust account, and no refund is ever taken from a trust "
    "account. Pay the refund from the firm's operating account instead (outside ClientPay "
    "Connect), and record it there and in your matter system."
)


class CannotRefund(Exception):
    """Nothing was refunded: ``code`` says why (a 409 to the API), ``message`` is for staff."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidRefund(Exception):
    """The amount (or reason) asked for is wrong; ``errors`` name the fields (a 422)."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("invalid refund")
        self.errors = errors


class RefundOutcomeUnknown(Exception):
    """The processor did not answer: refund ``refund_id`` stays pending (its amount held)
    until the processor tells (Stripe's webhook) or is asked again (the resolver job)."""

    message = (
        "The payment processor did not answer. The refund is pending: do not refund again "
        "elsewhere; the link shows it once the processor confirms it."
    )

    def __init__(self, refund_id: int):
        super().__init__(self.message)
        self.refund_id = refund_id


def refundable_minor(link: PaymentLink) -> int:
    """What is left to refund: paid, less what was refunded or is being refunded."""
    return max(link.amount_paid_minor - link.refunds_claimed_minor, 0)


def refusal(link: PaymentLink) -> CannotRefund | None:
    """Why this link's payment cannot be refunded at all, or None."""
    if link.merchant_account.kind == KIND_TRUST:
        return CannotRefund(TRUST_ACCOUNT, TRUST_MESSAGE)
    if link.status == STATUS_PROCESSING:
        return CannotRefund(
            PAYMENT_IN_PROGRESS, "A payment of this link is being made; refund it once it is."
        )
    if link.status not in USED_UP or link.amount_paid_minor <= 0:
        return CannotRefund(
            NOT_PAID, "Nothing was paid with this link, so nothing can be refunded."
        )
    if refundable_minor(link) <= 0:
        return CannotRefund(NOTHING_LEFT, "Everything paid with this link was already refunded.")
    return None


def read_amount(value: Any, link: PaymentLink) -> int:
    """The amount asked for, in minor units; InvalidRefund when it is not one, or more than
    is left to refund."""
    try:
        amount_minor = parse_amount(str(value if value is not None else ""), link.currency)
    except AmountError as exc:
        raise InvalidRefund([{"field": "amount", "message": str(exc)}]) from None
    left = refundable_minor(link)
    if amount_minor > left:
        most = display_amount(left, link.currency)
        message = f"At most {most} can be refunded (what was paid and not yet refunded)."
        raise InvalidRefund([{"field": "amount", "message": message}])
    return amount_minor


MAX_REASON = 500


def read_reason(value: Any) -> str:
    reason = str(value or "").strip()
    if len(reason) > MAX_REASON:
        message = f"The reason is at most {MAX_REASON} characters."
        raise InvalidRefund([{"field": "reason", "message": message}])
    return reason


def succeeded_payment(dbsession: Session, link: PaymentLink) -> Payment | None:
    """The link's payment (a link is paid at most once)."""
    return dbsession.execute(
        select(Payment).where(
            Payment.link_id == link.id,
            Payment.firm_id == link.firm_id,
            Payment.status == PAYMENT_SUCCEEDED,
        )
    ).scalar_one_or_none()


def claim_refund(dbsession: Session, link: PaymentLink, amount_minor: int) -> bool:
    """Hold ``amount_minor`` of the link's payment for a refund; False if that would take
    the refunds past what was paid (someone else's refund got there first). One statement,
    so that two refunds at once never both read the same room and both take it."""
    claimed = dbsession.execute(
        update(PaymentLink)
        .where(
            PaymentLink.id == link.id,
            PaymentLink.firm_id == link.firm_id,
            PaymentLink.status.in_(USED_UP),
            PaymentLink.refunds_claimed_minor + amount_minor <= PaymentLink.amount_paid_minor,
        )
        .values(refunds_claimed_minor=PaymentLink.refunds_claimed_minor + amount_minor)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RefundRequest:
    """What staff asked for: the link (already found in their firm), how much, and why; who
    asked, and from where (for the audit trail)."""

    link: PaymentLink
    amount: Any
    reason: Any
    actor: User | None
    ip_address: str = ""


def start_refund(work: Work, asked: RefundRequest) -> tuple[Refund, Payment]:
    """Check the request, claim its amount and record the refund, pending (not committed)."""
    link = asked.link
    refused = refusal(link)
    if refused is not None:
        raise refused
    amount_minor = read_amount(asked.amount, link)
    reason = read_reason(asked.reason)
    payment = succeeded_payment(work.dbsession, link)
    if payment is None:
        raise CannotRefund(NOT_PAID, "Nothing was paid with this link, so nothing can be refunded.")
    if not claim_refund(work.dbsession, link, amount_minor):
        _lost_the_claim(work.dbsession, link)
    refund = Refund(
        firm_id=link.firm_id,
        payment_id=payment.id,
        link_id=link.id,
        amount_minor=amount_minor,
        currency=link.currency,
        status=REFUND_PENDING,
        reason=reason,
        idempotency_key="rf_" + secrets.token_hex(24),
        created_by_user_id=asked.actor.id if asked.actor is not None else None,
        created_at=utcnow(),
    )
    work.dbsession.add(refund)
    work.dbsession.flush()
    # Committed with the refund's intent: whoever asked is on record even if the processor
    # never answers.
    record(
        work.dbsession,
        link.firm_id,
        "link.refund_requested",
        actor=asked.actor,
        target=link,
        details={"refund_id": refund.id, "amount": format_amount(amount_minor, link.currency)},
        ip_address=asked.ip_address,
    )
    return refund, payment


def _lost_the_claim(dbsession: Session, link: PaymentLink) -> None:
    """Another refund took the room this one read: say what is left now."""
    dbsession.refresh(link)
    refused = refusal(link)
    if refused is not None:
        raise refused
    most = display_amount(refundable_minor(link), link.currency)
    raise InvalidRefund([{"field": "amount", "message": f"At most {most} can be refunded now."}])


def refund_link(work: Work, asked: RefundRequest) -> Refund:
    """Refund part or all of the link's payment; the refund as settled.

    Commits twice: the claimed amount and the pending refund (so that a crash or a lost
    answer leaves it held, never refunded twice), then the processor's answer, asked between
    the two outside any transaction. Raises CannotRefund, InvalidRefund or
    RefundOutcomeUnknown; a refusal by the processor is committed (failed, its amount given
    back) before CannotRefund is raised.
    """
    refund, payment = start_refund(work, asked)
    # Read before the commit below: these rows are detached once their transaction ends.
    call = refund_call(work, refund, payment, asked.link)
    work.checkpoint()
    return make_refund(work, call)


@dataclass(frozen=True)
class RefundCall:
    """What the processor is asked for one refund (the same each time it is asked)."""

    refund_id: int
    charge_reference: str
    amount_minor: int
    currency: str
    idempotency_key: str
    account: ProcessorAccount
    metadata: dict[str, str]
    # The processor that took the payment: only it can give the money back.
    processor: str


def refund_call(work: Work, refund: Refund, payment: Payment, link: PaymentLink) -> RefundCall:
    return RefundCall(
        refund_id=refund.id,
        charge_reference=payment.processor_ref,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        idempotency_key=refund.idempotency_key,
        account=processor_account(work, link.merchant_account),
        # Payments from before processors were recorded: their account's processor.
        processor=payment.processor or link.merchant_account.processor,
        metadata={
            "firm": str(link.firm_id),
            "link": str(link.id),
            "payment": str(payment.id),
            "refund": str(refund.id),
        },
    )


def make_refund(work: Work, call: RefundCall) -> Refund:
    """Ask the processor for the refund (outside any transaction of ours), and settle it by
    its answer; raises CannotRefund (committed, failed) or RefundOutcomeUnknown."""
    processor: Processor = work.find_service(IPaymentProcessor, name=call.processor)
    try:
        result = processor.refund(
            call.charge_reference,
            call.amount_minor,
            call.currency,
            call.idempotency_key,
            account=call.account,
            metadata=call.metadata,
        )
    except RefundRefused as refused:
        fail_refund(work.dbsession, call.refund_id, refused.message)
        work.checkpoint()
        raise CannotRefund(PROCESSOR_REFUSED, refused.message) from None
    except ProcessorUnavailable:
        log.warning("refund %s: the processor did not answer; it stays pending", call.refund_id)
        raise RefundOutcomeUnknown(call.refund_id) from None
    return complete_refund(work, call.refund_id, result)


def pending_refunds(dbsession: Session, created_before: dt.datetime) -> list[int]:
    """Refunds still pending that were asked for before ``created_before`` (their request
    has long given up waiting), oldest first."""
    return list(
        dbsession.execute(
            select(Refund.id)
            .where(Refund.status == REFUND_PENDING, Refund.created_at < created_before)
            .order_by(Refund.id)
        ).scalars()
    )


def call_for(work: Work, refund_id: int) -> RefundCall | None:
    """The call that made pending refund ``refund_id`` (None once it is settled)."""
    refund = work.dbsession.get(Refund, refund_id)
    if refund is None or refund.status != REFUND_PENDING:
        return None
    payment = work.dbsession.get(Payment, refund.payment_id)
    link = work.dbsession.get(PaymentLink, refund.link_id)
    if payment is None or link is None:
        return None
    return refund_call(work, refund, payment, link)


def complete_refund(work: Work, refund_id: int, result: RefundResult) -> Refund:
    """Record the processor's refund: the refund succeeds, the link counts it, and the payer
    is told (after commit, through the outbox). Writes once however often it is called."""
    dbsession = work.dbsession
    won = dbsession.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == REFUND_PENDING)
        .values(status=REFUND_SUCCEEDED, processor_ref=result.reference, completed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    refund = _reload(dbsession, refund_id)
    if won.rowcount == 1:  # type: ignore[attr-defined]
        _count_refunded(dbsession, refund.link_id, refund.amount_minor, also_claim=False)
        _queue_refund_notice(work, refund)
    return refund


def fail_refund(dbsession: Session, refund_id: int, message: str) -> Refund:
    """Record the processor's refusal: the refund fails and its amount can be refunded again."""
    won = dbsession.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status == REFUND_PENDING)
        .values(status=REFUND_FAILED, failure_message=message, completed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    refund = _reload(dbsession, refund_id)
    if won.rowcount == 1:  # type: ignore[attr-defined]
        dbsession.execute(
            update(PaymentLink)
            .where(PaymentLink.id == refund.link_id)
            .values(refunds_claimed_minor=PaymentLink.refunds_claimed_minor - refund.amount_minor)
            .execution_options(synchronize_session=False)
        )
    return refund


def _count_refunded(dbsession: Session, link_id: int, amount_minor: int, also_claim: bool) -> None:
    values: dict[str, Any] = {
        "amount_refunded_minor": PaymentLink.amount_refunded_minor + amount_minor
    }
    if also_claim:
        # Made elsewhere (Stripe's dashboard): it was never claimed here, yet it is gone.
        values["refunds_claimed_minor"] = PaymentLink.refunds_claimed_minor + amount_minor
    dbsession.execute(
        update(PaymentLink)
        .where(PaymentLink.id == link_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _reload(dbsession: Session, refund_id: int) -> Refund:
    return dbsession.execute(
        select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
    ).scalar_one()


def _queue_refund_notice(work: Work, refund: Refund) -> None:
    payment = work.dbsession.get(Payment, refund.payment_id)
    if payment is None or not payment.payer_email:
        return
    queue_email(
        work,
        firm_id=refund.firm_id,
        kind=KIND_REFUND_NOTICE,
        recipients=[payment.payer_email],
        link_id=refund.link_id,
        payment_id=refund.payment_id,
        params={"refund_id": refund.id},
    )


def link_refunds(dbsession: Session, link: PaymentLink) -> list[Refund]:
    return _of_link(dbsession, Refund, link)


def link_disputes(dbsession: Session, link: PaymentLink) -> list[Dispute]:
    return _of_link(dbsession, Dispute, link)


def _of_link(dbsession: Session, model: type[Row], link: PaymentLink) -> list[Row]:
    """The link's rows of ``model``, oldest first (in its own firm only)."""
    query = select(model).where(model.link_id == link.id, model.firm_id == link.firm_id)
    return list(dbsession.execute(query.order_by(model.id)).scalars())


def refund_lists(dbsession: Session, link: PaymentLink) -> dict[str, Any]:
    """The link object's ``refunds`` and ``disputes`` (GET /links/{id})."""
    return {
        "refunds": [refund_json(r) for r in link_refunds(dbsession, link)],
        "disputes": [dispute_json(d) for d in link_disputes(dbsession, link)],
    }


def refund_json(refund: Refund) -> dict[str, Any]:
    """The API's refund object."""
    return {
        "id": refund.id,
        "link_id": refund.link_id,
        "payment_id": refund.payment_id,
        "amount": format_amount(refund.amount_minor, refund.currency),
        "currency": refund.currency,
        "status": refund.status,
        "origin": refund.origin,
        "reason": refund.reason,
        "failure_message": refund.failure_message,
        "processor_ref": refund.processor_ref,
        "created_at": _timestamp(refund.created_at),
        "completed_at": _timestamp(refund.completed_at),
    }


def dispute_json(dispute: Dispute) -> dict[str, Any]:
    return {
        "id": dispute.id,
        "payment_id": dispute.payment_id,
        "amount": format_amount(dispute.amount_minor, dispute.currency),
        "currency": dispute.currency,
        "reason": dispute.reason,
        "status": dispute.status,
        "processor_ref": dispute.processor_ref,
        "created_at": _timestamp(dispute.created_at),
    }


def _timestamp(value: dt.datetime | None) -> str | None:
    return timestamp_json(value)


# --- What the processor tells us (Stripe's webhooks) ---------------------------------------


@dataclass(frozen=True)
class ProcessorRefund:
    """A refund as the processor lists it: its id, amount, and our key if we made it."""

    reference: str
    amount_minor: int
    our_key: str


def record_processor_refunds(
    work: Work, payment: Payment, refunds: list[ProcessorRefund]
) -> list[Refund]:
    """Make our record match the refunds the processor made of ``payment``: one we made and
    had not heard back about is settled; one made in the processor's dashboard is added (the
    money is gone, whatever we claimed); one we know of already changes nothing. The refunds
    this recorded or settled."""
    dbsession = work.dbsession
    changed = []
    for made in refunds:
        known = dbsession.execute(
            select(Refund.id).where(Refund.processor_ref == made.reference)
        ).first()
        if known is not None:
            continue
        ours = _pending_with_key(dbsession, payment, made.our_key) if made.our_key else None
        if ours is not None:
            changed.append(
                complete_refund(work, ours, RefundResult(made.reference, made.amount_minor))
            )
            continue
        if made.our_key and _has_key(dbsession, made.our_key):
            # Ours, settled meanwhile by the request that made it.
            continue
        changed.append(_record_made_elsewhere(work, payment, made))
    return changed


def _pending_with_key(dbsession: Session, payment: Payment, key: str) -> int | None:
    return dbsession.execute(
        select(Refund.id).where(
            Refund.idempotency_key == key,
            Refund.payment_id == payment.id,
            Refund.status == REFUND_PENDING,
        )
    ).scalar_one_or_none()


def _has_key(dbsession: Session, key: str) -> bool:
    found = dbsession.execute(select(Refund.id).where(Refund.idempotency_key == key)).first()
    return found is not None


def _record_made_elsewhere(work: Work, payment: Payment, made: ProcessorRefund) -> Refund:
    refund = Refund(
        firm_id=payment.firm_id,
        payment_id=payment.id,
        link_id=payment.link_id,
        amount_minor=made.amount_minor,
        currency=payment.currency,
        status=REFUND_SUCCEEDED,
        origin=ORIGIN_PROCESSOR,
        processor_ref=made.reference,
        reason="Refunded in the processor's dashboard",
        idempotency_key="rf_" + secrets.token_hex(24),
        created_at=utcnow(),
        completed_at=utcnow(),
    )
    work.dbsession.add(refund)
    work.dbsession.flush()
    _count_refunded(work.dbsession, payment.link_id, made.amount_minor, also_claim=True)
    link = work.dbsession.get(PaymentLink, payment.link_id, populate_existing=True)
    if link is not None and link.refunds_claimed_minor > link.amount_paid_minor:
        # Refunded there while one of ours was pending here: ours will be refused by the
        # processor (nothing left), and give its claim back then.
        log.warning("link %s: refunds claimed pass what was paid", link.id)
    _queue_refund_notice(work, refund)
    _queue_outside_refund_notice(work, payment, refund)
    return refund


@dataclass(frozen=True)
class ProcessorDispute:
    reference: str
    amount_minor: int
    currency: str
    reason: str
    status: str


def record_dispute(work: Work, payment: Payment, made: ProcessorDispute) -> Dispute | None:
    """Record a dispute of ``payment`` (once) and email the firm's active admins; None if it
    was recorded already."""
    dbsession = work.dbsession
    known = dbsession.execute(
        select(Dispute.id).where(Dispute.processor_ref == made.reference)
    ).first()
    if known is not None:
        return None
    dispute = Dispute(
        firm_id=payment.firm_id,
        payment_id=payment.id,
        link_id=payment.link_id,
        processor_ref=made.reference,
        amount_minor=made.amount_minor,
        currency=made.currency.upper(),
        reason=made.reason[:100],
        status=made.status[:64],
        created_at=utcnow(),
    )
    dbsession.add(dispute)
    dbsession.flush()
    _queue_dispute_notice(work, payment, dispute)
    return dispute


def active_admin_emails(dbsession: Session, firm_id: int) -> list[str]:
    rows = dbsession.execute(
        select(User.email)
        .where(User.firm_id == firm_id, User.role == ROLE_ADMIN, User.active.is_(True))
        .order_by(User.id)
    ).scalars()
    return list(dict.fromkeys(rows))


def _queue_dispute_notice(work: Work, payment: Payment, dispute: Dispute) -> None:
    amount = display_amount(dispute.amount_minor, dispute.currency)
    lines = [
        f"{payment.payer_name or 'A payer'} disputed a payment of {amount}"
        f"{_invoice(payment.link)} with their bank.",
        f"Reason given: {dispute.reason.replace('_', ' ') or 'none'}.",
        "Respond in your Stripe dashboard before its deadline, or the payment is returned.",
    ]
    subject = f"A payment of {amount} was disputed"
    _email_admins(work, payment, subject, lines, {"dispute_id": dispute.id})


def _queue_outside_refund_notice(work: Work, payment: Payment, refund: Refund) -> None:
    amount = display_amount(refund.amount_minor, refund.currency)
    lines = [
        f"{amount} of {payment.payer_name or 'a payer'}'s payment"
        f"{_invoice(payment.link)} was refunded in the Stripe dashboard, not in ClientPay "
        "Connect. The link now shows it, and the payer was emailed a notice.",
    ]
    subject = f"A refund of {amount} was made in Stripe"
    _email_admins(work, payment, subject, lines, {"refund_id": refund.id})


def _invoice(link: PaymentLink) -> str:
    return f" (invoice {link.invoice_number})" if link.invoice_number else ""


def _email_admins(
    work: Work, payment: Payment, subject: str, lines: list[str], about: dict[str, int]
) -> None:
    """A notice to the firm's active admins (what the processor told us that staff did not
    do themselves), through the outbox, with a link to the link's page."""
    admins = active_admin_emails(work.dbsession, payment.firm_id)
    if not admins:
        log.warning("payment %s: the firm has no active admin to tell of %s", payment.id, about)
        return
    queue_email(
        work,
        firm_id=payment.firm_id,
        kind=KIND_FIRM_NOTICE,
        recipients=admins,
        link_id=payment.link_id,
        payment_id=payment.id,
        params={
            "subject": subject,
            "lines": lines,
            "path": f"/links/{payment.link_id}",
            **about,
        },
    )


def metadata_key(metadata: Mapping[str, Any] | None) -> str:
    return str((metadata or {}).get(METADATA_KEY) or "")
