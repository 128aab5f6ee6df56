"""Signing in and out, and the home page that links the modules."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import limits
from pyramid.httpexceptions import HTTPFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.accounts.models import PasswordReset
from clientpay_connect.accounts.services import (
    audit,
    change_own_password,
    check_password,
    end_all_sessions,
    find_password_reset,
    find_user_by_email,
    finish_password_reset,
    new_password_errors,
    normalize_email,
    record,
    start_password_reset,
)
from clientpay_connect.accounts.sessions import end_session, session_lifetime, start_session
from clientpay_connect.db import utcnow
from clientpay_connect.mail.models import KIND_PASSWORD_RESET
from clientpay_connect.mail.outbox import queue_email
from clientpay_connect.security import PUBLIC, STAFF
from clientpay_connect.throttle.interfaces import IBackoff, IRateLimiter
from clientpay_connect.work import Work

# The same words whether or not the address has an account, so the page tells nobody which
# addresses do.
RESET_REQUESTED = (
    "If that address belongs to an active account, we have emailed it a link to choose a new "
    "password. The link works once, within the hour."
)


def _safe_next(request: Request, target: str | None) -> str:
    """Only a path on this site: an open redirect would help phishing."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
        ):
            return target
    return str(request.route_url("home"))


def _ip_limit(request: Request) -> tuple[str, str]:
    """Failed sign-ins from one address, whatever the accounts: a guesser trying many."""
    limit = request.registry.settings["clientpay.limits.login_failures_per_ip"]
    return limit, f"login-ip:{request.client_addr}"


def _account_key(request: Request, email: str) -> str:
    # Per address *and* IP: a stranger's wrong passwords slow the stranger down, never the
    # owner signing in from elsewhere (a lockout per account would let anyone lock anyone out).
    return f"login:{email}|{request.client_addr}"


def _failure_delay(request: Request, email: str) -> float:
    """Count a wrong password; the seconds it now costs before the next try from here."""
    settings = request.registry.settings
    return float(
        request.find_service(IBackoff).failed(
            _account_key(request, email),
            int(settings["clientpay.limits.login_free_failures"]),
            float(settings["clientpay.limits.login_delay_seconds"]),
            float(settings["clientpay.limits.login_longest_delay_seconds"]),
        )
    )


def _seconds_to_wait(request: Request, email: str) -> float:
    wait = float(request.find_service(IBackoff).wait(_account_key(request, email)))
    limit, key = _ip_limit(request)
    if not request.find_service(IRateLimiter).allowed(limit, key):
        # The moving window frees a slot at the latest when its whole length has passed.
        wait = max(wait, float(limits.parse(limit).get_expiry()))
    return wait


