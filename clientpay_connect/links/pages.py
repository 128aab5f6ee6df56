"""What the pages that make a link share (Quick Link here, and Connect's page): the two ways
to make one, the languages a payer may be offered, and the page shown once it is made."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request

from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import get_for_firm, link_url, was_emailed
from clientpay_connect.money import display_amount
from clientpay_connect.security import firm_id

# The buttons: email the link now, or only make it (to copy).
SEND = "send"
GENERATE = "generate"
LANGUAGES = [("en", "English"), ("es", "Español (Spanish)")]


def created_link(request: Request) -> PaymentLink | None:
    """The link named by ``?created=`` (where a page redirects after making one)."""
    created = request.params.get("created", "")
    if not created.isdigit():
        return None
    return get_for_firm(request.dbsession, firm_id(request), int(created))


def done_page(request: Request, link: PaymentLink) -> dict[str, Any]:
    """What the page after making a link shows: sent to whom, or the link to copy."""
    return {
        "link": link,
        "url": link_url(request, link),
        "emailed": was_emailed(link),
        "money": display_amount(link.amount_minor, link.currency),
    }
