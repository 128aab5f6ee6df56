"""Creating links and finding them again; the link's secret stays out of the database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import FirmSettings, MerchantAccount
from clientpay_connect.crypto import Encryptor, new_token, sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import (
    SOURCE_QUICK,
    STATUS_OUTSTANDING,
    STATUS_PROCESSING,
    PaymentLink,
)


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


def find_by_token(dbsession: Session, token: str) -> PaymentLink | None:
    if not token or len(token) > 100:
        return None
    return dbsession.execute(
        select(PaymentLink).where(PaymentLink.token_hash == sha256_hex(token))
    ).scalar_one_or_none()


def get_for_firm(dbsession: Session, firm_id: int, link_id: int) -> PaymentLink | None:
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
