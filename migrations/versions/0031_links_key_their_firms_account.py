"""payment_links: one foreign key (firm_id, merchant_account_id) to the firm's own merchant
account instead of one to the firm and one to the account; none to bulk_rows

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 22:00:00.000000

Each foreign key is a check on every link written: a bulk upload's 100,000 links paid for
three (the bulk row's the dearest: a lock on each row, a WAL record per link). One key to
(firm_id, id) of merchant_accounts stands for the firm's and the account's, and refuses an
account of another firm; deleting a firm still deletes its links (firms → merchant_accounts →
payment_links, each ON DELETE CASCADE). bulk_row_id keeps its index (the upload's pages join
on it); why it needs no key is beside the column in links/models.py.

On PostgreSQL, adding the key checks every link already there (under a lock that holds off
writes to payment_links until the migration commits): a link whose account is another firm's
would stop the migration.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_OF_FIRM = "uq_merchant_accounts_firm_id"
LINK_ACCOUNT = "fk_payment_links_firm_id_merchant_accounts"
LINK_FIRM = "fk_payment_links_firm_id_firms"
LINK_ACCOUNT_ALONE = "fk_payment_links_merchant_account_id_merchant_accounts"
LINK_BULK_ROW = "fk_payment_links_bulk_row_id_bulk_rows"


def upgrade() -> None:
    # Batch mode: SQLite changes a table's constraints only by rebuilding it (env.py turns
    # its foreign keys off around that); PostgreSQL alters the tables in place.
    with op.batch_alter_table("merchant_accounts", schema=None) as batch_op:
        batch_op.create_unique_constraint(ACCOUNT_OF_FIRM, ["firm_id", "id"])
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.drop_constraint(LINK_FIRM, type_="foreignkey")
        batch_op.drop_constraint(LINK_ACCOUNT_ALONE, type_="foreignkey")
        batch_op.drop_constraint(LINK_BULK_ROW, type_="foreignkey")
        batch_op.create_foreign_key(
            LINK_ACCOUNT,
            "merchant_accounts",
            ["firm_id", "merchant_account_id"],
            ["firm_id", "id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.drop_constraint(LINK_ACCOUNT, type_="foreignkey")
        batch_op.create_foreign_key(
            LINK_BULK_ROW, "bulk_rows", ["bulk_row_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_foreign_key(
            LINK_ACCOUNT_ALONE, "merchant_accounts", ["merchant_account_id"], ["id"]
        )
        batch_op.create_foreign_key(LINK_FIRM, "firms", ["firm_id"], ["id"], ondelete="CASCADE")
    with op.batch_alter_table("merchant_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(ACCOUNT_OF_FIRM, type_="unique")
