"""Sent Pages: link_counts, signed deltas of a firm's links by status, source, account, email
status, creator and currency, kept by PostgreSQL triggers, so that a total is a sum of a few
rows rather than a count of a million

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 15:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As sent/models.py names them today (a migration keeps its own copy).
DIMENSIONS = (
    "firm_id, status, source, merchant_account_id, email_status, created_by_user_id, currency"
)
EVENTS = ("insert", "delete", "update")

# One function for the three statement-level triggers (transition tables need one event a
# trigger, and no column list: so every UPDATE runs it, and the groups whose links did not
# move net to zero and are dropped). Each statement adds at most one row a group, whatever
# its number of links, and only ever INSERTs: concurrent writers never wait on a counter.
# A deleted firm's links (its cascade) leave no deltas: link_counts' own rows of that firm
# go by the same cascade, and a firm no longer there could not be referred to.
COUNT_LINKS = f"""
CREATE FUNCTION count_links() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO link_counts ({DIMENSIONS}, n)
        SELECT {DIMENSIONS}, count(*) FROM new_links GROUP BY {DIMENSIONS};
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO link_counts ({DIMENSIONS}, n)
        SELECT {DIMENSIONS}, -count(*) FROM old_links
        WHERE EXISTS (SELECT FROM firms WHERE firms.id = old_links.firm_id)
        GROUP BY {DIMENSIONS};
    ELSE
        INSERT INTO link_counts ({DIMENSIONS}, n)
        SELECT {DIMENSIONS}, sum(n) FROM (
            SELECT {DIMENSIONS}, 1 AS n FROM new_links
            UNION ALL
            SELECT {DIMENSIONS}, -1 AS n FROM old_links
        ) AS moved
        GROUP BY {DIMENSIONS}
        HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""  # noqa: S608  (built from this file's constants only)
BACKFILL = (
    f"INSERT INTO link_counts ({DIMENSIONS}, n)"  # noqa: S608  (this file's constants only)
    f" SELECT {DIMENSIONS}, count(*) FROM payment_links GROUP BY {DIMENSIONS}"
)
TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS new_links",
    "delete": "REFERENCING OLD TABLE AS old_links",
    "update": "REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links",
}
# TRUNCATE has no transition table: it empties the counts with the links.
FORGET_LINKS = """
CREATE FUNCTION forget_link_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM link_counts;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "link_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("merchant_account_id", sa.Integer(), nullable=False),
        sa.Column("email_status", sa.String(length=16), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["firm_id"],
            ["firms.id"],
            name=op.f("fk_link_counts_firm_id_firms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_counts")),
    )
    with op.batch_alter_table("link_counts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_counts_firm_id"), ["firm_id"], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite counts the links themselves (sent/models.py)
    op.execute(COUNT_LINKS)
    op.execute(FORGET_LINKS)
    for event in EVENTS:
        op.execute(
            f"CREATE TRIGGER count_links_{event} AFTER {event.upper()} ON payment_links"
            f" {TRANSITIONS[event]} FOR EACH STATEMENT EXECUTE FUNCTION count_links()"
        )
    op.execute(
        "CREATE TRIGGER forget_link_counts AFTER TRUNCATE ON payment_links"
        " FOR EACH STATEMENT EXECUTE FUNCTION forget_link_counts()"
    )
    # The links already there, counted under the triggers' lock on payment_links (taken by
    # CREATE TRIGGER until this migration commits): no write falls between the two.
    op.execute(BACKFILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER forget_link_counts ON payment_links")
        for event in EVENTS:
            op.execute(f"DROP TRIGGER count_links_{event} ON payment_links")
        op.execute("DROP FUNCTION forget_link_counts()")
        op.execute("DROP FUNCTION count_links()")
    with op.batch_alter_table("link_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_counts_firm_id"))
    op.drop_table("link_counts")
