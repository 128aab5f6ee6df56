"""Everything the payer's pages show about a link, read in one query.

The payment page is the one page anyone on the internet may load, and payers reload it: it
reads the link, its firm, the firm's settings and the merchant account in one joined
statement instead of an ORM object and three lazy loads. The row itself (LinkRead.key) is the
key of the rendered page (page_cache.py): whatever the page shows comes from it (through the
frozen LinkFacts made from it), the request's language and address, and the clock.

A Connect link also lists its invoices: a second small query, made only for those links
(a join would repeat the link's row once per invoice for every link).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Executable, String, and_, bindparam, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from clientpay_connect.accounts.models import Firm
from clientpay_connect.admin.models import METHOD_CARD, METHOD_ECHECK, FirmSettings, MerchantAccount
from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.crypto import sha256_hex
from clientpay_connect.links.models import SOURCE_CONNECT, STATUS_EXPIRED, PaymentLink
from clientpay_connect.links.services import Expiring, is_past_expiry, possible_token

DEFAULT_TIME_ZONE = "America/New_York"


@dataclass(frozen=True)
class InvoiceLine:
    """One invoice of a Connect link, as the payer sees it."""

    number: str
    matter: str
    due_on: dt.date | None
    amount_minor: int


@dataclass(frozen=True)
class LinkFacts:
    link_id: int
    token_hash: str
    status: str
    amount_minor: int
    amount_paid_minor: int
    currency: str
    invoice_number: str
    invoice_date: dt.date | None
    due_date: dt.date | None
    recipient_name: str
    first_email: str
    locale: str
    expires_at: dt.datetime | None
    paid_at: dt.datetime | None
    firm_name: str
    time_zone: str
    disclaimer: str
    recaptcha_site_key: str
    account_active: bool
    methods: tuple[str, ...]
    invoices: tuple[InvoiceLine, ...] = ()
    # The firm's own address (its reply-to), for a payer who must reach the firm.
    firm_email: str = ""
    # The account's Stripe publishable key: a pk_test_ one means no money moves (Test mode).
    publishable_key: str = ""
    # The processor the account pays through (pay/processors.py: the page offers its fields
    # only while this instance offers it).
    processor: str = ""
    # When the payer last opened the page (pay/opens.py decides from it whether to record this
    # open). Not compared (nor in LinkRead.key, the page's cache key): the page does not show
    # it, and with it every recorded open would make the next view render the page afresh.
    last_opened_at: dt.datetime | None = field(default=None, compare=False)

    @property
    def amount_due_minor(self) -> int:
        return self.amount_minor

    def state(self, now: dt.datetime) -> str:
        """The link's status as the payer should see it at ``now``."""
        return state_at(self, now)


def state_at(link: Expiring, now: dt.datetime) -> str:
    """A link's status as the payer should see it at ``now``."""
    # The expiry job runs periodically; between its runs an overdue link is still expired.
    if is_past_expiry(link, now):
        return STATUS_EXPIRED
    return link.status


class FirstEmail(ColumnElement[str]):
    """The first address of a link's list of emails (a JSON array), as the database reads it:
    the page shows only that one, and parsing the whole JSON document in Python on every
    request cost more than the rest of its row together."""

    type = String()
    inherit_cache = True
    # What SQLAlchemy's statement cache keys it by (and what it walks): the emails column.
    _traverse_internals = [("emails", InternalTraversal.dp_clauseelement)]

    def __init__(self, emails: Any):
        self.emails = emails


@compiles(FirstEmail, "postgresql")
def _first_email_postgresql(element: FirstEmail, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.emails, **kw)} ->> 0)"


@compiles(FirstEmail, "sqlite")
def _first_email_sqlite(element: FirstEmail, compiler: Any, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.emails, **kw)}, '$[0]')"


