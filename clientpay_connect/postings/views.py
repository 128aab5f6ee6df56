"""The Manage Postings pages (staff): a tab per status with counts, Post / Retry / Remove on
the ticked postings, and a posting's own page (its payment, allocations and every attempt;
re-allocation of an incomplete one; the slip of a manual one). Every part works without
scripts. The rules live in postings/services.py and postings/allocating.py, which the API
calls too; these views only read forms and say what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import select

from clientpay_connect.connect.interfaces import AdapterError, Invoice, ReauthorizationRequired
from clientpay_connect.connect.linking import link_invoices
from clientpay_connect.connect.models import Connection
from clientpay_connect.connect.services import firm_connections
from clientpay_connect.connect.workflow import SearchQuery, api_error, search
from clientpay_connect.db import MAX_INTEGER_ID
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import possible_link_id
from clientpay_connect.money import display_amount, format_amount
from clientpay_connect.pay.models import Payment
from clientpay_connect.postings.allocating import (
    MAX_ALLOCATIONS,
    AllocationRefused,
    checked_allocations,
)
from clientpay_connect.postings.listing import VIEW_ALL, VIEWS, fetch_page
from clientpay_connect.postings.models import (
    POSTING_FAILED,
    POSTING_INCOMPLETE,
    POSTING_MANUAL,
    POSTING_PENDING,
    POSTING_POSTED,
    POSTING_QUEUED,
    POSTING_REMOVED,
    Posting,
)
from clientpay_connect.postings.present import (
    outcome_label,
    skip_reason,
    status_label,
)
from clientpay_connect.postings.services import (
    PostingRefused,
    firm_posting,
    lock_firm_posting,
    mark_entered_by_hand,
    post_postings,
    reallocate,
    remove_posting,
    status_counts,
)
from clientpay_connect.present import posting_title
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.cursor import CursorError
from clientpay_connect.sent.present import firm_zone, local_timestamp, short_date
from clientpay_connect.sent.query import whole_number
from clientpay_connect.work import Work

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# The most postings one form may act on: a page's worth, with room to spare.
MAX_SELECTED = 500
MAX_QUERY = 200
POST = "post"
RETRY = "retry"
REMOVE = "remove"
ACTIONS = (POST, RETRY, REMOVE)
BACK_TO_DETAIL = "detail"
# What each tab offers for its ticked postings (All offers everything).
TAB_ACTIONS = {
    VIEW_ALL: ACTIONS,
    POSTING_PENDING: (POST, REMOVE),
    POSTING_QUEUED: (REMOVE,),
    POSTING_POSTED: (),
    POSTING_INCOMPLETE: (REMOVE,),
    POSTING_FAILED: (RETRY, REMOVE),
    POSTING_MANUAL: (REMOVE,),
    POSTING_REMOVED: (),
}
AMOUNT_FIELD = "amount-"


@dataclass
class Tab:
    view: str
    label: str
    count: int
    url: str
    current: bool


@dataclass
class Row:
    id: int
    name: str
    status: str
    status_label: str
    received_on: str
    payer: str
    amount: str
    invoices: list[tuple[str, str]]
    connection: str
    attempts: int
    reason: str


@dataclass
class ConnectionSetting:
    name: str
    post_automatically: bool


def posting_name(posting_id: int) -> str:
    """A posting staff named by a number they sent (one not found: no more is known)."""
    return f"posting {posting_id}"


def posting_namer(request: Request, ids: list[int]) -> Callable[[int], str]:
    """How a message names each of ``ids``: as staff know them ("the payment of $250.00 from
    Jane Client"), the firm's own only; any other by the number that was sent."""
    postings = _by_id(request, Posting, ids)
    payments = _by_id(request, Payment, [p.payment_id for p in postings.values()])
    links = _by_id(request, PaymentLink, [p.link_id for p in postings.values()])

    def name(posting_id: int) -> str:
        posting = postings.get(posting_id)
        if posting is None:
            return posting_name(posting_id)
        title = _row_name(posting, payments, links)  # "Payment of $250.00 from Jane Client"
        return "the " + title[0].lower() + title[1:]

    return name


def _view(params: Any) -> str:
    view = str(params.get("status", VIEW_ALL))
    return view if view in VIEWS else VIEW_ALL


def _limit(params: Any) -> int:
    number = whole_number(str(params.get("limit", "")), MAX_PAGE_SIZE)
    return number if number else PAGE_SIZE


def _list_params(
    view: str, cursor: str | None = None, start: int | None = None, limit: int = PAGE_SIZE
) -> dict[str, str]:
    params = {"status": view} if view != VIEW_ALL else {}
    if limit != PAGE_SIZE:
        params["limit"] = str(limit)
    if cursor:
        params["cursor"] = cursor
        if start:
            params["start"] = str(start)
    return params


# --- The list --------------------------------------------------------------------------------


@view_config(
    route_name="postings.list",
    request_method="GET",
    renderer="postings/list.jinja2",
    permission=STAFF,
)
def postings_list(request: Request) -> dict[str, Any]:
    firm = firm_id(request)
    view = _view(request.GET)
    limit = _limit(request.GET)
    cursor = request.GET.get("cursor") or None
    problem = ""
    try:
        page = fetch_page(request.dbsession, firm, view, limit, cursor)
    except CursorError as error:
        problem = f"{error} Showing the first page."
        cursor = None
        page = fetch_page(request.dbsession, firm, view, limit)
    start = _start(request.GET.get("start", ""), cursor)
    next_url = None
    if page.next_cursor is not None:
        params = _list_params(view, page.next_cursor, start + len(page.postings), limit)
        next_url = request.route_url("postings.list", _query=params)
    connections = firm_connections(request.dbsession, firm)
    return {
        "view": view,
        "view_label": status_label(view) if view != VIEW_ALL else "All",
        "problem": problem,
        "tabs": _tabs(request, view),
        "rows": _rows(request, page.postings, connections),
        "total": page.total,
        "start": start,
        "cursor": cursor,
        "next_url": next_url,
        "first_url": request.route_url("postings.list", _query=_list_params(view, limit=limit)),
        "limit": limit,
        "default_limit": PAGE_SIZE,
        "actions": TAB_ACTIONS[view],
        "connections": [ConnectionSetting(c.name, c.post_automatically) for c in connections],
    }


def _start(text: str, cursor: str | None) -> int:
    """The row number the page starts at: only a label (the cursor decides the page)."""
    number = whole_number(text, 10**9)
    return max(1, number) if cursor and number is not None else 1


def _tabs(request: Request, view: str) -> list[Tab]:
    counts = status_counts(request.dbsession, firm_id(request))
    return [
        Tab(
            view=name,
            label="All" if name == VIEW_ALL else status_label(name),
            count=counts[name],
            url=request.route_url("postings.list", _query=_list_params(name)),
            current=name == view,
        )
        for name in VIEWS
    ]


def _rows(request: Request, postings: list[Posting], connections: list[Connection]) -> list[Row]:
    payments = _by_id(request, Payment, [p.payment_id for p in postings])
    links = _by_id(request, PaymentLink, [p.link_id for p in postings])
    names = {c.id: c.name for c in connections}
    return [
        Row(
            id=posting.id,
            name=_row_name(posting, payments, links),
            status=posting.status,
            status_label=status_label(posting.status),
            received_on=short_date(posting.received_on),
            payer=_payer(payments.get(posting.payment_id), links.get(posting.link_id)),
            amount=display_amount(posting.amount_minor, posting.currency),
            invoices=_invoice_amounts(posting),
            connection=names.get(posting.connection_id or 0, "—"),
            attempts=posting.attempt_count,
            reason=_reason(posting),
        )
        for posting in postings
    ]


def _by_id(request: Request, model: Any, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = request.dbsession.execute(
        select(model).where(model.firm_id == firm_id(request), model.id.in_(set(ids)))
    ).scalars()
    return {row.id: row for row in rows}


def _row_name(posting: Posting, payments: dict[int, Payment], links: dict[int, PaymentLink]) -> str:
    payer = _payer(payments.get(posting.payment_id), links.get(posting.link_id))
    return posting_title(display_amount(posting.amount_minor, posting.currency), payer)


def _payer(payment: Payment | None, link: PaymentLink | None) -> str:
    return (payment.payer_name if payment else "") or (link.recipient_name if link else "")


def _invoice_amounts(posting: Posting) -> list[tuple[str, str]]:
    return [
        (
            str(a.get("invoice_number") or a["invoice_id"]),
            display_amount(int(a["amount"]), posting.currency),
        )
        for a in posting.allocations
    ]


def _reason(posting: Posting) -> str:
    if posting.status == POSTING_REMOVED:
        return posting.removed_reason
    return posting.reason


# --- Post, Retry, Remove ---------------------------------------------------------------------


@view_config(route_name="postings.act", request_method="POST", permission=STAFF)
def act_on_selected(request: Request) -> HTTPSeeOther:
    """Post, Retry or Remove the ticked postings (or the one a posting's page names), then
    back to the same tab or page, with what was done and what was skipped and why."""
    ids = _selected_ids(request.POST.getall("ids"))
    back = _back(request, ids)
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        request.session.flash("Choose Post, Retry or Remove.", "error")
        return back
    if not ids:
        request.session.flash(f"Tick the postings to {action} first.", "error")
        return back
    if action == REMOVE:
        _remove(request, ids, str(request.POST.get("reason", "")))
    else:
        _post(request, ids, retry=action == RETRY)
    return back


def _selected_ids(values: list[str]) -> list[int]:
    # The tick boxes only ever send posting ids: anything else was not made by our form.
    numbers = [whole_number(value, MAX_INTEGER_ID) for value in values]
    ids = [n for n in numbers if n is not None and possible_link_id(n)]
    return list(dict.fromkeys(ids))[:MAX_SELECTED]


def _back(request: Request, ids: list[int]) -> HTTPSeeOther:
    if request.POST.get("back") == BACK_TO_DETAIL and len(ids) == 1:
        return HTTPSeeOther(location=request.route_url("postings.detail", id=ids[0]))
    cursor = str(request.POST.get("cursor", "")) or None
    start = whole_number(str(request.POST.get("start", "")), 10**9)
    params = _list_params(_view(request.POST), cursor, start, _limit(request.POST))
    return HTTPSeeOther(location=request.route_url("postings.list", _query=params))


def _post(request: Request, ids: list[int], retry: bool) -> None:
    batch = post_postings(Work.from_request(request), firm_id(request), ids, request.user.id)
    posting_name = posting_namer(request, ids)
    if batch.queued:
        names = ", ".join(posting_name(i) for i in batch.queued)
        verb = "Queued again" if retry else "Queued"
        count = _count(len(batch.queued), "posting")
        request.session.flash(f"{verb} {count} to be written to the matter system: {names}.")
    if batch.skipped:
        reasons = "; ".join(
            f"{posting_name(s['id'])}: {skip_reason(str(s['reason']))}" for s in batch.skipped
        )
        count = _count(len(batch.skipped), "posting")
        request.session.flash(f"Skipped {count}, because {reasons}.", "error")


def _remove(request: Request, ids: list[int], reason: str) -> None:
    work = Work.from_request(request)
    posting_name = posting_namer(request, ids)
    removed: list[int] = []
    refused: list[str] = []
    for posting_id in ids:
        posting = lock_firm_posting(request.dbsession, firm_id(request), posting_id)
        if posting is None:
            refused.append(f"{posting_name(posting_id)}: it was not found")
            continue
        try:
            remove_posting(work, posting, reason, request.user.id)
        except PostingRefused as refusal:
            refused.append(f"{posting_name(posting_id)}: {refusal.message}")
            continue
        removed.append(posting_id)
    if removed:
        names = ", ".join(posting_name(i) for i in removed)
        count = _count(len(removed), "posting")
        request.session.flash(f"Removed {count}: {names}. They will not be posted.")
    if refused:
        count = _count(len(refused), "posting")
        request.session.flash(f"Did not remove {count}: " + "; ".join(refused), "error")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


# --- A posting's page ------------------------------------------------------------------------


@dataclass
class Choice:
    """An open invoice offered for re-allocation, as the form shows it."""

    invoice: Invoice
    client: str
    matter: str
    balance: str
    checked: bool
    amount: str
    error: str = ""


@dataclass
class Reallocation:
    query: SearchQuery
    choices: list[Choice] = field(default_factory=list)
    searched: bool = False
    problem: str = ""
    needs_admin: bool = False
    errors: list[str] = field(default_factory=list)


def _firm_posting(request: Request) -> Posting:
    posting_id = whole_number(request.matchdict["id"], MAX_INTEGER_ID)
    posting = None
    if posting_id is not None and possible_link_id(posting_id):
        posting = firm_posting(request.dbsession, firm_id(request), posting_id)
    if posting is None:
        raise HTTPNotFound()
    return posting


@view_config(
    route_name="postings.detail",
    request_method="GET",
    renderer="postings/detail.jinja2",
    permission=STAFF,
)
def posting_detail(request: Request) -> dict[str, Any]:
    posting = _firm_posting(request)
    reallocation = None
    if posting.status == POSTING_INCOMPLETE:
        reallocation = _offer(request, posting, _search_query(request, posting), chosen=None)
    return _detail(request, posting, reallocation)


@view_config(
    route_name="postings.invoices",
    request_method="GET",
    renderer="postings/_reallocate.jinja2",
    permission=STAFF,
)
def reallocation_invoices(request: Request) -> dict[str, Any]:
    """The re-allocation form's invoices for a search (htmx swaps them in as staff type)."""
    posting = _firm_posting(request)
    if posting.status != POSTING_INCOMPLETE:
        raise HTTPNotFound()
    reallocation = _offer(request, posting, _search_query(request, posting), chosen=None)
    return _reallocation_page(posting, reallocation)


@view_config(
    route_name="postings.reallocate",
    request_method="POST",
    renderer="postings/detail.jinja2",
    permission=STAFF,
)
def reallocate_submit(request: Request) -> Any:
    posting = _firm_posting(request)
    posting_id = posting.id
    here = HTTPSeeOther(location=request.route_url("postings.detail", id=posting_id))
    connection = _connection(request, posting)
    if connection is None:
        request.session.flash("This posting's connection no longer exists.", "error")
        return here
    chosen = _chosen(request.POST)
    wanted = [{"invoice_id": i, "amount": amount} for i, amount in chosen.items()]
    work = Work.from_request(request)
    try:
        allocations = checked_allocations(work, connection, posting, wanted)
    except (AllocationRefused, AdapterError) as error:
        return _refused_allocation(request, posting_id, chosen, error)
    locked = lock_firm_posting(request.dbsession, firm_id(request), posting_id)
    if locked is None:
        raise HTTPNotFound()
    try:
        reallocate(work, locked, allocations, request.user.id)
    except PostingRefused as refused:
        request.session.flash(refused.message, "error")
        return here
    request.session.flash(
        "Re-allocated. The posting is pending again: Post it to write it to the matter system."
    )
    return here


def _chosen(params: Any) -> dict[str, str]:
    """The ticked invoices (in the form's order) and the amount typed for each."""
    ids = [str(i).strip() for i in params.getall("invoice") if str(i).strip()]
    return {i: str(params.get(AMOUNT_FIELD + i, "")) for i in list(dict.fromkeys(ids))}


def _refused_allocation(
    request: Request, posting_id: int, chosen: dict[str, str], error: Exception
) -> dict[str, Any]:
    # checked_allocations may have committed (it lets go of the database while the matter
    # system answers): read the posting again.
    posting = firm_posting(request.dbsession, firm_id(request), posting_id)
    if posting is None:
        raise HTTPNotFound()
    query = _searched_query(request.POST)
    reallocation = _offer(request, posting, query, chosen)
    if isinstance(error, AllocationRefused):
        _place_errors(reallocation, list(chosen), error.errors)
        request.response.status = 422
    else:
        assert isinstance(error, AdapterError)
        answer = api_error(error)
        reallocation.problem = answer.message
        reallocation.needs_admin = isinstance(error, ReauthorizationRequired)
        request.response.status = answer.status
    return _detail(request, posting, reallocation)


def _place_errors(
    reallocation: Reallocation, chosen_ids: list[str], errors: list[dict[str, str]]
) -> None:
    """Each error beside its invoice's amount ("allocations.2.amount" is the third ticked
    invoice); the rest above the table."""
    by_invoice: dict[str, str] = {}
    for error in errors:
        parts = error["field"].split(".")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(chosen_ids):
            by_invoice.setdefault(chosen_ids[int(parts[1])], error["message"])
        else:
            reallocation.errors.append(error["message"])
    offered = set()
    for choice in reallocation.choices:
        offered.add(choice.invoice.id)
        choice.error = by_invoice.get(choice.invoice.id, "")
    # An invoice ticked in an earlier search, no longer among the results.
    reallocation.errors.extend(
        f"Invoice {invoice_id}: {message}"
        for invoice_id, message in by_invoice.items()
        if invoice_id not in offered
    )


def _connection(request: Request, posting: Posting) -> Connection | None:
    connection = request.dbsession.get(Connection, posting.connection_id or 0)
    return connection if connection is not None and connection.firm_id == posting.firm_id else None


def _search_query(request: Request, posting: Posting) -> SearchQuery:
    """What the form searches: what staff typed, else the client the payment was for."""
    q = str(request.GET.get("q", "")).strip()[:MAX_QUERY]
    if q or "q" in request.GET:
        return SearchQuery(q=q)
    rows = link_invoices(request.dbsession, posting.link_id)
    client_id = next((row.client_id for row in rows if row.client_id), None)
    return SearchQuery(client_id=client_id)


def _searched_query(params: Any) -> SearchQuery:
    """The search a submitted form was showing, so that its invoices are shown again."""
    return SearchQuery(
        q=str(params.get("searched_q", "")).strip()[:MAX_QUERY],
        client_id=str(params.get("searched_client_id", "")).strip() or None,
    )


def _offer(
    request: Request, posting: Posting, query: SearchQuery, chosen: dict[str, str] | None
) -> Reallocation:
    """The open invoices the search finds, ticked and filled in as ``chosen`` says (None: a
    first look, so as the posting is allocated now)."""
    reallocation = Reallocation(query)
    connection = _connection(request, posting)
    if connection is None:
        reallocation.problem = "This posting's connection no longer exists."
        return reallocation
    if not (query.q or query.client_id):
        return reallocation
    if chosen is None:
        chosen = {
            str(a["invoice_id"]): format_amount(int(a["amount"]), posting.currency)
            for a in posting.allocations
        }
    try:
        result = search(Work.from_request(request), connection, query)
    except AdapterError as error:
        reallocation.problem = api_error(error).message
        reallocation.needs_admin = isinstance(error, ReauthorizationRequired)
        return reallocation
    clients = {c.id: c.name for c in result.clients}
    matters = {m.id: f"{m.number} {m.name}".strip() for m in result.matters}
    reallocation.searched = True
    reallocation.choices = [
        Choice(
            invoice=invoice,
            client=clients.get(invoice.client_id, ""),
            matter=matters.get(invoice.matter_id, ""),
            balance=display_amount(invoice.balance, invoice.currency),
            checked=invoice.id in chosen,
            amount=chosen.get(invoice.id, ""),
        )
        for invoice in result.invoices[: MAX_ALLOCATIONS * 2]
    ]
    return reallocation


def _reallocation_page(posting: Posting, reallocation: Reallocation | None) -> dict[str, Any]:
    return {
        "posting": posting,
        "reallocation": reallocation,
        "amount_field": AMOUNT_FIELD,
        "payment_amount": display_amount(posting.amount_minor, posting.currency),
    }


def _detail(
    request: Request, posting: Posting, reallocation: Reallocation | None
) -> dict[str, Any]:
    zone = firm_zone(request.dbsession, posting.firm_id)
    payment = request.dbsession.get(Payment, posting.payment_id)
    link = request.dbsession.get(PaymentLink, posting.link_id)
    connection = _connection(request, posting)
    payer = _payer(payment, link)
    slip = posting.slip if posting.status == POSTING_MANUAL and posting.slip else None
    return {
        **_reallocation_page(posting, reallocation),
        "name": posting_name(posting.id),
        "title": posting_title(display_amount(posting.amount_minor, posting.currency), payer),
        "status_label": status_label(posting.status),
        "payment": payment,
        "link": link,
        "payer": payer,
        "connection": connection,
        "money": lambda minor: display_amount(int(minor), posting.currency),
        "when": lambda value: local_timestamp(value, zone),
        "received_on": short_date(posting.received_on),
        "attempts": [_attempt(attempt, zone) for attempt in posting.attempts],
        "slip": slip,
        "slip_text": slip_text(slip, posting.currency) if slip else "",
        "can_post": posting.status == POSTING_PENDING,
        "can_retry": posting.status == POSTING_FAILED,
        "can_remove": posting.status not in (POSTING_POSTED, POSTING_REMOVED),
        "back": BACK_TO_DETAIL,
    }


def _attempt(attempt: Any, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "at": local_timestamp(attempt.at, zone),
        "outcome": attempt.outcome,
        "outcome_label": outcome_label(attempt.outcome),
        "message": attempt.message,
        "external_ids": dict(attempt.external_ids or {}),
        "by_staff": attempt.user_id is not None,
    }


def slip_text(slip: dict[str, Any], currency: str) -> str:
    """The slip as plain text, for Copy (to paste into the matter system or a message)."""
    lines = [
        f"Client: {slip.get('client') or '—'}",
        f"Matter: {slip.get('matter') or '—'}",
        f"Date: {slip.get('date') or '—'}",
        f"Reference: {slip.get('reference') or '—'}",
    ]
    lines += [
        f"Invoice {line['invoice_number']}: {display_amount(int(line['amount']), currency)}"
        for line in slip.get("lines", [])
    ]
    return "\n".join(lines)


@view_config(route_name="postings.entered", request_method="POST", permission=STAFF)
def entered_by_hand(request: Request) -> HTTPSeeOther:
    posting = _firm_posting(request)
    locked = lock_firm_posting(request.dbsession, firm_id(request), posting.id)
    assert locked is not None
    try:
        mark_entered_by_hand(Work.from_request(request), locked, request.user.id)
    except PostingRefused as refused:
        request.session.flash(refused.message, "error")
    else:
        request.session.flash("Marked as entered by hand in the matter system: it is posted.")
    return HTTPSeeOther(location=request.route_url("postings.detail", id=locked.id))
