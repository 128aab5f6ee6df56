"""Firm settings: the page and GET/PUT /api/v1/settings."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.forms import INVALID_FORM, errors_by_field, form_checked, form_text
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.admin.services import (
    MAX_LINK_EXPIRY_DAYS,
    MIN_LINK_EXPIRY_DAYS,
    firm_settings,
    time_zone_choices,
    update_settings,
)
from clientpay_connect.api.errors import FieldErrors
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
    }


def _page(
    request: Request, values: dict[str, Any], errors: dict[str, str] | None = None
) -> dict[str, Any]:
    settings = firm_settings(request.dbsession, firm_id(request))
    return {
        "values": values,
        "errors": errors or {},
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
    values = settings_json(firm_settings(request.dbsession, firm_id(request)))
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
    try:
        update_settings(request, changes)
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        typed = {name: value for name, value in changes.items() if name != "recaptcha_secret"}
        return _page(request, typed, errors_by_field(error))
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
