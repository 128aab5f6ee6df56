"""merchant_accounts: the index on firm_id goes; uq_merchant_accounts_firm_id (firm_id, id),
which a link's foreign key names since 0031, begins with firm_id and serves those lookups

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 02:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_merchant_accounts_firm_id"


def upgrade() -> None:
    with op.batch_alter_table("merchant_accounts", schema=None) as batch_op:
        batch_op.drop_index(NAME)


def downgrade() -> None:
    with op.batch_alter_table("merchant_accounts", schema=None) as batch_op:
        batch_op.create_index(NAME, ["firm_id"], unique=False)
