"""Signing in and out, and the home page that links the modules."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import limits
from pyramid.httpexceptions import HTTPFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.accounts.services import (
    audit,
    check_password,
    end_all_sessions,
    find_user_by_email,
    normalize_email,
)
from clientpay_connect.accounts.sessions import end_session, session_lifetime, start_session
from clientpay_connect.security import PUBLIC, STAFF
from clientpay_connect.throttle.interfaces import IBackoff, IRateLimiter


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
