"""Creating links and finding them again; the link's secret stays out of the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import FirmSettings, MerchantAccount
from clientpay_connect.crypto import Encryptor, new_token, sha256_hex
from clientpay_connect.db import possible_id, utcnow
from clientpay_connect.links.models import (
    EMAIL_NOT_SENT,
    EMAIL_QUEUED,
    SOURCE_QUICK,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    PaymentLink,
)
from clientpay_connect.mail.models import KIND_LINK
from clientpay_connect.mail.outbox import queue_email
from clientpay_connect.money import amount_writer
from clientpay_connect.notifications.services import LinkFacts
from clientpay_connect.work import Work


@dataclass
class NewLink:
    """What a link is made of, before it exists."""

    merchant_account: MerchantAccount
    amount_minor: int
    source: str = SOURCE_QUICK
    invoice_number: str = ""
    invoice_date: dt.date | None = None
    due_date: dt.date | None = None
    recipient_name: str = ""
    emails: list[str] = field(default_factory=list)
    message: str = ""
    locale: str = "en"
    parent_link_id: int | None = None


def expiry_for(dbsession: Session, firm_id: int, now: dt.datetime) -> dt.datetime | None:
    settings = dbsession.get(FirmSettings, firm_id)
    days = settings.link_expiry_days if settings is not None else 30
    return now + dt.timedelta(days=days) if days else None


def create_link(
    dbsession: Session, encryptor: Encryptor, creator: User | None, new: NewLink
) -> tuple[PaymentLink, str]:
    """Insert a link and return it with its secret token (to build the URL; never stored)."""
    token = new_token()
    now = utcnow()
    firm_id = new.merchant_account.firm_id
    link = PaymentLink(
        firm_id=firm_id,
        merchant_account_id=new.merchant_account.id,
        source=new.source,
        token_hash=sha256_hex(token),
        token_encrypted=encryptor.encrypt(token),
        amount_minor=new.amount_minor,
        amount_paid_minor=0,
        currency=new.merchant_account.currency,
        invoice_number=new.invoice_number,
        invoice_date=new.invoice_date,
        due_date=new.due_date,
        recipient_name=new.recipient_name,
        emails=list(new.emails),
        message=new.message,
        locale=new.locale,
        status=STATUS_OUTSTANDING,
        created_at=now,
        created_by_user_id=creator.id if creator is not None else None,
        expires_at=expiry_for(dbsession, firm_id, now),
        parent_link_id=new.parent_link_id,
    )
    dbsession.add(link)
    dbsession.flush()
    return link, token


def link_token(encryptor: Encryptor, link: PaymentLink) -> str:
    return encryptor.decrypt(link.token_encrypted)


def public_base_url(settings: dict[str, Any], request: Any = None) -> str:
    """Where payers reach us: the clientpay.public_url setting, else this request's own URL."""
    configured = str(settings.get("clientpay.public_url") or "").rstrip("/")
    if configured:
        return configured
    if request is None:
        raise RuntimeError("clientpay.public_url is not set and there is no request to go by")
    return str(request.application_url).rstrip("/")


def pay_url(base_url: str, token: str) -> str:
    return f"{base_url}/pay/{token}"


class Expiring(Protocol):
    """A link, or what is known of one (pay/facts.py)."""

    @property
    def status(self) -> str: ...

    @property
    def expires_at(self) -> dt.datetime | None: ...


def is_past_expiry(link: Expiring, now: dt.datetime) -> bool:
    """Outstanding but overdue: expired, whether or not the expiry job has run yet."""
    return (
        link.status == STATUS_OUTSTANDING and link.expires_at is not None and link.expires_at <= now
    )


class Payable(Expiring, Protocol):
    """A link, or what is known of one, as far as paying it goes."""

    @property
    def account_active(self) -> bool: ...


# Why a payer cannot pay a link now, as the API's error codes say it.
REFUSED_EXPIRED = "link_expired"
REFUSED_NOT_PAYABLE = "link_not_payable"
REFUSED_ACCOUNT_INACTIVE = "merchant_account_inactive"


