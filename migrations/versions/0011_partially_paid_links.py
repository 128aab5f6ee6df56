"""partially_paid: a link paid less than its amount says so (it said "paid")

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 10:00:00

Data only: status is a string column. A link whose payment was smaller than its amount
becomes partially_paid; the downgrade makes it paid again, as that revision knew it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The table as this revision knows it: the model may change later, this must not.
payment_links = sa.table(
    "payment_links",
    sa.column("status", sa.String),
    sa.column("amount_minor", sa.BigInteger),
    sa.column("amount_paid_minor", sa.BigInteger),
)


def upgrade() -> None:
    op.execute(
        payment_links.update()
        .where(
            payment_links.c.status == "paid",
            payment_links.c.amount_paid_minor < payment_links.c.amount_minor,
        )
        .values(status="partially_paid")
    )


def downgrade() -> None:
    op.execute(
        payment_links.update()
        .where(payment_links.c.status == "partially_paid")
        .values(status="paid")
    )
