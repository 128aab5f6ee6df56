"""Staff sessions on the server: one row per sign-in, ended by signing out, all of a person's
ended at once by "sign out everywhere", a password change or deactivation."""

from __future__ import annotations

import datetime as dt

from pyramid.request import Request
from pyramid.security import forget, remember
from sqlalchemy import delete
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import StaffSession, User
from clientpay_connect.crypto import new_token, sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.security import session_key, session_principal


def session_lifetime(request: Request) -> dt.timedelta:
    return dt.timedelta(seconds=int(request.registry.settings["clientpay.session_lifetime"]))


def start_session(request: Request, user: User) -> list[tuple[str, str]]:
    """Sign ``user`` in on a fresh session; returns the headers that set its cookie."""
    now = utcnow()
    # This person's sign-ins that ran out: nothing reads them any more.
    request.dbsession.execute(
        delete(StaffSession).where(StaffSession.user_id == user.id, StaffSession.expires_at <= now)
    )
    key = new_token()
    request.dbsession.add(
        StaffSession(
            firm_id=user.firm_id,
            user_id=user.id,
            key_hash=sha256_hex(key),
            created_at=now,
            expires_at=now + session_lifetime(request),
        )
    )
    user.last_login_at = now
    # A fresh session on sign-in: nothing planted before it carries over (session fixation).
    request.session.invalidate()
    headers = remember(request, session_principal(user, key))
    request.session.new_csrf_token()
    return headers


def end_session(request: Request) -> list[tuple[str, str]]:
    """Sign this browser out: its row goes, so a copy of its cookie opens nothing either."""
    key = session_key(request)
    if key is not None:
        request.dbsession.execute(
            delete(StaffSession).where(StaffSession.key_hash == sha256_hex(key))
        )
    headers = forget(request)
    request.session.invalidate()
    return headers


def purge_sessions(dbsession: Session, now: dt.datetime) -> int:
    """Delete every session whose lifetime ended before ``now``."""
    result = dbsession.execute(
        delete(StaffSession)
        .where(StaffSession.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
