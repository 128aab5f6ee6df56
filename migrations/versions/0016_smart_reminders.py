"""smart reminders: the firm's schedule, a link's switch, the reminders sent

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clientpay_connect.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("firm_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reminders", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reminders_off", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            "ix_payment_links_firm_status_due", ["firm_id", "status", "due_date"], unique=False
        )
        batch_op.create_index(
            "ix_payment_links_firm_status_sent", ["firm_id", "status", "sent_at"], unique=False
        )
    op.create_table(
        "link_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("reminder_key", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("relative_to", sa.String(length=16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("sent_at", clientpay_connect.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outbox_message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_link_reminders_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["payment_links.id"],
            name=op.f("fk_link_reminders_link_id_payment_links"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_link_reminders_outbox_message_id_outbox_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_reminders")),
        sa.UniqueConstraint(
            "link_id", "reminder_key", name=op.f("uq_link_reminders_link_id_reminder_key")
        ),
    )
    with op.batch_alter_table("link_reminders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_reminders_firm_id"), ["firm_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("link_reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_reminders_firm_id"))
    op.drop_table("link_reminders")
    with op.batch_alter_table("payment_links", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_links_firm_status_sent")
        batch_op.drop_index("ix_payment_links_firm_status_due")
        batch_op.drop_column("reminders_off")
    with op.batch_alter_table("firm_settings", schema=None) as batch_op:
        batch_op.drop_column("reminders")
