"""Every security header, exactly, on each kind of answer: the payer's page (over http and
https, with the site's policy and with a widened one), the payer's other answers, staff pages
with and without a session, the API with a token, static files, an unknown address, a body
refused before routing, and the panel framed by the matter software.

Written down value by value, so that making the headers cheaper can never change one of them.
"""

from __future__ import annotations

from typing import Any

import pytest
import webtest

from clientpay_connect.admin.models import FirmSettings
from tests.conftest import login
from tests.factories import MerchantAccountFactory
from tests.support.embedding import HOST_ORIGIN
from tests.support.payments import new_link

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "Strict-Transport-Security",
    "Cache-Control",
)
SITE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'; frame-ancestors 'self'"
)
FRAMED_POLICY = SITE_POLICY.replace("frame-ancestors 'self'", f"frame-ancestors {HOST_ORIGIN}")
RECAPTCHA_POLICY = (
    "default-src 'self'; script-src 'self' https://www.google.com https://www.gstatic.com; "
    "style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'self'; "
    "frame-src https://www.google.com https://www.gstatic.com"
)
DENIED = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), hid=(), "
    "magnetometer=(), microphone=(), midi=(), screen-wake-lock=(), serial=(), usb=(), "
    "xr-spatial-tracking=()"
)
STAFF_FEATURES = f"{DENIED}, payment=()"
PAYER_FEATURES = f"{DENIED}, payment=(self)"
HSTS = "max-age=31536000"
HTTPS = {"wsgi.url_scheme": "https"}


def security_headers(response: webtest.TestResponse) -> dict[str, str | None]:
    headers = response.headers
    for name in SECURITY_HEADERS:
        assert len(headers.getall(name)) <= 1, f"{name} sent twice"
    return {name: headers.get(name) for name in SECURITY_HEADERS}


def expected(
    *,
    policy: str = SITE_POLICY,
    frame_options: str | None = "SAMEORIGIN",
    referrer: str = "same-origin",
    features: str = STAFF_FEATURES,
    hsts: bool = False,
    cache: str | None = None,
) -> dict[str, str | None]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": frame_options,
        "Referrer-Policy": referrer,
        "Permissions-Policy": features,
        "Strict-Transport-Security": HSTS if hsts else None,
        "Cache-Control": cache,
    }


PAYERS_PAGE = expected(referrer="no-referrer", features=PAYER_FEATURES, cache="no-store")


@pytest.fixture
def token(app: Any, dbsession: Any, firm: Any) -> str:
    account = MerchantAccountFactory(firm=firm, name="Operating")
    _link, token = new_link(dbsession, app.registry, account)
    return token


def test_the_payers_page_over_http_and_https(testapp, token):
    assert security_headers(testapp.get(f"/pay/{token}")) == PAYERS_PAGE
    over_https = testapp.get(f"/pay/{token}", extra_environ=HTTPS)
    assert security_headers(over_https) == {**PAYERS_PAGE, "Strict-Transport-Security": HSTS}
    # Served again from the page cache: the same headers.
    assert security_headers(testapp.get(f"/pay/{token}")) == PAYERS_PAGE


def test_the_payers_page_that_loads_recaptcha_keeps_its_own_policy(testapp, dbsession, firm, token):
    settings = dbsession.get(FirmSettings, firm.id)
    settings.recaptcha_enabled = True
    settings.recaptcha_site_key = "site-key-123"
    dbsession.flush()
    for _ in range(2):  # rendered, then from the page cache
        page = testapp.get(f"/pay/{token}")
        assert security_headers(page) == {
            **PAYERS_PAGE,
            "Content-Security-Policy": RECAPTCHA_POLICY,
        }


def test_the_payers_other_answers(testapp, token):
    unknown = testapp.get("/pay/no-such-token-at-all", status=404)
    assert security_headers(unknown) == PAYERS_PAGE
    receipt = testapp.get(f"/pay/{token}/receipt", status=303)
    assert security_headers(receipt) == {**PAYERS_PAGE, "Permissions-Policy": STAFF_FEATURES}
    # The payer's API: its route is named "pay.api", so it sends no referrer either.
    api = testapp.get(f"/api/v1/pay/{token}")
    assert security_headers(api) == {**PAYERS_PAGE, "Permissions-Policy": STAFF_FEATURES}


def test_staff_pages_without_and_with_a_session(testapp, staff):
    assert security_headers(testapp.get("/login")) == expected()
    home = login(testapp, staff).follow()
    assert security_headers(home) == expected(cache="no-store")
    over_https = testapp.get("/sent", extra_environ=HTTPS)
    assert security_headers(over_https) == expected(hsts=True, cache="no-store")


def test_the_api_with_a_token_static_files_and_unknown_addresses(testapp, staff_auth):
    assert security_headers(testapp.get("/api/v1/links", headers=staff_auth)) == expected(
        cache="no-store"
    )
    assert security_headers(testapp.get("/static/app.css")) == expected(cache="max-age=3600")
    assert security_headers(testapp.get("/no/such/page", status=404)) == expected()


def test_a_body_refused_before_routing(testapp):
    refused = testapp.post("/login", b"x" * (64 * 1024 + 1), content_type="text/plain", status=413)
    assert security_headers(refused) == expected()


def test_the_framed_panel(framed, staff):
    framed_headers = expected(policy=FRAMED_POLICY, frame_options=None, hsts=True)
    assert security_headers(framed.get("/login")) == framed_headers
