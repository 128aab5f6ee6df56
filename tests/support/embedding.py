"""The app as the matter software frames it: settings, and reading its session cookie."""

from __future__ import annotations

from typing import Any

import webtest

HOST_ORIGIN = "https://matters.example"
HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"}


def embedded_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    return {
        **app_settings,
        "clientpay.frame_ancestors": HOST_ORIGIN,
        "clientpay.cookie_secure": "true",
        "clientpay.public_url": "https://localhost",
    }


def session_set_cookies(response: webtest.TestResponse) -> list[str]:
    return [c for c in response.headers.getall("Set-Cookie") if c.startswith("clientpay_session=")]


def attributes(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}
