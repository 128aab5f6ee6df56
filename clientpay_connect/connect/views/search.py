"""The Connect page (staff): search the matter system, tick invoices, send one link.

The page works without scripts (search is a GET of the page, the allocation preview a button);
with htmx the results answer as staff type (``connect.results``) and the preview follows every
change (``connect.preview``). What the matter system answers badly (it needs reauthorizing,
it is down, it asks us to slow down) is shown as a message, with the status the API gives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.connect import page, workflow
from clientpay_connect.connect.interfaces import (
    AdapterError,
    ReauthorizationRequired,
    SearchResult,
)
from clientpay_connect.connect.linking import firm_account, link_invoices, may_allocate
from clientpay_connect.connect.models import (
    CONNECTION_CONNECTED,
    CONNECTION_NEEDS_REAUTHORIZATION,
    Connection,
)
from clientpay_connect.connect.services import find_connection, firm_connections
from clientpay_connect.links.forms import active_accounts, default_message
from clientpay_connect.links.models import SOURCE_CONNECT
from clientpay_connect.links.pages import GENERATE, LANGUAGES, SEND, created_link, done_page
from clientpay_connect.money import display_amount
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.work import Work

PREVIEW = "preview"
# Connections staff may choose: a connection waiting for its grant, or disconnected, is not.
OFFERED = (CONNECTION_CONNECTED, CONNECTION_NEEDS_REAUTHORIZATION)
MAX_QUERY = 200


@dataclass(frozen=True)
class Found:
    """What a search gave: the result, or the matter system's problem and its status."""

    query: workflow.SearchQuery
    result: SearchResult | None = None
    problem: str = ""
    status: int = 200
    # The grant is gone: an admin must reconnect (the page then links to the admin page).
    needs_admin: bool = False

    @property
    def searched(self) -> bool:
        return self.result is not None or bool(self.problem)


def _query(params: Any, prefix: str = "") -> workflow.SearchQuery:
    return workflow.SearchQuery(
        q=str(params.get(prefix + "q", "")).strip()[:MAX_QUERY],
        client_id=str(params.get(prefix + "client_id", "")).strip() or None,
        matter_id=str(params.get(prefix + "matter_id", "")).strip() or None,
    )


def _search(request: Request, connection: Connection, query: workflow.SearchQuery) -> Found:
    if not (query.q or query.client_id or query.matter_id):
        return Found(query)
    try:
        result = workflow.search(Work.from_request(request), connection, query)
    except AdapterError as error:
        answer = workflow.api_error(error)
        return Found(
            query,
            problem=answer.message,
            status=answer.status,
            needs_admin=isinstance(error, ReauthorizationRequired),
        )
    return Found(query, result=result)


def _offered(request: Request) -> list[Connection]:
    connections = firm_connections(request.dbsession, firm_id(request))
    return [connection for connection in connections if connection.status in OFFERED]


def _chosen(request: Request, offered: list[Connection], raw_id: Any) -> Connection | None:
    """The connection the request names (another firm's, or none such: 404), else the only
    one offered."""
    if raw_id is not None and str(raw_id).strip():
        connection = find_connection(request.dbsession, firm_id(request), raw_id)
        if connection is None:
            raise HTTPNotFound()
        return connection
    return offered[0] if len(offered) == 1 else None


def _required(request: Request, raw_id: Any) -> Connection:
    connection = _chosen(request, [], raw_id)
    if connection is None:
        raise HTTPNotFound()
    return connection


def _default_account(connection: Connection | None, accounts: list[MerchantAccount]) -> str:
    ids = [account.id for account in accounts]
    if connection is not None and connection.default_merchant_account_id in ids:
        return str(connection.default_merchant_account_id)
    # With one account there is nothing to choose, so it is chosen.
    return str(ids[0]) if len(ids) == 1 else ""


def _results(
    request: Request, connection: Connection, form: page.ConnectForm, found: Found
) -> dict[str, Any]:
    """What the results partial shows (the page includes it too)."""
    groups: list[page.ClientGroup] = []
    if found.result is not None:
        today = workflow.firm_today(request.dbsession, connection.firm_id)
        groups = page.group_results(found.result, today, form)
    return {
        "connection": connection,
        "found": found,
        "groups": groups,
        "form": form,
        "only_client": page.only_client(groups),
        "money": display_amount,
        "amount_field": page.AMOUNT_FIELD,
        "owed_field": page.OWED_FIELD,
    }