def payment_refusal(link: Payable, now: dt.datetime) -> str | None:
    """Why ``link`` cannot take a payment at ``now``, or None if it can.

    The one rule for the payer's page (which then offers no form) and the payment API
    (which then charges nothing): they must never disagree about whether a link is payable.
    """
    if link.status == STATUS_EXPIRED or is_past_expiry(link, now):
        return REFUSED_EXPIRED
    if link.status != STATUS_OUTSTANDING:
        return REFUSED_NOT_PAYABLE
    if not link.account_active:
        # The firm stopped taking money into this account: nothing may be charged to it.
        return REFUSED_ACCOUNT_INACTIVE
    return None


# Longer than any token we issue (43 characters): such a string names no link, and is not
# worth hashing.
MAX_TOKEN_LENGTH = 100


def possible_token(token: str) -> bool:
    return bool(token) and len(token) <= MAX_TOKEN_LENGTH


def find_by_token(dbsession: Session, token: str) -> PaymentLink | None:
    if not possible_token(token):
        return None
    return dbsession.execute(
        select(PaymentLink).where(PaymentLink.token_hash == sha256_hex(token))
    ).scalar_one_or_none()


def possible_link_id(link_id: int) -> bool:
    return possible_id(link_id)


def get_for_firm(dbsession: Session, firm_id: int, link_id: int) -> PaymentLink | None:
    if not possible_link_id(link_id):
        return None
    return dbsession.execute(
        select(PaymentLink).where(PaymentLink.id == link_id, PaymentLink.firm_id == firm_id)
    ).scalar_one_or_none()


