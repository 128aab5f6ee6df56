"""A link's switch for Smart Reminders: on the link's page (staff) and as
``PATCH /api/v1/links/{id}`` with ``{"reminders_off": bool}``."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.api.errors import not_found
from clientpay_connect.links.services import balance_link_of, get_for_firm, link_json, link_url
from clientpay_connect.reminders.services import switch_reminders
from clientpay_connect.security import STAFF, firm_id


@view_config(route_name="links.reminders", request_method="POST", permission=STAFF)
def switch_on_the_page(request: Request) -> HTTPSeeOther:
    """``reminders=off`` stops the firm's reminders for this link; ``on`` lets them go again."""
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise HTTPNotFound()
    off = request.POST.get("reminders") == "off"
    switch_reminders(request, link, off=off)
    request.session.flash(
        "No reminders will be sent for this link."
        if off
        else "Reminders will be sent for this link as the firm's schedule says."
    )
    return HTTPSeeOther(location=request.route_url("links.detail", id=link.id))


@view_config(
    route_name="api.link", request_method="PATCH", renderer="json", permission=STAFF, openapi=True
)
def switch_over_the_api(request: Request) -> dict[str, Any]:
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise not_found("No such link.")
    switch_reminders(request, link, off=bool(request.openapi_validated.body["reminders_off"]))
    balance = balance_link_of(request.dbsession, link)
    return link_json(link, link_url(request, link), balance.id if balance else None)
