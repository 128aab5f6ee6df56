"""``POST /api/v1/links/{id}/refund`` and ``GET /api/v1/links/{id}/refunds`` (documented in
openapi.yaml beside this file).

The refund is one service's (refunds/services.py refund_link); this maps its outcome to HTTP.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.api.errors import ApiError, FieldErrors, conflict, error_response, not_found
from clientpay_connect.links.services import get_for_firm
from clientpay_connect.refunds.services import (
    CannotRefund,
    InvalidRefund,
    RefundOutcomeUnknown,
    RefundRequest,
    refund_json,
    refund_link,
    refund_lists,
)
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.work import Work


@view_config(
    route_name="api.link.refunds",
    request_method="GET",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def link_refunds_view(request: Request) -> dict[str, Any]:
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise not_found("No such link.")
    return refund_lists(request.dbsession, link)


@view_config(
    route_name="api.link.refund",
    request_method="POST",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def refund_link_view(request: Request) -> Any:
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise not_found("No such link.")
    body: dict[str, Any] = request.json_body
    asked = RefundRequest(
        link, body.get("amount"), body.get("reason"), request.user, request.client_addr or ""
    )
    try:
        refund = refund_link(Work.from_request(request), asked)
    except InvalidRefund as invalid:
        raise FieldErrors(invalid.errors) from None
    except CannotRefund as refused:
        return error_response(request, conflict(refused.code, refused.message))
    except RefundOutcomeUnknown as unknown:
        extra = {"refund_id": unknown.refund_id}
        error = ApiError(503, "processor_unavailable", unknown.message, extra=extra)
        return error_response(request, error)
    request.response.status = 201
    return refund_json(refund)
