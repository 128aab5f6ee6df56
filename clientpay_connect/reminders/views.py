"""A link's switch for Smart Reminders (staff, on the link's page)."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.accounts.services import audit
from clientpay_connect.links.services import get_for_firm
from clientpay_connect.security import STAFF, firm_id


@view_config(route_name="links.reminders", request_method="POST", permission=STAFF)
def switch_reminders(request: Request) -> HTTPSeeOther:
    """``reminders=off`` stops the firm's reminders for this link; ``on`` lets them go again."""
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise HTTPNotFound()
    off = request.POST.get("reminders") == "off"
    if link.reminders_off != off:
        link.reminders_off = off
        audit(request, "link.reminders_off" if off else "link.reminders_on", link)
    request.session.flash(
        "No reminders will be sent for this link."
        if off
        else "Reminders will be sent for this link as the firm's schedule says."
    )
    return HTTPSeeOther(location=request.route_url("links.detail", id=link.id))
