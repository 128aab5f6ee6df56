"""payment_links: a bulk row has one link at most, in the database too (a unique index on
bulk_row_id, partial: the links of other sources have none); it replaces the plain index

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("bulk_row_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_payment_links_bulk_row_id", table_name="payment_links")
    op.create_index(
        "uq_payment_links_bulk_row_id",
        "payment_links",
        ["bulk_row_id"],
        unique=True,
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("uq_payment_links_bulk_row_id", table_name="payment_links")
    op.create_index("ix_payment_links_bulk_row_id", "payment_links", ["bulk_row_id"])
