"""What a signed-in person does to links, shared by the API and the pages: the change itself,
the email it queues, and the audit event that records who did it."""

from __future__ import annotations

from pyramid.request import Request

from clientpay_connect.accounts.services import audit
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import (
    NewLink,
    create_balance_link,
    create_link,
    queue_link_email,
)
from clientpay_connect.money import format_amount
from clientpay_connect.work import Work


def create_for_staff(request: Request, new: NewLink, send_email: bool) -> tuple[PaymentLink, str]:
    """Create the link (and queue its email); returns the link and its secret token."""
    link, token = create_link(request.dbsession, request.encryptor, request.user, new)
    _after_create(request, link, send_email)
    return link, token


def create_balance_for_staff(
    request: Request, parent: PaymentLink, send_email: bool
) -> PaymentLink:
    link, _token = create_balance_link(request.dbsession, request.encryptor, request.user, parent)
    _after_create(request, link, send_email)
    return link


def _after_create(request: Request, link: PaymentLink, send_email: bool) -> None:
    if send_email:
        queue_link_email(Work.from_request(request), link)
    # Never the token or the URL: the audit trail is read by more people than the link's payer.
    audit(
        request,
        "link.created",
        link,
        source=link.source,
        amount=format_amount(link.amount_minor, link.currency),
        currency=link.currency,
        emailed=send_email,
        parent_link_id=link.parent_link_id,
    )


def record_cancelled(request: Request, links: list[PaymentLink]) -> None:
    for link in links:
        audit(request, "link.cancelled", link)
