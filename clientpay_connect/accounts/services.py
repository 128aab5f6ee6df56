"""Passwords, API tokens, firms and people, and the audit trail."""

from __future__ import annotations

import datetime as dt
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
    PasswordReset,
    StaffSession,
    User,
)
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.crypto import Encryptor, new_token, sha256_hex
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
# argon2 hashes any length; a cap keeps a megabyte "password" from costing the server.
MAX_PASSWORD_LENGTH = 200


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
    """The one place a password changes (admin reset, the user's own change, a reset link)."""
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


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    return None


# Messages, not secrets (ruff's S105 reads any "password" name so).
WRONG_CURRENT_PASSWORD = "That is not your current password."  # noqa: S105
PASSWORDS_DIFFER = "The two new passwords differ."


def new_password_errors(new: str, repeated: str) -> dict[str, str]:
    """The form's field errors for a new password typed twice."""
    problem = password_problem(new)
    if problem:
        return {"new_password": problem}
    if new != repeated:
        return {"repeat_password": PASSWORDS_DIFFER}
    return {}


def change_own_password(user: User, current: str, new: str, repeated: str) -> dict[str, str]:
    """Change ``user``'s password if ``current`` is theirs; the field errors, if any."""
    errors = new_password_errors(new, repeated)
    if not check_password(user, current):
        errors = {"current_password": WRONG_CURRENT_PASSWORD, **errors}
    if not errors:
        set_password(user, new)
    return errors


# ---------------------------------------------------------------------- forgot password

# Long enough to read the email, short enough that an old inbox is no way in.
RESET_LIFETIME = dt.timedelta(hours=1)
RESET_TOKEN_PREFIX = "pr_"  # noqa: S105 (a marker, not a secret)


def start_password_reset(
    dbsession: Session, encryptor: Encryptor, user: User, now: dt.datetime
) -> PasswordReset:
    """A new single-use reset for ``user``; any earlier one stops working."""
    end_password_resets(dbsession, user, now)
    # 256 random bits; only the hash is looked up, the encrypted copy is for the email.
    token = new_token(RESET_TOKEN_PREFIX)
    reset = PasswordReset(
        firm_id=user.firm_id,
        user_id=user.id,
        token_hash=sha256_hex(token),
        token_encrypted=encryptor.encrypt(token),
        created_at=now,
        expires_at=now + RESET_LIFETIME,
    )
    dbsession.add(reset)
    dbsession.flush()
    return reset


def end_password_resets(dbsession: Session, user: User, now: dt.datetime) -> None:
    """Every open reset of ``user`` used up: after a new request or a password change."""
    for reset in dbsession.scalars(
        select(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
        )
    ):
        reset.used_at = now
        reset.token_encrypted = ""


def find_password_reset(dbsession: Session, token: str, now: dt.datetime) -> PasswordReset | None:
    """The reset ``token`` opens, if it is unused, unexpired and its user still active."""
    if not token.startswith(RESET_TOKEN_PREFIX) or len(token) > 100:
        return None
    reset = dbsession.execute(
        select(PasswordReset).where(PasswordReset.token_hash == sha256_hex(token))
    ).scalar_one_or_none()
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        return None
    if not reset.user.active:
        return None
    return reset


def finish_password_reset(
    dbsession: Session, reset: PasswordReset, password: str, now: dt.datetime
) -> bool:
    """Use the reset up and set the new password; False if it was used meanwhile.

    The claim is a conditional UPDATE, so two submissions of one link cannot both win.
    """
    claimed = dbsession.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
        .values(used_at=now, token_encrypted="")
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_password(reset.user, password)
    end_password_resets(dbsession, reset.user, now)
    return True


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
