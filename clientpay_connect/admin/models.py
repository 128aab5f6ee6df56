"""What an admin configures for the firm: settings, notification recipients, merchant accounts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clientpay_connect.accounts.models import Firm, User
from clientpay_connect.db import Base, UTCDateTime, utcnow

KIND_OPERATING = "operating"
KIND_TRUST = "trust"
ACCOUNT_KINDS = (KIND_OPERATING, KIND_TRUST)
METHOD_CARD = "card"
METHOD_ECHECK = "echeck"
NOTIFICATION_EVENTS = (
    "payment_received",
    "payment_failed",
    "email_failed",
    "link_expired",
    "connection_needs_reauthorization",
    "posting_failed",
    "reminder_failed",
    # Not one event but a daily email of the day's payments (clientpay_connect/notifications/).
    "daily_digest",
)

DEFAULT_EMAIL_MESSAGE = (
    "Thank you for your business. Please use the secure link below to make your payment."
)


class FirmSettings(Base):
    __tablename__ = "firm_settings"

    firm_id: Mapped[int] = mapped_column(
        ForeignKey("firms.id", ondelete="CASCADE"), primary_key=True
    )
    default_email_message: Mapped[str] = mapped_column(Text, default=DEFAULT_EMAIL_MESSAGE)
    disclaimer: Mapped[str] = mapped_column(Text, default="")
    recaptcha_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    recaptcha_site_key: Mapped[str] = mapped_column(String(200), default="")
    # Fernet ciphertext (MultiFernet, keys from clientpay.encryption_keys); never plain text.
    recaptcha_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    link_expiry_days: Mapped[int] = mapped_column(Integer, default=30)
    time_zone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    reply_to_email: Mapped[str] = mapped_column(String(254), default="")
    # Smart Reminders: [{"days", "relative_to", "message"}], at most 4; empty is off
    # (clientpay_connect/reminders/schedule.py checks and orders them).
    reminders: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    firm: Mapped[Firm] = relationship()


class NotificationRecipient(Base):
    __tablename__ = "notification_recipients"

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    # The address as chosen; for one of the firm's users it follows the user (see user_id).
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # One of the firm's users: emailed at the user's current address, and only while the user
    # is active. Empty for an address outside the firm's users (rows from before users could
    # be chosen, or a shared mailbox such as accounting@).
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )

    user: Mapped[User | None] = relationship()


class MerchantAccount(Base):
    __tablename__ = "merchant_accounts"
    # What a link's foreign key names (links/models.py): an account of the link's own firm.
    # Its index, beginning with firm_id, also serves the lookups of a firm's accounts.
    __table_args__ = (UniqueConstraint("firm_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default=KIND_OPERATING)
    processor: Mapped[str] = mapped_column(String(32), default="sandbox")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    accepts_card: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_echeck: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The account's own Stripe keys (each account its own Stripe account: operating and trust
    # money never share one). Secrets are Fernet ciphertext, never plain text.
    stripe_secret_key_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    stripe_publishable_key: Mapped[str] = mapped_column(String(255), default="")
    stripe_webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)

    firm: Mapped[Firm] = relationship()

    @property
    def methods(self) -> list[str]:
        methods = []
        if self.accepts_card:
            methods.append(METHOD_CARD)
        if self.accepts_echeck:
            methods.append(METHOD_ECHECK)
        return methods
