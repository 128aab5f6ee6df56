"""What Smart Reminders remember: which reminder each link was sent, and when."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clientpay_connect.db import Base, UTCDateTime, utcnow


class LinkReminder(Base):
    """A reminder of the firm's schedule sent for a link.

    Written in the same transaction as the reminder's outbox row; the unique constraint is
    what makes "at most once per link and reminder" hold when two job runs race. A reminder
    is known by its key ("due_date-3", "sent+7"), not its place in the list: an admin who
    adds an earlier reminder must not make every link receive the later ones again.
    """

    __tablename__ = "link_reminders"
    __table_args__ = (
        UniqueConstraint("link_id", "reminder_key", name="uq_link_reminders_link_id_reminder_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("payment_links.id", ondelete="CASCADE"))
    reminder_key: Mapped[str] = mapped_column(String(24))
    # Its place (1 to 4) in the firm's schedule when it was sent.
    position: Mapped[int] = mapped_column(Integer)
    # The reminder as it was when sent (the firm may change its schedule later).
    days: Mapped[int] = mapped_column(Integer)
    relative_to: Mapped[str] = mapped_column(String(16))
    # The firm's day on which it fell due; it went out at sent_at (later after downtime).
    due_on: Mapped[dt.date] = mapped_column(Date)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL"), nullable=True
    )
