"""The reconciliation report: for a period, where every payment received through Connect
stands now, per merchant account and connection, so that the firm can close its books.

Its rules:
- The period is of days in the firm's own time zone, both ends included, and a payment
  belongs to the day it was received there (a posting's ``received_on``, set when the payment
  succeeded): a payment at 11 p.m. in New York on the 31st is March's, whatever UTC says.
- Every posting received in the period counts once in "received" and once in exactly one of
  the other figures, by its status now: posted (entered by hand included), pending (waiting
  to be posted: pending or queued; the pages call it "Waiting"), incomplete, manual (manual
  required), removed, failed. So received is always the sum of the others, in count and in
  amount.
- Amounts are summed per currency (a merchant account has one); totals are per currency.
- The rows behind a figure are the postings themselves, newest first, paged by id.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.connect.models import Connection
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.pay.models import Payment
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
from clientpay_connect.sent.cursor import decode_cursor, encode_cursor

RECEIVED = "received"
# Each figure but "received", and the statuses it counts; together they cover every status.
FIGURE_STATUSES: dict[str, tuple[str, ...]] = {
    "posted": (POSTING_POSTED,),
    "pending": (POSTING_PENDING, POSTING_QUEUED),
    "incomplete": (POSTING_INCOMPLETE,),
    "manual": (POSTING_MANUAL,),
    "removed": (POSTING_REMOVED,),
    "failed": (POSTING_FAILED,),
}
FIGURES = (RECEIVED, *FIGURE_STATUSES)
FIGURE_LABELS = {
    RECEIVED: "Received",
    "posted": "Posted",
    "pending": "Waiting",
    "incomplete": "Incomplete",
    "manual": "Manual",
    "removed": "Removed",
    "failed": "Failed",
}
FIGURE_OF_STATUS = {
    status: name for name, statuses in FIGURE_STATUSES.items() for status in statuses
}
# A year and a day: a leap year's whole year fits, and nobody's query scans a decade.
MAX_PERIOD_DAYS = 367
NO_CONNECTION = "none"
# The rows behind a figure: newest first, by id (the cursor of sent/cursor.py).
CURSOR_SORT = "-id"
CURSOR_KIND = "int"


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date


def month_of(today: dt.date) -> Period:
    """The calendar month of ``today`` (the firm's today): the report's default period."""
    last = calendar.monthrange(today.year, today.month)[1]
    return Period(today.replace(day=1), today.replace(day=last))


def parse_period(params: Mapping[str, Any], today: dt.date) -> tuple[Period, list[dict[str, str]]]:
    """``from`` and ``to`` (ISO dates, each defaulting to this month's first and last day),
    and the errors by field; with errors the period is the default one."""
    default = month_of(today)
    errors: list[dict[str, str]] = []
    start = _date(params, "from", default.start, errors)
    end = _date(params, "to", default.end, errors)
    if not errors and start > end:
        errors.append({"field": "to", "message": "The period ends before it starts."})
    if not errors and (end - start).days >= MAX_PERIOD_DAYS:
        errors.append({"field": "to", "message": "Choose a period of at most a year."})
    return (default, errors) if errors else (Period(start, end), [])


def _date(
    params: Mapping[str, Any], name: str, default: dt.date, errors: list[dict[str, str]]
) -> dt.date:
    text = str(params.get(name) or "").strip()
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.append({"field": name, "message": "Enter a date as YYYY-MM-DD."})
        return default


@dataclass
class Figure:
    count: int = 0
    amount: int = 0

    def add(self, count: int, amount: int) -> None:
        self.count += count
        self.amount += amount


def blank_figures() -> dict[str, Figure]:
    return {name: Figure() for name in FIGURES}


@dataclass
class Group:
    """One merchant account and connection's figures."""

    merchant_account_id: int
    merchant_account_name: str
    merchant_account_kind: str
    connection_id: int | None
    connection_name: str
    currency: str
    figures: dict[str, Figure] = field(default_factory=blank_figures)


@dataclass
class Report:
    period: Period
    groups: list[Group]
    # Per currency, the figures of every group in it.
    totals: dict[str, dict[str, Figure]]
    # The firm's merchant accounts' and connections' names, by id.
    account_names: dict[int, str] = field(default_factory=dict)
    connection_names: dict[int, str] = field(default_factory=dict)


def _in_period(firm_id: int, period: Period) -> Any:
    return (
        select(Posting.status, PaymentLink.merchant_account_id, Posting.connection_id)
        .join(PaymentLink, PaymentLink.id == Posting.link_id)
        .where(
            Posting.firm_id == firm_id,
            Posting.received_on >= period.start,
            Posting.received_on <= period.end,
        )
    )


def reconciliation(dbsession: Session, firm_id: int, period: Period) -> Report:
    query = (
        _in_period(firm_id, period)
        .add_columns(Posting.currency, func.count(), func.sum(Posting.amount_minor))
        .group_by(
            Posting.status, PaymentLink.merchant_account_id, Posting.connection_id, Posting.currency
        )
    )
    accounts = _firm_rows(dbsession, MerchantAccount, firm_id)
    connections = _firm_rows(dbsession, Connection, firm_id)
    groups: dict[tuple[int, int | None, str], Group] = {}
    totals: dict[str, dict[str, Figure]] = {}
    for status, account_id, connection_id, currency, count, amount in dbsession.execute(query):
        key = (account_id, connection_id, currency)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _group(accounts, connections, account_id, connection_id, currency)
        figure = FIGURE_OF_STATUS.get(status)
        for figures in (group.figures, totals.setdefault(currency, blank_figures())):
            figures[RECEIVED].add(int(count), int(amount or 0))
            if figure is not None:
                figures[figure].add(int(count), int(amount or 0))
    ordered = sorted(
        groups.values(),
        key=lambda g: (g.merchant_account_name.lower(), g.connection_name.lower(), g.currency),
    )
    return Report(
        period,
        ordered,
        dict(sorted(totals.items())),
        account_names={i: a.name for i, a in accounts.items()},
        connection_names={i: c.name for i, c in connections.items()},
    )


def _firm_rows(dbsession: Session, model: Any, firm_id: int) -> dict[int, Any]:
    return {
        row.id: row
        for row in dbsession.execute(select(model).where(model.firm_id == firm_id)).scalars()
    }


def _group(
    accounts: dict[int, MerchantAccount],
    connections: dict[int, Connection],
    account_id: int,
    connection_id: int | None,
    currency: str,
) -> Group:
    account = accounts.get(account_id)
    connection = connections.get(connection_id) if connection_id is not None else None
    return Group(
        merchant_account_id=account_id,
        merchant_account_name=account.name if account else f"Merchant account {account_id}",
        merchant_account_kind=account.kind if account else "",
        connection_id=connection_id,
        connection_name=connection.name if connection else "No connection (deleted)",
        currency=currency,
    )


# --- The rows behind a figure ---------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which figure's rows: of every group, or of one merchant account and/or connection
    (``no_connection``: the postings whose connection was deleted)."""

    figure: str = RECEIVED
    merchant_account_id: int | None = None
    connection_id: int | None = None
    no_connection: bool = False


def parse_selection(params: Mapping[str, Any]) -> tuple[Selection, list[dict[str, str]]]:
    errors: list[dict[str, str]] = []
    figure = str(params.get("figure") or RECEIVED)
    if figure not in FIGURES:
        errors.append({"field": "figure", "message": "Not a figure of the report."})
        figure = RECEIVED
    account = _whole(params, "merchant_account_id", errors)
    connection_text = str(params.get("connection_id") or "").strip()
    no_connection = connection_text == NO_CONNECTION
    connection = None if no_connection else _whole(params, "connection_id", errors)
    return Selection(figure, account, connection, no_connection), errors


def _whole(params: Mapping[str, Any], name: str, errors: list[dict[str, str]]) -> int | None:
    text = str(params.get(name) or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**31:
        errors.append({"field": name, "message": "Not an id."})
        return None
    return int(text)


@dataclass(frozen=True)
class Line:
    """A posting behind a figure, with what the report shows beside it."""

    posting: Posting
    merchant_account_id: int
    payer_name: str
    receipt_number: str

    @property
    def figure(self) -> str:
        return FIGURE_OF_STATUS.get(self.posting.status, "")


def _lines_query(firm_id: int, period: Period, selection: Selection) -> Any:
    query = (
        select(
            Posting,
            PaymentLink.merchant_account_id,
            Payment.payer_name,
            PaymentLink.recipient_name,
            Payment.receipt_number,
        )
        .join(PaymentLink, PaymentLink.id == Posting.link_id)
        .join(Payment, Payment.id == Posting.payment_id)
        .where(
            Posting.firm_id == firm_id,
            Posting.received_on >= period.start,
            Posting.received_on <= period.end,
        )
    )
    if selection.figure != RECEIVED:
        query = query.where(Posting.status.in_(FIGURE_STATUSES[selection.figure]))
    if selection.merchant_account_id is not None:
        query = query.where(PaymentLink.merchant_account_id == selection.merchant_account_id)
    if selection.no_connection:
        query = query.where(Posting.connection_id.is_(None))
    elif selection.connection_id is not None:
        query = query.where(Posting.connection_id == selection.connection_id)
    return query


def _line(row: Any) -> Line:
    posting, account_id, payer_name, recipient_name, receipt_number = row
    return Line(posting, account_id, payer_name or recipient_name or "", receipt_number or "")


def figure_lines(
    dbsession: Session,
    firm_id: int,
    period: Period,
    selection: Selection,
    limit: int,
    before_id: int | None = None,
) -> list[Line]:
    """Up to ``limit`` postings behind the figure, newest first, older than ``before_id``."""
    query = _lines_query(firm_id, period, selection)
    if before_id is not None:
        query = query.where(Posting.id < before_id)
    rows = dbsession.execute(query.order_by(Posting.id.desc()).limit(limit))
    return [_line(row) for row in rows]


def figure_page(
    dbsession: Session,
    firm_id: int,
    period: Period,
    selection: Selection,
    limit: int,
    cursor_text: str | None = None,
) -> tuple[list[Line], str | None]:
    """One page of the rows behind a figure, and the cursor of the next (None at the end);
    raises ``CursorError`` for a cursor we did not give out."""
    before = decode_cursor(cursor_text, CURSOR_SORT, CURSOR_KIND).id if cursor_text else None
    lines = figure_lines(dbsession, firm_id, period, selection, limit + 1, before)
    if len(lines) <= limit:
        return lines, None
    last = lines[limit - 1].posting.id
    return lines[:limit], encode_cursor(CURSOR_SORT, CURSOR_KIND, last, last)


def every_line(dbsession: Session, firm_id: int, period: Period) -> Iterator[Line]:
    """Every posting of the period, oldest received first (for the workbook), read in
    batches rather than all at once."""
    query = _lines_query(firm_id, period, Selection()).order_by(Posting.received_on, Posting.id)
    for row in dbsession.execute(query.execution_options(yield_per=500)):
        yield _line(row)
