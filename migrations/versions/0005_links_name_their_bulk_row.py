"""links name their bulk row (payment_links.bulk_row_id replaces bulk_rows.link_id)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 01:30:00

Making the links of a large upload wrote every row a second time to note its link; the link
now notes its row as it is written.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bulk_row_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_payment_links_bulk_row_id", ["bulk_row_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_payment_links_bulk_row_id_bulk_rows",
            "bulk_rows",
            ["bulk_row_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(
        "UPDATE payment_links SET bulk_row_id = "
        "(SELECT bulk_rows.id FROM bulk_rows WHERE bulk_rows.link_id = payment_links.id) "
        "WHERE EXISTS (SELECT 1 FROM bulk_rows WHERE bulk_rows.link_id = payment_links.id)"
    )
    with op.batch_alter_table("bulk_rows", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bulk_rows_link_id_payment_links", type_="foreignkey")
        batch_op.drop_column("link_id")


def downgrade() -> None:
    with op.batch_alter_table("bulk_rows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_bulk_rows_link_id_payment_links",
            "payment_links",
            ["link_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(
        "UPDATE bulk_rows SET link_id = "
        "(SELECT payment_links.id FROM payment_links "
        "WHERE payment_links.bulk_row_id = bulk_rows.id) "
        "WHERE EXISTS (SELECT 1 FROM payment_links WHERE payment_links.bulk_row_id = bulk_rows.id)"
    )
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.drop_constraint("fk_payment_links_bulk_row_id_bulk_rows", type_="foreignkey")
        batch_op.drop_index("ix_payment_links_bulk_row_id")
        batch_op.drop_column("bulk_row_id")
