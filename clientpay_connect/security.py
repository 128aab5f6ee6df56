"""Who is asking (staff session or API bearer token) and what they may do.

Permissions are named constants; every view declares one. ``PUBLIC`` views are the payer's
side and the login page; ``STAFF`` needs any active user; ``ADMIN`` needs an admin.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from pyramid.authentication import SessionAuthenticationHelper
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.security import Allowed, Denied
from pyramid.session import SignedCookieSessionFactory
from sqlalchemy import String, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from clientpay_connect.accounts.models import ApiToken, StaffSession, User
from clientpay_connect.config import as_bool, check_browser_settings, embedding_configured
from clientpay_connect.crypto import Encryptor, encryption_keys, sha256_hex
from clientpay_connect.db import (
    DriverStatement,
    as_loaded,
    read_session,
    sqlite_may_write,
    utcnow,
)
from clientpay_connect.work import Work

PUBLIC = "public"
STAFF = "staff"
ADMIN = "admin"

SESSION_COOKIE = "clientpay_session"
# How precisely an API token's last use is recorded: one write per token per minute at most.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
API_TOKEN_PREFIX = "cpc_"  # noqa: S105 (a marker, not a secret)

log = logging.getLogger(__name__)


def bearer_token(request: Request) -> str | None:
    auth = request.authorization
    if auth is None or auth.authtype.lower() != "bearer":
        return None
    params = auth.params
    return params if isinstance(params, str) else None


def uses_bearer_token(request: Request) -> bool:
    return request.authorization is not None and request.authorization.authtype.lower() == "bearer"


class SecurityPolicy:
    def __init__(self) -> None:
        self.session_helper = SessionAuthenticationHelper()

    def identity(self, request: Request) -> User | None:
        user: User | None = request.user
        return user

    def authenticated_userid(self, request: Request) -> int | None:
        user = request.user
        return user.id if user is not None else None

    def permits(self, request: Request, context: Any, permission: str) -> Allowed | Denied:
        if permission == PUBLIC:
            return Allowed("public")
        user = request.user
        if user is None:
            return Denied("not signed in")
        if permission == STAFF:
            return Allowed("active user")
        if permission == ADMIN:
            return Allowed("admin") if user.is_admin else Denied("admins only")
        return Denied(f"unknown permission {permission!r}")

    def remember(self, request: Request, userid: Any, **kw: Any) -> list[tuple[str, str]]:
        return self.session_helper.remember(request, userid, **kw)

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        return self.session_helper.forget(request, **kw)


def session_principal(user: User, key: str) -> str:
    """What the session cookie remembers: the user, the version that "sign out everywhere" (or
    a password change) bumps, and the key of this sign-in's row (StaffSession)."""
    return f"{user.id}:{user.session_version}:{key}"


def _principal_parts(principal: Any) -> tuple[int, str, str] | None:
    if not isinstance(principal, str):
        return None
    user_id, _, rest = principal.partition(":")
    version, _, key = rest.partition(":")
    if not user_id.isdigit() or not version or not key:
        return None
    return int(user_id), version, key


def session_key(request: Request) -> str | None:
    """The key of the sign-in that the request's session cookie names, if any."""
    parts = _principal_parts(request.session.get("auth.userid"))
    return parts[2] if parts is not None else None


# The token and its user in one round trip, run straight on the driver (db.DriverStatement),
# the user made an object as a query would have made it (db.as_loaded): the ORM's loading
# of the token and the user as objects took longer than the look-up's round trip.
TOKEN_AND_USER = (
    select(ApiToken.id, ApiToken.revoked_at, ApiToken.last_used_at, *User.__table__.columns)
    .join(User, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("key_hash", None, type_=String))
)


@functools.lru_cache(maxsize=8)
def _token_lookup(dialect: Any) -> DriverStatement:
    return DriverStatement(TOKEN_AND_USER, dialect)


# Made once, its values bound when it runs: SQLAlchemy works a statement's cache key out
# once per statement object, and it runs on every request signed in.
SIGN_IN_AND_USER = (
    select(StaffSession, User)
    .join(User, StaffSession.user_id == User.id)
    .where(StaffSession.key_hash == bindparam("key_hash"), User.id == bindparam("user_id"))
)


def load_user(request: Request) -> User | None:
    """The request's user: from the bearer token when one is sent, else from the session."""
    if uses_bearer_token(request):
        return _user_from_token(request, bearer_token(request))
    return _user_from_session(request)


def _user_from_token(request: Request, token: str | None) -> User | None:
    if not token:
        return None
    # Through read_session: a request outside the transaction manager reads on its own.
    session = read_session(request)
    connection = session.connection()
    found = _token_lookup(connection.dialect).rows(connection, {"key_hash": sha256_hex(token)})
    if not found:
        return None
    token_id, revoked_at, last_used_at, *columns = found[0]
    user = as_loaded(session, User, columns)
    if revoked_at is not None or not user.active:
        return None
    _note_use(request, token_id, last_used_at)
    return user


