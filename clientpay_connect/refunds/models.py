"""Refunds of a link's payment, and the disputes (chargebacks) a payer opened against one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clientpay_connect.accounts.models import User
from clientpay_connect.db import Base, UTCDateTime, utcnow

# Claimed (its amount held against the link) and sent, or about to be sent, to the processor;
# a refund whose answer was lost stays here until the processor is asked again.
REFUND_PENDING = "pending"
REFUND_SUCCEEDED = "succeeded"
# The processor refused it; its amount was given back to what can be refunded.
REFUND_FAILED = "failed"

# Who started it: staff through our API or page, or someone in the processor's dashboard.
ORIGIN_STAFF = "staff"
ORIGIN_PROCESSOR = "processor"


class Refund(Base):
    """Money given back from a link's payment, all or part of it."""

    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_firm_link", "firm_id", "link_id"),
        # The resolver's question: which refunds are still pending, oldest first.
        Index("ix_refunds_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    link_id: Mapped[int] = mapped_column(ForeignKey("payment_links.id", ondelete="CASCADE"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default=REFUND_PENDING)
    origin: Mapped[str] = mapped_column(String(16), default=ORIGIN_STAFF)
    # The processor's id of the refund (Stripe's re_…): how its webhook finds ours. Unique:
    # a refund Stripe tells us of twice is recorded once.
    processor_ref: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    failure_message: Mapped[str] = mapped_column(Text, default="")
    # Sent to the processor as its idempotency key: a refund asked again is not made twice.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    created_by: Mapped[User | None] = relationship()


class Dispute(Base):
    """A payer's bank disputed a payment (a chargeback); recorded from Stripe's webhook."""

    __tablename__ = "disputes"
    __table_args__ = (Index("ix_disputes_firm_link", "firm_id", "link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(ForeignKey("payment_links.id", ondelete="CASCADE"))
    # Stripe's dp_…: the same dispute told twice is recorded once.
    processor_ref: Mapped[str] = mapped_column(String(255), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