_FACTS = (
    select(
        PaymentLink.id,
        PaymentLink.token_hash,
        PaymentLink.status,
        PaymentLink.amount_minor,
        PaymentLink.amount_paid_minor,
        PaymentLink.currency,
        PaymentLink.invoice_number,
        PaymentLink.invoice_date,
        PaymentLink.due_date,
        PaymentLink.recipient_name,
        FirstEmail(PaymentLink.emails).label("first_email"),
        PaymentLink.locale,
        PaymentLink.expires_at,
        PaymentLink.paid_at,
        PaymentLink.source,
        Firm.name,
        FirmSettings.time_zone,
        FirmSettings.disclaimer,
        FirmSettings.recaptcha_enabled,
        FirmSettings.recaptcha_site_key,
        MerchantAccount.active,
        MerchantAccount.accepts_card,
        MerchantAccount.accepts_echeck,
        FirmSettings.reply_to_email,
        MerchantAccount.stripe_publishable_key,
        PaymentLink.last_opened_at,
        MerchantAccount.processor,
    )
    .join(Firm, Firm.id == PaymentLink.firm_id)
    # Both joins also on the firm: a link never shows another firm's account or settings.
    .join(
        MerchantAccount,
        and_(
            MerchantAccount.id == PaymentLink.merchant_account_id,
            MerchantAccount.firm_id == PaymentLink.firm_id,
        ),
    )
    .outerjoin(FirmSettings, FirmSettings.firm_id == PaymentLink.firm_id)
    # One statement object for every request: SQLAlchemy then reuses its compiled form and
    # result map as they are, where a statement built per call has its 27 columns matched
    # against the cached ones each time (a third of the request).
    .where(PaymentLink.token_hash == bindparam("token_hash"))
)

# Also one statement object for every request (see above).
_INVOICES = (
    select(
        LinkInvoice.invoice_number,
        LinkInvoice.matter_name,
        LinkInvoice.due_on,
        LinkInvoice.amount_minor,
    )
    .where(LinkInvoice.link_id == bindparam("link_id"))
    .order_by(LinkInvoice.position)
)


# Runs a statement with its parameters and returns its rows (as tuples in column order): the
# session's connection for most views, the driver's own for the payment page (readpath.py).
Run = Callable[[Executable, dict[str, Any]], Sequence[Sequence[Any]]]


def _at(key: str) -> int:
    """Where the column ``key`` is in a row of _FACTS."""
    [index] = [i for i, column in enumerate(_FACTS.selected_columns) if column.key == key]
    return index


# Where the columns the page needs on every request are in a row of _FACTS (the link's source:
# a Connect link's invoices are read too).
_SOURCE_AT = _at("source")
_ID_AT = _at("id")
_STATUS_AT = _at("status")
_LOCALE_AT = _at("locale")
_EXPIRES_AT = _at("expires_at")
_LAST_OPENED_AT = _at("last_opened_at")


def _column(index: int) -> Any:
    """A LinkRead attribute: the value at ``index`` of its row."""
    return property(lambda read: read._row[index])


class LinkRead:
    """A link as the payment page read it: the row of _FACTS (and a Connect link's invoices).

    What the page needs on every request comes straight from the row: the link's id, status,
    expiry, language and last open, and ``key``, the whole row but the last open (everything
    the facts are made of). The LinkFacts are made from it only when asked for: a page served
    from the page cache, keyed by ``key``, never needs them, and making them (25 fields of a
    frozen dataclass, then hashing and comparing them as the cache's key) cost about a tenth
    of that page's view."""

    __slots__ = ("_facts", "_invoices", "_row")

    def __init__(self, row: Sequence[Any], invoices: tuple[InvoiceLine, ...]):
        self._row = tuple(row)
        self._invoices = invoices
        self._facts: LinkFacts | None = None

    link_id: int = _column(_ID_AT)
    status: str = _column(_STATUS_AT)
    expires_at: dt.datetime | None = _column(_EXPIRES_AT)
    locale: str = _column(_LOCALE_AT)
    last_opened_at: dt.datetime | None = _column(_LAST_OPENED_AT)

    @property
    def key(self) -> tuple[Any, ...]:
        """The row and invoices, but the last open (as LinkFacts compares: see there)."""
        row = self._row
        return (row[:_LAST_OPENED_AT], row[_LAST_OPENED_AT + 1 :], self._invoices)

    def state(self, now: dt.datetime) -> str:
        """As LinkFacts.state."""
        return state_at(self, now)

    @property
    def facts(self) -> LinkFacts:
        if self._facts is None:
            self._facts = _facts_of(self._row, self._invoices)
        return self._facts


