"""How staff pages write times, days and payment methods: one format, in the firm's zone.

Every staff page shows a timestamp as "Mar 31, 2025, 3:04 PM EDT" and a day as
"Mar 31, 2025", in the firm's own time zone (its settings). Templates reach these through
``when``, ``day`` and ``method_label`` (added to every render by ``includeme``), so that no
page formats a date its own way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from pyramid.config import Configurator
from pyramid.events import BeforeRender
from pyramid.request import Request

from clientpay_connect.money import display_amount
from clientpay_connect.sent.present import firm_zone, local_timestamp, short_date

METHOD_NAMES = {"card": "Card", "echeck": "Bank account"}
BRAND_NAMES = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}


def method_label(method: str, brand: str = "", last4: str = "") -> str:
    """ "Visa ending in 4242", "Bank account ending in 6789", or just the method."""
    name = BRAND_NAMES.get((brand or "").lower(), brand) if brand else ""
    name = name or METHOD_NAMES.get(method, method.replace("_", " ").capitalize())
    return f"{name} ending in {last4}" if last4 else name


def payment_method_label(payment: Any) -> str:
    return method_label(payment.method, payment.brand or "", payment.last4 or "")


def link_title(link: Any) -> str:
    """What staff call a link: "Link for Jane Client — INV-1001" (never a database id)."""
    who = link.recipient_name or (link.emails[0] if link.emails else "")
    what = link.invoice_number or display_amount(link.amount_minor, link.currency)
    if who:
        return f"Link for {who} — {what}"
    return f"Link for invoice {what}" if link.invoice_number else f"Link for {what}"


def posting_title(amount: str, payer: str) -> str:
    """What staff call a posting: "Payment of $250.00 from Jane Client"."""
    return f"Payment of {amount} from {payer}" if payer else f"Payment of {amount}"


def request_firm_zone(request: Request) -> ZoneInfo:
    """The signed-in person's firm's zone (UTC for nobody signed in)."""
    user = request.user
    if user is None:
        return ZoneInfo("UTC")
    return firm_zone(request.dbsession, user.firm_id)


def _add_helpers(event: BeforeRender) -> None:
    request = event.get("request")
    if request is None:
        return

    def when(value: dt.datetime | None) -> str:
        return local_timestamp(value, request.firm_zone)

    event.setdefault("when", when)
    event.setdefault("day", short_date)
    event.setdefault("method_label", payment_method_label)
    event.setdefault("link_title", link_title)


def includeme(config: Configurator) -> None:
    config.add_request_method(request_firm_zone, "firm_zone", reify=True)
    config.add_subscriber(_add_helpers, BeforeRender)
