"""The Bulk Upload API (documented in openapi.yaml): templates, upload, review, Send All,
Generate, and the downloads."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from clientpay_connect.api.errors import ApiError, FieldErrors, conflict, error_response, not_found
from clientpay_connect.bulk.actions import ACTION_GENERATE, ACTION_SEND, act
from clientpay_connect.bulk.exports import (
    count_links,
    download_name,
    link_lines,
    links_csv,
    links_xlsx,
    url_maker,
)
from clientpay_connect.bulk.models import BulkUpload
from clientpay_connect.bulk.present import currency_of, result_json, row_json, status_json
from clientpay_connect.bulk.reader import UnreadableFile
from clientpay_connect.bulk.services import (
    Refused,
    add_row,
    check_file,
    choose_account,
    count_rows,
    delete_row,
    outstanding_invoice_numbers,
    report_csv,
    row_views,
    validated_view,
)
from clientpay_connect.bulk.templates_csv import TEMPLATES
from clientpay_connect.bulk.uploads import save_upload, upload_or_404, uploaded_bytes
from clientpay_connect.db import MAX_INTEGER_ID
from clientpay_connect.links.services import token_urls
from clientpay_connect.security import STAFF, firm_id

API = {"renderer": "json", "permission": STAFF, "openapi": True}
FILE = {"permission": STAFF, "openapi": True}
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
OUTCOME_STATUS = {"created": 201, "queued": 202, "existing": 200}
ROW_FIELDS = (
    "invoice_number",
    "invoice_date",
    "due_date",
    "recipient_name",
    "amount",
    "email",
    "message",
)


# The pages catch Refused themselves (a flash on the review page); on the API it is a 409.
@exception_view_config(Refused, path_info=r"^/api/v1/bulk-uploads")
def refused(error: Refused, request: Request) -> Response:
    return error_response(
        request, ApiError(409, error.code, error.message, error.errors, extra=error.extra)
    )


def _download(body: bytes, content_type: str, filename: str) -> Response:
    response = Response(body=body, content_type=content_type)
    if content_type.startswith("text/"):
        response.charset = "utf-8"
    response.content_disposition = f'attachment; filename="{filename}"'
    return response


def _json_body(request: Request) -> dict[str, Any]:
    # The spec has checked that a body, when there is one, is a JSON object.
    if not request.body:
        return {}
    body: dict[str, Any] = request.json_body
    return body


# --- templates and upload -----------------------------------------------------------------------


@view_config(route_name="api.bulk.template_csv", request_method="GET", **FILE)
@view_config(route_name="api.bulk.template_txt", request_method="GET", **FILE)
def template(request: Request) -> Response:
    name = request.path_info.rsplit("/", 1)[1]
    content, content_type = TEMPLATES[name]
    return _download(content, content_type.split(";")[0], name)


@view_config(route_name="api.bulk.uploads", request_method="POST", **API)
def create_upload(request: Request) -> dict[str, Any]:
    data = uploaded_bytes(request)
    errors = []
    try:
        account = choose_account(
            request.dbsession, firm_id(request), request.POST.get("merchant_account_id")
        )
    except ValueError as exc:
        errors.append({"field": "merchant_account_id", "message": str(exc)})
    if data is None:
        errors.append({"field": "file", "message": "Choose a CSV or TXT file to upload."})
    if errors:
        raise FieldErrors(errors)
    try:
        parsed, rows = check_file(
            data or b"",
            currency=account.currency,
            outstanding=outstanding_invoice_numbers(request.dbsession, firm_id(request)),
        )
    except UnreadableFile as exc:
        # Nothing is stored: the person fixes the file and uploads it again.
        raise ApiError(
            422, "unreadable_file", exc.message, [{"field": "file", "message": exc.message}]
        ) from exc
    upload = save_upload(request, account, request.POST.get("file"), parsed, rows)
    request.response.status = 201
    body = status_json(request, upload)
    body["rows"] = [row_json(validated_view(row), account.currency) for row in rows]
    return body


@view_config(route_name="api.bulk.upload", request_method="GET", **API)
def get_upload(request: Request) -> dict[str, Any]:
    return status_json(request, upload_or_404(request))


# --- review -----------------------------------------------------------------------------------


@view_config(route_name="api.bulk.rows", request_method="GET", **API)
def list_rows(request: Request) -> dict[str, Any]:
    upload = upload_or_404(request)
    query = request.openapi_validated.parameters.query
    limit = min(int(query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
    after = _row_after(query.get("cursor"))
    views = row_views(request.dbsession, upload, after=after, limit=limit + 1)
    currency = currency_of(request, upload)
    more = len(views) > limit
    views = views[:limit]
    return {
        "items": [row_json(view, currency) for view in views],
        "next_cursor": str(views[-1].row_number) if more and views else None,
        "total": count_rows(request.dbsession, upload.id),
    }


def _row_after(cursor: Any) -> int | None:
    """The row number a cursor continues after. One beyond what an Integer column holds has
    no rows after it, and must not reach the database (a DataError on PostgreSQL)."""
    if not cursor or not str(cursor).isdigit():
        return None
    return min(int(cursor), MAX_INTEGER_ID)


@view_config(route_name="api.bulk.row", request_method="DELETE", **API)
def remove_row(request: Request) -> dict[str, Any]:
    upload = upload_or_404(request, lock=True)
    deleted = delete_row(request.dbsession, upload, int(request.matchdict["row"]))
    if not deleted:
        raise not_found("No such row in this upload.")
    return status_json(request, upload)


@view_config(route_name="api.bulk.rows", request_method="POST", **API)
def add_row_view(request: Request) -> dict[str, Any]:
    upload = upload_or_404(request, lock=True)
    body = _json_body(request)
    fields = {name: body.get(name) for name in ROW_FIELDS}
    try:
        view, _stored = add_row(request.dbsession, upload, fields, replaces=body.get("replaces"))
    except LookupError as error:
        raise FieldErrors([{"field": "replaces", "message": str(error)}]) from error
    request.response.status = 201
    return {**row_json(view, currency_of(request, upload)), "upload": status_json(request, upload)}


# --- Send All and Generate --------------------------------------------------------------------


def _act_view(request: Request, action: str) -> dict[str, Any]:
    confirm = bool(_json_body(request).get("confirm_warnings", False))
    outcome = act(request, action, confirm)
    request.response.status = OUTCOME_STATUS[outcome.result]
    return result_json(request, outcome.upload)


@view_config(route_name="api.bulk.send", request_method="POST", **API)
def send_all(request: Request) -> dict[str, Any]:
    return _act_view(request, ACTION_SEND)


@view_config(route_name="api.bulk.generate", request_method="POST", **API)
def generate(request: Request) -> dict[str, Any]:
    return _act_view(request, ACTION_GENERATE)


# --- downloads --------------------------------------------------------------------------------


@view_config(route_name="api.bulk.report", request_method="GET", **FILE)
def report(request: Request) -> Response:
    upload = upload_or_404(request)
    # The report keeps the file's delimiter, so a tab-separated file's report is a .txt.
    extension = "txt" if upload.delimiter == "\t" else "csv"
    return _download(
        report_csv(request.dbsession, upload),
        "text/csv",
        download_name(upload, "report", extension),
    )


def _links_or_409(request: Request, upload: BulkUpload) -> None:
    if count_links(request.dbsession, upload) == 0:
        raise conflict(
            "no_links", "No links have been made from this upload yet.", status=upload.status
        )


@view_config(route_name="api.bulk.links_csv", request_method="GET", **FILE)
def download_links_csv(request: Request) -> Response:
    upload = upload_or_404(request)
    _links_or_409(request, upload)
    url_of = url_maker(token_urls(request))
    body = links_csv(link_lines(request.dbsession, upload), url_of)
    return _download(body, "text/csv", download_name(upload, "links", "csv"))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@view_config(route_name="api.bulk.links_xlsx", request_method="GET", **FILE)
def download_links_xlsx(request: Request) -> Response:
    upload = upload_or_404(request)
    _links_or_409(request, upload)
    url_of = url_maker(token_urls(request))
    body = links_xlsx(link_lines(request.dbsession, upload), url_of)
    return _download(body, XLSX_TYPE, download_name(upload, "links", "xlsx"))
