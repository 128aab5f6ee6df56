"""The payment page with Stripe: its card (and bank) fields come from Stripe.js.

Stripe.js, loaded from Stripe, draws the card fields in its own frames and turns what the
payer types into a PaymentMethod at Stripe with the merchant account's publishable key; the
page posts only the PaymentMethod's id to our payment API. So the page may load Stripe's
script, frame Stripe's pages and call Stripe's API: its Content-Security-Policy allows
exactly Stripe's origins, and only this page's does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from clientpay_connect.pay.test_mode import STRIPE_TEST_KEY_PREFIX

STRIPE_NAME = "stripe"
STRIPE_JS_URL = "https://js.stripe.com/v3/"
STRIPE_JS_ORIGIN = "https://js.stripe.com"
# Stripe's published list (docs.stripe.com/security/guide, "Content Security Policy"), less
# https://maps.googleapis.com, which only the Address Element's autocomplete needs: Stripe.js
# itself, the frames it draws the fields in (some on subdomains of js.stripe.com) and the
# one 3D Secure and bank redirects use, and Stripe's API that it calls.
STRIPE_SOURCES: Mapping[str, tuple[str, ...]] = {
    "script-src": (STRIPE_JS_ORIGIN, "https://*.js.stripe.com"),
    "frame-src": (STRIPE_JS_ORIGIN, "https://*.js.stripe.com", "https://hooks.stripe.com"),
    "connect-src": ("https://api.stripe.com",),
}
# What Stripe.js is told to speak, for each of the page's languages.
STRIPE_LOCALES = {"en": "en", "es": "es"}


@dataclass(frozen=True)
class StripeFields:
    """What the page needs to draw Stripe's fields for one merchant account."""

    js_url: str
    publishable_key: str
    locale: str

    @property
    def test_keys(self) -> bool:
        return self.publishable_key.startswith(STRIPE_TEST_KEY_PREFIX)

    def script_data(self) -> dict[str, str]:
        """For pay.js (never the secret key: the publishable key is public by design)."""
        return {"publishable_key": self.publishable_key, "locale": self.locale}


def stripe_fields(
    settings: Mapping[str, Any],
    stripe_offered: bool,
    account_processor: str,
    publishable_key: str,
    locale: str,
) -> StripeFields | None:
    """Stripe's fields for a link whose merchant account pays through Stripe, on an instance
    that offers Stripe; None otherwise, or while the account has no publishable key (then
    nothing could make a PaymentMethod, and the page says paying online is unavailable)."""
    if not stripe_offered or account_processor != STRIPE_NAME or not publishable_key:
        return None
    return StripeFields(
        js_url=stripe_js_url(settings),
        publishable_key=publishable_key,
        locale=STRIPE_LOCALES.get(locale, "auto"),
    )


def stripe_js_url(settings: Mapping[str, Any]) -> str:
    return str(settings.get("clientpay.stripe.js_url") or STRIPE_JS_URL)


def stripe_sources(js_url: str) -> Mapping[str, tuple[str, ...]]:
    """The origins the page must allow for Stripe.js loaded from ``js_url``: Stripe's own
    list for Stripe's script; a stand-in's single origin for a stand-in (the tests' at
    localstripe serves its script and answers its API calls at one address)."""
    parts = urlsplit(js_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin == STRIPE_JS_ORIGIN:
        return STRIPE_SOURCES
    return {"script-src": (origin,), "frame-src": (origin,), "connect-src": (origin,)}
