"""Security headers on every response: CSP with frame-ancestors for the embedding panel,
X-Frame-Options agreeing with it, a Permissions-Policy, and no-store on whatever is personal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.events import NewResponse

from clientpay_connect.config import embedding_configured
from clientpay_connect.security import SESSION_COOKIE

NO_REFERRER_ROUTE_PREFIX = "pay"
# The payer's page: the one place a processor's wallet button (the Payment Request API behind
# Apple Pay and Google Pay) may ever run.
PAYMENT_PAGE_ROUTE = "pay.page"
# Every answer under /api/v1 is data for one caller (links with their payer URLs, exports,
# launch URLs): never kept by a browser or a shared cache, whatever authenticated it.
API_ROUTE_PREFIX = "api."
# Browser features no page of ours uses: denied to the page and anything it frames, so that a
# script slipped into a page could not ask the payer or the staff for them. Only names every
# current browser knows (an unknown one is an error in Chromium's console).
DENIED_FEATURES = (
    "accelerometer",
    "camera",
    "display-capture",
    "geolocation",
    "gyroscope",
    "hid",
    "magnetometer",
    "microphone",
    "midi",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
)


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


def widened_policy(frame_ancestors: str, sources: Mapping[str, Iterable[str]]) -> str:
    """The site's policy with ``sources`` added to their directives: after 'self' where the
    site's policy has the directive, as a directive of their own where it has none (frame-src
    then allows only them). For the one page that loads a third party's script or frame."""
    extra = {name: " ".join(dict.fromkeys(values)) for name, values in sources.items() if values}
    directives = []
    for directive in content_security_policy(frame_ancestors).split(";"):
        directive = directive.strip()
        name = directive.split(" ", 1)[0]
        if name in extra:
            directive = f"{directive} {extra.pop(name)}"
        directives.append(directive)
    directives.extend(f"{name} {values}" for name, values in extra.items())
    return "; ".join(directives)


def permissions_policy(*, payment_page: bool) -> str:
    payment = "payment=(self)" if payment_page else "payment=()"
    return ", ".join([*(f"{feature}=()" for feature in DENIED_FEATURES), payment])


STAFF_PERMISSIONS = permissions_policy(payment_page=False)
PAYER_PERMISSIONS = permissions_policy(payment_page=True)


def _personal(request: Any, route_name: str) -> bool:
    """Whether an answer may carry something for one person only: the payer's page (its URL is
    the link's secret), any API answer, and anything asked for with credentials (a session
    cookie or an Authorization header). Told from the request, not by loading the user, as
    this runs on every response, static files included."""
    return (
        route_name.startswith((NO_REFERRER_ROUTE_PREFIX, API_ROUTE_PREFIX))
        or "HTTP_AUTHORIZATION" in request.environ
        or ("HTTP_COOKIE" in request.environ and SESSION_COOKIE in request.cookies)
    )


# What a route is, for its headers.
PAYMENT_PAGE, PAYER_ANSWER, OTHER_ANSWER = "payment page", "payer", "other"


class SecurityHeaders:
    """The headers each kind of answer gets, worked out once per process: they depend only on
    the settings and on what kind of answer it is (the payment page, another answer under a
    "pay" route, anything else; over https or not; personal or not). Each is added unless the
    answer set it already (a page that widens its own Content-Security-Policy keeps it)."""

    def __init__(self, csp: str, frame_options: str | None):
        self._sets = {
            (kind, https, personal): self._headers(csp, frame_options, kind, https, personal)
            for kind in (PAYMENT_PAGE, PAYER_ANSWER, OTHER_ANSWER)
            for https in (False, True)
            for personal in (False, True)
        }

    @staticmethod
    def _headers(
        csp: str, frame_options: str | None, kind: str, https: bool, personal: bool
    ) -> tuple[tuple[str, str, str], ...]:
        headers = [("Content-Security-Policy", csp), ("X-Content-Type-Options", "nosniff")]
        if frame_options is not None:
            headers.append(("X-Frame-Options", frame_options))
        # The payer's page carries the link's secret in its URL: never let it leak onward.
        referrer = "same-origin" if kind == OTHER_ANSWER else "no-referrer"
        headers.append(("Referrer-Policy", referrer))
        features = PAYER_PERMISSIONS if kind == PAYMENT_PAGE else STAFF_PERMISSIONS
        headers.append(("Permissions-Policy", features))
        if https:
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        if personal:
            headers.append(("Cache-Control", "no-store"))
        return tuple((name.lower(), name, value) for name, value in headers)

    def add(self, event: Any) -> None:
        """The NewResponse subscriber."""
        request = event.request
        route = request.matched_route
        route_name = route.name if route is not None else ""
        if route_name == PAYMENT_PAGE_ROUTE:
            kind = PAYMENT_PAGE
        elif route_name.startswith(NO_REFERRER_ROUTE_PREFIX):
            kind = PAYER_ANSWER
        else:
            kind = OTHER_ANSWER
        https = request.environ.get("wsgi.url_scheme") == "https"
        headers = self._sets[kind, https, _personal(request, route_name)]
        # The response's own list, as its headers' setdefault would append to, in one pass
        # over what it holds rather than one per header.
        headerlist = event.response.headerlist
        present = {name.lower() for name, _value in headerlist}
        headerlist.extend((name, value) for lower, name, value in headers if lower not in present)


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    csp = content_security_policy(settings.get("clientpay.frame_ancestors", ""))
    # X-Frame-Options, for browsers that predate CSP's frame-ancestors, must say the same: with
    # only 'self' that is SAMEORIGIN. Once another site may frame the panel it is left out, as
    # it can name no other origin (ALLOW-FROM is gone from browsers) and, sent, would forbid in
    # those browsers what frame-ancestors allows (newer ones ignore it beside frame-ancestors).
    frame_options = None if embedding_configured(settings) else "SAMEORIGIN"
    config.add_subscriber(SecurityHeaders(csp, frame_options).add, NewResponse)
