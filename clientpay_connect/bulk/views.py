"""The Bulk Upload pages: upload a file, review its rows, make the links, see the result.

Plain forms throughout (everything works without script); bulk.js only polls the progress
while a large upload's links are made, which a <meta> refresh does when script is off.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.bulk.actions import ACTIONS, act, is_done, is_reviewing
from clientpay_connect.bulk.exports import count_links, link_lines, url_maker
from clientpay_connect.bulk.models import (
    ACTION_SEND,
    UPLOAD_FAILED,
    UPLOAD_GENERATED,
    UPLOAD_PROCESSING,
    UPLOAD_REVIEW,
    UPLOAD_SENT,
    BulkUpload,
)
from clientpay_connect.bulk.reader import FIELD_LABELS, FIELDS, UnreadableFile
from clientpay_connect.bulk.services import (
    Refused,
    RowView,
    add_row,
    check_file,
    choose_account,
    count_rows,
    delete_row,
    one_row,
    outstanding_invoice_numbers,
    recent_uploads,
    row_counts,
    row_views,
    set_aside_columns,
    upload_counts,
)
from clientpay_connect.bulk.uploads import save_upload, upload_or_404, uploaded_bytes
from clientpay_connect.bulk.validation import WHOLE_ROW, FieldIssue
from clientpay_connect.links.forms import active_accounts
from clientpay_connect.links.services import token_urls
from clientpay_connect.money import display_amount
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.present import local_timestamp

log = logging.getLogger(__name__)

PAGE_SIZE = 100
STATUS_LABELS = {
    UPLOAD_REVIEW: ("In review", "pending"),
    UPLOAD_PROCESSING: ("Making links", "processing"),
    UPLOAD_SENT: ("Sent", "paid"),
    UPLOAD_GENERATED: ("Links ready", "posted"),
    UPLOAD_FAILED: ("Failed", "failed"),
}
# Refusals whose API wording speaks of the API; the page says it in its own terms.
PAGE_MESSAGES = {
    "warnings_need_confirmation": (
        "Some invoice numbers are used more than once (see Problems). Tick “Make the links "
        "anyway” to go ahead, or fix those rows first."
    ),
}
# The Add form's fields: (name, label, hint).
ADD_FIELDS = (
    ("recipient_name", "Recipient name", None),
    ("amount", "Amount", "For example 1,234.50"),
    ("email", "Email address", "Separate several addresses with ; or ,"),
    ("invoice_number", "Invoice number (optional)", None),
    ("invoice_date", "Invoice date (optional)", "2025-02-13 or 2/13/2025"),
    ("due_date", "Due date (optional)", "2025-02-13 or 2/13/2025"),
    ("message", "Custom message (optional)", "Blank: your firm's default message"),
)


def issue_label(issue: FieldIssue) -> str:
    if issue.field == WHOLE_ROW:
        return issue.message
    return f"{FIELD_LABELS.get(issue.field, issue.field)}: {issue.message}"


def status_label(status: str) -> tuple[str, str]:
    return STATUS_LABELS.get(status, (status.capitalize(), "pending"))


@dataclass
class AddForm:
    """The Add (or Fix) form: what was typed, the errors by field, the row it replaces."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    replaces: int | None = None

    @classmethod
    def fixing(cls, row: RowView) -> AddForm:
        return cls(values=row.typed_fields, replaces=row.row_number)

    @classmethod
    def posted(cls, params: Any) -> AddForm:
        values = {name: _param(params, name) for name in FIELDS}
        replaces = _param(params, "replaces")
        return cls(values=values, replaces=int(replaces) if replaces.isdigit() else None)


def _param(params: Any, name: str) -> str:
    value = params.get(name, "")
    return value if isinstance(value, str) else ""


def _when(request: Request, moment: dt.datetime | None) -> str:
    """A timestamp in the firm's time, as every page writes it: "Mar 31, 2025, 3:04 PM EDT"."""
    return local_timestamp(moment, request.firm_zone)


def _review_url(request: Request, upload: BulkUpload, **query: Any) -> str:
    return str(request.route_url("bulk.review", id=upload.id, _query=query or None))


# --- the upload page --------------------------------------------------------------------------


def _upload_page(
    request: Request, errors: dict[str, str] | None = None, chosen: str = ""
) -> dict[str, Any]:
    accounts = active_accounts(request.dbsession, firm_id(request))
    uploads = recent_uploads(request.dbsession, firm_id(request))
    if not chosen and len(accounts) == 1:
        chosen = str(accounts[0].id)
    return {
        "accounts": accounts,
        "chosen": chosen,
        "errors": errors or {},
        "uploads": uploads,
        "row_counts": row_counts(request.dbsession, [u.id for u in uploads]),
        "status_label": status_label,
        "when": lambda moment: _when(request, moment),
    }


