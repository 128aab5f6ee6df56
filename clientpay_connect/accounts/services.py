"""Passwords, API tokens, firms and people, and the audit trail."""

from __future__ import annotations

import functools
import re
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, object_session

from clientpay_connect.accounts.models import (
    ROLES,
    ApiToken,
    AuditEvent,
    Firm,
    StaffSession,
    User,
)
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.crypto import new_token, sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.security import API_TOKEN_PREFIX

_hasher = PasswordHasher()


# Verifying against this when the email is unknown takes as long as a real check, so the
# response time does not tell an attacker which addresses have accounts.
# Made on first use, not at import: hashing takes a noticeable moment that every CLI call and
# worker start would otherwise pay.
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
MIN_PASSWORD_LENGTH = 10


def normalize_email(email: str) -> str:
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    return len(email) <= 254 and EMAIL_RE.match(email) is not None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def check_password(user: User | None, password: str) -> bool:
    if user is None or not user.password_hash:
        _verify_quietly(_dummy_hash(), password)
        return False
    if not _verify_quietly(user.password_hash, password):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def _verify_quietly(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def find_user_by_email(dbsession: Session, email: str) -> User | None:
    return dbsession.execute(
        select(User).where(User.email == normalize_email(email))
    ).scalar_one_or_none()


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64] or "firm"


def create_firm(dbsession: Session, name: str, slug: str | None = None) -> Firm:
    firm = Firm(name=name.strip(), slug=slug or slugify(name))
    dbsession.add(firm)
    dbsession.flush()
    dbsession.add(FirmSettings(firm_id=firm.id))
    dbsession.flush()
    return firm


def create_user(
    dbsession: Session,
    firm: Firm,
    email: str,
    role: str,
    password: str | None = None,
    name: str = "",
) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    email = normalize_email(email)
    if not is_valid_email(email):
        raise ValueError(f"{email!r} is not a valid email address")
    user = User(
        firm_id=firm.id,
        email=email,
        name=name,
        role=role,
        active=True,
        password_hash=hash_password(password) if password else None,
    )
    dbsession.add(user)
    dbsession.flush()
    return user


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    # Whoever knew the old password may have signed in with it, and made tokens since: those
    # sessions end and those tokens stop working.
    end_all_sessions(user)
    revoke_api_tokens(user)


def end_all_sessions(user: User) -> None:
    """End every session of ``user``, wherever they signed in.

    The version in each session's cookie no longer matches, which is enough on its own (and
    works on a user not yet in a database session); the rows go too, when there are any."""
    user.session_version = (user.session_version or 1) + 1
    dbsession = object_session(user)
    if dbsession is not None and user.id is not None:
        dbsession.execute(delete(StaffSession).where(StaffSession.user_id == user.id))


def revoke_api_tokens(user: User) -> int:
    """Revoke every API token of ``user`` still in force; how many were."""
    dbsession = object_session(user)
    if dbsession is None or user.id is None:
        return 0  # not stored yet: no token can name it
    revoked = dbsession.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(revoked, "rowcount", 0) or 0)


def create_api_token(dbsession: Session, user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user``: the row (hash only) and the token, to be shown once."""
    token = new_token(API_TOKEN_PREFIX)
    row = ApiToken(
        firm_id=user.firm_id,
        user_id=user.id,
        name=name,
        token_hash=sha256_hex(token),
        prefix=token[: len(API_TOKEN_PREFIX) + 6],
    )
    dbsession.add(row)
    dbsession.flush()
    return row, token


def record(
    dbsession: Session,
    firm_id: int,
    action: str,
    *,
    actor: User | None = None,
    target: Any = None,
    details: dict[str, Any] | None = None,
    ip_address: str = "",
) -> AuditEvent:
    """Write an audit event for ``action`` (e.g. "user.created") in the current transaction."""
    event = AuditEvent(
        firm_id=firm_id,
        actor_user_id=actor.id if actor is not None else None,
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(getattr(target, "id", getattr(target, "firm_id", "")))
        if target is not None
        else "",
        details=details or {},
        ip_address=ip_address,
    )
    dbsession.add(event)
    return event


def audit(request: Any, action: str, target: Any = None, **details: Any) -> AuditEvent:
    """``record`` for the request's user and firm."""
    user: User = request.user
    return record(
        request.dbsession,
        user.firm_id,
        action,
        actor=user,
        target=target,
        details=details,
        ip_address=request.client_addr or "",
    )
