"""bulk upload progress_at: when the links' job last said something

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clientpay_connect.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bulk_uploads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("progress_at", clientpay_connect.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("bulk_uploads", schema=None) as batch_op:
        batch_op.drop_column("progress_at")
