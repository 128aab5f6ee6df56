"""Launch links, like an LTI launch: the matter software's server, holding an admin's API token,
asks for a URL that signs one of the firm's people in and opens a page; its frame opens it.

A launch is used once (a conditional UPDATE claims it, so two openings at once cannot both
win), within ``LAUNCH_LIFETIME``, and only for a person of the firm whose admin asked for it.
Only the token's hash is kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import find_user_by_email
from clientpay_connect.connect.services import find_connection
from clientpay_connect.crypto import new_token, sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.embed.models import EmbedLaunch
from clientpay_connect.money import AmountError, format_amount, parse_amount

LAUNCH_LIFETIME = dt.timedelta(seconds=60)
# How long a spent launch is kept: a while, to answer 410 (not 404) to a late second opening.
KEPT_AFTER_EXPIRY = dt.timedelta(hours=1)
OPEN_CONNECT = "connect"
OPEN_QUICK_LINK = "quick_link"
OPEN_SENT = "sent"
OPENS = (OPEN_CONNECT, OPEN_QUICK_LINK, OPEN_SENT)
# What each page takes from a launch (anything else sent is refused, not dropped unseen).
PAGE_FIELDS = {
    OPEN_CONNECT: ("connection_id", "client_id", "matter_id"),
    OPEN_QUICK_LINK: ("amount", "invoice_number"),
    OPEN_SENT: ("client_id",),
}
MAX_EXTERNAL_ID = 128  # the matter system's ids, as LinkInvoice keeps them
MAX_INVOICE_NUMBER = 100

FieldError = dict[str, str]


class LaunchRefused(Exception):
    """The launch asked for cannot be made; ``errors`` name each wrong field."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


class LaunchUnusable(Exception):
    """The launch URL no longer signs anyone in: used already, expired, or its person gone."""


@dataclass(frozen=True)
class Launch:
    row: EmbedLaunch
    token: str


def create_launch(dbsession: Session, issuer: User, body: dict[str, Any]) -> Launch:
    """A launch for ``body["user_email"]`` (a person of ``issuer``'s firm) opening
    ``body["open"]`` with that page's fields. Raises LaunchRefused naming every wrong field."""
    errors: list[FieldError] = []
    user = _launched_user(dbsession, issuer, str(body.get("user_email") or ""), errors)
    target = _target(dbsession, issuer.firm_id, body, errors)
    if errors or user is None:
        raise LaunchRefused(errors)
    token = new_token()
    now = utcnow()
    row = EmbedLaunch(
        firm_id=issuer.firm_id,
        user_id=user.id,
        issued_by_user_id=issuer.id,
        token_hash=sha256_hex(token),
        target=target,
        created_at=now,
        expires_at=now + LAUNCH_LIFETIME,
    )
    dbsession.add(row)
    dbsession.flush()
    return Launch(row, token)


def _launched_user(
    dbsession: Session, issuer: User, email: str, errors: list[FieldError]
) -> User | None:
    user = find_user_by_email(dbsession, email) if email.strip() else None
    # Another firm's person reads exactly like nobody: the answer tells nothing about them.
    if user is None or user.firm_id != issuer.firm_id or not user.active:
        errors.append({"field": "user_email", "message": "No active user of your firm has it."})
        return None
    return user


def _target(
    dbsession: Session, firm_id: int, body: dict[str, Any], errors: list[FieldError]
) -> dict[str, Any]:
    opens = str(body.get("open") or "")
    if opens not in OPENS:
        errors.append({"field": "open", "message": f"Open one of {', '.join(OPENS)}."})
        return {}
    fields = PAGE_FIELDS[opens]
    target: dict[str, Any] = {"open": opens}
    for name in ("connection_id", "client_id", "matter_id", "amount", "invoice_number"):
        value = body.get(name)
        if value is None or str(value).strip() == "":
            continue
        if name not in fields:
            errors.append({"field": name, "message": f"The {opens} page does not take it."})
            continue
        checked = _checked(dbsession, firm_id, name, str(value).strip(), errors)
        if checked is not None:
            target[name] = checked
    return target


def _checked(
    dbsession: Session, firm_id: int, name: str, value: str, errors: list[FieldError]
) -> str | None:
    problem = ""
    if name == "connection_id":
        if find_connection(dbsession, firm_id, value) is None:
            problem = "No such connection in your firm."
    elif name == "amount":
        try:
            value = format_amount(parse_amount(value))
        except AmountError as error:
            problem = str(error)
    elif name == "invoice_number" and len(value) > MAX_INVOICE_NUMBER:
        problem = f"At most {MAX_INVOICE_NUMBER} characters."
    elif name in ("client_id", "matter_id") and len(value) > MAX_EXTERNAL_ID:
        problem = f"At most {MAX_EXTERNAL_ID} characters."
    if problem:
        errors.append({"field": name, "message": problem})
        return None
    return value


def find_launch(dbsession: Session, token: str) -> EmbedLaunch | None:
    return dbsession.execute(
        select(EmbedLaunch).where(EmbedLaunch.token_hash == sha256_hex(token))
    ).scalar_one_or_none()


def redeem_launch(dbsession: Session, launch: EmbedLaunch) -> User:
    """Use ``launch`` up and return whom it signs in. Raises LaunchUnusable when it was used
    before (or is being used at this moment), has expired, or its person may not sign in."""
    now = utcnow()
    claimed = dbsession.execute(
        update(EmbedLaunch)
        .where(
            EmbedLaunch.id == launch.id,
            EmbedLaunch.used_at.is_(None),
            EmbedLaunch.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise LaunchUnusable("used or expired")
    user = launch.user
    if not user.active or user.firm_id != launch.firm_id:
        raise LaunchUnusable("the person may no longer sign in")
    return user


def purge_launches(dbsession: Session, now: dt.datetime) -> int:
    """Delete the launches that expired more than ``KEPT_AFTER_EXPIRY`` before ``now``."""
    result = dbsession.execute(
        delete(EmbedLaunch)
        .where(EmbedLaunch.expires_at < now - KEPT_AFTER_EXPIRY)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
