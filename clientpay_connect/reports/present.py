"""The reconciliation report's JSON shapes (documented in openapi.yaml beside this file)."""

from __future__ import annotations

from typing import Any

from clientpay_connect.money import format_amount
from clientpay_connect.postings.present import posting_json
from clientpay_connect.reports.reconciliation import Figure, Group, Line, Report


def figures_json(figures: dict[str, Figure], currency: str) -> dict[str, Any]:
    return {
        name: {"count": figure.count, "amount": format_amount(figure.amount, currency)}
        for name, figure in figures.items()
    }


def group_json(group: Group) -> dict[str, Any]:
    connection = None
    if group.connection_id is not None:
        connection = {"id": group.connection_id, "name": group.connection_name}
    return {
        "merchant_account": {
            "id": group.merchant_account_id,
            "name": group.merchant_account_name,
            "kind": group.merchant_account_kind,
        },
        "connection": connection,
        "currency": group.currency,
        "figures": figures_json(group.figures, group.currency),
    }


def report_json(report: Report, time_zone: str) -> dict[str, Any]:
    return {
        "from": report.period.start.isoformat(),
        "to": report.period.end.isoformat(),
        "time_zone": time_zone,
        "groups": [group_json(group) for group in report.groups],
        "totals": [
            {"currency": currency, "figures": figures_json(figures, currency)}
            for currency, figures in report.totals.items()
        ],
    }


def line_json(line: Line) -> dict[str, Any]:
    return {
        **posting_json(line.posting),
        "figure": line.figure,
        "merchant_account_id": line.merchant_account_id,
        "payer_name": line.payer_name,
        "receipt_number": line.receipt_number,
    }
