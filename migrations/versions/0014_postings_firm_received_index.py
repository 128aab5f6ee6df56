"""postings: an index on (firm_id, received_on)

The reconciliation report and its workbook select a firm's postings by the day they were
received (a period of up to a year); without it each report read every posting of the firm.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 09:55:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.create_index("ix_postings_firm_received", ["firm_id", "received_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index("ix_postings_firm_received")
