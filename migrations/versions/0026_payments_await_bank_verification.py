"""a bank debit awaiting the payer's verification of the account keeps Stripe's link to it

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clientpay_connect.db

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verification_url", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "verification_arrives_at",
                clientpay_connect.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("verification_arrives_at")
        batch_op.drop_column("verification_url")