def _preview(request: Request, form: page.ConnectForm, params: Any) -> page.Preview:
    account = firm_account(request.dbsession, firm_id(request), form.values["merchant_account_id"])
    return page.preview(form, params, may_allocate(account))


def _page(
    request: Request,
    connection: Connection | None,
    form: page.ConnectForm,
    found: Found | None,
    problem: str = "",
) -> dict[str, Any]:
    accounts = active_accounts(request.dbsession, firm_id(request))
    results = _results(request, connection, form, found) if connection and found else {}
    groups = results.get("groups", [])
    numbers = {
        row.invoice.id: row.invoice.number
        for client in groups
        for matter in client.matters
        for row in matter.rows
    }
    return {
        **results,
        "connections": _offered(request),
        "connection": connection,
        "accounts": accounts,
        "form": form,
        "found": found,
        "problem": problem,
        "summary": form.summary(numbers, set(numbers)),
        "preview": _preview(request, form, request.params),
        "default_message": default_message(request.dbsession, firm_id(request)),
        "languages": LANGUAGES,
        "each": page.EACH,
        "total": page.TOTAL,
    }


@view_config(
    route_name="connect.search",
    request_method="GET",
    renderer="connect/page.jinja2",
    permission=STAFF,
)
def connect_page(request: Request) -> dict[str, Any]:
    created = created_link(request)
    if created is not None and created.source == SOURCE_CONNECT:
        request.override_renderer = "connect/done.jinja2"
        return {
            **done_page(request, created),
            "invoices": link_invoices(request.dbsession, created.id),
            "invoice_money": lambda minor: display_amount(minor, created.currency),
            "again": request.route_url(
                "connect.search", _query={"connection_id": created.connection_id or ""}
            ),
        }
    offered = _offered(request)
    connection = _chosen(request, offered, request.GET.get("connection_id"))
    accounts = active_accounts(request.dbsession, firm_id(request))
    form = page.ConnectForm.blank(_default_account(connection, accounts))
    found = _search(request, connection, _query(request.GET)) if connection else None
    context = _page(request, connection, form, found)
    client = context.get("only_client")
    if client is not None:
        # The payer is the client whose invoices are listed, until staff type another.
        form.values["emails"] = client.email
    request.response.status = found.status if found else 200
    return context


@view_config(
    route_name="connect.results",
    request_method="GET",
    renderer="connect/_results.jinja2",
    permission=STAFF,
)
def results_partial(request: Request) -> dict[str, Any]:
    connection = _required(request, request.GET.get("connection_id"))
    # Invoices ticked before this search stay ticked (with their amounts) if found again.
    form = page.ConnectForm.posted(request.GET)
    # Always 200: htmx swaps in only successful answers, and the problem is the content.
    return _results(request, connection, form, _search(request, connection, _query(request.GET)))


@view_config(
    route_name="connect.preview",
    request_method="POST",
    renderer="connect/_preview.jinja2",
    permission=STAFF,
)
def preview_partial(request: Request) -> dict[str, Any]:
    form = page.ConnectForm.posted(request.POST)
    return {"preview": _preview(request, form, request.POST), "form": form}


def _mode(params: Any) -> str:
    """Which button was pressed; Enter (the form's hidden default button) follows the radio."""
    action = str(params.get("action", ""))
    if action in (SEND, GENERATE, PREVIEW):
        return action
    return GENERATE if params.get("send_email") == "no" else SEND


@view_config(
    route_name="connect.search",
    request_method="POST",
    renderer="connect/page.jinja2",
    permission=STAFF,
)
def connect_submit(request: Request) -> Any:
    connection = _required(request, request.POST.get("connection_id"))
    form = page.ConnectForm.posted(request.POST)
    mode = _mode(request.POST)
    query = _query(request.POST, prefix="searched_")
    if mode == PREVIEW:
        return _page(request, connection, form, _search(request, connection, query))
    form.values["send_email"] = "yes" if mode == SEND else "no"
    problem = ""
    try:
        link = workflow.create_connect_link(request, connection, form.connect_input(mode == SEND))
    except workflow.Refused as refused:
        form.place_errors(refused.errors)
        request.response.status = 422
    except AdapterError as error:
        answer = workflow.api_error(error)
        problem = answer.message
        request.response.status = answer.status
    else:
        # Redirect after POST: reloading the result page must not make a second link.
        return HTTPSeeOther(request.route_url("connect.search", _query={"created": link.id}))
    return _page(request, connection, form, _search(request, connection, query), problem)
