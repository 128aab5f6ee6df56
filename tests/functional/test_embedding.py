"""The panel framed by the matter software: the partitioned session cookie, the headers that
allow the frame, and the settings that refuse to start."""

from __future__ import annotations

import pytest
import webtest

from clientpay_connect import main
from clientpay_connect.config import UnsafeSettings
from tests.conftest import TEST_PASSWORD
from tests.support.embedding import (
    HOST_ORIGIN,
    attributes,
    embedded_settings,
    session_set_cookies,
)


def sign_in(browser: webtest.TestApp, email: str) -> webtest.TestResponse:
    form = browser.get("/login").form
    form["email"], form["password"] = email, TEST_PASSWORD
    return form.submit(headers={"Origin": "https://localhost"}, status=303)


def test_framed_the_session_cookie_is_partitioned_none_and_secure(framed, staff):
    page = framed.get("/login")
    # The login form's CSRF token lives in the session: the cookie comes with the form.
    (form_cookie,) = session_set_cookies(page)
    assert {"samesite=none", "secure", "httponly", "partitioned"} <= attributes(form_cookie)

    signed_in = sign_in(framed, staff.email)
    (cookie,) = session_set_cookies(signed_in)
    assert {"samesite=none", "secure", "httponly", "partitioned", "path=/"} <= attributes(cookie)
    # Written once, not once per pass.
    assert cookie.lower().count("partitioned") == 1
    home = framed.get("/", status=200)
    assert staff.firm.name in home.text


def test_unframed_the_session_cookie_is_not_partitioned(testapp, staff):
    page = testapp.get("/login")
    (cookie,) = session_set_cookies(page)
    assert "partitioned" not in attributes(cookie)
    assert "samesite=lax" in attributes(cookie)


def test_framed_the_csp_names_the_host_and_x_frame_options_is_left_out(framed):
    page = framed.get("/login")
    assert f"frame-ancestors {HOST_ORIGIN}" in page.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in page.headers


def test_unframed_x_frame_options_agrees_with_frame_ancestors_self(testapp):
    page = testapp.get("/login")
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_samesite_none_without_secure_refuses_to_start(app_settings):
    """It used to start, then answer 500 to every request (WebOb refuses to write it)."""
    settings = {
        **app_settings,
        "clientpay.cookie_samesite": "None",
        "clientpay.cookie_secure": "false",
    }
    with pytest.raises(UnsafeSettings) as refused:
        main({}, **settings)
    assert "CLIENTPAY_COOKIE_SAMESITE" in str(refused.value)
    assert "CLIENTPAY_COOKIE_SECURE" in str(refused.value)


def test_embedding_over_plain_http_off_loopback_refuses_to_start(app_settings, monkeypatch):
    monkeypatch.setenv("CLIENTPAY_PUBLIC_URL", "http://payments.firm.example")
    with pytest.raises(UnsafeSettings) as refused:
        main({}, **embedded_settings(app_settings))
    assert "CLIENTPAY_PUBLIC_URL" in str(refused.value)
