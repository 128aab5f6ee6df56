"""Sent Pages' API: GET /api/v1/links (one page) and GET /api/v1/links/export.xlsx (every
matching row). Both are documented in links/openapi.yaml, beside the rest of /links."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.db import utcnow
from clientpay_connect.links.services import link_json, link_url
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.export import export_filename, write_workbook, xlsx_response
from clientpay_connect.sent.listing import fetch_page, iter_matching
from clientpay_connect.sent.present import firm_zone
from clientpay_connect.sent.query import ListQuery, parse_list_query


def checked_query(request: Request) -> ListQuery:
    query, errors = parse_list_query(request.GET)
    if errors:
        raise FieldErrors(errors)
    return query


@view_config(
    route_name="api.links", request_method="GET", renderer="json", permission=STAFF, openapi=True
)
def list_links_view(request: Request) -> dict[str, Any]:
    firm = firm_id(request)
    page = fetch_page(request.dbsession, firm, checked_query(request))
    items = [
        link_json(link, link_url(request, link), page.balance_links.get(link.id))
        for link in page.links
    ]
    return {"items": items, "next_cursor": page.next_cursor, "total": page.total}


@view_config(route_name="api.links.export", request_method="GET", permission=STAFF, openapi=True)
def export_links_view(request: Request) -> Response:
    query = checked_query(request)
    firm = firm_id(request)
    zone = firm_zone(request.dbsession, firm)
    links = iter_matching(request.dbsession, firm, query)
    filename = export_filename(utcnow().astimezone(zone).date())
    return xlsx_response(
        lambda target: write_workbook(links, lambda link: link_url(request, link), zone, target),
        filename,
    )
