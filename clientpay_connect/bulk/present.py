"""How the API shows an upload: its state and counts, its rows, and once made its links
(the JSON shapes of openapi.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyramid.request import Request

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.bulk.actions import inline_rows
from clientpay_connect.bulk.exports import link_json, link_lines, url_maker
from clientpay_connect.bulk.models import BulkUpload
from clientpay_connect.bulk.services import RowView, issues_json, set_aside_columns, upload_counts
from clientpay_connect.links.services import timestamp_json, token_urls
from clientpay_connect.money import format_amount


def currency_of(request: Request, upload: BulkUpload) -> str:
    account = request.dbsession.get(MerchantAccount, upload.merchant_account_id)
    return account.currency if account is not None else "USD"


def status_json(request: Request, upload: BulkUpload) -> dict[str, Any]:
    tally = upload_counts(request.dbsession, upload)
    return {
        "id": upload.id,
        "filename": upload.filename,
        "status": upload.status,
        "action": upload.action,
        "merchant_account_id": upload.merchant_account_id,
        "created_at": timestamp_json(upload.created_at),
        "completed_at": timestamp_json(upload.completed_at),
        "progress": {"done": upload.progress_done, "total": upload.progress_total},
        "error_count": tally.error_count,
        "warning_count": tally.warning_count,
        "counts": {
            "rows": tally.rows,
            "rows_with_errors": tally.rows_with_errors,
            "rows_with_warnings": tally.rows_with_warnings,
            "rows_without_email": tally.rows_without_email,
            "rows_with_invalid_email": tally.rows_with_invalid_email,
            "links": tally.links,
        },
        "total_amount": format_amount(tally.amount_minor, currency_of(request, upload)),
        "ignored_columns": list(upload.ignored_columns or []),
        "set_aside_columns": [
            {"name": column.name, "field": column.field, "used": column.used}
            for column in set_aside_columns(upload)
        ],
        "error_message": upload.error_message or None,
    }


def result_json(request: Request, upload: BulkUpload) -> dict[str, Any]:
    """The upload's state and, once made, its links (when few enough to list; the CSV has
    them all)."""
    body = status_json(request, upload)
    body["links"] = None
    made = body["counts"]["links"]
    if made and made <= inline_rows(request.registry):
        url_of = url_maker(token_urls(request))
        lines = link_lines(request.dbsession, upload)
        body["links"] = [link_json(line, url_of(line)) for line in lines]
    return body


def row_json(view: RowView, currency: str) -> dict[str, Any]:
    """The API's row: values as understood (null when missing or wrong), and as typed."""
    return {
        "row": view.row_number,
        "invoice_number": view.invoice_number,
        "invoice_date": _iso(view.invoice_date),
        "due_date": _iso(view.due_date),
        "recipient_name": view.recipient_name,
        "amount": format_amount(view.amount_minor, currency)
        if view.amount_minor is not None
        else None,
        "email": "; ".join(view.emails),
        "message": view.message,
        "errors": issues_json(view.errors),
        "warnings": issues_json(view.warnings),
        "typed": view.typed_fields,
        "added_by_hand": view.added_by_hand,
    }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None
