"""Firm settings: the page and GET/PUT /api/v1/settings."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.forms import INVALID_FORM, errors_by_field, form_checked, form_text
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.admin.services.settings import (
    MAX_LINK_EXPIRY_DAYS,
    MIN_LINK_EXPIRY_DAYS,
    firm_settings,
    time_zone_choices,
    update_settings,
)
from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.reminders.schedule import (
    MAX_DAYS,
    MAX_REMINDERS,
    RELATIVE_TO_DUE_DATE,
    RELATIVE_TO_SENT,
)
from clientpay_connect.security import ADMIN, firm_id

TEXT_FIELDS = (
    "default_email_message",
    "disclaimer",
    "recaptcha_site_key",
    "link_expiry_days",
    "time_zone",
    "reply_to_email",
)


def settings_json(settings: FirmSettings) -> dict[str, Any]:
    return {
        "default_email_message": settings.default_email_message,
        "disclaimer": settings.disclaimer,
        "recaptcha_enabled": settings.recaptcha_enabled,
        "recaptcha_site_key": settings.recaptcha_site_key,
        "recaptcha_secret_set": settings.recaptcha_secret_encrypted is not None,
        "link_expiry_days": settings.link_expiry_days,
        "time_zone": settings.time_zone,
        "reply_to_email": settings.reply_to_email,
        "reminders": list(settings.reminders or []),
    }


# How the page says when a reminder goes: a number of days and one of these.
BEFORE_DUE, AFTER_DUE, AFTER_SENT = "before_due", "after_due", "after_sent"
WHEN_CHOICES = [
    (BEFORE_DUE, "days before the due date"),
    (AFTER_DUE, "days after the due date"),
    (AFTER_SENT, "days after sending (links without a due date)"),
]


def reminder_field(row: int, name: str) -> str:
    return f"reminder-{row}-{name}"


def reminder_rows(reminders: list[dict[str, Any]], default_message: str) -> list[dict[str, str]]:
    """The page's four rows: the schedule's reminders, then blank rows whose message is the
    firm's default text, ready to be used."""
    rows = []
    for item in reminders[:MAX_REMINDERS]:
        days = int(item["days"])
        if item["relative_to"] == RELATIVE_TO_SENT:
            when = AFTER_SENT
        else:
            when = BEFORE_DUE if days < 0 else AFTER_DUE
        rows.append({"days": str(abs(days)), "when": when, "message": str(item["message"])})
    while len(rows) < MAX_REMINDERS:
        rows.append({"days": "", "when": AFTER_DUE, "message": default_message})
    return rows


def posted_reminders(post: Any) -> tuple[list[dict[str, str]], list[dict[str, Any]], list[int]]:
    """The rows as typed; the schedule they make (rows with days only); and the row each of
    its reminders came from. Days that are not a whole number go through as text, for the
    service to refuse."""
    rows: list[dict[str, str]] = []
    schedule: list[dict[str, Any]] = []
    from_row: list[int] = []
    for row in range(MAX_REMINDERS):
        typed = {
            name: form_text(post, reminder_field(row, name)) for name in ("days", "when", "message")
        }
        rows.append(typed)
        text = typed["days"].strip()
        if not text:
            continue
        days: Any = int(text) if text.isdecimal() and len(text) <= 4 else text
        if isinstance(days, int) and typed["when"] == BEFORE_DUE:
            days = -days
        relative_to = RELATIVE_TO_SENT if typed["when"] == AFTER_SENT else RELATIVE_TO_DUE_DATE
        schedule.append({"days": days, "relative_to": relative_to, "message": typed["message"]})
        from_row.append(row)
    return rows, schedule, from_row


def page_errors(errors: dict[str, str], from_row: list[int]) -> dict[str, str]:
    """The service's "reminders.<i>.<name>" errors under the page's row fields."""
    shown: dict[str, str] = {}
    for name, message in errors.items():
        parts = name.split(".")
        if parts[0] == "reminders" and len(parts) >= 2 and parts[1].isdecimal():
            field = parts[2] if len(parts) > 2 and parts[2] != "relative_to" else "days"
            if field == "days" and "whole number" in message:
                message = f"Enter a whole number of days from 0 to {MAX_DAYS}."
            shown[reminder_field(from_row[int(parts[1])], field)] = message
        elif name == "reminders":
            shown[reminder_field(0, "days")] = message
        else:
            shown[name] = message
    return shown


def _page(
    request: Request, values: dict[str, Any], errors: dict[str, str] | None = None
) -> dict[str, Any]:
    settings = firm_settings(request.dbsession, firm_id(request))
    return {
        "values": values,
        "errors": errors or {},
        "reminder_labels": {
            reminder_field(row, name): f"Reminder {row + 1} {label}"
            for row in range(MAX_REMINDERS)
            for name, label in (("days", "days"), ("when", "timing"), ("message", "message"))
        },
        "when_choices": WHEN_CHOICES,
        "max_reminders": MAX_REMINDERS,
        "secret_set": settings.recaptcha_secret_encrypted is not None,
        "time_zone_groups": time_zone_choices(),
        "min_days": MIN_LINK_EXPIRY_DAYS,
        "max_days": MAX_LINK_EXPIRY_DAYS,
    }


@view_config(
    route_name="admin.settings",
    request_method="GET",
    renderer="admin/settings.jinja2",
    permission=ADMIN,
)
def settings_page(request: Request) -> dict[str, Any]:
    settings = firm_settings(request.dbsession, firm_id(request))
    values = settings_json(settings)
    values["reminder_rows"] = reminder_rows(values["reminders"], settings.default_email_message)
    return _page(request, values)


@view_config(
    route_name="admin.settings",
    request_method="POST",
    renderer="admin/settings.jinja2",
    permission=ADMIN,
)
def save_settings(request: Request) -> Any:
    changes: dict[str, Any] = {name: form_text(request.POST, name) for name in TEXT_FIELDS}
    changes["recaptcha_enabled"] = form_checked(request.POST, "recaptcha_enabled")
    secret = form_text(request.POST, "recaptcha_secret").strip()
    # The secret is never sent back to the browser, so an empty field means "keep it".
    if secret:
        changes["recaptcha_secret"] = secret
    rows, changes["reminders"], from_row = posted_reminders(request.POST)
    try:
        update_settings(request, changes)
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        typed = {name: value for name, value in changes.items() if name != "recaptcha_secret"}
        typed["reminder_rows"] = rows
        return _page(request, typed, page_errors(errors_by_field(error), from_row))
    request.session.flash("Settings saved.")
    return HTTPSeeOther(location=request.route_url("admin.settings"))


@view_config(
    route_name="api.settings",
    request_method="GET",
    renderer="json",
    permission=ADMIN,
    openapi=True,
)
def get_settings(request: Request) -> dict[str, Any]:
    return settings_json(firm_settings(request.dbsession, firm_id(request)))


@view_config(
    route_name="api.settings",
    request_method="PUT",
    renderer="json",
    permission=ADMIN,
    openapi=True,
)
def put_settings(request: Request) -> dict[str, Any]:
    return settings_json(update_settings(request, dict(request.openapi_validated.body)))
