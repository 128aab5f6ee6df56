"""The links of one firm that match a ListQuery, in its order, one page at a time.

The order rules (API.md's "Lists", and what the page and the export follow too):

- a field sorts by its type: amounts and counts numerically (minor units), dates and
  timestamps chronologically, text (invoice numbers, names, the source, the creator's and the
  merchant account's names, the first email address) ignoring case (code-point order on both
  databases), status by a link's life: outstanding, processing, paid, partially_paid,
  cancelled, expired;
- empty values (no date, no timestamp, a blank text, no creator) come last in both
  directions, so that ``-due_date`` starts with the latest due date, not with "none";
- ties are broken by id, in the sort's direction.

Pages are cut by keyset (the last row's sort value and id), not by offset, so that walking
the cursors returns every matching row exactly once, even while links are being added.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    case,
    collate,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session, aliased

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.links.models import PaymentLink, status_sort_sql, text_sort_sql
from clientpay_connect.money import MINOR_DIGITS
from clientpay_connect.sent.cursor import Cursor, Total, encode_cursor
from clientpay_connect.sent.present import firm_zone
from clientpay_connect.sent.query import (
    DATE_FILTER_FIELDS,
    FILTERS,
    STATUS_VIEWS,
    FilterSpec,
    ListQuery,
    Sort,
    creator_is_id,
    filter_choices,
    filter_day,
)

NULLABLE_FIELDS = frozenset(
    {
        "due_date",
        "invoice_date",
        "sent_at",
        "paid_at",
        "expires_at",
        "cancelled_at",
        "first_opened_at",
        "last_opened_at",
    }
)
# Sorted as text ignoring case; a blank sorts as empty (last).
TEXT_FIELDS = frozenset({"invoice_number", "recipient_name", "source", "email_status", "currency"})
COLUMNS = {"amount": PaymentLink.amount_minor, "amount_paid": PaymentLink.amount_paid_minor}
EXPORT_BATCH = 500
_UTC = ZoneInfo("UTC")
# From this many matching links on, a walk's later pages carry the first page's count rather
# than count them all again (see _total); below it, counting is cheap and always exact.
CARRY_TOTAL_FROM = 10_000


@dataclass
class LinkPage:
    # Each link as plain values (listed_link): read like a PaymentLink, by attribute, by
    # link_json, link_url and the page's rows; nothing writes to it.
    links: list[Any]
    next_cursor: str | None
    total: int
    # The balance link of each link on the page that has one (by the link's id).
    balance_links: dict[int, int] = field(default_factory=dict)


def fetch_page(dbsession: Session, firm_id: int, query: ListQuery) -> LinkPage:
    dialect = _dialect(dbsession)
    zone = filter_zone(dbsession, firm_id, query)
    conditions = [
        *match_conditions(query, firm_id, dialect, zone),
        *_status_condition(query.status),
    ]
    key, nullable = sort_key(query.sort.field, dialect)
    rows = _page_rows(dbsession, conditions, key, nullable, query)
    page = rows[: query.limit]
    total = _total(dbsession, conditions, query.cursor)
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        carried = total if total.count >= CARRY_TOTAL_FROM else None
        next_cursor = encode_cursor(
            query.sort.param, query.sort.kind, last.sort_key, last.id, carried
        )
    balance_links = {row.id: row.balance_link_id for row in page if row.balance_link_id}
    return LinkPage([listed_link(row) for row in page], next_cursor, total.count, balance_links)


def _page_rows(
    dbsession: Session,
    conditions: list[ColumnElement[bool]],
    key: ColumnElement[Any],
    nullable: bool,
    query: ListQuery,
) -> list[Any]:
    """One row more than the page, so that we know whether another page follows.

    The rows with a value come first, then the empty ones (by id alone): two index range
    scans, each the index's own order (forwards or backwards), rather than one statement whose
    "NULLS LAST" in a descending sort no ascending index gives; and the cursor is a row value,
    ``(key, id) > (value, id)``, which an index on (firm_id, key, id) seeks to at any depth.
    """
    wanted = query.limit + 1
    cursor, descending = query.cursor, query.sort.descending
    rows: list[Any] = []
    if cursor is None or cursor.value is not None:
        statement = _page_select(conditions, key, wanted).order_by(
            *(_by(column, descending) for column in (key, PaymentLink.id))
        )
        if nullable:
            statement = statement.where(key.is_not(None))
        if cursor is not None:
            position = tuple_(key, PaymentLink.id)
            seen = tuple_(literal(cursor.value, key.type), literal(cursor.id))
            statement = statement.where(position < seen if descending else position > seen)
        rows = list(dbsession.execute(statement).all())
    if nullable and len(rows) < wanted:
        statement = _page_select(conditions, key, wanted - len(rows)).where(key.is_(None))
        statement = statement.order_by(_by(PaymentLink.id, descending))
        if cursor is not None and cursor.value is None:
            after = PaymentLink.id < cursor.id if descending else PaymentLink.id > cursor.id
            statement = statement.where(after)
        rows.extend(dbsession.execute(statement).all())
    return rows


def _page_select(conditions: list[ColumnElement[bool]], key: Any, limit: int) -> Any:
    # The creator and the balance link come in the same statement (a join, and a look-up
    # per row in the parent_link_id index) rather than in two more round trips. Columns,
    # not ORM objects: loading 51 PaymentLinks and their creators was the page's largest
    # cost in Python once openapi-core was out of the way (benchmarks/sent_pages.py --profile).
    return (
        select(
            *PaymentLink.__table__.columns,
            _CREATOR.name.label("creator_name"),
            _CREATOR.email.label("creator_email"),
            key.label("sort_key"),
            _BALANCE_LINK.label("balance_link_id"),
        )
        .outerjoin(_CREATOR, _CREATOR.id == PaymentLink.created_by_user_id)
        .where(*conditions)
        .limit(limit)
    )


# An alias: the created_by sort's own subquery names the users table, and must not be
# correlated to this join.
_CREATOR = aliased(User)


@dataclass(frozen=True)
class Creator:
    """What the link object says of who created a link (links.services._creator_name)."""

    name: str
    email: str


def listed_link(row: Any) -> SimpleNamespace:
    """A page's row as a read-only stand-in for its PaymentLink: the link's columns by their
    attribute names, and ``created_by`` (None when the creator is gone)."""
    values = row._asdict()
    name, email = values.pop("creator_name"), values.pop("creator_email")
    creator = Creator(name, email) if email is not None else None
    return SimpleNamespace(**values, created_by=creator)


_CHILD = aliased(PaymentLink)
_BALANCE_LINK = (
    select(func.min(_CHILD.id))
    .where(_CHILD.parent_link_id == PaymentLink.id, _CHILD.firm_id == PaymentLink.firm_id)
    .correlate(PaymentLink)
    .scalar_subquery()
)


def _by(column: Any, descending: bool) -> Any:
    return column.desc() if descending else column.asc()


def iter_matching(dbsession: Session, firm_id: int, query: ListQuery) -> Iterator[PaymentLink]:
    """Every matching link in order, whatever the page size: for the export. Fetched in
    batches so that a firm's whole history never sits in memory at once."""
    dialect = _dialect(dbsession)
    key, nullable = sort_key(query.sort.field, dialect)
    conditions = match_conditions(query, firm_id, dialect, filter_zone(dbsession, firm_id, query))
    statement = (
        select(PaymentLink)
        .where(*conditions, *_status_condition(query.status))
        .order_by(*_order(key, nullable, query.sort))
        .execution_options(yield_per=EXPORT_BATCH)
    )
    yield from dbsession.scalars(statement)


