"""What happened to a link after it was made, for its page: the emails it sent the client
and how each was delivered, every attempt to pay it and how it ended, and the postings of
its payments to the matter system."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.mail.models import (
    KIND_BANK_VERIFICATION,
    KIND_LINK,
    KIND_RECEIPT,
    KIND_REFUND_NOTICE,
    KIND_REMINDER,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OUTBOX_WITHHELD,
    OutboxMessage,
    is_bounce,
)
from clientpay_connect.pay.models import (
    PAYMENT_FAILED,
    PAYMENT_PROCESSING,
    PAYMENT_SUCCEEDED,
    Payment,
)
from clientpay_connect.postings.models import Posting
from clientpay_connect.postings.present import status_label as posting_status_label

# The emails a client receives about a link (the staff's notices are not the client's).
CLIENT_KINDS = (KIND_LINK, KIND_REMINDER, KIND_RECEIPT, KIND_BANK_VERIFICATION, KIND_REFUND_NOTICE)
KIND_LABELS = {
    KIND_LINK: "Payment link",
    KIND_REMINDER: "Reminder",
    KIND_RECEIPT: "Receipt",
    KIND_BANK_VERIFICATION: "Bank account verification",
    KIND_REFUND_NOTICE: "Refund notice",
}


@dataclass(frozen=True)
class LinkEmail:
    """One email to the client about the link, as its page shows it."""

    kind: str
    reminder: int | None
    recipients: list[str]
    status: str
    attempts: int
    error: str
    created_at: dt.datetime
    sent_at: dt.datetime | None

    @property
    def label(self) -> str:
        base = KIND_LABELS.get(self.kind, self.kind)
        return f"{base} {self.reminder}" if self.reminder else base

    @property
    def delivery_key(self) -> str:
        """sent, bounced, failed, withheld, retrying or waiting (the badge's colour)."""
        if self.status == OUTBOX_SENT:
            return "sent"
        if is_bounce(self.status, self.error):
            return "bounced"
        if self.status == OUTBOX_FAILED:
            return "failed"
        if self.status == OUTBOX_WITHHELD:
            return "withheld"
        if self.status in (OUTBOX_PENDING, OUTBOX_SENDING) and self.attempts:
            return "retrying"
        return "waiting"

    @property
    def badge(self) -> str:
        return DELIVERY_BADGES[self.delivery_key]

    @property
    def delivery(self) -> str:
        if self.delivery_key == "retrying":
            return f"Retrying ({self.attempts} attempt{'s' if self.attempts != 1 else ''} failed)"
        return DELIVERY_LABELS[self.delivery_key]


# The app's existing badge colours (app.css) for each state of delivery.
DELIVERY_BADGES = {
    "sent": "paid",
    "bounced": "failed",
    "failed": "failed",
    "withheld": "withheld",
    "retrying": "processing",
    "waiting": "queued",
}
DELIVERY_LABELS = {
    "sent": "Sent",
    "bounced": "Bounced",
    "failed": "Failed",
    "withheld": "Not sent",
    "waiting": "Waiting to send",
}


def link_emails(dbsession: Session, firm_id: int, link_id: int) -> list[LinkEmail]:
    """The client's emails about the link, in the order they were written."""
    rows = dbsession.execute(
        select(OutboxMessage)
        .where(
            OutboxMessage.firm_id == firm_id,
            OutboxMessage.link_id == link_id,
            OutboxMessage.kind.in_(CLIENT_KINDS),
        )
        .order_by(OutboxMessage.id)
    ).scalars()
    return [
        LinkEmail(
            kind=row.kind,
            reminder=_reminder_position(row),
            recipients=list(row.recipients or []),
            status=row.status,
            attempts=row.attempts,
            error=row.last_error or "",
            created_at=row.created_at,
            sent_at=row.sent_at,
        )
        for row in rows
    ]


def _reminder_position(row: OutboxMessage) -> int | None:
    if row.kind != KIND_REMINDER:
        return None
    position = (row.params or {}).get("reminder")
    return position if isinstance(position, int) else None


@dataclass(frozen=True)
class LinkPosting:
    """A payment's posting to the matter system, as the link's page shows it."""

    id: int
    status: str
    status_label: str
    amount_minor: int
    received_on: dt.date
    posted_at: dt.datetime | None
    reason: str


def link_postings(dbsession: Session, firm_id: int, link_id: int) -> list[LinkPosting]:
    rows = dbsession.execute(
        select(Posting)
        .where(Posting.firm_id == firm_id, Posting.link_id == link_id)
        .order_by(Posting.created_at, Posting.id)
    ).scalars()
    return [
        LinkPosting(
            id=p.id,
            status=p.status,
            status_label=posting_status_label(p.status),
            amount_minor=p.amount_minor,
            received_on=p.received_on,
            posted_at=p.posted_at,
            reason=p.reason or "",
        )
        for p in rows
    ]


# Why an attempt was not paid, in staff's words (the payer was told in theirs).
REFUSAL_LABELS = {
    "card_declined": "card declined",
    "insufficient_funds": "insufficient funds",
    "expired_card": "card expired",
    "incorrect_cvc": "wrong security code",
    "processing_error": "processing error",
    "authentication_failed": "the card's bank check (3-D Secure) failed or was not finished",
    "account_closed": "bank account closed",
    "no_account": "no such bank account",
    "debit_not_authorized": "debit not authorized by the account holder",
    "invalid_currency": "the bank account cannot take this currency",
    "bank_account_unverified": "bank account not verified",
    "method_not_accepted": "payment method not accepted",
    "invalid_payment_token": "payment details expired",
    "not_charged": "never reached the processor",
}


def link_payments(dbsession: Session, firm_id: int, link_id: int) -> list[Payment]:
    """Every attempt to pay the link, first first: a payer who says their card did not
    work is answered by the attempts that failed, and why."""
    return list(
        dbsession.execute(
            select(Payment)
            .where(Payment.link_id == link_id, Payment.firm_id == firm_id)
            .order_by(Payment.id)
        ).scalars()
    )


def payment_state(payment: Payment) -> str:
    """How an attempt to pay stands, for staff."""
    if payment.status == PAYMENT_SUCCEEDED:
        return "Paid"
    if payment.status == PAYMENT_FAILED:
        reason = REFUSAL_LABELS.get(payment.failure_code) or payment.failure_message
        return f"Not paid: {reason}" if reason else "Not paid"
    if payment.status == PAYMENT_PROCESSING and payment.awaiting_authentication:
        return "Waiting for the payer's bank check (3-D Secure)"
    if payment.status == PAYMENT_PROCESSING and payment.verification_url:
        return "Waiting for the payer to verify the bank account"
    if payment.status == PAYMENT_PROCESSING:
        return "Bank debit clearing"
    return "Being charged"
