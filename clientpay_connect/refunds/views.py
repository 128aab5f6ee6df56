"""The Refund form on a link's page (templates/links/_refunds.jinja2 shows it)."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.links.services import get_for_firm
from clientpay_connect.money import display_amount
from clientpay_connect.refunds.models import REFUND_SUCCEEDED
from clientpay_connect.refunds.services import (
    CannotRefund,
    InvalidRefund,
    RefundOutcomeUnknown,
    RefundRequest,
    refund_link,
)
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.work import Work


@view_config(route_name="links.refund", request_method="POST", permission=STAFF)
def refund_from_page(request: Request) -> HTTPSeeOther:
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise HTTPNotFound()
    here = request.route_url("links.detail", id=link.id)
    params = request.POST
    asked = RefundRequest(
        link,
        params.get("amount", ""),
        params.get("reason", ""),
        request.user,
        request.client_addr or "",
    )
    try:
        refund = refund_link(Work.from_request(request), asked)
    except InvalidRefund as invalid:
        request.session.flash(" ".join(e["message"] for e in invalid.errors), "error")
    except (CannotRefund, RefundOutcomeUnknown) as refused:
        request.session.flash(str(refused), "error")
    else:
        amount = display_amount(refund.amount_minor, refund.currency)
        if refund.status == REFUND_SUCCEEDED:
            request.session.flash(f"Refunded {amount}. The payer will be emailed a notice.")
    # Redirect after POST: reloading the page must not refund again.
    return HTTPSeeOther(location=here)
