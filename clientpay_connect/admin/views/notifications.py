"""Notification recipients: who is emailed about which events."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.forms import (
    INVALID_FORM,
    errors_by_field,
    form_choices,
    form_text,
    found,
    matched_id,
)
from clientpay_connect.admin.models import NOTIFICATION_EVENTS, NotificationRecipient
from clientpay_connect.admin.services.notifications import (
    EVENT_LABELS,
    add_recipient,
    firm_recipient,
    firm_recipients,
    recipient_users,
    remove_recipient,
    update_recipient,
)
from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.security import ADMIN, firm_id

EVENT_CHOICES = [(event, EVENT_LABELS.get(event, event)) for event in NOTIFICATION_EVENTS]


def _typed(request: Request) -> dict[str, Any]:
    return {
        "email": form_text(request.POST, "email"),
        "name": form_text(request.POST, "name"),
        "events": form_choices(request.POST, "events"),
        "user_id": form_text(request.POST, "user_id"),
    }


def _recipient_from_route(request: Request) -> NotificationRecipient:
    return found(lambda: firm_recipient(request.dbsession, firm_id(request), matched_id(request)))


def _user_choices(request: Request) -> list[tuple[str, str]]:
    """Whom a recipient can be: one of the firm's active users, or another address."""
    users = recipient_users(request.dbsession, firm_id(request))
    choices = [("", "Another address (type it below)")]
    choices += [(str(u.id), f"{u.name} <{u.email}>" if u.name else u.email) for u in users]
    return choices


def _list_page(
    request: Request, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    # Every event ticked to start with, but not the digest: a daily email is opted into.
    events = [event for event in NOTIFICATION_EVENTS if event != "daily_digest"]
    new = {"email": "", "name": "", "events": events, "user_id": ""}
    return {
        "recipients": firm_recipients(request.dbsession, firm_id(request)),
        "event_choices": EVENT_CHOICES,
        "event_labels": EVENT_LABELS,
        "user_choices": _user_choices(request),
        "values": values or new,
        "errors": errors or {},
    }


def _edit_page(
    request: Request,
    recipient: NotificationRecipient,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    current = {
        "email": recipient.email,
        "name": recipient.name,
        "events": recipient.events,
        "user_id": str(recipient.user_id or ""),
    }
    return {
        "recipient": recipient,
        "event_choices": EVENT_CHOICES,
        "user_choices": _user_choices(request),
        "values": values or current,
        "errors": errors or {},
    }


@view_config(
    route_name="admin.notifications",
    request_method="GET",
    renderer="admin/notifications.jinja2",
    permission=ADMIN,
)
def notifications_page(request: Request) -> dict[str, Any]:
    return _list_page(request)


@view_config(
    route_name="admin.notifications",
    request_method="POST",
    renderer="admin/notifications.jinja2",
    permission=ADMIN,
)
def add_recipient_from_form(request: Request) -> Any:
    values = _typed(request)
    try:
        recipient = add_recipient(
            request, values["email"], values["name"], values["events"], values["user_id"]
        )
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        return _list_page(request, values, errors_by_field(error))
    request.session.flash(f"{recipient.email} will be notified.")
    return HTTPSeeOther(location=request.route_url("admin.notifications"))


@view_config(
    route_name="admin.notification",
    request_method="GET",
    renderer="admin/notification.jinja2",
    permission=ADMIN,
)
def recipient_page(request: Request) -> dict[str, Any]:
    return _edit_page(request, _recipient_from_route(request))


@view_config(
    route_name="admin.notification",
    request_method="POST",
    renderer="admin/notification.jinja2",
    permission=ADMIN,
)
def update_recipient_from_form(request: Request) -> Any:
    recipient = _recipient_from_route(request)
    values = _typed(request)
    try:
        update_recipient(
            request, recipient, values["email"], values["name"], values["events"], values["user_id"]
        )
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        return _edit_page(request, recipient, values, errors_by_field(error))
    request.session.flash(f"Saved {recipient.email}.")
    return HTTPSeeOther(location=request.route_url("admin.notifications"))


@view_config(route_name="admin.notification_remove", request_method="POST", permission=ADMIN)
def remove_recipient_from_form(request: Request) -> HTTPSeeOther:
    recipient = _recipient_from_route(request)
    email = recipient.email
    remove_recipient(request, recipient)
    request.session.flash(f"{email} will no longer be notified.")
    return HTTPSeeOther(location=request.route_url("admin.notifications"))