def claim(dbsession: Session, link_id: int) -> bool:
    """Move the link from outstanding to processing; False if someone else got there first.

    A conditional UPDATE is atomic on both databases, so of any number of concurrent
    payers exactly one sees a row changed.
    """
    result = dbsession.execute(
        update(PaymentLink)
        .where(PaymentLink.id == link_id, PaymentLink.status == STATUS_OUTSTANDING)
        .values(status=STATUS_PROCESSING, processing_started_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def release(dbsession: Session, link_id: int) -> bool:
    """Give a claimed link back (the attempt failed): payable again."""
    result = dbsession.execute(
        update(PaymentLink)
        .where(PaymentLink.id == link_id, PaymentLink.status == STATUS_PROCESSING)
        .values(status=STATUS_OUTSTANDING, processing_started_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


STATUS_LABELS = {
    STATUS_OUTSTANDING: "Outstanding",
    STATUS_PROCESSING: "Processing",
    STATUS_PAID: "Payment Received",
    STATUS_PARTIALLY_PAID: "Partially Paid",
    STATUS_CANCELLED: "Cancelled",
    STATUS_EXPIRED: "Expired",
}
SKIP_NOT_FOUND = "not_found"
SKIP_NOT_OUTSTANDING = "not_outstanding"


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def link_url(request: Any, link: PaymentLink) -> str:
    """The payer's URL of ``link``, for staff to copy again."""
    base = public_base_url(request.registry.settings, request)
    return pay_url(base, link_token(request.encryptor, link))


def token_urls(request: Any) -> Callable[[str], str]:
    """A link's payer URL from its encrypted token (as link_url makes it), with the base URL
    found once for a page or an export of many links rather than once per link."""
    base, encryptor = public_base_url(request.registry.settings, request), request.encryptor
    return lambda token_encrypted: pay_url(base, encryptor.decrypt(token_encrypted))


def queue_link_email(work: Work, link: PaymentLink) -> None:
    """Email the link to its addresses once this transaction commits (the outbox row is
    written now, in it, so a crash cannot lose the email or send one for a rolled-back link)."""
    queue_email(
        work,
        firm_id=link.firm_id,
        kind=KIND_LINK,
        recipients=list(link.emails),
        link_id=link.id,
    )
    # sent_at is the mail job's to set, when the message has really gone.
    link.email_status = EMAIL_QUEUED


def balance_link_of(dbsession: Session, link: PaymentLink) -> PaymentLink | None:
    return dbsession.execute(
        select(PaymentLink)
        .where(PaymentLink.parent_link_id == link.id, PaymentLink.firm_id == link.firm_id)
        .order_by(PaymentLink.id)
        .limit(1)
    ).scalar_one_or_none()


def balance_due(link: PaymentLink) -> int:
    """What a partial payment left unpaid; nothing for a link not partially paid."""
    if link.status != STATUS_PARTIALLY_PAID:
        return 0
    return max(link.amount_minor - link.amount_paid_minor, 0)


class BalanceLinkRefused(Exception):
    def __init__(self, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def lock_for_firm(dbsession: Session, firm_id: int, link_id: int) -> PaymentLink | None:
    """The link, row-locked until commit (PostgreSQL; SQLite's writers are serial anyway)."""
    if not possible_link_id(link_id):
        return None
    return dbsession.execute(
        select(PaymentLink)
        .where(PaymentLink.id == link_id, PaymentLink.firm_id == firm_id)
        .with_for_update()
    ).scalar_one_or_none()


def refuse_balance_link(dbsession: Session, parent: PaymentLink) -> None:
    """Raise BalanceLinkRefused unless ``parent`` may have a balance link made now."""
    if balance_due(parent) <= 0:
        raise BalanceLinkRefused("no_balance", "This link has no unpaid balance.")
    existing = balance_link_of(dbsession, parent)
    if existing is not None:
        raise BalanceLinkRefused(
            "balance_link_exists",
            "A balance link for this link already exists.",
            balance_link_id=existing.id,
        )
    if not parent.merchant_account.active:
        raise BalanceLinkRefused(
            "merchant_account_inactive", "The link's merchant account is no longer active."
        )


def create_balance_link(
    dbsession: Session, encryptor: Encryptor, creator: User | None, parent: PaymentLink
) -> tuple[PaymentLink, str]:
    """A new link for what a partial payment left unpaid, with the parent's details.

    The caller holds the parent's row lock (``lock_for_firm``), so two clicks at once make
    one balance link, not two.
    """
    refuse_balance_link(dbsession, parent)
    return create_link(dbsession, encryptor, creator, _balance_details(parent, balance_due(parent)))


def _balance_details(parent: PaymentLink, remaining: int) -> NewLink:
    return NewLink(
        merchant_account=parent.merchant_account,
        amount_minor=remaining,
        source=parent.source,
        invoice_number=parent.invoice_number,
        invoice_date=parent.invoice_date,
        due_date=parent.due_date,
        recipient_name=parent.recipient_name,
        emails=list(parent.emails),
        message=parent.message,
        locale=parent.locale,
        parent_link_id=parent.id,
    )


def was_emailed(link: PaymentLink) -> bool:
    return bool(link.emails) and link.email_status != EMAIL_NOT_SENT


@dataclass
class CancelResult:
    cancelled: list[PaymentLink]
    skipped: list[dict[str, Any]]


def cancel_links(
    dbsession: Session, firm_id: int, ids: list[int], now: dt.datetime | None = None
) -> CancelResult:
    """Cancel those of ``ids`` that are outstanding; say why each other one was skipped.

    One conditional UPDATE: a link a payer claimed a moment ago is no longer outstanding
    and stays untouched, whatever this request read before.
    """
    wanted = list(dict.fromkeys(ids))
    possible = [i for i in wanted if possible_link_id(i)]
    changed = set(
        dbsession.execute(
            update(PaymentLink)
            .where(
                PaymentLink.firm_id == firm_id,
                PaymentLink.id.in_(possible),
                PaymentLink.status == STATUS_OUTSTANDING,
            )
            .values(status=STATUS_CANCELLED, cancelled_at=now or utcnow())
            .returning(PaymentLink.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    links = _firm_links(dbsession, firm_id, possible)
    cancelled = [links[i] for i in wanted if i in changed]
    skipped = [_skip_reason(i, links.get(i)) for i in wanted if i not in changed]
    return CancelResult(cancelled, skipped)


def _firm_links(dbsession: Session, firm_id: int, ids: list[int]) -> dict[int, PaymentLink]:
    rows = dbsession.execute(
        select(PaymentLink)
        .where(PaymentLink.firm_id == firm_id, PaymentLink.id.in_(ids))
        .execution_options(populate_existing=True)
    ).scalars()
    return {link.id: link for link in rows}


def _skip_reason(link_id: int, link: PaymentLink | None) -> dict[str, Any]:
    if link is None:
        return {"id": link_id, "reason": SKIP_NOT_FOUND}
    return {"id": link_id, "reason": SKIP_NOT_OUTSTANDING, "status": link.status}


def expire_due_links(dbsession: Session, now: dt.datetime) -> list[LinkFacts]:
    """Mark outstanding links whose time is up as expired; what a notice says of each.

    Only ``outstanding`` rows change, in one statement: a link a payer has claimed
    (``processing``) finishes its payment instead of expiring under them. RETURNING names
    exactly the rows this statement changed, so a link two runs race for is told of once.
    """
    rows = dbsession.execute(
        update(PaymentLink)
        .where(
            PaymentLink.status == STATUS_OUTSTANDING,
            PaymentLink.expires_at.is_not(None),
            PaymentLink.expires_at <= now,
        )
        .values(status=STATUS_EXPIRED)
        .returning(
            PaymentLink.id,
            PaymentLink.firm_id,
            PaymentLink.invoice_number,
            PaymentLink.recipient_name,
            PaymentLink.amount_minor,
            PaymentLink.currency,
            PaymentLink.expires_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return [LinkFacts(*row) for row in rows]


# A link object's dates and timestamps, written as text by link_json and by orjson from
# link_values (api/plain_json.json_response).
DATE_FIELDS = ("invoice_date", "due_date")
TIMESTAMP_FIELDS = (
    "created_at",
    "sent_at",
    "expires_at",
    "paid_at",
    "cancelled_at",
    "first_opened_at",
    "last_opened_at",
)


def link_json(link: PaymentLink, url: str, balance_link_id: int | None = None) -> dict[str, Any]:
    """The API's link object, in plain values."""
    values = link_values(link, url, balance_link_id)
    for name in DATE_FIELDS:
        values[name] = _date_json(values[name])
    for name in TIMESTAMP_FIELDS:
        values[name] = timestamp_json(values[name])
    return values


def link_values(link: PaymentLink, url: str, balance_link_id: int | None = None) -> dict[str, Any]:
    """The API's link object with its dates and timestamps left as Python's (in UTC), for
    api/plain_json.json_response, whose orjson writes them as link_json would, in C: the
    text of seven timestamps and two dates a link, fifty links a page of Sent Pages, was a
    tenth of the page's time (tests/unit/test_api_values.py holds the two to one answer)."""
    currency = link.currency
    amount = amount_writer(currency)
    return {
        "id": link.id,
        "url": url,
        "status": link.status,
        "source": link.source,
        "merchant_account_id": link.merchant_account_id,
        "amount": amount(link.amount_minor),
        "amount_paid": amount(link.amount_paid_minor),
        "amount_refunded": amount(link.amount_refunded_minor),
        "currency": currency,
        "invoice_number": link.invoice_number,
        "invoice_date": link.invoice_date,
        "due_date": link.due_date,
        "recipient_name": link.recipient_name,
        "emails": list(link.emails),
        "message": link.message,
        "created_at": in_utc(link.created_at),
        "sent_at": in_utc(link.sent_at),
        "expires_at": in_utc(link.expires_at),
        "paid_at": in_utc(link.paid_at),
        "cancelled_at": in_utc(link.cancelled_at),
        "created_by": _creator_name(link),
        "created_by_user_id": link.created_by_user_id,
        "reminders_sent": link.reminders_sent,
        "first_opened_at": in_utc(link.first_opened_at),
        "last_opened_at": in_utc(link.last_opened_at),
        "reminders_off": link.reminders_off,
        "email_status": link.email_status,
        "locale": link.locale,
        "parent_link_id": link.parent_link_id,
        "balance_link_id": balance_link_id,
    }


# The zones a database hands UTC timestamps back in (PostgreSQL's by the session's TimeZone
# setting, "Etc/UTC" or "UTC"; SQLite's by UTCDateTime): a timestamp already in one of them
# is used as it is, with no new object.
_UTC_ZONES = frozenset({dt.UTC, ZoneInfo("UTC"), ZoneInfo("Etc/UTC")})


def in_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo in _UTC_ZONES:
        return value
    return value.astimezone(dt.UTC)


def _date_json(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def timestamp_json(value: dt.datetime | None) -> str | None:
    """The API's timestamp: UTC to the second, "2025-03-31T19:04:05Z"."""
    if value is None:
        return None
    if value.utcoffset() == _NO_OFFSET:
        # What the databases hand back (UTC already): written straight from its fields, at
        # half the cost of astimezone and isoformat (a link object has seven timestamps, a
        # page fifty links); tests/unit/test_api_values.py holds the two to the same answer.
        return _UTC_SECONDS % (
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
        )
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_NO_OFFSET = dt.timedelta(0)
_UTC_SECONDS = "%04d-%02d-%02dT%02d:%02d:%02dZ"


def _creator_name(link: PaymentLink) -> str | None:
    creator = link.created_by
    if creator is None:
        return None
    return creator.name or creator.email
