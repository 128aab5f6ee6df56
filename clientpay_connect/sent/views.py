"""The Sent Pages page (staff): status tabs with counts, search, a table sorted on the server,
copy a link, cancel selected, export to Excel, next page. Every part works without scripts.

With scripts, sent-grid.js puts the grid (Tabulator) in the table's place: it reads the same
API (GET /api/v1/links, POST /api/v1/links/cancel, the export), the tab counts from
/sent/counts, and saves its layout in the user's preferences (``sent_grid``). What it needs
to know from the server (column titles, labels, the saved layout) is in ``grid_config``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import select

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.db import MAX_INTEGER_ID
from clientpay_connect.links.actions import record_cancelled
from clientpay_connect.links.models import STATUS_OUTSTANDING, STATUSES, PaymentLink
from clientpay_connect.links.services import (
    SKIP_NOT_FOUND,
    cancel_links,
    link_url,
    possible_link_id,
    status_label,
)
from clientpay_connect.money import display_amount
from clientpay_connect.preferences.services import preferences_json, preferences_of
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.export import EXPORT_COLUMNS
from clientpay_connect.sent.listing import count_by_view, fetch_page
from clientpay_connect.sent.present import SOURCE_LABELS, firm_zone, local_date, short_date
from clientpay_connect.sent.query import (
    MAX_LIMIT,
    VIEW_LABELS,
    ListQuery,
    Sort,
    parse_list_query,
    whole_number,
)

# (sort field or None, header). The first click on a header sorts ascending, except Created:
# the newest links are what people look for first.
COLUMNS: list[tuple[str | None, str]] = [
    ("status", "Status"),
    ("invoice_number", "Invoice"),
    ("recipient_name", "Recipient"),
    ("amount", "Amount"),
    ("amount_paid", "Amount paid"),
    (None, "Emails"),
    ("created_at", "Created"),
    ("due_date", "Due"),
]
DESCENDING_FIRST = frozenset({"created_at"})


@dataclass
class Row:
    id: int
    name: str
    status: str
    status_label: str
    invoice_number: str
    recipient_name: str
    emails: list[str]
    amount: str
    amount_paid: str
    created: str
    due: str
    url: str


@dataclass
class Header:
    label: str
    url: str | None
    aria_sort: str | None


@dataclass
class Tab:
    view: str
    label: str
    count: int
    url: str
    current: bool


def link_name(link: PaymentLink) -> str:
    """How a message names a link: its invoice number, else its number."""
    return link.invoice_number or f"link {link.id}"


@view_config(
    route_name="sent.list", request_method="GET", renderer="sent/list.jinja2", permission=STAFF
)
def sent_list(request: Request) -> dict[str, Any]:
    query, problems = parse_list_query(request.GET)
    firm = firm_id(request)
    page = fetch_page(request.dbsession, firm, query)
    zone = firm_zone(request.dbsession, firm)
    start = _start(request, query)
    next_url = None
    if page.next_cursor is not None:
        params = {
            **query.params(),
            "cursor": page.next_cursor,
            "start": str(start + len(page.links)),
        }
        next_url = request.route_url("sent.list", _query=params)
    return {
        "query": query,
        "problems": problems,
        "rows": [_row(request, link, zone) for link in page.links],
        "total": page.total,
        "start": start,
        "tabs": _tabs(request, query),
        "headers": _headers(request, query),
        "next_url": next_url,
        "first_url": request.route_url("sent.list", _query=query.params()),
        "export_url": request.route_url("api.links.export", _query=_export_params(query)),
        "form_params": query.page_params(),
        "grid_config": grid_config(request, firm, query, zone),
    }


@view_config(route_name="sent.counts", request_method="GET", renderer="json", permission=STAFF)
def sent_counts(request: Request) -> dict[str, Any]:
    """How many links each Show tab holds with the grid's search and filters (the same query
    parameters as GET /api/v1/links; its status is what the tabs vary)."""
    query, problems = parse_list_query(request.GET)
    if problems:
        raise FieldErrors(problems)
    return count_by_view(request.dbsession, firm_id(request), query)


def grid_config(request: Request, firm: int, query: ListQuery, zone: ZoneInfo) -> dict[str, Any]:
    accounts = request.dbsession.execute(
        select(MerchantAccount.id, MerchantAccount.name)
        .where(MerchantAccount.firm_id == firm)
        .order_by(MerchantAccount.name, MerchantAccount.id)
    ).all()
    saved = preferences_json(preferences_of(request.user)).get("sent_grid") or {}
    return {
        "api": request.route_path("api.links"),
        "cancel": request.route_path("api.links.cancel"),
        "export": request.route_path("api.links.export"),
        "counts": request.route_path("sent.counts"),
        "preferences": request.route_path("api.me.preferences"),
        # /links/0 without its 0: the script adds each link's id.
        "detail": request.route_path("links.detail", id=0)[:-1],
        "zone": zone.key,
        "q": query.q,
        "layout": saved,
        "titles": {name: column.header for name, column in EXPORT_COLUMNS.items()},
        "views": VIEW_LABELS,
        "statuses": {status: status_label(status) for status in STATUSES},
        "sources": SOURCE_LABELS,
        "accounts": [{"id": account_id, "name": name} for account_id, name in accounts],
    }


def _start(request: Request, query: ListQuery) -> int:
    """The row number the page starts at, for "Links 51 to 100 of 240": only a label (the
    cursor decides what the page holds), so anything odd just means 1."""
    number = whole_number(request.GET.get("start", ""), 10**9)
    if query.cursor is None or number is None:
        return 1
    return max(1, number)


def _export_params(query: ListQuery) -> dict[str, str]:
    # The export has every matching row: the page size means nothing to it.
    params = query.params()
    params.pop("limit", None)
    return params


def _row(request: Request, link: PaymentLink, zone: ZoneInfo) -> Row:
    return Row(
        id=link.id,
        name=link_name(link),
        status=link.status,
        status_label=status_label(link.status),
        invoice_number=link.invoice_number,
        recipient_name=link.recipient_name,
        emails=list(link.emails),
        amount=display_amount(link.amount_minor, link.currency),
        amount_paid=display_amount(link.amount_paid_minor, link.currency),
        created=local_date(link.created_at, zone),
        due=short_date(link.due_date),
        url=link_url(request, link),
    )


def _tabs(request: Request, query: ListQuery) -> list[Tab]:
    counts = count_by_view(request.dbsession, firm_id(request), query)
    return [
        Tab(
            view=view,
            label=label,
            count=counts[view],
            url=request.route_url("sent.list", _query=query.params(status=view)),
            current=view == query.status,
        )
        for view, label in VIEW_LABELS.items()
    ]


def _headers(request: Request, query: ListQuery) -> list[Header]:
    headers = []
    for field, label in COLUMNS:
        if field is None:
            headers.append(Header(label, None, None))
            continue
        current = query.sort.field == field
        if current:
            sort = Sort(field, not query.sort.descending)
        else:
            sort = Sort(field, field in DESCENDING_FIRST)
        url = request.route_url("sent.list", _query=query.params(sort=sort))
        aria_sort = None
        if current:
            aria_sort = "descending" if query.sort.descending else "ascending"
        headers.append(Header(label, url, aria_sort))
    return headers


# --- Cancel selected -----------------------------------------------------------------------


@view_config(route_name="sent.cancel", request_method="POST", permission=STAFF)
def cancel_selected(request: Request) -> HTTPSeeOther:
    # Back to the page the person was on: the form carries its query.
    query, _problems = parse_list_query(request.POST)
    params = query.page_params()
    start = whole_number(request.POST.get("start", ""), 10**9)
    if query.cursor is not None and start is not None:
        params["start"] = str(start)
    back = HTTPSeeOther(location=request.route_url("sent.list", _query=params))
    ids = _selected_ids(request.POST.getall("ids"))
    if not ids:
        request.session.flash("Select the links to cancel first.", "error")
        return back
    firm = firm_id(request)
    result = cancel_links(request.dbsession, firm, ids)
    record_cancelled(request, result.cancelled)
    if result.cancelled:
        request.session.flash(_cancelled_message(result.cancelled))
    if result.skipped:
        request.session.flash(_skipped_message(request, firm, result.skipped), "error")
    return back


def _selected_ids(values: list[str]) -> list[int]:
    # The checkboxes only ever send link ids: anything else was not made by our form.
    numbers = [whole_number(value, MAX_INTEGER_ID) for value in values]
    ids = [n for n in numbers if n is not None and possible_link_id(n)]
    return list(dict.fromkeys(ids))[:MAX_LIMIT]


def _cancelled_message(links: list[PaymentLink]) -> str:
    names = ", ".join(link_name(link) for link in links)
    noun = "link" if len(links) == 1 else "links"
    return f"Cancelled {len(links)} {noun}: {names}. They can no longer be paid."


def _skipped_message(request: Request, firm: int, skipped: list[dict[str, Any]]) -> str:
    found = _firm_links(request, firm, [s["id"] for s in skipped if s["reason"] != SKIP_NOT_FOUND])
    parts = []
    not_cancellable = [
        f"{link_name(found[s['id']])} is {status_label(s['status']).lower()}"
        for s in skipped
        if s["id"] in found
    ]
    if not_cancellable:
        noun = "link was" if len(not_cancellable) == 1 else "links were"
        parts.append(
            f"{len(not_cancellable)} {noun} not cancelled, because only "
            f"{status_label(STATUS_OUTSTANDING).lower()} links can be: "
            + "; ".join(not_cancellable)
            + "."
        )
    missing = sum(1 for s in skipped if s["id"] not in found)
    if missing:
        noun = "link was" if missing == 1 else "links were"
        parts.append(f"{missing} selected {noun} not found.")
    return " ".join(parts)


def _firm_links(request: Request, firm: int, ids: list[int]) -> dict[int, PaymentLink]:
    if not ids:
        return {}
    rows = request.dbsession.execute(
        select(PaymentLink).where(PaymentLink.firm_id == firm, PaymentLink.id.in_(ids))
    ).scalars()
    return {link.id: link for link in rows}
