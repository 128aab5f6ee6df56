"""What staff do in Connect: search the matter system, and make one link for its invoices.

The matter system is called outside our database transaction: on SQLite a transaction that
writes holds the whole database, and an adapter may wait seconds on a vendor (or refresh
its grant, which writes in a transaction of its own).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyramid.request import Request
from sqlalchemy.orm import Session

from clientpay_connect.api.errors import ApiError
from clientpay_connect.connect.interfaces import (
    AdapterError,
    Conflict,
    Invoice,
    RateLimited,
    ReauthorizationRequired,
    SearchResult,
    Transient,
)
from clientpay_connect.connect.linking import (
    ConnectInput,
    Names,
    Refused,
    link_invoices,
    link_invoices_json,
    plan_connect_link,
    record_link_invoices,
    requested_ids,
)
from clientpay_connect.connect.models import (
    CONNECTION_CONNECTED,
    CONNECTION_NEEDS_REAUTHORIZATION,
    Connection,
)
from clientpay_connect.connect.services import (
    open_adapter,
    record_reauthorization_needed,
    release_adapter,
)
from clientpay_connect.links.actions import create_for_staff
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import balance_link_of, link_json, link_url
from clientpay_connect.sent.present import firm_zone
from clientpay_connect.work import Work

__all__ = ["ConnectInput", "Refused"]


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    client_id: str | None = None
    matter_id: str | None = None


def firm_today(dbsession: Session, firm_id: int) -> dt.date:
    return dt.datetime.now(firm_zone(dbsession, firm_id)).date()


def require_connected(connection: Connection) -> None:
    if connection.status == CONNECTION_NEEDS_REAUTHORIZATION:
        raise ReauthorizationRequired(
            f"{connection.name} needs an admin to connect it again (Admin > Connections)."
        )
    if connection.status != CONNECTION_CONNECTED:
        raise ReauthorizationRequired(f"{connection.name} is not connected.")


@contextmanager
def opened(work: Work, connection: Connection) -> Iterator[Any]:
    """The connection's adapter, closed afterwards; a refused grant marks the connection."""
    require_connected(connection)
    adapter = open_adapter(work, connection)
    try:
        yield adapter
    except ReauthorizationRequired as error:
        record_reauthorization_needed(work.registry, connection.id, str(error))
        raise
    finally:
        release_adapter(work.registry, adapter)


def search(work: Work, connection: Connection, query: SearchQuery) -> SearchResult:
    with opened(work, connection) as adapter:
        result: SearchResult = adapter.search(
            query.q, client_id=query.client_id, matter_id=query.matter_id
        )
        return result


def read_invoices(
    work: Work, connection: Connection, ids: list[str]
) -> tuple[list[Invoice], Names]:
    """The invoices as the matter system holds them now, with their clients' and matters'
    names (from a search narrowed to each client)."""
    with opened(work, connection) as adapter:
        found: list[Invoice] = list(adapter.get_invoices([i for i in ids if i]))
        clients: dict[str, str] = {}
        matters: dict[str, str] = {}
        for client_id in sorted({invoice.client_id for invoice in found}):
            named = adapter.search("", client_id=client_id)
            clients.update({c.id: c.name for c in named.clients})
            matters.update({m.id: _matter_name(m.number, m.name) for m in named.matters})
        return found, Names(clients, matters)


def _matter_name(number: str, name: str) -> str:
    return f"{number} {name}".strip() if number and number not in name else name


def create_connect_link(
    request: Request, connection: Connection, data: ConnectInput
) -> PaymentLink:
    work = Work.from_request(request)
    connection_id, firm_id = connection.id, connection.firm_id
    # Let go of the database while the matter system answers (see the module's docstring).
    work.checkpoint()
    found, names = read_invoices(work, connection, requested_ids(data))
    planned = plan_connect_link(work.dbsession, firm_id, data, found, names)
    link, _token = create_for_staff(request, planned.new, send_email=data.send_email)
    link.connection_id = connection_id
    record_link_invoices(work.dbsession, link, planned, names)
    return link


def link_body(request: Request, link: PaymentLink) -> dict[str, Any]:
    balance = balance_link_of(request.dbsession, link)
    body = link_json(link, link_url(request, link), balance.id if balance else None)
    body["connection_id"] = link.connection_id
    body["invoices"] = link_invoices_json(link_invoices(request.dbsession, link.id), link.currency)
    return body


def api_error(error: AdapterError) -> ApiError:
    """How the API answers what the matter system did."""
    if isinstance(error, RateLimited):
        return ApiError(
            429,
            "rate_limited",
            "The matter system asks us to slow down; try again in a moment.",
            extra={"retry_after": round(error.retry_after, 1)},
        )
    if isinstance(error, ReauthorizationRequired):
        return ApiError(409, "needs_reauthorization", str(error) or "Connect the system again.")
    if isinstance(error, Conflict):
        return ApiError(409, "matter_system_conflict", str(error))
    if isinstance(error, Transient):
        return ApiError(
            503,
            "matter_system_unavailable",
            "The matter system did not answer; try again in a moment.",
        )
    return ApiError(502, "matter_system_error", f"The matter system refused: {error}")
