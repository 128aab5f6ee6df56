"""Payments, the sandbox processor's own ledger, and the PaymentIntent of each Stripe attempt."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clientpay_connect.db import Base, UTCDateTime, utcnow
from clientpay_connect.links.models import PaymentLink

PAYMENT_PENDING = "pending"
# Accepted by the processor, the money still on its way (a bank debit clears in days).
PAYMENT_PROCESSING = "processing"
PAYMENT_SUCCEEDED = "succeeded"
PAYMENT_FAILED = "failed"


class Payment(Base):
    """One attempt to pay a link; at most one per link succeeds."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("link_id", "idempotency_key"),
        # The backstop behind the conditional claim: never two successful payments per link.
        Index(
            "uq_payments_one_success_per_link",
            "link_id",
            unique=True,
            sqlite_where=text("status = 'succeeded'"),
            postgresql_where=text("status = 'succeeded'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("payment_links.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=PAYMENT_PENDING)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16), default="")
    brand: Mapped[str] = mapped_column(String(32), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    payer_name: Mapped[str] = mapped_column(String(200), default="")
    payer_email: Mapped[str] = mapped_column(String(254), default="")
    # The payer's Idempotency-Key header: a replay returns this attempt's answer.
    idempotency_key: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the submission the key came with: the key replays that submission only.
    # None on payments recorded before it was kept (their replays are not compared).
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What we send the processor as its idempotency key: one per attempt, never reused.
    processor_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The processor that charged it (a merchant account's may change since): the one asked
    # to settle it. Empty on payments made before it was kept: their account's processor.
    processor: Mapped[str] = mapped_column(String(32), default="", server_default="")
    processor_ref: Mapped[str] = mapped_column(String(100), default="")
    failure_code: Mapped[str] = mapped_column(String(64), default="")
    failure_message: Mapped[str] = mapped_column(Text, default="")
    receipt_number: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A bank debit the processor holds until the payer verifies the account (Stripe's
    # micro-deposits): the page where they do, and when the deposits should arrive.
    verification_url: Mapped[str] = mapped_column(Text, default="", server_default="")
    verification_arrives_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A card payment the card's bank wants the payer to confirm first (3-D Secure), on our
    # page through Stripe.js, before anything is charged. The payer's page sends the same
    # submission again once they have: it is then settled by what Stripe says.
    awaiting_authentication: Mapped[bool] = mapped_column(Boolean, default=False)

    link: Mapped[PaymentLink] = relationship()


class SandboxToken(Base):
    """What the sandbox's tokenization returned: the outcome to simulate, never the number."""

    __tablename__ = "sandbox_tokens"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(16))
    brand: Mapped[str] = mapped_column(String(32), default="")
    last4: Mapped[str] = mapped_column(String(4))
    outcome: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SandboxCharge(Base):
    """The sandbox processor's record of each charge, one per idempotency key."""

    __tablename__ = "sandbox_charges"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    token: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StripeIntent(Base):
    """The PaymentIntent the Stripe processor created for an attempt (by our attempt key).

    Stripe cannot be asked "what became of the charge with this idempotency key"; this row,
    committed before the PaymentIntent is confirmed, is how the resolver finds it.
    """

    __tablename__ = "stripe_intents"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_key: Mapped[str] = mapped_column(String(64), unique=True)
    payment_intent_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StripeEvent(Base):
    """A Stripe webhook event already handled: the same event again has no second effect."""

    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    merchant_account_id: Mapped[int] = mapped_column(
        ForeignKey("merchant_accounts.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SandboxRefund(Base):
    """The sandbox processor's record of each refund, one per idempotency key (its ledger, like
    SandboxCharge's: written in its own committed transactions)."""

    __tablename__ = "sandbox_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    charge_reference: Mapped[str] = mapped_column(String(64), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
