"""The Outbox page: every email of the firm, and a way to send one again (admins only)."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import select

from clientpay_connect.accounts.services import audit
from clientpay_connect.mail.models import (
    KIND_LINK,
    KIND_PAYMENT_NOTICE,
    KIND_RECEIPT,
    KIND_REFUND_NOTICE,
    KIND_REMINDER,
    OutboxMessage,
)
from clientpay_connect.mail.outbox import KIND_EMAIL_FAILED, RETRYABLE, firm_message, retry_now
from clientpay_connect.security import ADMIN, firm_id
from clientpay_connect.work import Work

PAGE_SIZE = 100
KIND_LABELS = {
    KIND_LINK: "Payment link",
    KIND_RECEIPT: "Receipt",
    KIND_REMINDER: "Payment reminder",
    KIND_PAYMENT_NOTICE: "Payment notice",
    KIND_EMAIL_FAILED: "Email failed notice",
    KIND_REFUND_NOTICE: "Refund notice",
}


def _cursor(request: Request) -> int | None:
    value = request.params.get("before", "")
    return int(value) if value.isdigit() else None


@view_config(
    route_name="admin.outbox",
    renderer="admin/outbox.jinja2",
    permission=ADMIN,
    request_method="GET",
)
def outbox(request: Request) -> dict[str, Any]:
    """Newest first, a page at a time; ``before`` (an id) walks to older messages."""
    query = select(OutboxMessage).where(OutboxMessage.firm_id == firm_id(request))
    before = _cursor(request)
    if before is not None:
        query = query.where(OutboxMessage.id < before)
    rows = list(
        request.dbsession.execute(
            query.order_by(OutboxMessage.id.desc()).limit(PAGE_SIZE + 1)
        ).scalars()
    )
    messages = rows[:PAGE_SIZE]
    return {
        "messages": messages,
        "kind_labels": KIND_LABELS,
        "retryable": RETRYABLE,
        "older": messages[-1].id if len(rows) > PAGE_SIZE else None,
        "first_page": before is None,
    }


@view_config(route_name="admin.outbox.retry", permission=ADMIN, request_method="POST")
def retry(request: Request) -> HTTPSeeOther:
    message = firm_message(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if message is None:
        raise HTTPNotFound()
    if retry_now(Work.from_request(request), message):
        audit(request, "mail.retried", target=message, kind=message.kind)
        request.session.flash(f"Message {message.id} is being sent again.")
    else:
        request.session.flash(f"Message {message.id} is {message.status}; nothing to retry.")
    return HTTPSeeOther(location=request.route_url("admin.outbox"))
