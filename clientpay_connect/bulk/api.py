"""The Bulk Upload API (documented in openapi.yaml): templates, upload, review, Send All,
Generate, and the downloads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from clientpay_connect.accounts.services import audit
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.api.errors import ApiError, FieldErrors, conflict, not_found
from clientpay_connect.bulk.actions import (
    ACTION_GENERATE,
    ACTION_SEND,
    Outcome,
    inline_rows,
    take_action,
)
from clientpay_connect.bulk.exports import (
    count_links,
    download_name,
    link_json,
    link_lines,
    links_csv,
    links_xlsx,
    url_maker,
)
from clientpay_connect.bulk.models import BulkUpload
from clientpay_connect.bulk.reader import ParsedFile, UnreadableFile
from clientpay_connect.bulk.services import (
    Refused,
    add_row,
    check_file,
    choose_account,
    clean_filename,
    count_rows,
    counts,
    delete_row,
    firm_upload,
    outstanding_invoice_numbers,
    report_csv,
    row_json,
    row_views,
    store_upload,
    validated_view,
)
from clientpay_connect.bulk.templates_csv import TEMPLATES
from clientpay_connect.bulk.validation import ValidatedRow
from clientpay_connect.db import MAX_INTEGER_ID
from clientpay_connect.links.services import public_base_url, timestamp_json
from clientpay_connect.money import format_amount
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.work import Work

API = {"renderer": "json", "permission": STAFF, "openapi": True}
FILE = {"permission": STAFF, "openapi": True}
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# Read one byte past the reader's own limit, so that it can say the file is too big.
MAX_UPLOAD_BYTES = 32 * 1024 * 1024 + 1
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


# --- helpers shared with the pages -------------------------------------------------------------


def save_upload(
    request: Request,
    account: MerchantAccount,
    field: Any,
    parsed: ParsedFile,
    rows: Sequence[ValidatedRow],
) -> BulkUpload:
    """Store the read file's rows for review and audit it: the API's and the page's upload."""
    upload = store_upload(
        request.dbsession,
        firm_id=firm_id(request),
        user_id=request.user.id,
        account=account,
        filename=clean_filename(getattr(field, "filename", "")),
        parsed=parsed,
        rows=rows,
    )
    audit(request, "bulk_upload.created", upload, rows=len(rows), filename=upload.filename)
    return upload


def upload_or_404(request: Request, *, lock: bool = False) -> BulkUpload:
    upload = firm_upload(
        request.dbsession, firm_id(request), int(request.matchdict["id"]), lock=lock
    )
    if upload is None:
        raise not_found("No such upload.")
    return upload


def uploaded_bytes(request: Request) -> bytes | None:
    """The form's file, or None when its file field is missing or empty.

    A large request is spooled to temporary files (webob's copy of the body, then the
    form's file field): the file field's is closed here, the copy when the request ends
    (body_limits), rather than whenever the collector gets to them, so that a busy server
    keeps its file handles."""
    stream = getattr(request.POST.get("file"), "file", None)
    if stream is None:
        return None
    with stream:
        data: bytes = stream.read(MAX_UPLOAD_BYTES)
    return data


def currency_of(request: Request, upload: BulkUpload) -> str:
    account = request.dbsession.get(MerchantAccount, upload.merchant_account_id)
    return account.currency if account is not None else "USD"


def status_json(request: Request, upload: BulkUpload) -> dict[str, Any]:
    tally = counts(request.dbsession, upload.id)
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
        "error_message": upload.error_message or None,
    }


def refused(error: Refused) -> ApiError:
    return ApiError(409, error.code, error.message, error.errors, extra=error.extra)


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
    try:
        deleted = delete_row(request.dbsession, upload, int(request.matchdict["row"]))
    except Refused as error:
        raise refused(error) from error
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
    except Refused as error:
        raise refused(error) from error
    except LookupError as error:
        raise FieldErrors([{"field": "replaces", "message": str(error)}]) from error
    request.response.status = 201
    return {**row_json(view, currency_of(request, upload)), "upload": status_json(request, upload)}


# --- Send All and Generate --------------------------------------------------------------------


def act(request: Request, action: str, confirm_warnings: bool) -> Outcome:
    """Shared with the page: lock the upload, take the action (or answer a repeat), audit."""
    upload = upload_or_404(request, lock=True)
    work = Work.from_request(request)
    outcome = take_action(
        work, upload, action, user_id=request.user.id, confirm_warnings=confirm_warnings
    )
    if outcome.result != "existing":
        audit(request, f"bulk_upload.{action}", upload, rows=upload.progress_total)
    return outcome


def _act_view(request: Request, action: str) -> dict[str, Any]:
    confirm = bool(_json_body(request).get("confirm_warnings", False))
    try:
        outcome = act(request, action, confirm)
    except Refused as error:
        raise refused(error) from error
    request.response.status = OUTCOME_STATUS[outcome.result]
    return result_json(request, outcome.upload)


def result_json(request: Request, upload: BulkUpload) -> dict[str, Any]:
    """The upload's state and, once made, its links (when few enough to list; the CSV has
    them all)."""
    body = status_json(request, upload)
    body["links"] = None
    made = body["counts"]["links"]
    if made and made <= inline_rows(request.registry):
        url_of = url_maker(request.encryptor, public_base_url(request.registry.settings, request))
        lines = link_lines(request.dbsession, upload)
        body["links"] = [link_json(line, url_of(line)) for line in lines]
    return body


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
    url_of = url_maker(request.encryptor, public_base_url(request.registry.settings, request))
    body = links_csv(link_lines(request.dbsession, upload), url_of)
    return _download(body, "text/csv", download_name(upload, "links", "csv"))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@view_config(route_name="api.bulk.links_xlsx", request_method="GET", **FILE)
def download_links_xlsx(request: Request) -> Response:
    upload = upload_or_404(request)
    _links_or_409(request, upload)
    url_of = url_maker(request.encryptor, public_base_url(request.registry.settings, request))
    body = links_xlsx(link_lines(request.dbsession, upload), url_of)
    return _download(body, XLSX_TYPE, download_name(upload, "links", "xlsx"))
