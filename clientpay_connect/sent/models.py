"""How many links a firm has by status, source, account, email status, creator and currency:
what Sent Pages' totals and tab counts read instead of counting a million rows."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clientpay_connect.db import Base

# The columns of payment_links that link_counts counts by, under the same names, so that a
# condition on the links reads the same on the counts (listing.py swaps one for the other).
COUNTED_COLUMNS = (
    "firm_id",
    "status",
    "source",
    "merchant_account_id",
    "email_status",
    "created_by_user_id",
    "currency",
)


class LinkCount(Base):
    """Signed deltas: on PostgreSQL, triggers on payment_links (migration 0028) add one row
    per group of the links a statement inserted (+n), deleted (-n) or moved between groups,
    never updating a row, so that concurrent writers (50 payers, a bulk insert) never wait on
    a shared counter. A group's count is sum(n) over its rows, exact in any snapshot since a
    delta commits with its change; sent/tasks.py folds a firm's deltas into one row a group.

    SQLite (the embedded default, small firms) has no such triggers: its table stays empty
    and its totals count the links themselves (listing.py)."""

    __tablename__ = "link_counts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firms.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    # No foreign keys beyond the firm's: checking them on every delta would make each write
    # read the accounts and users tables, and a count needs only the id to match a filter.
    merchant_account_id: Mapped[int] = mapped_column(Integer)
    email_status: Mapped[str] = mapped_column(String(16))
    created_by_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    n: Mapped[int] = mapped_column(BigInteger)