@view_config(
    route_name="bulk.upload", request_method="GET", renderer="bulk/upload.jinja2", permission=STAFF
)
def upload_form(request: Request) -> dict[str, Any]:
    return _upload_page(request)


@view_config(
    route_name="bulk.upload", request_method="POST", renderer="bulk/upload.jinja2", permission=STAFF
)
def upload_submit(request: Request) -> Any:
    chosen = _param(request.POST, "merchant_account_id")
    data = uploaded_bytes(request)
    errors: dict[str, str] = {}
    account: MerchantAccount | None = None
    try:
        account = choose_account(request.dbsession, firm_id(request), chosen)
    except ValueError as exc:
        errors["merchant_account_id"] = str(exc)
    if data is None:
        errors["file"] = "Choose a CSV or TXT file to upload."
    elif account is not None:
        started = time.perf_counter()
        try:
            parsed, rows = check_file(
                data,
                currency=account.currency,
                outstanding=outstanding_invoice_numbers(request.dbsession, firm_id(request)),
            )
        except UnreadableFile as exc:
            errors["file"] = exc.message
    if errors or account is None:
        request.response.status = 422
        return _upload_page(request, errors, chosen)
    read = time.perf_counter()
    # The rows are checked as they are stored (services.CheckedRows).
    upload = save_upload(request, account, request.POST.get("file"), parsed, rows)
    # Where a large upload's wait goes, for whoever tunes it (benchmarks/bulk_upload.py).
    log.info(
        "bulk upload %s: %s rows read in %.2f s, checked and stored in %.2f s",
        upload.id, len(rows), read - started, time.perf_counter() - read,
    )  # fmt: skip
    # Redirect after POST: reloading the review must not upload the file a second time.
    return HTTPSeeOther(location=_review_url(request, upload))


# --- the review page --------------------------------------------------------------------------


def _page_number(request: Request) -> int:
    text = _param(request.GET, "page")
    return max(int(text), 1) if text.isdigit() and len(text) < 7 else 1


def _review_page(request: Request, upload: BulkUpload, form: AddForm | None) -> dict[str, Any]:
    account = request.dbsession.get(MerchantAccount, upload.merchant_account_id)
    currency = account.currency if account is not None else "USD"
    tally = upload_counts(request.dbsession, upload)
    set_aside = set_aside_columns(upload)
    page = {
        "upload": upload,
        # Columns another one with the template's name replaced say so; the rest, the
        # columns nothing reads, get the hint to rename them.
        "set_aside_columns": set_aside,
        "unread_columns": [
            name
            for name in upload.ignored_columns or []
            if name not in {column.name for column in set_aside}
        ],
        "account": account,
        "counts": tally,
        "money": lambda minor: display_amount(minor, currency),
        "status_label": status_label,
        "issue_label": issue_label,
        "reviewing": is_reviewing(upload),
        "processing": upload.status == UPLOAD_PROCESSING,
        "done": is_done(upload),
        "sent": upload.action == ACTION_SEND,
        "field_labels": FIELD_LABELS,
        "add_fields": ADD_FIELDS,
        "when": lambda moment: _when(request, moment),
    }
    if is_done(upload):
        page.update(_result_part(request, upload))
    elif is_reviewing(upload):
        page.update(_rows_part(request, upload, form or _fix_form(request, upload)))
    return page


def _fix_form(request: Request, upload: BulkUpload) -> AddForm:
    fix = _param(request.GET, "fix")
    row = one_row(request.dbsession, upload, int(fix)) if fix.isdigit() else None
    return AddForm.fixing(row) if row is not None else AddForm()


def _view_query(request: Request) -> dict[str, str]:
    """Which rows the person is looking at (the problems only, a page of them): kept through
    Fix, Delete and Add, so that an action never sends them back to the first page of all
    rows. Read from the address, where the forms' actions carry it too."""
    query = {}
    if _param(request.GET, "show") == "problems":
        query["show"] = "problems"
    page = _param(request.GET, "page")
    if page.isdigit() and int(page) > 1:
        query["page"] = page
    return query


