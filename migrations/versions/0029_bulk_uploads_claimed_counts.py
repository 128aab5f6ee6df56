"""an upload keeps its rows' counts from when Send All or Generate was claimed

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bulk_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_counts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bulk_uploads", schema=None) as batch_op:
        batch_op.drop_column("claimed_counts")