def count_by_view(dbsession: Session, firm_id: int, query: ListQuery) -> dict[str, int]:
    """How many links each status view would show for this search and these filters."""
    zone = filter_zone(dbsession, firm_id, query)
    conditions = match_conditions(query, firm_id, _dialect(dbsession), zone)
    rows = dbsession.execute(
        select(PaymentLink.status, func.count()).where(*conditions).group_by(PaymentLink.status)
    ).all()
    by_status = {status: int(number) for status, number in rows}
    return {
        view: sum(n for s, n in by_status.items() if not statuses or s in statuses)
        for view, statuses in STATUS_VIEWS.items()
    }


# --- What matches --------------------------------------------------------------------------


def match_conditions(
    query: ListQuery, firm_id: int, dialect: str, zone: ZoneInfo = _UTC
) -> list[ColumnElement[bool]]:
    """The firm, the search text and the filters; not the status view (the tabs count each).
    ``zone`` is the firm's: a timestamp's day (filter[created_at_from]) is the firm's day."""
    conditions: list[ColumnElement[bool]] = [PaymentLink.firm_id == firm_id]
    if query.q:
        conditions.append(_search(query.q, dialect))
    where = _Where(firm_id, dialect, zone)
    for name, value in query.filters:
        spec = FILTERS[name]
        conditions.append(_TESTS[spec.test](spec, value, where))
    return conditions


