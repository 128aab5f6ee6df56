"""The admin home: the sections and what changed lately."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.present import Names, describe
from clientpay_connect.admin.services.home import recent_audit_events
from clientpay_connect.security import ADMIN, firm_id

SECTIONS = (
    ("admin.users", "Users", "Add people, change their role, reset passwords."),
    ("admin.settings", "Settings", "Email message, payment-page disclaimer, reCAPTCHA, expiry."),
    ("admin.notifications", "Notifications", "Who hears about payments and failures."),
    ("admin.merchant_accounts", "Merchant accounts", "Operating and trust accounts."),
    ("admin.connections", "Connections", "Your matter system: connect it, reconnect, defaults."),
    ("admin.tokens", "API tokens", "Tokens for the matter software and scripts."),
    ("admin.outbox", "Outbox", "Every email sent for the firm, and the ones to retry."),
)
RECENT_EVENTS = 50


@view_config(route_name="admin.home", renderer="admin/home.jinja2", permission=ADMIN)
def admin_home(request: Request) -> dict[str, Any]:
    firm = firm_id(request)
    recent = recent_audit_events(request.dbsession, firm, RECENT_EVENTS)
    names = Names.of(request.dbsession, firm, (event for event, _actor in recent))
    events = [
        {
            "at": event.created_at,
            "text": describe(event, actor, names),
            "action": event.action,
        }
        for event, actor in recent
    ]
    # The Outbox and Connections belong to other features: listed only when they are installed.
    sections = [s for s in SECTIONS if request.registry.introspector.get("routes", s[0])]
    return {"sections": sections, "events": events}
