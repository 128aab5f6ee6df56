"""The links API: Quick Link, one link, cancel, balance link (documented in openapi.yaml)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from clientpay_connect.api.errors import FieldErrors, conflict, error_response, not_found
from clientpay_connect.links.actions import (
    create_balance_for_staff,
    create_for_staff,
    record_cancelled,
)
from clientpay_connect.links.forms import LinkInput, check_link_input
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import (
    BalanceLinkRefused,
    balance_link_of,
    cancel_links,
    get_for_firm,
    link_json,
    link_url,
    lock_for_firm,
    refuse_balance_link,
    was_emailed,
)
from clientpay_connect.security import STAFF, firm_id

API = {"renderer": "json", "permission": STAFF, "openapi": True}


# The services raise; the API answers here (the pages catch it themselves, for a flash).
@exception_view_config(BalanceLinkRefused, path_info=r"^/api/v1/links/")
def balance_link_refused(refused: BalanceLinkRefused, request: Request) -> Response:
    return error_response(request, conflict(refused.code, refused.message, **refused.extra))


def link_input(body: dict[str, Any]) -> LinkInput:
    return LinkInput(
        merchant_account_id=body.get("merchant_account_id"),
        amount=body.get("amount"),
        invoice_number=body.get("invoice_number"),
        invoice_date=body.get("invoice_date"),
        due_date=body.get("due_date"),
        recipient_name=body.get("recipient_name"),
        message=body.get("message"),
        emails=list(body.get("emails") or []),
        send_email=bool(body.get("send_email", False)),
        locale=body.get("locale"),
    )


def _link_body(request: Request, link: PaymentLink) -> dict[str, Any]:
    balance = balance_link_of(request.dbsession, link)
    return link_json(link, link_url(request, link), balance.id if balance else None)


def _json_object(request: Request) -> dict[str, Any]:
    # The spec has checked that a body, when there is one, is a JSON object.
    if not request.body:
        return {}
    body: dict[str, Any] = request.json_body
    return body


@view_config(route_name="api.links", request_method="POST", **API)
def create_link_view(request: Request) -> dict[str, Any]:
    data = link_input(_json_object(request))
    checked = check_link_input(request.dbsession, firm_id(request), data)
    if checked.new is None:
        raise FieldErrors(checked.errors)
    link, _token = create_for_staff(request, checked.new, send_email=data.send_email)
    request.response.status = 201
    return _link_body(request, link)


@view_config(route_name="api.link", request_method="GET", **API)
def get_link_view(request: Request) -> dict[str, Any]:
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise not_found("No such link.")
    return _link_body(request, link)


@view_config(route_name="api.links.cancel", request_method="POST", **API)
def cancel_links_view(request: Request) -> dict[str, Any]:
    ids = [int(i) for i in _json_object(request)["ids"]]
    result = cancel_links(request.dbsession, firm_id(request), ids)
    record_cancelled(request, result.cancelled)
    return {"cancelled": [link.id for link in result.cancelled], "skipped": result.skipped}


@view_config(route_name="api.link.balance", request_method="POST", **API)
def balance_link_view(request: Request) -> dict[str, Any]:
    send_email = bool(_json_object(request).get("send_email", False))
    parent = lock_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if parent is None:
        raise not_found("No such link.")
    refuse_balance_link(request.dbsession, parent)
    if send_email and not was_emailed(parent):
        raise FieldErrors(
            [{"field": "send_email", "message": "The original link was not emailed to anyone."}]
        )
    link = create_balance_for_staff(request, parent, send_email=send_email)
    request.response.status = 201
    return _link_body(request, link)