def filter_zone(dbsession: Session, firm_id: int, query: ListQuery) -> ZoneInfo:
    """The firm's time zone when a filter needs it (a timestamp's day), else UTC: one query
    fewer for the lists that have no such filter."""
    for name, _value in query.filters:
        spec = FILTERS[name]
        if spec.test in ("from", "to") and DATE_FILTER_FIELDS[spec.field] == "datetime":
            return firm_zone(dbsession, firm_id)
    return _UTC


def _status_condition(view: str) -> list[ColumnElement[bool]]:
    statuses = STATUS_VIEWS[view]
    return [PaymentLink.status.in_(statuses)] if statuses else []


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(expression: Any, pattern: str) -> ColumnElement[bool]:
    # lower() on both sides rather than ILIKE: SQLite has no ILIKE, and its LIKE's own
    # case-folding is a connection setting we would rather not depend on.
    return func.lower(expression).like(pattern, escape="\\")


def _search(q: str, dialect: str) -> ColumnElement[bool]:
    pattern = _like_pattern(q)
    return or_(
        _contains(PaymentLink.invoice_number, pattern),
        _contains(PaymentLink.recipient_name, pattern),
        _any_email_contains(pattern, dialect),
    )


def _any_email_contains(pattern: str, dialect: str) -> ColumnElement[bool]:
    # Each address on its own, not the JSON text: a search for '","' must match nothing.
    elements = func.json_array_elements_text if dialect == "postgresql" else func.json_each
    addresses = elements(PaymentLink.emails).table_valued("value")
    return (
        select(literal(1))
        .select_from(addresses)
        .where(_contains(addresses.c.value, pattern))
        .exists()
    )


@dataclass(frozen=True)
class _Where:
    """What a filter's condition may need besides its value."""

    firm_id: int
    dialect: str
    zone: ZoneInfo


def _column(field: str) -> Any:
    return COLUMNS.get(field) or getattr(PaymentLink, field)


def _equals(spec: FilterSpec, value: str, _where: _Where) -> ColumnElement[bool]:
    column = _column(spec.field)
    return column == (int(value) if spec.value == "id" else value)


def _equals_text(spec: FilterSpec, value: str, _where: _Where) -> ColumnElement[bool]:
    return func.lower(_column(spec.field)) == value.lower()


def _contains_text(spec: FilterSpec, value: str, where: _Where) -> ColumnElement[bool]:
    pattern = _like_pattern(value)
    if spec.field == "emails":
        return _any_email_contains(pattern, where.dialect)
    if spec.field == "created_by":
        people = select(User.id).where(
            User.firm_id == where.firm_id,
            or_(_contains(User.name, pattern), _contains(User.email, pattern)),
        )
        return PaymentLink.created_by_user_id.in_(people)
    return _contains(_column(spec.field), pattern)


