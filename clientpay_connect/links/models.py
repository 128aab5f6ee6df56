"""Payment links: one secret URL, paid at most once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from clientpay_connect.accounts.models import Firm, User
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import Base, UTCDateTime, utcnow

SOURCE_QUICK = "quick_link"
SOURCE_BULK = "bulk_upload"
SOURCE_CONNECT = "connect"
SOURCES = (SOURCE_QUICK, SOURCE_BULK, SOURCE_CONNECT)

STATUS_OUTSTANDING = "outstanding"
STATUS_PROCESSING = "processing"
# Paid in full.
STATUS_PAID = "paid"
# Paid less than the amount: the link is used up all the same (a payment consumes it), and
# the rest is for a balance link.
STATUS_PARTIALLY_PAID = "partially_paid"
STATUS_CANCELLED = "cancelled"
STATUS_EXPIRED = "expired"
STATUSES = (
    STATUS_OUTSTANDING,
    STATUS_PROCESSING,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
)
# The statuses of a link a payment used up: whatever asks "was it paid?" asks this.
USED_UP = (STATUS_PAID, STATUS_PARTIALLY_PAID)


def paid_status(amount_minor: int, paid_minor: int) -> str:
    """What a link becomes once ``paid_minor`` of its ``amount_minor`` was paid."""
    return STATUS_PAID if paid_minor >= amount_minor else STATUS_PARTIALLY_PAID


EMAIL_NOT_SENT = "not_sent"
EMAIL_QUEUED = "queued"
EMAIL_SENT = "sent"
EMAIL_FAILED = "failed"
# Not sent on purpose: the link was closed (cancelled, paid, expired) before its email went.
EMAIL_WITHHELD = "withheld"

LOCALES = ("en", "es")

# The conditions of the partial indexes below (as in migration 0024).
SENT = "sent_at IS NOT NULL"


# Sent Pages' sort keys that are not a plain column (sent/listing.py sorts by these very
# expressions, so that PostgreSQL matches them to the indexes below; written as PostgreSQL
# reflects them, so that alembic's comparison finds them alike). A status sorts by its place
# in a link's life; a text ignoring case and by code point, a blank as no value.
def status_sort_sql(dialect: str) -> str:
    if dialect == "postgresql":
        places = ", ".join(f"'{status}'" for status in STATUSES)
        return f"coalesce(array_position(ARRAY[{places}], payment_links.status), {len(STATUSES)})"
    whens = " ".join(f"WHEN '{status}' THEN {place}" for place, status in enumerate(STATUSES))
    return f"CASE payment_links.status {whens} ELSE {len(STATUSES)} END"


def text_sort_sql(column: str, dialect: str) -> str:
    # PostgreSQL compares text by the database's locale, SQLite by code point: the "C"
    # collation makes PostgreSQL agree. On the '' rather than around the whole: nullif's
    # result takes it all the same, and lower() still folds by the database's locale.
    empty = "'' COLLATE \"C\"" if dialect == "postgresql" else "''"
    return f"nullif(lower(payment_links.{column}), {empty})"


def first_email_sort_sql(dialect: str) -> str:
    """The first email address, folded as text_sort_sql folds a column."""
    if dialect == "postgresql":
        return "nullif(lower(payment_links.emails ->> 0), '' COLLATE \"C\")"
    return "nullif(lower(json_extract(payment_links.emails, '$[0]')), '')"


# The columns Sent Pages sorts by, each indexed as (firm_id, key, id): a page at any depth
# is a seek into one index, forwards or backwards, whatever the sort's direction.
SORTED_COLUMNS = (
    "created_at",
    "amount_minor",
    "due_date",
    "invoice_date",
    "expires_at",
)
SORTED_TEXTS = ("invoice_number", "recipient_name")
# Keys of few values (sent/listing.py reads a page one value at a time, by id): each value's
# links in id order, so that a value with few links or none costs a seek, not a scan of the
# firm's links. The creator and the account sort by their names, grouped there.
GROUPED_COLUMNS = ("source", "email_status", "created_by_user_id", "merchant_account_id")
# Set only after a link is made: partial indexes, so that making a link (100,000 at a time
# in a bulk upload) writes no entry in them, and a page's rows with no such value are read by
# id (sent/listing.py) rather than here.
SORTED_LATER = {
    # A link generated to copy (most of a bulk upload's) is never sent; none is paid or
    # cancelled when it is made, nor opened by its payer.
    "sent_at": "sent_at IS NOT NULL",
    "paid_at": "paid_at IS NOT NULL",
    "cancelled_at": "cancelled_at IS NOT NULL",
    "first_opened_at": "first_opened_at IS NOT NULL",
    "last_opened_at": "last_opened_at IS NOT NULL",
    # A new link has had no reminder and no payment; those without are read by id too.
    "reminders_sent": "reminders_sent > 0",
    "amount_paid_minor": "amount_paid_minor > 0",
}


def _sort_indexes() -> list[Index]:
    plain = [Index(f"ix_payment_links_sort_{c}", "firm_id", c, "id") for c in SORTED_COLUMNS]
    # Only PostgreSQL reads a page one value at a time (SQLite's firms are small: the plain
    # statement serves them), so only there are these worth what each link made pays for them.
    grouped = [
        Index(f"ix_payment_links_sort_{c}", "firm_id", c, "id").ddl_if(dialect="postgresql")
        for c in GROUPED_COLUMNS
    ]
    # Expression indexes on PostgreSQL only, the database a firm of a million links runs on
    # (SQLite's lower() is ours, set per connection: an index built by another would differ).
    expressions = [
        (f"ix_payment_links_sort_{c}", text_sort_sql(c, "postgresql")) for c in SORTED_TEXTS
    ] + [
        ("ix_payment_links_sort_status", status_sort_sql("postgresql")),
        ("ix_payment_links_sort_emails", first_email_sort_sql("postgresql")),
    ]
    later = [
        Index(
            f"ix_payment_links_sort_{c}",
            "firm_id",
            c,
            "id",
            sqlite_where=text(where),
            postgresql_where=text(where),
        )
        for c, where in SORTED_LATER.items()
    ]
    return (
        plain
        + grouped
        + later
        + [
            Index(name, "firm_id", text(sql), "id").ddl_if(dialect="postgresql")
            for name, sql in expressions
        ]
    )


def _one_per_set(column: str) -> Index:
    """At most one link per value of ``column``; the links without one (NULL) left out."""
    where = text(f"{column} IS NOT NULL")
    name = f"uq_payment_links_{column}"
    return Index(name, column, unique=True, sqlite_where=where, postgresql_where=where)


class PaymentLink(Base):
    __tablename__ = "payment_links"
    __table_args__ = (
        # (firm_id, status) queries use ix_payment_links_firm_status_due, which begins with
        # those columns (migration 0024); (firm_id, created_at) ones the sort index on
        # created_at (migration 0025): one index fewer each for every link written.
        Index("ix_payment_links_status_expires", "status", "expires_at"),
        # A bulk row's one link (bulk/writer.py): the job that makes an upload's links finds
        # the rows still without one by it, and it refuses a second.
        _one_per_set("bulk_row_id"),
        # Smart Reminders pick their candidates by a window of due dates (or of send times,
        # for links without one) among a firm's outstanding links: the job's work grows with
        # the reminders due, not with every link the firm ever made.
        Index("ix_payment_links_firm_status_due", "firm_id", "status", "due_date"),
        # Only links that were sent have reminders (reminders/services.py asks for a sent_at):
        # a link generated to copy, most of a bulk upload's, costs no entry.
        Index(
            "ix_payment_links_firm_status_sent",
            "firm_id",
            "status",
            "sent_at",
            sqlite_where=text(SENT),
            postgresql_where=text(SENT),
        ),
        # One balance link per link: the parent's row lock makes the second click wait and
        # find the first; this is the backstop should any path ever skip the lock. Links
        # without a parent (nearly all) are left out: NULLs never collide anyway.
        _one_per_set("parent_link_id"),
        *_sort_indexes(),
        # The link's account is one of the link's firm's: the database refuses any other
        # (tenant isolation), and one check a link written stands for two (the firm and the
        # account each had a key of their own). Deleting a firm deletes its accounts, and
        # their links with them; the app never deletes an account (it deactivates it).
        ForeignKeyConstraint(
            ["firm_id", "merchant_account_id"],
            ["merchant_accounts.firm_id", "merchant_accounts.id"],
            ondelete="CASCADE",
        ),
        # Room on each page for a row's new version: an update that changes no indexed
        # column (an email's status, a refund claimed) then stays on its page and writes none
        # of the table's many indexes (PostgreSQL's "HOT" update). A page opened or a
        # reminder counted changes a column Sent Pages sorts by (SORTED_LATER): those few
        # updates a link has write its indexes, so that no link made pays for the sort.
        {"postgresql_with": {"fillfactor": 90}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Both in the foreign key to the firm's merchant account (__table_args__).
    firm_id: Mapped[int]
    merchant_account_id: Mapped[int]
    source: Mapped[str] = mapped_column(String(16), default=SOURCE_QUICK)
    # SHA-256 of the URL's secret: how a payer's request finds the link.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The secret itself only encrypted, so that staff can copy the link again.
    token_encrypted: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    amount_paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # What was refunded of the payment (refunds/services.py)...
    amount_refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # ...and that plus the refunds still being made: a refund claims its amount here, with a
    # conditional update that never lets this pass amount_paid_minor.
    refunds_claimed_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    invoice_number: Mapped[str] = mapped_column(String(100), default="")
    invoice_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    due_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    recipient_name: Mapped[str] = mapped_column(String(200), default="")
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    message: Mapped[str] = mapped_column(Text, default="")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default=STATUS_OUTSTANDING)
    email_status: Mapped[str] = mapped_column(String(16), default=EMAIL_NOT_SENT)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When a payment attempt claimed the link; a crash leaves it set for the resolver job.
    processing_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the payer first and last opened the payment page (pay/opens.py): last_opened_at
    # moves at most once a minute, so that reloads cost no writes.
    first_opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    # Staff switched Smart Reminders off for this link.
    reminders_off: Mapped[bool] = mapped_column(Boolean, default=False)
    # The link this one collects the balance of (a "balance link").
    parent_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_links.id", ondelete="SET NULL"), nullable=True
    )

    # The Bulk Upload row this link was made from. No foreign key: its check cost a bulk
    # upload's writing transaction more than any other (a lock on each row, a WAL record per
    # link), and it guards nothing: the links' job writes this from the upload's own rows in
    # the very INSERT … SELECT that reads them (bulk/writer.py), and the app never deletes a
    # row (the review's "delete" marks it deleted); only a firm's deletion does, which takes
    # the firm's links too.
    bulk_row_id: Mapped[int | None] = mapped_column(nullable=True)
    # The matter-system connection a Connect link's invoices come from.
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), nullable=True
    )

    # Joined by the firm's id alone (no foreign key names firms): read-only.
    firm: Mapped[Firm] = relationship(
        primaryjoin=lambda: foreign(PaymentLink.firm_id) == Firm.id, viewonly=True
    )
    # Joined by the account's id alone, its primary key, so that loading it finds an account
    # already in the session without a query (the key's firm_id is the link's own).
    merchant_account: Mapped[MerchantAccount] = relationship(
        primaryjoin=lambda: foreign(PaymentLink.merchant_account_id) == MerchantAccount.id
    )
    created_by: Mapped[User | None] = relationship()

    @property
    def amount_due_minor(self) -> int:
        return self.amount_minor

    @property
    def account_active(self) -> bool:
        """Whether the link's merchant account still takes payments."""
        return bool(self.merchant_account.active)
