"""Sent Pages: the sort indexes of sent, paid and cancelled times hold only the links that
have one, so that making a link writes no entry in them

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 16:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As links/models.py declares them today (a migration keeps its own copy).
WERE_WHOLE = ("sent_at", "paid_at")
NEW = ("cancelled_at",)


def _create(column: str, partial: bool) -> None:
    where = sa.text(f"{column} IS NOT NULL") if partial else None
    op.create_index(
        f"ix_payment_links_sort_{column}",
        "payment_links",
        ["firm_id", column, "id"],
        unique=False,
        sqlite_where=where,
        postgresql_where=where,
    )


def _drop(column: str) -> None:
    op.drop_index(f"ix_payment_links_sort_{column}", table_name="payment_links")


def upgrade() -> None:
    for column in WERE_WHOLE:
        _drop(column)
        _create(column, partial=True)
    for column in NEW:
        _create(column, partial=True)


def downgrade() -> None:
    for column in NEW:
        _drop(column)
    for column in WERE_WHOLE:
        _drop(column)
        _create(column, partial=False)
