"""Postings: a received Connect payment, written back to the matter system exactly once."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clientpay_connect.db import Base, UTCDateTime, utcnow

# Waiting for staff to post it (the connection does not post automatically).
POSTING_PENDING = "pending"
# Waiting for the sync job (or being written by it, while a worker holds its lease).
POSTING_QUEUED = "queued"
POSTING_POSTED = "posted"
# A data conflict staff must resolve: the invoice is closed, voided, unknown, or owes less.
POSTING_INCOMPLETE = "incomplete"
# Retries used up, or the matter system refused it outright.
POSTING_FAILED = "failed"
# The matter system cannot take it through its API (Clio): staff enter it by hand.
POSTING_MANUAL = "manual_required"
POSTING_REMOVED = "removed"
POSTING_STATUSES = (
    POSTING_PENDING,
    POSTING_QUEUED,
    POSTING_POSTED,
    POSTING_INCOMPLETE,
    POSTING_FAILED,
    POSTING_MANUAL,
    POSTING_REMOVED,
)


class Posting(Base):
    """One payment's write-back. ``allocations`` is a list of
    ``{"invoice_id", "invoice_number", "amount", "external_id"}``; an allocation with an
    ``external_id`` is written, so a retry writes only the rest."""

    __tablename__ = "postings"
    __table_args__ = (
        Index("ix_postings_firm_status", "firm_id", "status", "id"),
        Index("ix_postings_status_next", "status", "next_attempt_at"),
        # The reconciliation report and its workbook: a firm's postings received in a period.
        Index("ix_postings_firm_received", "firm_id", "received_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), nullable=True, index=True
    )
    link_id: Mapped[int] = mapped_column(ForeignKey("payment_links.id", ondelete="CASCADE"))
    # One posting per payment: the backstop under the payment's own once-only completion.
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), unique=True
    )
    # Deterministic, and written into the matter system with the payment (a unique key, or
    # text in its notes), so that a write whose answer was lost can be found again.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(24), default=POSTING_PENDING)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    received_on: Mapped[dt.date] = mapped_column(Date)
    allocations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    external_ids: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    tracking_id: Mapped[str] = mapped_column(String(128), default="")
    # Why it is incomplete, failed or waiting, for people.
    reason: Mapped[str] = mapped_column(Text, default="")
    # The slip to enter by hand (manual_required).
    slip: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # While a worker writes it, it holds the posting until this time; a crash lets it expire.
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_token: Mapped[str] = mapped_column(String(32), default="")
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    entered_by_hand: Mapped[bool] = mapped_column(default=False)
    removed_reason: Mapped[str] = mapped_column(Text, default="")
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    removed_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    attempts: Mapped[list[PostingAttempt]] = relationship(
        order_by="PostingAttempt.id", back_populates="posting"
    )


class PostingAttempt(Base):
    """One try at writing a posting, or one thing staff did to it: the detail page's history."""

    __tablename__ = "posting_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    posting_id: Mapped[int] = mapped_column(
        ForeignKey("postings.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    external_ids: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )

    posting: Mapped[Posting] = relationship(back_populates="attempts")
