"""Launch links: single-use, short-lived sign-ins that the matter software's server asks for."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from clientpay_connect.accounts.models import User
from clientpay_connect.db import Base, UTCDateTime, utcnow


class EmbedLaunch(Base):
    __tablename__ = "embed_launches"

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    # Who is signed in by opening it.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The admin whose API token asked for it.
    issued_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # SHA-256 of the token in the URL: the token itself is handed out once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Where it opens: {"open": "connect"|"quick_link"|"sent", and that page's parameters}.
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
