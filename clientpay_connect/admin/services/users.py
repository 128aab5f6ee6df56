"""The firm's people: adding them, renaming, changing role, (de)activating, resetting a
password; never leaving the firm without an active admin."""

from __future__ import annotations

from pyramid.request import Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import ROLE_ADMIN, ROLES, Firm, User
from clientpay_connect.accounts.services import (
    MIN_PASSWORD_LENGTH,
    audit,
    create_user,
    end_all_sessions,
    find_user_by_email,
    generate_password,
    is_valid_email,
    normalize_email,
    revoke_api_tokens,
    set_password,
)
from clientpay_connect.admin.services.checks import Problems, check_name, clean_text, firm_row
from clientpay_connect.api.errors import FieldErrors, conflict
from clientpay_connect.security import firm_id

# Addresses are unique across the whole service, not per firm: sign-in asks only for the
# address (and a launch from the matter software names only the address), so two firms' people
# cannot share one. A taken address must therefore be refused, but the refusal says no more
# than that: the same words whether the address is this firm's user or another firm's, and
# nothing of who, where or in what state. (An admin could tell an address of their own list by
# looking at it, but learns nothing about other firms beyond "not available".)
EMAIL_UNAVAILABLE = "This email address is not available for a new user. Use a different address."


def firm_users(dbsession: Session, firm: int) -> list[User]:
    return list(
        dbsession.execute(
            select(User).where(User.firm_id == firm).order_by(User.email, User.id)
        ).scalars()
    )


def firm_user(dbsession: Session, firm: int, user_id: int) -> User:
    return firm_row(dbsession, User, firm, user_id)


def add_user(
    request: Request, email: str, name: str, role: str, password: str | None = None
) -> tuple[User, str | None]:
    """Create a user of the acting admin's firm; return it and the generated password, if any."""
    email = normalize_email(clean_text(email))
    name = clean_text(name)
    problems = Problems()
    if not is_valid_email(email):
        problems.add("email", "Enter an email address like name@example.com.")
    elif find_user_by_email(request.dbsession, email) is not None:
        problems.add("email", EMAIL_UNAVAILABLE)
    check_name(problems, "name", name)
    if role not in ROLES:
        problems.add("role", "Choose admin or staff.")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        problems.add("password", f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    problems.raise_if_any()
    generated = generate_password() if password is None else None
    firm = request.dbsession.get(Firm, firm_id(request))
    try:
        with request.dbsession.begin_nested():
            user = create_user(request.dbsession, firm, email, role, password or generated, name)
    except IntegrityError:
        # Another request took the address between our check and our insert.
        raise FieldErrors([{"field": "email", "message": EMAIL_UNAVAILABLE}]) from None
    audit(request, "user.created", user, email=user.email, role=user.role)
    return user, generated


def update_user(
    request: Request,
    user: User,
    *,
    name: str | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> User:
    """Rename, change role, (de)activate; an admin never locks the firm (or themself) out."""
    problems = Problems()
    if name is not None:
        name = clean_text(name)
        check_name(problems, "name", name)
    if role is not None and role not in ROLES:
        problems.add("role", "Choose admin or staff.")
    problems.raise_if_any()
    _refuse_lockout(request, user, role, active)
    if name is not None and name != user.name:
        audit(request, "user.renamed", user, old=user.name, new=name)
        user.name = name
    if role is not None and role != user.role:
        audit(request, "user.role_changed", user, old=user.role, new=role)
        user.role = role
    if active is not None and active != user.active:
        _set_active(request, user, active)
    return user


def _set_active(request: Request, user: User, active: bool) -> None:
    user.active = active
    if not active:
        # Sessions opened before the deactivation must not come back on reactivation.
        end_all_sessions(user)
    # Nor its tokens, which an inactive user's refusal only hid: revoked on the way out, and
    # again on the way back in case any was left in force (a deactivation made outside this
    # page, straight in the database or by an older version). A reactivated person who needs
    # one gets a new token.
    revoked = revoke_api_tokens(user)
    audit(
        request,
        "user.reactivated" if active else "user.deactivated",
        user,
        email=user.email,
        api_tokens_revoked=revoked,
    )


def _refuse_lockout(request: Request, user: User, role: str | None, active: bool | None) -> None:
    loses_admin = (role is not None and role != ROLE_ADMIN) or active is False
    # The firm-wide rule first: when it applies it is the reason, whoever asks.
    if (
        user.is_admin
        and user.active
        and loses_admin
        and _other_active_admins(request.dbsession, user) == 0
    ):
        raise conflict("last_admin", "The firm must keep at least one active admin.")
    if user.id != request.user.id:
        return
    if active is False:
        raise conflict("cannot_deactivate_self", "You cannot deactivate your own account.")
    if role is not None and role != ROLE_ADMIN:
        raise conflict(
            "cannot_demote_self",
            "You cannot remove your own admin role; another admin can do it for you.",
        )


def _other_active_admins(dbsession: Session, user: User) -> int:
    # Lock the firm row first: two admins demoting each other at the same moment would
    # otherwise each see the other still in place and leave the firm with none (PostgreSQL;
    # SQLite writers are already serialised by BEGIN IMMEDIATE).
    dbsession.execute(select(Firm.id).where(Firm.id == user.firm_id).with_for_update())
    count = dbsession.execute(
        select(func.count(User.id)).where(
            User.firm_id == user.firm_id,
            User.id != user.id,
            User.role == ROLE_ADMIN,
            User.active.is_(True),
        )
    ).scalar_one()
    return int(count)


def reset_password(request: Request, user: User) -> str:
    """Give ``user`` a new generated password (shown once); their sessions end and their API
    tokens are revoked (set_password)."""
    password = generate_password()
    set_password(user, password)
    audit(request, "user.password_reset", user, email=user.email)
    return password