def link_facts(dbsession: Session, token: str) -> LinkFacts | None:
    """The facts of the link whose URL secret is ``token``, or None if there is none."""
    return read_link_facts(dbsession.connection(), token)


def read_link_facts(connection: Connection, token: str) -> LinkFacts | None:
    """The same, on ``connection`` as it is (in its transaction, if it has one)."""
    read = read_link(connection, token)
    return read.facts if read is not None else None


def read_link(connection: Connection, token: str) -> LinkRead | None:
    """The link as the page reads it, on ``connection`` as it is."""

    # Core rows: no ORM objects are wanted, only values.
    def run(statement: Executable, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return connection.execute(statement, params).all()

    return read_with(run, token)


def facts_with(run: Run, token: str) -> LinkFacts | None:
    """The facts, with ``run`` running the statements."""
    read = read_with(run, token)
    return read.facts if read is not None else None


def read_with(run: Run, token: str) -> LinkRead | None:
    """The link as the page reads it, with ``run`` running the statements."""
    if not possible_token(token):
        return None
    rows = run(_FACTS, {"token_hash": sha256_hex(token)})
    if not rows:
        return None
    row = rows[0]  # token_hash is unique
    invoices: tuple[InvoiceLine, ...] = ()
    if row[_SOURCE_AT] == SOURCE_CONNECT:
        lines = run(_INVOICES, {"link_id": row[_ID_AT]})
        invoices = tuple(InvoiceLine(*line) for line in lines)
    return LinkRead(row, invoices)


def _facts_of(row: Any, invoices: tuple[InvoiceLine, ...]) -> LinkFacts:
    (
        link_id,
        token_hash,
        status,
        amount_minor,
        amount_paid_minor,
        currency,
        invoice_number,
        invoice_date,
        due_date,
        recipient_name,
        first_email,
        locale,
        expires_at,
        paid_at,
        _source,
        firm_name,
        time_zone,
        disclaimer,
        recaptcha_enabled,
        recaptcha_site_key,
        active,
        accepts_card,
        accepts_echeck,
        reply_to_email,
        publishable_key,
        last_opened_at,
        processor,
    ) = row
    methods = (METHOD_CARD,) * bool(accepts_card) + (METHOD_ECHECK,) * bool(accepts_echeck)
    return LinkFacts(
        link_id=link_id,
        token_hash=token_hash,
        status=status,
        amount_minor=amount_minor,
        amount_paid_minor=amount_paid_minor,
        currency=currency,
        invoice_number=invoice_number,
        invoice_date=invoice_date,
        due_date=due_date,
        recipient_name=recipient_name,
        first_email=first_email or "",
        locale=locale,
        expires_at=expires_at,
        paid_at=paid_at,
        firm_name=firm_name,
        time_zone=time_zone or DEFAULT_TIME_ZONE,
        disclaimer=(disclaimer or "").strip(),
        # The site key only counts while reCAPTCHA is on.
        recaptcha_site_key=(recaptcha_site_key or "") if recaptcha_enabled else "",
        account_active=bool(active),
        methods=methods,
        invoices=invoices,
        firm_email=reply_to_email or "",
        publishable_key=publishable_key or "",
        processor=processor or "",
        last_opened_at=last_opened_at,
    )
