"""Sent Pages: an index per sort, (firm_id, key, id), so that any page is a seek

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 12:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# As links/models.py declares them today (a migration keeps its own copy: it must not
# change when the models do).
SORTED_COLUMNS = (
    "created_at",
    "amount_minor",
    "amount_paid_minor",
    "due_date",
    "invoice_date",
    "sent_at",
    "paid_at",
    "expires_at",
)
STATUS_PLACE = (
    "coalesce(array_position(ARRAY['outstanding', 'processing', 'paid', 'partially_paid',"
    " 'cancelled', 'expired'], payment_links.status), 6)"
)


def _expressions() -> dict[str, str]:
    """The expression indexes (PostgreSQL only, as the models declare them)."""
    named = {
        f"ix_payment_links_sort_{column}": (
            f"nullif(lower(payment_links.{column}), '' COLLATE \"C\")"
        )
        for column in ("invoice_number", "recipient_name")
    }
    named["ix_payment_links_sort_status"] = STATUS_PLACE
    return named


def upgrade() -> None:
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        # (firm_id, created_at, id) serves all that the old (firm_id, created_at) did.
        batch_op.drop_index("ix_payment_links_firm_created")
        for column in SORTED_COLUMNS:
            batch_op.create_index(
                f"ix_payment_links_sort_{column}", ["firm_id", column, "id"], unique=False
            )
    if op.get_bind().dialect.name == "postgresql":
        for name, expression in _expressions().items():
            op.create_index(name, "payment_links", ["firm_id", sa.text(expression), "id"])
        # Room for updates in place (HOT), which write none of the indexes: new pages only,
        # as the table's rows are written again.
        op.execute("ALTER TABLE payment_links SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE payment_links RESET (fillfactor)")
        for name in _expressions():
            op.drop_index(name, table_name="payment_links")
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        for column in SORTED_COLUMNS:
            batch_op.drop_index(f"ix_payment_links_sort_{column}")
        batch_op.create_index(
            "ix_payment_links_firm_created", ["firm_id", "created_at"], unique=False
        )
