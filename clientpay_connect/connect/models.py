"""Connections to a firm's matter system, and the invoices a Connect link asks payment for."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clientpay_connect.db import Base, UTCDateTime, utcnow

# pending: an OAuth connection waiting for the admin to come back from the provider.
CONNECTION_PENDING = "pending"
CONNECTION_CONNECTED = "connected"
# The provider refused our grant (invalid_grant): an admin must connect again.
CONNECTION_NEEDS_REAUTHORIZATION = "needs_reauthorization"
CONNECTION_DISCONNECTED = "disconnected"
CONNECTION_STATUSES = (
    CONNECTION_PENDING,
    CONNECTION_CONNECTED,
    CONNECTION_NEEDS_REAUTHORIZATION,
    CONNECTION_DISCONNECTED,
)


class Connection(Base):
    """One firm's link to one matter system (an adapter plus its settings and grant).

    Secrets never sit in clear: the OAuth tokens, the PKCE verifier and any secret setting
    (a database URL with a password) are encrypted with the app's Fernet keys.
    """

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    adapter: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32), default=CONNECTION_PENDING)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    tokens_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bumped at every token change: how a waiting refresher sees that another one was done.
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    oauth_state_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    oauth_verifier_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    default_merchant_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchant_accounts.id", ondelete="SET NULL"), nullable=True
    )
    post_automatically: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    connected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LinkInvoice(Base):
    """One invoice of a Connect link and the amount asked for it, as the matter system showed
    it when the link was made (the posting re-reads the invoice before writing)."""

    __tablename__ = "link_invoices"
    __table_args__ = (Index("ix_link_invoices_link_id", "link_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("payment_links.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    invoice_id: Mapped[str] = mapped_column(String(128))
    invoice_number: Mapped[str] = mapped_column(String(100), default="")
    client_id: Mapped[str] = mapped_column(String(128), default="")
    client_name: Mapped[str] = mapped_column(String(200), default="")
    matter_id: Mapped[str] = mapped_column(String(128), default="")
    matter_name: Mapped[str] = mapped_column(String(300), default="")
    issued_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    due_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    account: Mapped[str] = mapped_column(String(16), default="operating")
    balance_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    link = relationship("PaymentLink")
