"""Signing in and out, and the home page that links the modules."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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
from clientpay_connect.throttle.interfaces import IRateLimiter


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


def _login_limits(request: Request, email: str) -> list[tuple[str, str]]:
    settings = request.registry.settings
    return [
        (settings["clientpay.limits.login_failures_per_account"], f"login-account:{email}"),
        (settings["clientpay.limits.login_failures_per_ip"], f"login-ip:{request.client_addr}"),
    ]


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
    limiter = request.find_service(IRateLimiter)
    limits = _login_limits(request, email)
    if not all(limiter.allowed(limit, key) for limit, key in limits):
        request.response.status = 429
        return {
            "email": email,
            "next": next_url,
            "error": "Too many failed sign-in attempts. Please wait a few minutes and try again.",
        }
    user = find_user_by_email(request.dbsession, email)
    if user is None or not user.active or not check_password(user, password):
        for limit, key in limits:
            limiter.hit(limit, key)
        request.response.status = 400
        return {"email": email, "next": next_url, "error": "That email and password do not match."}
    limiter.clear(limits[0][0], limits[0][1])
    headers = start_session(request, user)
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
