"""The reconciliation report's page (staff): a period, the figures per merchant account and
connection, each figure a link to the postings behind it, and the workbook to download.
The figures come from reports/reconciliation.py, as the API's do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.db import utcnow
from clientpay_connect.money import display_amount
from clientpay_connect.postings.present import status_label
from clientpay_connect.reports.reconciliation import (
    FIGURE_LABELS,
    FIGURES,
    NO_CONNECTION,
    RECEIVED,
    Figure,
    Group,
    Line,
    Period,
    Selection,
    figure_page,
    parse_period,
    parse_selection,
    reconciliation,
)
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.cursor import CursorError
from clientpay_connect.sent.present import firm_zone, short_date

PAGE_SIZE = 50


@dataclass
class Cell:
    count: int
    amount: str
    url: str


@dataclass
class SummaryRow:
    account: str
    connection: str
    cells: list[Cell]


@dataclass
class LineRow:
    id: int
    received_on: str
    receipt_number: str
    payer: str
    amount: str
    status: str
    status_label: str
    invoices: str


def _period_params(period: Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


def _selection_params(selection: Selection) -> dict[str, str]:
    params = {"figure": selection.figure}
    if selection.merchant_account_id is not None:
        params["merchant_account_id"] = str(selection.merchant_account_id)
    if selection.no_connection:
        params["connection_id"] = NO_CONNECTION
    elif selection.connection_id is not None:
        params["connection_id"] = str(selection.connection_id)
    return params


@view_config(
    route_name="reports.reconciliation",
    request_method="GET",
    renderer="reports/reconciliation.jinja2",
    permission=STAFF,
)
def reconciliation_page(request: Request) -> dict[str, Any]:
    firm = firm_id(request)
    zone = firm_zone(request.dbsession, firm)
    period, errors = parse_period(request.GET, utcnow().astimezone(zone).date())
    if errors:
        request.response.status = 422
    report = reconciliation(request.dbsession, firm, period)
    base = _period_params(period)

    def cell(figure: Figure, currency: str, selection: Selection) -> Cell:
        query = {**base, **_selection_params(selection)}
        url = request.route_url("reports.reconciliation", _query=query, _anchor="rows")
        return Cell(figure.count, display_amount(figure.amount, currency), url)

    rows = [
        SummaryRow(
            group.merchant_account_name,
            group.connection_name,
            [
                cell(group.figures[name], group.currency, _group_selection(group, name))
                for name in FIGURES
            ],
        )
        for group in report.groups
    ]
    totals = [
        SummaryRow(
            "Total",
            currency if len(report.totals) > 1 else "",
            [cell(figures[name], currency, Selection(name)) for name in FIGURES],
        )
        for currency, figures in report.totals.items()
    ]
    page = {
        "period": period,
        "errors": {error["field"]: error["message"] for error in errors},
        "values": {
            "from": request.GET.get("from", base["from"]),
            "to": request.GET.get("to", base["to"]),
        },
        "figures": [FIGURE_LABELS[name] for name in FIGURES],
        "rows": rows,
        "totals": totals,
        "time_zone": zone.key,
        "period_label": f"{short_date(period.start)} to {short_date(period.end)}",
        "export_url": request.route_url("api.reports.reconciliation.xlsx", _query=base),
    }
    page.update(_drill_down(request, report.account_names, report.connection_names, period))
    return page


def _group_selection(group: Group, figure: str) -> Selection:
    return Selection(
        figure,
        group.merchant_account_id,
        group.connection_id,
        no_connection=group.connection_id is None,
    )


def _drill_down(
    request: Request, accounts: dict[int, str], connections: dict[int, str], period: Period
) -> dict[str, Any]:
    """The postings behind the figure the address names (none when it names none)."""
    if "figure" not in request.GET:
        return {"lines": None}
    selection, errors = parse_selection(request.GET)
    if errors:
        return {"lines": None, "selection_problem": " ".join(e["message"] for e in errors)}
    cursor = request.GET.get("cursor") or None
    try:
        lines, next_cursor = figure_page(
            request.dbsession, firm_id(request), period, selection, PAGE_SIZE, cursor
        )
    except CursorError as error:
        return {"lines": None, "selection_problem": str(error)}
    query = {**_period_params(period), **_selection_params(selection)}
    return {
        "lines": [_line_row(line) for line in lines],
        "lines_title": _lines_title(selection, accounts, connections),
        "lines_next_url": (
            request.route_url(
                "reports.reconciliation", _query={**query, "cursor": next_cursor}, _anchor="rows"
            )
            if next_cursor
            else None
        ),
        "lines_first_url": (
            request.route_url("reports.reconciliation", _query=query, _anchor="rows")
            if cursor
            else None
        ),
    }


def _lines_title(
    selection: Selection, accounts: dict[int, str], connections: dict[int, str]
) -> str:
    parts = [FIGURE_LABELS[selection.figure] if selection.figure != RECEIVED else "Received"]
    if selection.merchant_account_id is not None:
        parts.append(accounts.get(selection.merchant_account_id, "Unknown merchant account"))
    if selection.no_connection:
        parts.append("No connection (deleted)")
    elif selection.connection_id is not None:
        parts.append(connections.get(selection.connection_id, "Unknown connection"))
    return " · ".join(parts)


def _line_row(line: Line) -> LineRow:
    posting = line.posting
    invoices = ", ".join(
        f"{a.get('invoice_number') or a['invoice_id']} "
        f"{display_amount(int(a['amount']), posting.currency)}"
        for a in posting.allocations
    )
    return LineRow(
        id=posting.id,
        received_on=short_date(posting.received_on),
        receipt_number=line.receipt_number,
        payer=line.payer_name,
        amount=display_amount(posting.amount_minor, posting.currency),
        status=posting.status,
        status_label=status_label(posting.status),
        invoices=invoices,
    )
