"""What notifications remember: the daily digests that went out."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clientpay_connect.db import Base, UTCDateTime, utcnow


class NotificationDigest(Base):
    """A firm's daily digest of payments, for the days ``first_day`` to ``day``.

    Written in the same transaction as the digest's outbox row (none when there was nothing
    to report); the unique key is what keeps a digest from going out twice for one day when
    two runs of the job race.
    """

    __tablename__ = "notification_digests"
    __table_args__ = (
        UniqueConstraint("firm_id", "day", name="uq_notification_digests_firm_id_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    # The firm's last day the digest reports; after downtime it reaches back to first_day.
    day: Mapped[dt.date] = mapped_column(Date)
    first_day: Mapped[dt.date] = mapped_column(Date)
    payments: Mapped[int] = mapped_column(Integer, default=0)
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