def _note_use(request: Request, token_id: int, last_used_at: dt.datetime | None) -> None:
    """Record when the token was last used: at most once a minute, in a short write of its
    own once the request is done. Never in the request's transaction, which for a read must
    not write: on SQLite it began DEFERRED, and upgrading it to a writer fails ("database is
    locked") whenever a job has written since it began."""
    now = utcnow()
    if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
        return

    def record(request: Request) -> None:
        # After the request's transaction, so that a thread holds one connection at a time.
        try:
            record_token_use(request.registry, token_id, now)
        except SQLAlchemyError:
            # Bookkeeping, not the request's business: the next use records it.
            log.warning("could not record the use of API token %s", token_id, exc_info=True)

    request.add_finished_callback(record)


def record_token_use(registry: Registry, token_id: int, now: dt.datetime) -> None:
    """Set the token's last_used_at to ``now`` unless it was set less than a minute ago."""
    may_write = sqlite_may_write.set(True)  # a writer: it queues for the write lock
    try:
        with Work.fresh(registry) as work:
            work.dbsession.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token_id,
                    or_(
                        ApiToken.last_used_at.is_(None),
                        ApiToken.last_used_at <= now - LAST_USED_RESOLUTION,
                    ),
                )
                .values(last_used_at=now)
            )
    finally:
        sqlite_may_write.reset(may_write)


def _user_from_session(request: Request) -> User | None:
    parts = _principal_parts(request.session.get("auth.userid"))
    if parts is None:
        return None
    user_id, version, key = parts
    # The cookie is signed, but a signature cannot be taken back: the row on the server is
    # what says the sign-in still holds (not signed out, not past its lifetime).
    params = {"key_hash": sha256_hex(key), "user_id": user_id}
    found = read_session(request).execute(SIGN_IN_AND_USER, params).one_or_none()
    if found is None:
        return None
    staff_session, user = found
    if staff_session.expires_at <= utcnow():
        return None
    if not user.active or str(user.session_version) != version:
        return None
    checked: User = user
    return checked


def firm_id(request: Request) -> int:
    """The firm every query of this request is scoped to."""
    user = request.user
    if user is None:
        raise RuntimeError("firm_id asked for on an anonymous request")
    return int(user.firm_id)


def csrf_applies(request: Request) -> bool:
    # A bearer-token call carries no cookie, so there is nothing for a forged request to ride on.
    return not uses_bearer_token(request)


def partitioned(response: Any, cookie_name: str) -> None:
    """Add ``Partitioned`` (CHIPS) to the ``cookie_name`` cookies that ``response`` sets.

    WebOb cannot write the attribute, so it is added to the header WebOb wrote. A browser
    that blocks third-party cookies still keeps a partitioned one, in a jar of the framing
    site's own: the panel's session lives there, apart from any other site's frame of it."""
    prefix = cookie_name + "="
    headers = response.headerlist
    for index, (name, value) in enumerate(headers):
        if (
            name.lower() == "set-cookie"
            and value.startswith(prefix)
            and "partitioned" not in value.lower()
        ):
            headers[index] = (name, value + "; Partitioned")


def session_factory(settings: dict[str, Any]) -> Any:
    """The signed session cookie. Framed by another site (frame-ancestors lists one), it is
    ``SameSite=None; Secure; Partitioned``: a Lax cookie is not sent in a cross-site frame, so
    no form there would ever find its CSRF token; and browsers that block third-party cookies
    (Chrome's default, Safari, Firefox) keep only a partitioned one."""
    embedded = embedding_configured(settings)
    signed = SignedCookieSessionFactory(
        settings["clientpay.secret"],
        cookie_name=SESSION_COOKIE,
        secure=True if embedded else as_bool(settings["clientpay.cookie_secure"]),
        httponly=True,
        samesite="None" if embedded else settings["clientpay.cookie_samesite"],
        max_age=None,
        timeout=int(settings["clientpay.session_max_age"]),
        reissue_time=300,
    )
    if not embedded:
        return signed

    class PartitionedSession(signed):  # type: ignore[misc,valid-type]
        def _set_cookie(self, response: Any) -> bool:
            # Every path that writes the cookie (a change, a reissue) passes here.
            written: bool = super()._set_cookie(response)
            if written:
                partitioned(response, SESSION_COOKIE)
            return written

    return PartitionedSession


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    # Here, before anything is served: a cookie the browser rejects would otherwise fail every
    # request (WebOb raises on SameSite=None without Secure) or sign nobody in.
    check_browser_settings(settings)
    config.set_session_factory(session_factory(settings))
    config.set_security_policy(SecurityPolicy())
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True, callback=csrf_applies)
    config.set_default_permission(STAFF)
    config.add_request_method(load_user, "user", reify=True)
    encryptor = Encryptor(encryption_keys(settings))
    config.registry["clientpay.encryptor"] = encryptor
    config.add_request_method(lambda request: encryptor, "encryptor", reify=True)
