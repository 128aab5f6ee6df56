"""The reconciliation report's API (documented in openapi.yaml beside this file): the figures,
the rows behind a figure, and the workbook."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.db import utcnow
from clientpay_connect.reports.export import export_filename, write_workbook
from clientpay_connect.reports.present import line_json, report_json
from clientpay_connect.reports.reconciliation import (
    Period,
    Selection,
    every_line,
    figure_page,
    parse_period,
    parse_selection,
    reconciliation,
)
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.cursor import CursorError
from clientpay_connect.sent.export import xlsx_response
from clientpay_connect.sent.present import firm_zone

DEFAULT_LIMIT = 100


def checked_period(request: Request) -> Period:
    zone = firm_zone(request.dbsession, firm_id(request))
    period, errors = parse_period(request.GET, utcnow().astimezone(zone).date())
    if errors:
        raise FieldErrors(errors)
    return period


def checked_selection(request: Request) -> Selection:
    selection, errors = parse_selection(request.GET)
    if errors:
        raise FieldErrors(errors)
    return selection


@view_config(
    route_name="api.reports.reconciliation",
    request_method="GET",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def reconciliation_view(request: Request) -> dict[str, Any]:
    firm = firm_id(request)
    report = reconciliation(request.dbsession, firm, checked_period(request))
    return report_json(report, firm_zone(request.dbsession, firm).key)


@view_config(
    route_name="api.reports.reconciliation.postings",
    request_method="GET",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def reconciliation_postings_view(request: Request) -> dict[str, Any]:
    period = checked_period(request)
    selection = checked_selection(request)
    limit = int(request.params.get("limit", DEFAULT_LIMIT))
    cursor = request.params.get("cursor")
    try:
        lines, next_cursor = figure_page(
            request.dbsession, firm_id(request), period, selection, limit, cursor
        )
    except CursorError as error:
        raise FieldErrors([{"field": "cursor", "message": str(error)}]) from error
    return {"items": [line_json(line) for line in lines], "next_cursor": next_cursor}


@view_config(
    route_name="api.reports.reconciliation.xlsx",
    request_method="GET",
    permission=STAFF,
    openapi=True,
)
def reconciliation_xlsx_view(request: Request) -> Response:
    firm = firm_id(request)
    period = checked_period(request)
    report = reconciliation(request.dbsession, firm, period)
    zone = firm_zone(request.dbsession, firm)
    lines = every_line(request.dbsession, firm, period)
    return xlsx_response(
        lambda target: write_workbook(report, lines, zone, target), export_filename(period)
    )
