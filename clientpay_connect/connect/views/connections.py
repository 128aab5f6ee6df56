"""Admin > Connections: the firm's matter systems; add, reconnect, disconnect, and the defaults
Connect links and postings use.

An OAuth adapter's Add (and Reconnect) sends the admin's browser to the provider, with the
state kept in the session under ``services.STATE_KEY``: the provider returns to the
API's callback view, which completes the grant and comes back here with a flash.
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.forms import INVALID_FORM, form_checked, form_text
from clientpay_connect.connect.interfaces import AdapterError, ConnectionRefused
from clientpay_connect.connect.models import (
    CONNECTION_CONNECTED,
    CONNECTION_DISCONNECTED,
    Connection,
)
from clientpay_connect.connect.present import (
    adapter_label,
    capabilities_in_words,
    status_label,
)
from clientpay_connect.connect.services import (
    STATE_KEY,
    Authorization,
    adapter_capabilities,
    adapter_catalog_json,
    begin_authorization,
    create_connection,
    disconnect,
    find_connection,
    firm_connections,
    is_oauth_connection,
    update_connection,
)
from clientpay_connect.links.forms import active_accounts
from clientpay_connect.security import ADMIN, firm_id
from clientpay_connect.sent.present import firm_zone, local_timestamp
from clientpay_connect.work import Work

# The settings an admin gives each adapter here (OAuth adapters get theirs from the provider).
ADAPTER_SETTINGS = {"sql": ("url",), "clio": ("region",)}
CLIO_REGIONS = [
    ("us", "United States (app.clio.com)"),
    ("eu", "Europe (eu.app.clio.com)"),
    ("ca", "Canada (ca.app.clio.com)"),
    ("au", "Australia (au.app.clio.com)"),
]
ADD_FIELDS = ("adapter", "name", "url", "region")
FIELD_LABELS = {
    "adapter": "Matter system",
    "name": "Name",
    "url": "Database URL",
    "region": "Clio region",
    "settings": "Settings",
    "default_merchant_account_id": "Default merchant account",
}


def _connection(request: Request) -> Connection:
    connection = find_connection(request.dbsession, firm_id(request), request.matchdict["id"])
    if connection is None:
        raise HTTPNotFound()
    return connection


def _shown(request: Request, connection: Connection) -> dict[str, Any]:
    """One connection as the pages show it."""
    work = Work.from_request(request)
    label, badge = status_label(connection.status)
    return {
        "connection": connection,
        "adapter": adapter_label(connection.adapter),
        "status": label,
        "badge": badge,
        "abilities": capabilities_in_words(
            connection.adapter, adapter_capabilities(work, connection)
        ),
        "oauth": is_oauth_connection(work, connection),
        "can_reconnect": connection.status != CONNECTION_CONNECTED
        and is_oauth_connection(work, connection),
        "connected_at": local_timestamp(
            connection.connected_at, firm_zone(request.dbsession, firm_id(request))
        ),
    }


def _list_page(
    request: Request, values: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    adapters = adapter_catalog_json(Work.from_request(request))
    shown = [_shown(request, c) for c in firm_connections(request.dbsession, firm_id(request))]
    blank = {"adapter": "", "name": "", "url": "", "region": "us"}
    return {
        "connections": shown,
        "needing_admin": [item for item in shown if item["badge"] == "failed"],
        "adapters": [("", "Choose a matter system")]
        + [(a["name"], adapter_label(a["name"])) for a in adapters],
        "regions": CLIO_REGIONS,
        "values": values or blank,
        "errors": errors or {},
        "labels": FIELD_LABELS,
    }


def _to_provider(request: Request, connection: Connection, authorization: Authorization) -> Any:
    request.session[STATE_KEY.format(connection.id)] = authorization.state
    return HTTPSeeOther(authorization.url)


@view_config(
    route_name="admin.connections",
    request_method="GET",
    renderer="admin/connections.jinja2",
    permission=ADMIN,
)
def connections_page(request: Request) -> dict[str, Any]:
    return _list_page(request)


@view_config(
    route_name="admin.connections",
    request_method="POST",
    renderer="admin/connections.jinja2",
    permission=ADMIN,
)
def add_connection_from_form(request: Request) -> Any:
    values = {name: form_text(request.POST, name).strip() for name in ADD_FIELDS}
    adapter = values["adapter"]
    settings = {key: values[key] for key in ADAPTER_SETTINGS.get(adapter, ()) if values[key]}
    errors = {}
    if not adapter:
        errors["adapter"] = "Choose the matter system to connect."
    elif adapter == "sql" and not settings:
        errors["url"] = "Enter the database's URL, for example postgresql://user@host/matters."
    elif adapter == "clio" and values["region"] not in dict(CLIO_REGIONS):
        errors["region"] = "Choose the region your Clio account is in."
    if errors:
        request.response.status = INVALID_FORM
        return _list_page(request, values, errors)
    work = Work.from_request(request)
    try:
        connection, authorization = create_connection(
            work, firm_id(request), adapter, values["name"], settings
        )
    except (ConnectionRefused, AdapterError) as refused:
        # Nothing of a refused connection is kept (create_connection has flushed its row).
        request.tm.doom()
        field = getattr(refused, "field", None) or "adapter"
        field = "url" if field == "settings" and adapter == "sql" else field
        request.response.status = INVALID_FORM
        return _list_page(request, values, {field: getattr(refused, "message", str(refused))})
    if authorization is not None:
        return _to_provider(request, connection, authorization)
    request.session.flash(f"{connection.name} is connected.")
    return HTTPSeeOther(request.route_url("admin.connection", id=connection.id))


def _detail_page(
    request: Request,
    connection: Connection,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    current = {
        "name": connection.name,
        "default_merchant_account_id": str(connection.default_merchant_account_id or ""),
        "post_automatically": connection.post_automatically,
    }
    return {
        **_shown(request, connection),
        "accounts": active_accounts(request.dbsession, firm_id(request)),
        "values": values or current,
        "errors": errors or {},
        "labels": FIELD_LABELS,
        "disconnected": connection.status == CONNECTION_DISCONNECTED,
    }


@view_config(
    route_name="admin.connection",
    request_method="GET",
    renderer="admin/connection.jinja2",
    permission=ADMIN,
)
def connection_page(request: Request) -> dict[str, Any]:
    return _detail_page(request, _connection(request))


@view_config(
    route_name="admin.connection",
    request_method="POST",
    renderer="admin/connection.jinja2",
    permission=ADMIN,
)
def save_connection_from_form(request: Request) -> Any:
    connection = _connection(request)
    account = form_text(request.POST, "default_merchant_account_id").strip()
    values = {
        "name": form_text(request.POST, "name"),
        "default_merchant_account_id": account,
        "post_automatically": form_checked(request.POST, "post_automatically"),
    }
    changes = {
        **values,
        "default_merchant_account_id": int(account) if account.isdigit() else None,
    }
    try:
        update_connection(Work.from_request(request), connection, changes)
    except ConnectionRefused as refused:
        request.tm.doom()
        request.response.status = INVALID_FORM
        return _detail_page(request, connection, values, {refused.field or "": refused.message})
    request.session.flash(f"Saved {connection.name}.")
    return HTTPSeeOther(request.route_url("admin.connections"))


@view_config(route_name="admin.connection_reconnect", request_method="POST", permission=ADMIN)
def reconnect_from_form(request: Request) -> Any:
    connection = _connection(request)
    work = Work.from_request(request)
    if not is_oauth_connection(work, connection):
        request.session.flash(
            f"{connection.name} does not sign in at a provider; add it again instead.", "error"
        )
        return HTTPSeeOther(request.route_url("admin.connection", id=connection.id))
    return _to_provider(request, connection, begin_authorization(work, connection))


@view_config(route_name="admin.connection_disconnect", request_method="POST", permission=ADMIN)
def disconnect_from_form(request: Request) -> HTTPSeeOther:
    connection = _connection(request)
    disconnect(Work.from_request(request), connection)
    request.session.flash(
        f"{connection.name} is disconnected: Connect no longer searches it, and its "
        "authorization was withdrawn."
    )
    return HTTPSeeOther(request.route_url("admin.connections"))
