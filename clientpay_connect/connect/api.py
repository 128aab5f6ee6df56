"""The connections and Connect API (documented in openapi.yaml beside this file)."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from clientpay_connect.api.errors import ApiError, FieldErrors, conflict, error_response, not_found
from clientpay_connect.connect import workflow
from clientpay_connect.connect.interfaces import AdapterError, ConnectionRefused
from clientpay_connect.connect.models import Connection
from clientpay_connect.connect.present import connection_json, search_json
from clientpay_connect.connect.services import (
    STATE_KEY,
    adapter_capabilities,
    adapter_catalog_json,
    begin_authorization,
    complete_authorization,
    create_connection,
    disconnect,
    find_connection,
    firm_connections,
    is_oauth_connection,
    update_connection,
)
from clientpay_connect.db import sqlite_may_write
from clientpay_connect.security import ADMIN, STAFF, firm_id
from clientpay_connect.work import Work

API = {"renderer": "json", "openapi": True}


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    body: dict[str, Any] = request.json_body
    return body


def _connection(request: Request, raw_id: Any) -> Connection:
    connection = find_connection(request.dbsession, firm_id(request), raw_id)
    if connection is None:
        raise not_found("No such connection.")
    return connection


def _json(request: Request, connection: Connection) -> dict[str, Any]:
    return connection_json(connection, adapter_capabilities(Work.from_request(request), connection))


# The services raise; the API answers here. The pages catch these themselves (a flash), and
# the OAuth callback, a redirect back to a page, flashes too: hence the paths.


@exception_view_config(ConnectionRefused, path_info=r"^/api/v1/connections")
def connection_refused(refused: ConnectionRefused, request: Request) -> Response:
    return error_response(request, _refused(refused))


@exception_view_config(workflow.Refused, path_info=r"^/api/v1/connect/links")
def link_refused(refused: workflow.Refused, request: Request) -> Response:
    return error_response(request, FieldErrors(refused.errors))


@exception_view_config(AdapterError, path_info=r"^/api/v1/connect/")
def matter_system_failed(error: AdapterError, request: Request) -> Response:
    return error_response(request, workflow.api_error(error))


def _refused(refused: ConnectionRefused) -> ApiError:
    if refused.field is not None or refused.code in ("unknown_adapter", "unreachable"):
        return FieldErrors(
            [{"field": refused.field or "adapter", "message": refused.message}], refused.message
        )
    return conflict(refused.code, refused.message)


@view_config(route_name="api.connections", request_method="GET", permission=STAFF, **API)
def list_connections_view(request: Request) -> dict[str, Any]:
    work = Work.from_request(request)
    return {
        "items": [_json(request, c) for c in firm_connections(request.dbsession, firm_id(request))],
        "adapters": adapter_catalog_json(work),
    }


@view_config(route_name="api.connections", request_method="POST", permission=ADMIN, **API)
def create_connection_view(request: Request) -> dict[str, Any]:
    body = _body(request)
    work = Work.from_request(request)
    connection, authorization = create_connection(
        work,
        firm_id(request),
        str(body["adapter"]),
        str(body.get("name") or ""),
        dict(body.get("settings") or {}),
    )
    update_connection(work, connection, body)
    request.response.status = 201
    answer = _json(request, connection)
    if authorization is not None:
        request.session[STATE_KEY.format(connection.id)] = authorization.state
        answer["authorize_url"] = authorization.url
    return answer


@view_config(route_name="api.connection", request_method="GET", permission=STAFF, **API)
def get_connection_view(request: Request) -> dict[str, Any]:
    return _json(request, _connection(request, request.matchdict["id"]))


@view_config(route_name="api.connection", request_method="PATCH", permission=ADMIN, **API)
def update_connection_view(request: Request) -> dict[str, Any]:
    connection = _connection(request, request.matchdict["id"])
    update_connection(Work.from_request(request), connection, _body(request))
    return _json(request, connection)


@view_config(route_name="api.connection", request_method="DELETE", permission=ADMIN, **API)
def disconnect_view(request: Request) -> dict[str, Any]:
    connection = _connection(request, request.matchdict["id"])
    disconnect(Work.from_request(request), connection)
    return _json(request, connection)


@view_config(route_name="api.connection.authorize", request_method="POST", permission=ADMIN, **API)
def authorize_again_view(request: Request) -> dict[str, Any]:
    connection = _connection(request, request.matchdict["id"])
    work = Work.from_request(request)
    if not is_oauth_connection(work, connection):
        raise conflict("not_oauth", "This connection does not use the provider's sign-in.")
    authorization = begin_authorization(work, connection)
    request.session[STATE_KEY.format(connection.id)] = authorization.state
    return {**_json(request, connection), "authorize_url": authorization.url}


@view_config(
    route_name="api.connection.callback", request_method="GET", permission=ADMIN, openapi=True
)
def callback_view(request: Request) -> HTTPSeeOther:
    # A GET that writes: on SQLite take the write lock at the start, not midway.
    sqlite_may_write.set(True)
    connection = _connection(request, request.matchdict["id"])
    state = request.session.pop(STATE_KEY.format(connection.id), None)
    work = Work.from_request(request)
    if request.params.get("error"):
        message = f"The provider did not authorize the connection ({request.params['error']})."
        connection.last_error = message[:500]
        request.session.flash(message, "error")
    else:
        try:
            complete_authorization(
                work,
                connection,
                request.params.get("code", ""),
                request.params.get("state", ""),
                state,
            )
        except ConnectionRefused as refused:
            request.session.flash(refused.message, "error")
        else:
            request.session.flash(f"{connection.name} is connected.")
    return HTTPSeeOther(request.route_url("admin.connections"))


@view_config(route_name="api.connect.search", request_method="GET", permission=STAFF, **API)
def search_view(request: Request) -> dict[str, Any]:
    connection = _connection(request, request.params.get("connection_id", ""))
    query = workflow.SearchQuery(
        q=request.params.get("q", "").strip(),
        client_id=request.params.get("client_id") or None,
        matter_id=request.params.get("matter_id") or None,
    )
    if not (query.q or query.client_id or query.matter_id):
        raise FieldErrors([{"field": "q", "message": "Type at least one character to search."}])
    result = workflow.search(Work.from_request(request), connection, query)
    return search_json(result, workflow.firm_today(request.dbsession, connection.firm_id))


@view_config(route_name="api.connect.links", request_method="POST", permission=STAFF, **API)
def create_connect_link_view(request: Request) -> dict[str, Any]:
    body = _body(request)
    connection = _connection(request, body.get("connection_id", ""))
    payer = body.get("payer") or {}
    data = workflow.ConnectInput(
        merchant_account_id=body.get("merchant_account_id"),
        invoices=list(body.get("invoices") or []),
        amount=body.get("amount"),
        payer_name=payer.get("name"),
        emails=list(payer.get("emails") or []),
        message=body.get("message"),
        send_email=bool(body.get("send_email", False)),
        due_date=body.get("due_date"),
        locale=body.get("locale"),
    )
    link = workflow.create_connect_link(request, connection, data)
    request.response.status = 201
    return workflow.link_body(request, link)
