"""Start-up refuses the cookie and framing settings that a browser would reject."""

from __future__ import annotations

import pytest

from clientpay_connect.config import (
    DEFAULTS,
    UnsafeSettings,
    check_browser_settings,
    embedding_configured,
)

EMBEDDED = {
    **DEFAULTS,
    "clientpay.frame_ancestors": "https://app.matters.example",
    "clientpay.public_url": "https://pay.firm.example",
    "clientpay.cookie_secure": "true",
}


def refusal(settings: dict[str, str]) -> str:
    with pytest.raises(UnsafeSettings) as refused:
        check_browser_settings(settings)
    return str(refused.value)


def test_the_defaults_start():
    check_browser_settings(DEFAULTS)


def test_samesite_none_without_secure_is_refused_naming_both_settings():
    message = refusal(
        {**DEFAULTS, "clientpay.cookie_samesite": "None", "clientpay.cookie_secure": "false"}
    )
    assert "CLIENTPAY_COOKIE_SAMESITE" in message
    assert "CLIENTPAY_COOKIE_SECURE" in message
    check_browser_settings(
        {**DEFAULTS, "clientpay.cookie_samesite": "None", "clientpay.cookie_secure": "true"}
    )
    # Written in any case, as WebOb takes it.
    assert "CLIENTPAY_COOKIE_SECURE" in refusal(
        {**DEFAULTS, "clientpay.cookie_samesite": "none", "clientpay.cookie_secure": "false"}
    )
    check_browser_settings({**DEFAULTS, "clientpay.cookie_samesite": "strict"})


@pytest.mark.parametrize("value", ["lax ", "Relaxed", ""])
def test_a_samesite_value_browsers_do_not_know_is_refused(value):
    assert "CLIENTPAY_COOKIE_SAMESITE" in refusal({**DEFAULTS, "clientpay.cookie_samesite": value})


def test_embedding_configured_starts_with_https_and_secure_cookies():
    check_browser_settings(EMBEDDED)


def test_embedding_needs_secure_cookies():
    message = refusal({**EMBEDDED, "clientpay.cookie_secure": "false"})
    assert "CLIENTPAY_FRAME_ANCESTORS" in message
    assert "CLIENTPAY_COOKIE_SECURE" in message


@pytest.mark.parametrize("url", ["http://pay.firm.example", "", "http://10.0.0.5:6543"])
def test_embedding_needs_an_https_public_url(url):
    message = refusal({**EMBEDDED, "clientpay.public_url": url})
    assert "CLIENTPAY_PUBLIC_URL" in message
    assert "CLIENTPAY_FRAME_ANCESTORS" in message


@pytest.mark.parametrize(
    "url", ["http://localhost:6543", "http://127.0.0.1:8080", "http://127.0.0.2", "http://[::1]:80"]
)
def test_plain_http_on_loopback_is_allowed_for_development(url):
    check_browser_settings({**EMBEDDED, "clientpay.public_url": url})


@pytest.mark.parametrize(
    "ancestors",
    [
        "https:",
        "*",
        "https://a.example; script-src *",
        "'self',https://a.example",
        "'none'",
        "javascript:alert(1)",
    ],
)
def test_frame_ancestors_take_only_self_and_origins(ancestors):
    message = refusal({**EMBEDDED, "clientpay.frame_ancestors": ancestors})
    assert "CLIENTPAY_FRAME_ANCESTORS" in message


@pytest.mark.parametrize(
    "ancestors",
    [
        "'self' https://app.clio.com",
        "https://*.mycase.example https://eu.app.clio.com:443",
        "http://127.0.0.1:8000",
    ],
)
def test_origins_are_taken(ancestors):
    check_browser_settings({**EMBEDDED, "clientpay.frame_ancestors": ancestors})
    assert embedding_configured({"clientpay.frame_ancestors": ancestors})


@pytest.mark.parametrize("ancestors", ["", "  ", "'self'"])
def test_self_alone_is_not_embedding(ancestors):
    assert not embedding_configured({"clientpay.frame_ancestors": ancestors})
    # So plain http and an insecure cookie still start (development, the tests).
    check_browser_settings(
        {
            **DEFAULTS,
            "clientpay.frame_ancestors": ancestors,
            "clientpay.cookie_secure": "false",
            "clientpay.public_url": "http://dev.example",
        }
    )
