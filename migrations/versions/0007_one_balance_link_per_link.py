"""one balance link per link: a unique index on payment_links.parent_link_id

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 00:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "uq_payment_links_parent_link_id", "payment_links", ["parent_link_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_payment_links_parent_link_id", table_name="payment_links")
