"""stripe keys on merchant accounts, the PaymentIntent of each Stripe attempt, webhook events

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 10:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clientpay_connect.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("merchant_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_secret_key_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "stripe_publishable_key", sa.String(length=255), nullable=False, server_default=""
            )
        )
        batch_op.add_column(sa.Column("stripe_webhook_secret_encrypted", sa.Text(), nullable=True))
    op.create_table(
        "stripe_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_key", sa.String(length=64), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", clientpay_connect.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_intents")),
        sa.UniqueConstraint("attempt_key", name=op.f("uq_stripe_intents_attempt_key")),
    )
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("merchant_account_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("received_at", clientpay_connect.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_account_id"],
            ["merchant_accounts.id"],
            name=op.f("fk_stripe_events_merchant_account_id_merchant_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_stripe_events_event_id")),
    )
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stripe_events_merchant_account_id"),
            ["merchant_account_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stripe_events_merchant_account_id"))
    op.drop_table("stripe_events")
    op.drop_table("stripe_intents")
    with op.batch_alter_table("merchant_accounts", schema=None) as batch_op:
        batch_op.drop_column("stripe_webhook_secret_encrypted")
        batch_op.drop_column("stripe_publishable_key")
        batch_op.drop_column("stripe_secret_key_encrypted")