def _rows_part(request: Request, upload: BulkUpload, form: AddForm) -> dict[str, Any]:
    problems_only = _param(request.GET, "show") == "problems"
    total = count_rows(request.dbsession, upload.id, problems_only=problems_only)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    number = min(_page_number(request), pages)
    rows = row_views(
        request.dbsession,
        upload,
        offset=(number - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        problems_only=problems_only,
    )
    return {
        "rows": rows,
        "form": form,
        "problems_only": problems_only,
        "view_query": _view_query(request),
        "pager": _pager(request, upload, number, pages, problems_only),
    }


def _pager(
    request: Request, upload: BulkUpload, number: int, pages: int, problems_only: bool
) -> dict[str, Any]:
    def url(page: int) -> str:
        query: dict[str, Any] = {"page": page}
        if problems_only:
            query["show"] = "problems"
        return _review_url(request, upload, **query)

    return {
        "number": number,
        "pages": pages,
        "previous": url(number - 1) if number > 1 else None,
        "next": url(number + 1) if number < pages else None,
    }


def _result_part(request: Request, upload: BulkUpload) -> dict[str, Any]:
    made = count_links(request.dbsession, upload)
    pages = max((made + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    number = min(_page_number(request), pages)
    url_of = url_maker(token_urls(request))
    lines = link_lines(request.dbsession, upload, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    return {
        "made": made,
        "links": [(line, url_of(line)) for line in lines],
        "pager": {
            "number": number,
            "pages": pages,
            "previous": _review_url(request, upload, page=number - 1) if number > 1 else None,
            "next": _review_url(request, upload, page=number + 1) if number < pages else None,
        },
    }


@view_config(
    route_name="bulk.review", request_method="GET", renderer="bulk/review.jinja2", permission=STAFF
)
def review(request: Request) -> dict[str, Any]:
    return _review_page(request, upload_or_404(request), None)


@view_config(route_name="bulk.row.delete", request_method="POST", permission=STAFF)
def delete_row_submit(request: Request) -> HTTPSeeOther:
    upload = upload_or_404(request, lock=True)
    number = int(request.matchdict["row"])
    try:
        deleted = delete_row(request.dbsession, upload, number)
    except Refused as refused:
        request.session.flash(refused.message, "error")
    else:
        if deleted:
            request.session.flash(f"Row {number} was deleted.")
        else:
            request.session.flash(f"There is no row {number} to delete.", "error")
    return HTTPSeeOther(location=_review_url(request, upload, **_view_query(request)))


@view_config(
    route_name="bulk.rows", request_method="POST", renderer="bulk/review.jinja2", permission=STAFF
)
def add_row_submit(request: Request) -> Any:
    upload = upload_or_404(request, lock=True)
    form = AddForm.posted(request.POST)
    try:
        view, stored = add_row(
            request.dbsession, upload, form.values, replaces=form.replaces, keep_if_invalid=False
        )
    except (Refused, LookupError) as problem:
        message = problem.message if isinstance(problem, Refused) else str(problem)
        request.session.flash(message, "error")
        return HTTPSeeOther(location=_review_url(request, upload, **_view_query(request)))
    if not stored:
        # Nothing is kept: the form comes back with what was typed and each error beside its
        # field, to be corrected.
        for issue in view.errors:
            form.errors.setdefault(issue.field, issue.message)
        request.response.status = 422
        return _review_page(request, upload, form)
    request.session.flash(_added_message(view, form.replaces))
    query = _view_query(request)
    # A row fixed while only problems are shown leaves that list: land on the list instead.
    gone = query.get("show") == "problems" and not (view.errors or view.warnings)
    anchor = "#rows-heading" if gone else f"#row-{view.row_number}"
    return HTTPSeeOther(location=_review_url(request, upload, **query) + anchor)


def _added_message(view: RowView, replaced: int | None) -> str:
    if replaced is not None:
        if view.errors:
            return f"Row {replaced} was changed; it still has errors."
        return f"Row {replaced} was fixed."
    return f"Row {view.row_number} was added."


@view_config(route_name="bulk.act", request_method="POST", permission=STAFF)
def act_submit(request: Request) -> HTTPSeeOther:
    upload = upload_or_404(request)
    action = _param(request.POST, "action")
    if action not in ACTIONS:
        request.session.flash("Choose Send All or Generate Links for Download.", "error")
        return HTTPSeeOther(location=_review_url(request, upload))
    confirm = _param(request.POST, "confirm_warnings") == "yes"
    try:
        act(request, action, confirm)
    except Refused as refused:
        request.session.flash(PAGE_MESSAGES.get(refused.code, refused.message), "error")
    # Whether made now, being made, or made by an earlier click: the page shows which.
    return HTTPSeeOther(location=_review_url(request, upload))
