"""Sent Pages' API: GET /api/v1/links (one page) and GET /api/v1/links/export.xlsx (every
matching row). Both are documented in links/openapi.yaml, beside the rest of /links."""

from __future__ import annotations

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.api.openapi import QUERY_CHECKED
from clientpay_connect.api.plain_json import json_response
from clientpay_connect.db import read_session, utcnow
from clientpay_connect.links.services import link_values, token_urls
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.export import (
    DEFAULT_COLUMNS,
    Names,
    export_filename,
    parse_columns,
    write_workbook,
    xlsx_response,
)
from clientpay_connect.sent.listing import fetch_page, iter_matching
from clientpay_connect.sent.present import firm_zone
from clientpay_connect.sent.query import ListQuery, parse_list_query


def checked_query(request: Request, *, export: bool = False) -> tuple[ListQuery, tuple[str, ...]]:
    """The query, and for the export the columns it asks for; every problem in one 422."""
    query, errors = parse_list_query(request.GET)
    fields: tuple[str, ...] = DEFAULT_COLUMNS
    if export:
        values = request.GET.getall("columns")
        if len(values) > 1:
            errors.append({"field": "columns", "message": "Give this parameter once."})
        else:
            fields, problem = parse_columns(values[0] if values else None)
            if problem:
                errors.append({"field": "columns", "message": problem})
    if errors:
        raise FieldErrors(errors)
    return query, fields


# openapi=QUERY_CHECKED: checked_query reports every wrong parameter itself (see api/openapi.py).
@view_config(
    route_name="api.links",
    request_method="GET",
    permission=STAFF,
    openapi=QUERY_CHECKED,
)
def list_links_view(request: Request) -> Response:
    firm = firm_id(request)
    query, _fields = checked_query(request)
    # Outside the transaction manager (sent/__init__.py): read_session, not request.dbsession.
    page = fetch_page(read_session(request), firm, query)
    url_of = token_urls(request)
    items = [
        link_values(link, url_of(link.token_encrypted), page.balance_links.get(link.id))
        for link in page.links
    ]
    return json_response({"items": items, "next_cursor": page.next_cursor, "total": page.total})


@view_config(
    route_name="api.links.export", request_method="GET", permission=STAFF, openapi=QUERY_CHECKED
)
def export_links_view(request: Request) -> Response:
    query, fields = checked_query(request, export=True)
    firm = firm_id(request)
    dbsession = request.dbsession
    zone = firm_zone(dbsession, firm)
    names = names_of(dbsession, firm)
    filename = export_filename(utcnow().astimezone(zone).date())
    return xlsx_response(
        lambda target: write_workbook(
            lambda reads: iter_matching(dbsession, firm, query, reads),
            token_urls(request),
            zone,
            target,
            fields,
            names,
        ),
        filename,
    )


def names_of(dbsession: Session, firm: int) -> Names:
    """The firm's users and merchant accounts by id, as the export names them."""
    users = dbsession.execute(
        select(User.id, User.name, User.email).where(User.firm_id == firm)
    ).all()
    accounts = dbsession.execute(
        select(MerchantAccount.id, MerchantAccount.name).where(MerchantAccount.firm_id == firm)
    ).all()
    return Names(
        users={user_id: name or email for user_id, name, email in users},
        accounts={account_id: name for account_id, name in accounts},
    )
