"""payment links: fewer index entries per new link (bulk uploads write 100,000 at once)

The (firm_id, status) index is dropped: (firm_id, status, due_date) begins with the same
columns and answers the same queries. The balance-link backstop and the reminders' send-time
index leave out the links they never look for (no parent; never sent), which are most links:
a generated bulk link then costs two index entries fewer.

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-06 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARENT_SET = "parent_link_id IS NOT NULL"
SENT = "sent_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_links_firm_status")
        batch_op.drop_index("uq_payment_links_parent_link_id")
        batch_op.drop_index("ix_payment_links_firm_status_sent")
        batch_op.create_index(
            "uq_payment_links_parent_link_id",
            ["parent_link_id"],
            unique=True,
            sqlite_where=sa.text(PARENT_SET),
            postgresql_where=sa.text(PARENT_SET),
        )
        batch_op.create_index(
            "ix_payment_links_firm_status_sent",
            ["firm_id", "status", "sent_at"],
            unique=False,
            sqlite_where=sa.text(SENT),
            postgresql_where=sa.text(SENT),
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_links_firm_status_sent")
        batch_op.drop_index("uq_payment_links_parent_link_id")
        batch_op.create_index(
            "ix_payment_links_firm_status_sent", ["firm_id", "status", "sent_at"], unique=False
        )
        batch_op.create_index("uq_payment_links_parent_link_id", ["parent_link_id"], unique=True)
        batch_op.create_index("ix_payment_links_firm_status", ["firm_id", "status"], unique=False)
