"""Sent Pages: the sort index of amounts paid holds only the links with a payment, so that
making a link (a bulk upload makes 100,000) writes no entry in it; the unpaid are read by id

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_payment_links_sort_amount_paid_minor"
COLUMNS = ["firm_id", "amount_paid_minor", "id"]


def upgrade() -> None:
    where = sa.text("amount_paid_minor > 0")
    op.drop_index(NAME, table_name="payment_links")
    op.create_index(
        NAME, "payment_links", COLUMNS, unique=False, sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="payment_links")
    op.create_index(NAME, "payment_links", COLUMNS, unique=False)
