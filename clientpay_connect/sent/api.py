"""Sent Pages' API: GET /api/v1/links (one page) and GET /api/v1/links/export.xlsx (every
matching row). Both are documented in links/openapi.yaml, beside the rest of /links."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any
from zoneinfo import ZoneInfo

from pyramid.request import Request
from pyramid.response import FileIter, Response
from pyramid.view import view_config

from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import link_json, link_url
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.export import XLSX_TYPE, export_filename, write_workbook
from clientpay_connect.sent.listing import balance_links_of, fetch_page, iter_matching
from clientpay_connect.sent.present import firm_zone
from clientpay_connect.sent.query import ListQuery, parse_list_query

# An export stays in memory up to this size and moves to a temporary file beyond it.
EXPORT_SPOOL_BYTES = 16 * 1024 * 1024


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
    balance_links = balance_links_of(request.dbsession, firm, [link.id for link in page.links])
    items = [
        link_json(link, link_url(request, link), balance_links.get(link.id)) for link in page.links
    ]
    return {"items": items, "next_cursor": page.next_cursor, "total": page.total}


@view_config(route_name="api.links.export", request_method="GET", permission=STAFF, openapi=True)
def export_links_view(request: Request) -> Response:
    query = checked_query(request)
    firm = firm_id(request)
    zone = firm_zone(request.dbsession, firm)
    links = iter_matching(request.dbsession, firm, query)
    spool, size = _workbook_file(links, lambda link: link_url(request, link), zone)
    response = Response(
        app_iter=FileIter(spool), content_type=XLSX_TYPE, content_length=size, charset=None
    )
    filename = export_filename(utcnow().astimezone(zone).date())
    response.content_disposition = f'attachment; filename="{filename}"'
    return response


def _workbook_file(
    links: Iterable[PaymentLink], url_for: Callable[[PaymentLink], str], zone: ZoneInfo
) -> tuple[IO[bytes], int]:
    """The workbook in a file rewound for reading, and its size; whoever reads it closes it
    (the response's FileIter does, once it has been sent)."""
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL_BYTES)  # noqa: SIM115
    try:
        write_workbook(links, url_for, zone, spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size
