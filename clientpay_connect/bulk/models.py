"""A bulk upload: the file's rows under review, then the links made from them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clientpay_connect.db import Base, UTCDateTime, utcnow

UPLOAD_READING = "reading"
UPLOAD_REVIEW = "review"
UPLOAD_PROCESSING = "processing"
UPLOAD_SENT = "sent"
UPLOAD_GENERATED = "generated"
UPLOAD_FAILED = "failed"

ACTION_SEND = "send"
ACTION_GENERATE = "generate"


class BulkUpload(Base):
    __tablename__ = "bulk_uploads"
    __table_args__ = (Index("ix_bulk_uploads_firm_created", "firm_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"))
    merchant_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchant_accounts.id"), nullable=True
    )
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    filename: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default=UPLOAD_REVIEW)
    encoding: Mapped[str] = mapped_column(String(32), default="")
    delimiter: Mapped[str] = mapped_column(String(8), default="")
    # Where the header was (blank lines may come first), so that the error report's row
    # numbers stay the file's.
    header_row_number: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    headers: Mapped[list[str]] = mapped_column(JSON, default=list)
    ignored_columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Send All or Generate; the first request to set it wins, so a double click makes one set.
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    # When the links' job was started or last reported progress: the sweep (tasks.py) queues
    # the job again for an upload whose job has said nothing for too long (a worker died).
    progress_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error_message: Mapped[str] = mapped_column(Text, default="")
    # The rows' counts (services.Counts, links aside) when the action was claimed: the rows
    # cannot change until the links are made or the job fails, and the page polls them all
    # the while; counting 100,000 rows' JSON took a third of a second a poll, on the core the
    # job needed.
    claimed_counts: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BulkRow(Base):
    __tablename__ = "bulk_rows"
    __table_args__ = (Index("ix_bulk_rows_upload_row", "upload_id", "row_number", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("bulk_uploads.id", ondelete="CASCADE"))
    # As the person sees it in their spreadsheet (the header is row 1); added rows follow.
    row_number: Mapped[int] = mapped_column(Integer)
    # The cells as read, for the downloadable error report.
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    invoice_number: Mapped[str] = mapped_column(String(100), default="")
    invoice_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    due_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    amount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    added_by_hand: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The row's link, once made, names its row (PaymentLink.bulk_row_id): written with the
    # link, so that making 100,000 links never rewrites 100,000 rows.