def _in(spec: FilterSpec, value: str, _where: _Where) -> ColumnElement[bool]:
    return _column(spec.field).in_(filter_choices(value))


def _at_least(spec: FilterSpec, value: str, _where: _Where) -> ColumnElement[bool]:
    if spec.value == "amount":
        return _column(spec.field) >= _minor_units(Decimal(value), ROUND_CEILING)
    return _column(spec.field) >= int(value)


def _at_most(spec: FilterSpec, value: str, _where: _Where) -> ColumnElement[bool]:
    if spec.value == "amount":
        return _column(spec.field) <= _minor_units(Decimal(value), ROUND_FLOOR)
    return _column(spec.field) <= int(value)


def _minor_units(amount: Decimal, rounding: str) -> ColumnElement[Any]:
    """``amount`` in each link's own minor units (cents, yen, fils), rounded towards the
    inside of the range: 10.005 USD as a minimum is 1001 cents."""

    def scaled(digits: int) -> Any:
        return literal(int(amount.scaleb(digits).to_integral_value(rounding)), BigInteger)

    by_digits: dict[int, list[str]] = {}
    for currency, digits in MINOR_DIGITS.items():
        by_digits.setdefault(digits, []).append(currency)
    whens = [(PaymentLink.currency.in_(codes), scaled(d)) for d, codes in by_digits.items()]
    return case(*whens, else_=scaled(2))


def _from_day(spec: FilterSpec, value: str, where: _Where) -> ColumnElement[bool]:
    day = filter_day(value)
    assert day is not None  # the parser checked it
    column = _column(spec.field)
    if DATE_FILTER_FIELDS[spec.field] == "date":
        return column >= day
    start = _start_of(day, where.zone)
    # Before year 1 in UTC: every timestamp is after it.
    return column >= start if start is not None else column.is_not(None)


def _to_day(spec: FilterSpec, value: str, where: _Where) -> ColumnElement[bool]:
    day = filter_day(value)
    assert day is not None  # the parser checked it
    column = _column(spec.field)
    if DATE_FILTER_FIELDS[spec.field] == "date":
        return column <= day
    end = _start_of(day + dt.timedelta(days=1), where.zone) if day < dt.date.max else None
    # The last day there is: every timestamp is before its end.
    return column < end if end is not None else column.is_not(None)


def _start_of(day: dt.date, zone: ZoneInfo) -> dt.datetime | None:
    """Midnight of ``day`` in ``zone``, in UTC; None when UTC cannot hold it (year 1)."""
    try:
        return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    except OverflowError:
        return None


def _created_by(_spec: FilterSpec, value: str, where: _Where) -> ColumnElement[bool]:
    if creator_is_id(value):
        return PaymentLink.created_by_user_id == int(value)
    wanted = value.lower()
    people = select(User.id).where(
        User.firm_id == where.firm_id,
        or_(func.lower(User.name) == wanted, func.lower(User.email) == wanted),
    )
    return PaymentLink.created_by_user_id.in_(people)


def _client(_spec: FilterSpec, value: str, where: _Where) -> ColumnElement[bool]:
    """Connect links asking for an invoice of this client (the matter system's id)."""
    links = select(LinkInvoice.link_id).where(
        LinkInvoice.firm_id == where.firm_id, LinkInvoice.client_id == value
    )
    return PaymentLink.id.in_(links)


# A FilterSpec's test (query.py's FILTERS) and the condition it makes.
_TESTS: dict[str, Callable[[FilterSpec, str, _Where], ColumnElement[bool]]] = {
    "equals": _equals,
    "equals_text": _equals_text,
    "contains": _contains_text,
    "in": _in,
    "min": _at_least,
    "max": _at_most,
    "from": _from_day,
    "to": _to_day,
    "created_by": _created_by,
    "client": _client,
}


