"""Sent Pages: the opened times, reminders, first email address and keys of few values get
sort indexes

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As links/models.py declares them today (a migration keeps its own copy). A link is made
# before its page is opened and before any reminder: these partial indexes cost a new link
# nothing.
LATER = {
    "first_opened_at": "first_opened_at IS NOT NULL",
    "last_opened_at": "last_opened_at IS NOT NULL",
    "reminders_sent": "reminders_sent > 0",
}
# Keys of few values, each read one value at a time in id order.
GROUPED = ("source", "email_status", "created_by_user_id", "merchant_account_id")
FIRST_EMAIL = "nullif(lower(payment_links.emails ->> 0), '' COLLATE \"C\")"


def upgrade() -> None:
    for column, where in LATER.items():
        op.create_index(
            f"ix_payment_links_sort_{column}",
            "payment_links",
            ["firm_id", column, "id"],
            unique=False,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )
    if op.get_bind().dialect.name == "postgresql":
        # Only PostgreSQL reads a page one value at a time (sent/listing.py).
        for column in GROUPED:
            op.create_index(
                f"ix_payment_links_sort_{column}", "payment_links", ["firm_id", column, "id"]
            )
        op.create_index(
            "ix_payment_links_sort_emails", "payment_links", ["firm_id", sa.text(FIRST_EMAIL), "id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_payment_links_sort_emails", table_name="payment_links")
        for column in GROUPED:
            op.drop_index(f"ix_payment_links_sort_{column}", table_name="payment_links")
    for column in LATER:
        op.drop_index(f"ix_payment_links_sort_{column}", table_name="payment_links")