def how_long(seconds: float) -> str:
    """A wait as people say it: "8 seconds", "1 minute", "15 minutes"."""
    whole = max(1, math.ceil(seconds))
    if whole < 60:
        return f"{whole} second{'s' if whole != 1 else ''}"
    minutes = math.ceil(whole / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _too_soon(request: Request, email: str, next_url: str, wait: float) -> dict[str, Any]:
    request.response.status = 429
    request.response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return {
        "email": email,
        "next": next_url,
        "error": (
            "Too many wrong passwords. To protect your account, please wait "
            f"{how_long(wait)} before trying again."
        ),
    }


@view_config(route_name="login", renderer="login.jinja2", permission=PUBLIC, request_method="GET")
def login_form(request: Request) -> dict[str, Any]:
    if request.user is not None:
        raise HTTPFound(location=_safe_next(request, request.params.get("next")))
    return {"email": "", "next": request.params.get("next", ""), "error": None}


@view_config(route_name="login", renderer="login.jinja2", permission=PUBLIC, request_method="POST")
def login(request: Request) -> Any:
    email = normalize_email(request.POST.get("email", ""))
    password = request.POST.get("password", "")
    next_url = request.POST.get("next", "")
    wait = _seconds_to_wait(request, email)
    if wait > 0:
        # Before the password is looked at: a wait is no time to guess (the right password
        # too waits, or the wait would tell a guesser when they found it).
        return _too_soon(request, email, next_url, wait)
    user = find_user_by_email(request.dbsession, email)
    # Always one password check, of the same cost: against a stand-in hash when the address
    # is unknown or the account inactive, so the answer's timing says nothing about either.
    candidate = user if user is not None and user.active else None
    matches = check_password(candidate, password)
    if candidate is None or not matches:
        request.find_service(IRateLimiter).hit(*_ip_limit(request))
        delay = _failure_delay(request, email)
        request.response.status = 400
        error = "That email and password do not match."
        if delay > 0:
            error += f" Please wait {how_long(delay)} before trying again."
            request.response.headers["Retry-After"] = str(max(1, math.ceil(delay)))
        return {"email": email, "next": next_url, "error": error}
    request.find_service(IBackoff).clear(_account_key(request, email))
    headers = start_session(request, candidate)
    return HTTPSeeOther(location=_safe_next(request, next_url), headers=headers)


@view_config(route_name="logout", permission=STAFF, request_method="POST")
def logout(request: Request) -> HTTPSeeOther:
    headers = end_session(request)
    return HTTPSeeOther(location=request.route_url("login"), headers=headers)


@view_config(route_name="account", renderer="account.jinja2", permission=STAFF)
def account_page(request: Request) -> dict[str, Any]:
    return {"lifetime_hours": session_lifetime(request).total_seconds() / 3600}


@view_config(route_name="logout_everywhere", permission=STAFF, request_method="POST")
def logout_everywhere(request: Request) -> HTTPSeeOther:
    """For a person who signed in on a shared or lost computer: every session ends, this one
    too, and any API token that might have been read there stays as it is (admins revoke
    tokens on their own page)."""
    user = request.user
    end_all_sessions(user)
    audit(request, "user.signed_out_everywhere", user, email=user.email)
    headers = end_session(request)
    request.session.flash("You are signed out on every computer and browser.")
    return HTTPSeeOther(location=request.route_url("login"), headers=headers)


@view_config(route_name="home", renderer="home.jinja2", permission=STAFF)
def home(request: Request) -> dict[str, Any]:
    return {}


# ----------------------------------------------------------------------- own password


@view_config(
    route_name="account.password",
    renderer="account_password.jinja2",
    permission=STAFF,
    request_method="GET",
)
def own_password_form(request: Request) -> dict[str, Any]:
    return {"errors": {}}


@view_config(
    route_name="account.password",
    renderer="account_password.jinja2",
    permission=STAFF,
    request_method="POST",
)
def change_own_password_view(request: Request) -> Any:
    user = request.user
    errors = change_own_password(
        user,
        request.POST.get("current_password", ""),
        request.POST.get("new_password", ""),
        request.POST.get("repeat_password", ""),
    )
    if errors:
        request.response.status = 422
        return {"errors": errors}
    audit(request, "user.password_changed", user, email=user.email)
    # The change ended every session of this user, this one too: start a fresh one here.
    headers = start_session(request, user)
    request.session.flash("Your password was changed. Your other sessions were signed out.")
    return HTTPSeeOther(location=request.route_url("home"), headers=headers)


# -------------------------------------------------------------------- forgot password


def _reset_limits(request: Request, email: str) -> list[tuple[str, str]]:
    settings = request.registry.settings
    return [
        (settings["clientpay.limits.password_resets_per_account"], f"reset-account:{email}"),
        (settings["clientpay.limits.password_resets_per_ip"], f"reset-ip:{request.client_addr}"),
    ]


@view_config(
    route_name="password.forgot",
    renderer="forgot_password.jinja2",
    permission=PUBLIC,
    request_method="GET",
)
def forgot_password_form(request: Request) -> dict[str, Any]:
    return {"email": "", "error": None, "sent": ""}


@view_config(
    route_name="password.forgot",
    renderer="forgot_password.jinja2",
    permission=PUBLIC,
    request_method="POST",
)
def forgot_password(request: Request) -> dict[str, Any]:
    email = normalize_email(request.POST.get("email", ""))[:254]
    if not email:
        request.response.status = 422
        return {"email": email, "error": "Enter your email address.", "sent": ""}
    limiter = request.find_service(IRateLimiter)
    limits = _reset_limits(request, email)
    if not all(limiter.allowed(limit, key) for limit, key in limits):
        request.response.status = 429
        return {
            "email": email,
            "error": "Too many reset requests. Please wait an hour and try again.",
            "sent": "",
        }
    # Every request counts, known address or not, so the limit gives nothing away either.
    for limit, key in limits:
        limiter.hit(limit, key)
    _mail_reset_link(request, email)
    return {"email": "", "error": None, "sent": RESET_REQUESTED}


def _mail_reset_link(request: Request, email: str) -> None:
    user = find_user_by_email(request.dbsession, email)
    if user is None or not user.active:
        return
    now = utcnow()
    reset = start_password_reset(
        request.dbsession, request.registry["clientpay.encryptor"], user, now
    )
    queue_email(
        Work.from_request(request),
        firm_id=user.firm_id,
        kind=KIND_PASSWORD_RESET,
        recipients=[user.email],
        params={"reset_id": reset.id},
    )
    record(
        request.dbsession,
        user.firm_id,
        "user.password_reset_requested",
        actor=user,
        target=user,
        ip_address=request.client_addr or "",
    )


def _keep_the_token_here(request: Request) -> None:
    # The token is in this page's address: no other site may see it in a Referer, and no
    # cache may keep the page.
    request.response.headers["Referrer-Policy"] = "no-referrer"
    request.response.headers["Cache-Control"] = "no-store"


def _open_reset(request: Request) -> PasswordReset | None:
    _keep_the_token_here(request)
    limiter = request.find_service(IRateLimiter)
    limit = request.registry.settings["clientpay.limits.token_lookups"]
    key = f"reset-lookup:{request.client_addr}"
    if not limiter.allowed(limit, key):
        return None
    limiter.hit(limit, key)
    return find_password_reset(request.dbsession, request.matchdict["token"], utcnow())


@view_config(
    route_name="password.reset",
    renderer="reset_password.jinja2",
    permission=PUBLIC,
    request_method="GET",
)
def reset_password_form(request: Request) -> dict[str, Any]:
    reset = _open_reset(request)
    if reset is None:
        request.response.status = 404
    return {"valid": reset is not None, "errors": {}}


@view_config(
    route_name="password.reset",
    renderer="reset_password.jinja2",
    permission=PUBLIC,
    request_method="POST",
)
def reset_password(request: Request) -> Any:
    reset = _open_reset(request)
    if reset is None:
        request.response.status = 404
        return {"valid": False, "errors": {}}
    password = request.POST.get("new_password", "")
    errors = new_password_errors(password, request.POST.get("repeat_password", ""))
    if errors:
        request.response.status = 422
        return {"valid": True, "errors": errors}
    if not finish_password_reset(request.dbsession, reset, password, utcnow()):
        request.response.status = 404
        return {"valid": False, "errors": {}}
    record(
        request.dbsession,
        reset.firm_id,
        "user.password_reset_used",
        actor=reset.user,
        target=reset.user,
        ip_address=request.client_addr or "",
    )
    request.session.flash("Your password was changed. Sign in with the new one.")
    return HTTPSeeOther(location=request.route_url("login"))