# --- In which order ------------------------------------------------------------------------


def sort_key(field: str, dialect: str) -> tuple[ColumnElement[Any], bool]:
    """What ``field`` sorts by, and whether that can be empty (NULL)."""
    if field == "status":
        return literal_column(status_sort_sql(dialect), Integer), False
    if field in TEXT_FIELDS:
        return _text_key(field, dialect), True
    if field in _TEXT_OF:
        return _folded_text(_TEXT_OF[field](dialect), dialect), True
    return _column(field), field in NULLABLE_FIELDS


def _creator_name(_dialect: str) -> Any:
    # As the link object names its creator: the name, else the email address.
    name = func.coalesce(func.nullif(User.name, ""), User.email)
    return select(name).where(User.id == PaymentLink.created_by_user_id).scalar_subquery()


def _account_name(_dialect: str) -> Any:
    return (
        select(MerchantAccount.name)
        .where(MerchantAccount.id == PaymentLink.merchant_account_id)
        .scalar_subquery()
    )


def _first_email(dialect: str) -> Any:
    if dialect == "postgresql":
        return PaymentLink.emails.op("->>")(literal(0))
    return func.json_extract(PaymentLink.emails, "$[0]")


# The sorts by a text that is not a column of the link itself.
_TEXT_OF: dict[str, Callable[[str], Any]] = {
    "created_by": _creator_name,
    "merchant_account": _account_name,
    "emails": _first_email,
}


def _text_key(field: str, dialect: str) -> ColumnElement[Any]:
    # A blank is "no value" (NULL), so that it sorts last like a missing date. As SQL text,
    # the very expression of the index (links/models.py), so that PostgreSQL uses it.
    return literal_column(text_sort_sql(field, dialect), String)


def _folded_text(expression: Any, dialect: str) -> ColumnElement[Any]:
    """A text that is not a column of the link (a creator's name, the first address) sorted
    as _text_key sorts a column's: case ignored, by code point, a blank as no value."""
    key = func.nullif(func.lower(expression), "")
    return collate(key, "C") if dialect == "postgresql" else key


def _order(key: ColumnElement[Any], nullable: bool, sort: Sort) -> list[Any]:
    by_key = _by(key, sort.descending)
    if nullable:
        by_key = by_key.nulls_last()
    return [by_key, _by(PaymentLink.id, sort.descending)]


def _total(
    dbsession: Session, conditions: list[ColumnElement[bool]], cursor: Cursor | None
) -> Total:
    """How many links match. A large count (CARRY_TOTAL_FROM) is counted on the first page
    of a walk only and carried by the cursor, so that a deep page does not count a million
    rows again: the next pages add the matching links made since (ids above the highest the
    first count saw: a short range of the primary key). What such a walk does not see is a
    link of the first count that changed since (a cancel moving it out of Outstanding): the
    next first page counts it again."""
    if cursor is not None and cursor.total is not None:
        added = _count(dbsession, [*conditions, PaymentLink.id > cursor.total.highest_id])
        return Total(cursor.total.count + added, cursor.total.highest_id)
    # One statement, so that the count and the highest id are of the same moment.
    highest = select(func.max(PaymentLink.id)).scalar_subquery()
    statement = select(func.count(), highest).select_from(PaymentLink).where(*conditions)
    count, highest_id = dbsession.execute(statement).one()
    return Total(int(count), int(highest_id or 0))


def _count(dbsession: Session, conditions: list[ColumnElement[bool]]) -> int:
    statement = select(func.count()).select_from(PaymentLink).where(*conditions)
    return int(dbsession.execute(statement).scalar_one())


def _dialect(dbsession: Session) -> str:
    return str(dbsession.get_bind().dialect.name)
