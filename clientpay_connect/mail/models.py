"""The email outbox: a row per message, written in the same transaction as its cause."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clientpay_connect.db import Base, UTCDateTime, utcnow

OUTBOX_PENDING = "pending"
OUTBOX_SENDING = "sending"
OUTBOX_SENT = "sent"
OUTBOX_FAILED = "failed"
# Not sent on purpose: what it announced no longer holds (see mail/tasks.py).
OUTBOX_WITHHELD = "withheld"

KIND_LINK = "payment_link"
KIND_RECEIPT = "receipt"
KIND_PAYMENT_NOTICE = "payment_notice"
KIND_PASSWORD_RESET = "password_reset"  # noqa: S105 (a kind of message)
# A Smart Reminder: the payment-link email again, with the reminder's own message. A kind of
# its own, so that sending it leaves the link's first email (its status and sent time) alone.
KIND_REMINDER = "payment_reminder"
# How the error of a message the receiving server refused begins (mail/tasks.error_text).
_REFUSED = "SMTPRecipientsRefused"


def is_bounce(status: str, error: str) -> bool:
    """Failed because the receiving server refused the addresses (what staff call a bounce),
    rather than because the server could not be reached or the message could not be made."""
    return status == OUTBOX_FAILED and error.startswith(_REFUSED)


# The payer's notice that some or all of a payment was refunded (params: refund_id).
KIND_REFUND_NOTICE = "refund_notice"
# The payer's link to Stripe's page where they verify their bank account (micro-deposits)
# before a bank debit is made.
KIND_BANK_VERIFICATION = "bank_verification"


class OutboxMessage(Base):
    """An email to send. Only references and safe parameters are kept here: the message is
    rendered when it is sent, so the link's secret never sits in the outbox or the queue."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_links.id", ondelete="CASCADE"), nullable=True, index=True
    )
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), nullable=True
    )
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=OUTBOX_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # While sending, a worker holds the row until this time; a crash lets it expire.
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    message_id: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
