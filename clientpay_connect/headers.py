"""Security headers on every response: CSP with frame-ancestors for the embedding panel."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.events import NewResponse

from clientpay_connect.config import embedding_configured
from clientpay_connect.security import SESSION_COOKIE

NO_REFERRER_ROUTE_PREFIX = "pay"


def content_security_policy(frame_ancestors: str) -> str:
    ancestors = frame_ancestors.strip() or "'self'"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
            f"frame-ancestors {ancestors}",
        ]
    )


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    csp = content_security_policy(settings.get("clientpay.frame_ancestors", ""))
    # X-Frame-Options, for browsers that predate CSP's frame-ancestors, must say the same: with
    # only 'self' that is SAMEORIGIN. Once another site may frame the panel it is left out, as
    # it can name no other origin (ALLOW-FROM is gone from browsers) and, sent, would forbid in
    # those browsers what frame-ancestors allows (newer ones ignore it beside frame-ancestors).
    frame_options = None if embedding_configured(settings) else "SAMEORIGIN"

    def add_security_headers(event: Any) -> None:
        response = event.response
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if frame_options is not None:
            headers.setdefault("X-Frame-Options", frame_options)
        # The payer's page carries the link's secret in its URL: never let it leak onward.
        route = event.request.matched_route
        on_pay_page = route is not None and route.name.startswith(NO_REFERRER_ROUTE_PREFIX)
        headers.setdefault("Referrer-Policy", "no-referrer" if on_pay_page else "same-origin")
        if event.request.scheme == "https":
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # Anything answered to a browser holding a session may be personal; cheaper to tell by
        # the cookie than to load the user on every response, static files included.
        if on_pay_page or SESSION_COOKIE in event.request.cookies:
            headers.setdefault("Cache-Control", "no-store")

    config.add_subscriber(add_security_headers, NewResponse)
