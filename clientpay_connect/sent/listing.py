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

import collections
import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Row,
    String,
    bindparam,
    case,
    collate,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnClause, TextClause
from sqlalchemy.sql.visitors import replacement_traverse

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.db import DriverStatement
from clientpay_connect.links.models import (
    SOURCES,
    PaymentLink,
    first_email_sort_sql,
    status_sort_sql,
    text_sort_sql,
)
from clientpay_connect.money import MINOR_DIGITS
from clientpay_connect.sent.cursor import Cursor, encode_cursor
from clientpay_connect.sent.models import COUNTED_COLUMNS, LinkCount
from clientpay_connect.sent.present import firm_zone
from clientpay_connect.sent.query import (
    DATE_FILTER_FIELDS,
    EMAIL_STATUSES,
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
# The column of a page's rows that holds the total (_page_select).
TOTAL_LABEL = "matching_total"
_UTC = ZoneInfo("UTC")


@dataclass
class LinkPage:
    # Each link as plain values (listed_links): read like a PaymentLink, by attribute, by
    # link_json (and its token by links.services.token_urls); nothing writes to it.
    links: list[Any]
    next_cursor: str | None
    total: int
    # The balance link of each link on the page that has one (by the link's id).
    balance_links: dict[int, int] = field(default_factory=dict)


def fetch_page(dbsession: Session, firm_id: int, query: ListQuery) -> LinkPage:
    dialect = _dialect(dbsession)
    zone = filter_zone(dbsession, firm_id, query)
    engine_dialect = dbsession.get_bind().dialect
    plan = query_plan(
        engine_dialect, firm_id, query.status, query.q, query.filters, query.sort.field, zone
    )
    groups = key_groups(dbsession, firm_id, query.sort.field, dialect)
    # Through the session's connection, straight to the driver (db.DriverStatement): the
    # page's values, not ORM objects or SQLAlchemy's rows, which would only be copied again.
    connection = dbsession.connection()
    if groups is None:
        rows = _page_rows(connection, plan, query)
    else:
        rows = _grouped_rows(connection, plan, groups, query)
    links = listed_links(plan.fields, rows)
    page = links[: query.limit]
    # The total from the link counts rides along with the page's rows (see _page_select);
    # counting the links, or a page with no row to carry it, takes a statement of its own.
    if plan.summed is not None and links:
        total = int(getattr(links[0], TOTAL_LABEL))
    else:
        total = int(plan.count.rows(connection, {})[0][0])
    next_cursor = None
    if len(links) > query.limit:
        last = page[-1]
        next_cursor = encode_cursor(query.sort.param, query.sort.kind, last.sort_key, last.id)
    balance_links = {link.id: link.balance_link_id for link in page if link.balance_link_id}
    return LinkPage(page, next_cursor, total, balance_links)


# The bound parameters of a page's statements (QueryPlan): what changes from page to page.
ROWS_WANTED = "page_rows_wanted"
AFTER_VALUE = "page_after_value"
AFTER_ID = "page_after_id"
# Queries whose statements are kept (query_plan): a firm's staff walk a query page after
# page, and come back to the same few tabs, sorts and filters.
PLANS_KEPT = 128
# A plan's statements: four per direction, and four per group of a grouped key (at most
# MAX_GROUPS). A statement kept is its SQL and its parameters, a few kilobytes: the most all
# plans could hold is some tens of megabytes, a few hundred kilobytes the usual.
STATEMENTS_KEPT = 96


@dataclass
class QueryPlan:
    """How one query (a firm, a Show view, a search, filters and a sort field) reads its
    rows: its conditions, its sort key, its total and its page statements, made once and
    used for every page of it (``query_plan``). What differs from page to page (the cursor
    and the number of rows) is a bound parameter, so a page runs the very statement the last
    page ran, compiled once (db.DriverStatement): building the statement and working its
    cache key out again, each page, had cost more than running it."""

    dialect: Any
    conditions: list[ColumnElement[bool]]
    key: ColumnElement[Any]
    nullable: bool
    # The labelled total (_counted) each page statement carries; None: count on its own.
    summed: Any
    # The statement of the total, for when no page row carries it.
    count: DriverStatement
    _statements: dict[tuple[Any, ...], DriverStatement] = field(default_factory=dict)

    @functools.cached_property
    def fields(self) -> tuple[str, ...]:
        """The names of the columns every page statement reads (_page_select's)."""
        return tuple(_page_select([], self.key, 1, self.summed).selected_columns.keys())

    def page_statement(self, valued: bool, descending: bool, after: bool) -> DriverStatement:
        """The rows with a sort value (``valued``) or the empty ones, in the sort's
        direction, from the first or ``after`` a cursor (AFTER_VALUE, AFTER_ID); at most
        ROWS_WANTED of them. Made on first use (a race makes it twice, to the same effect)."""
        shape = (valued, descending, after)
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._keep(shape, self._make_statement(*shape))
        return statement

    def group_statement(
        self, groups: KeyGroups, group: KeyGroup, descending: bool, after: bool
    ) -> DriverStatement:
        """The rows of one of ``groups`` (key_groups), as page_statement's."""
        shape = (groups.basis, group, descending, after)
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._keep(shape, _group_select(self, group, descending, after))
        return statement

    def _keep(self, shape: tuple[Any, ...], statement: Any) -> DriverStatement:
        # A firm whose users or accounts keep changing makes new groups each time: start
        # again rather than keep the statements of groups gone.
        if len(self._statements) >= STATEMENTS_KEPT:
            self._statements.clear()
        driver = self._statements[shape] = DriverStatement(statement, self.dialect)
        return driver

    def _make_statement(self, valued: bool, descending: bool, after: bool) -> Any:
        key, wanted = self.key, bindparam(ROWS_WANTED, None, type_=Integer)
        statement = _page_select(self.conditions, key, wanted, self.summed)
        last_id = bindparam(AFTER_ID, None, type_=Integer)
        if not valued:
            statement = statement.where(key.is_(None)).order_by(_by(PaymentLink.id, descending))
            if after:
                after_id = PaymentLink.id < last_id if descending else PaymentLink.id > last_id
                statement = statement.where(after_id)
            return statement
        statement = statement.order_by(
            *(_by(column, descending) for column in (key, PaymentLink.id))
        )
        if self.nullable:
            statement = statement.where(key.is_not(None))
        if after:
            position = tuple_(key, PaymentLink.id)
            seen = tuple_(bindparam(AFTER_VALUE, None, type_=key.type), last_id)
            statement = statement.where(position < seen if descending else position > seen)
        return statement


@functools.lru_cache(maxsize=PLANS_KEPT)
def query_plan(
    dialect: Any,
    firm_id: int,
    status: str,
    q: str,
    filters: tuple[tuple[str, str], ...],
    sort_field: str,
    zone: ZoneInfo,
) -> QueryPlan:
    """The plan of a query, kept for the next page. Every value the conditions hold (the
    firm, the search, the filters) is part of what the plan is kept by: a plan serves the
    one query, of the one firm, it was made for. ``dialect``: the engine's own (its driver's
    SQL is what the statements are compiled to)."""
    query = ListQuery(status=status, q=q, filters=filters)
    name = str(dialect.name)
    conditions = [
        *match_conditions(query, firm_id, name, zone),
        *_status_condition(status),
    ]
    key, nullable = sort_key(sort_field, name)
    on_counts = _on_counts(name, conditions)
    summed = None if on_counts is None else _counted(on_counts).label(TOTAL_LABEL)
    count = DriverStatement(_total_statement(conditions, on_counts), dialect)
    return QueryPlan(dialect, conditions, key, nullable, summed, count)


def _page_rows(connection: Connection, plan: QueryPlan, query: ListQuery) -> list[Any]:
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
        params: dict[str, Any] = {ROWS_WANTED: wanted}
        if cursor is not None:
            params |= {AFTER_VALUE: cursor.value, AFTER_ID: cursor.id}
        statement = plan.page_statement(True, descending, cursor is not None)
        rows = statement.rows(connection, params)
    if plan.nullable and len(rows) < wanted:
        params = {ROWS_WANTED: wanted - len(rows)}
        after = cursor is not None and cursor.value is None
        if after:
            assert cursor is not None  # for mypy
            params[AFTER_ID] = cursor.id
        statement = plan.page_statement(False, descending, after)
        rows.extend(statement.rows(connection, params))
    return rows


def _grouped_rows(
    connection: Connection, plan: QueryPlan, groups: KeyGroups, query: ListQuery
) -> list[Any]:
    """_page_rows for a key of few values (key_groups): one statement per value in the
    sort's order, each walking that value's links by id (its key a constant), until the page
    is full. A group of several values (``by_key``) is walked by (key, id), as _page_rows
    walks a key with an index."""
    wanted = query.limit + 1
    cursor, descending = query.cursor, query.sort.descending
    rows: list[Any] = []
    for group in _groups_from(groups.groups, cursor, descending):
        if len(rows) >= wanted:
            break
        params: dict[str, Any] = {ROWS_WANTED: wanted - len(rows)}
        after = cursor is not None and group.holds(cursor.value)
        if after:
            assert cursor is not None  # for mypy
            params |= {AFTER_VALUE: cursor.value, AFTER_ID: cursor.id}
        statement = plan.group_statement(groups, group, descending, after)
        rows.extend(statement.rows(connection, params))
    return rows


def _group_select(plan: QueryPlan, group: KeyGroup, descending: bool, after: bool) -> Any:
    key = plan.key
    where = [*plan.conditions, group.condition]
    order: list[Any] = [key, PaymentLink.id] if group.by_key else [PaymentLink.id]
    if after:
        last_id = bindparam(AFTER_ID, None, type_=Integer)
        position: Any = tuple_(*order)
        seen: Any = tuple_(bindparam(AFTER_VALUE, None, type_=key.type), last_id)
        if not group.by_key:
            position, seen = PaymentLink.id, last_id
        where.append(position < seen if descending else position > seen)
    # A group of one value: that value, rather than the key's expression for every row.
    selected = key if group.by_key else literal(group.value, key.type)
    wanted = bindparam(ROWS_WANTED, None, type_=Integer)
    statement = _page_select(where, selected, wanted, plan.summed)
    return statement.order_by(*(_by(column, descending) for column in order))


def _groups_from(groups: list[KeyGroup], cursor: Cursor | None, descending: bool) -> list[KeyGroup]:
    """The groups in the sort's order (the empty values' last either way), from the
    cursor's value on: by comparing values, so that a value no group has any more (a
    creator renamed since the last page) still finds its place."""
    valued = [group for group in groups if group.value is not None]
    ordered = [
        *(reversed(valued) if descending else valued),
        *(g for g in groups if g.value is None),
    ]
    if cursor is None:
        return ordered
    return [group for group in ordered if group.comes_after(cursor.value, descending)]


def _page_select(
    conditions: list[ColumnElement[bool]],
    key: Any,
    limit: int | ColumnElement[int],
    total: Any = None,
) -> Any:
    """The page's statement; with ``total`` (the labelled _counted sum), that column too.

    The creator and the balance link come in the same statement (a join, and a look-up
    per row in the parent_link_id index) rather than in two more round trips. Columns,
    not ORM objects: loading 51 PaymentLinks and their creators was the page's largest
    cost in Python once openapi-core was out of the way (benchmarks/sent_pages.py --profile).
    The total likewise: a scalar subquery that reads no column of the link is an InitPlan
    to PostgreSQL, summed once for the statement, and only when a row comes out."""
    return (
        select(
            *PaymentLink.__table__.columns,
            _CREATOR.name.label("creator_name"),
            _CREATOR.email.label("creator_email"),
            key.label("sort_key"),
            _BALANCE_LINK.label("balance_link_id"),
            *(() if total is None else (total,)),
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


def listed_links(fields: tuple[str, ...], rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    """A page's rows (of ``fields``) as read-only stand-ins for their PaymentLinks: the
    link's columns by their attribute names, the page's own columns (sort_key, ...), and
    ``created_by`` (None when the creator is gone).

    Named tuples of the row's own values and one more, of a type made once per shape of row:
    no dict of each row made and unpacked again (Row._asdict into a SimpleNamespace cost
    more than the link object)."""
    if not rows:
        return []
    make = _listed_maker(fields)
    name_at, email_at = fields.index("creator_name"), fields.index("creator_email")
    return [make((*row, _creator_of(row[name_at], row[email_at]))) for row in rows]


def _creator_of(name: str, email: str | None) -> Creator | None:
    return Creator(name, email) if email is not None else None


@functools.lru_cache(maxsize=32)
def _listed_maker(fields: tuple[str, ...]) -> Callable[[Iterable[Any]], tuple[Any, ...]]:
    # Its fields are known at run time only, which mypy cannot type.
    listed: Any = collections.namedtuple("ListedLink", (*fields, "created_by"))  # type: ignore[misc]
    return cast(Callable[[Iterable[Any]], tuple[Any, ...]], listed._make)


_CHILD = aliased(PaymentLink)
_BALANCE_LINK = (
    select(func.min(_CHILD.id))
    .where(_CHILD.parent_link_id == PaymentLink.id, _CHILD.firm_id == PaymentLink.firm_id)
    .correlate(PaymentLink)
    .scalar_subquery()
)


def _by(column: Any, descending: bool) -> Any:
    return column.desc() if descending else column.asc()


def iter_matching(
    dbsession: Session, firm_id: int, query: ListQuery, fields: Sequence[str]
) -> Iterator[Row[Any]]:
    """Every matching link in order, whatever the page size, as rows of ``fields`` (the
    link's attributes, in that order): for the export. Plain rows, not link objects (an
    object costs more to build than the export spends writing its row), streamed from a
    server-side cursor in batches, so that a firm's whole history never sits in memory."""
    dialect = _dialect(dbsession)
    key, nullable = sort_key(query.sort.field, dialect)
    conditions = match_conditions(query, firm_id, dialect, filter_zone(dbsession, firm_id, query))
    statement = (
        select(*(getattr(PaymentLink, name) for name in fields))
        .where(*conditions, *_status_condition(query.status))
        .order_by(*_order(key, nullable, query.sort))
        .execution_options(yield_per=EXPORT_BATCH)
    )
    # Through the session's connection (its transaction) rather than the session: the ORM
    # would run its loading machinery over each row for nothing.
    yield from dbsession.connection().execute(statement)


def count_by_view(dbsession: Session, firm_id: int, query: ListQuery) -> dict[str, int]:
    """How many links each status view would show for this search and these filters: from
    the link counts when they can tell (see _total), else counted."""
    zone = filter_zone(dbsession, firm_id, query)
    dialect = _dialect(dbsession)
    conditions = match_conditions(query, firm_id, dialect, zone)
    on_counts = _on_counts(dialect, conditions)
    if on_counts is None:
        statement = select(PaymentLink.status, func.count()).where(*conditions)
        statement = statement.group_by(PaymentLink.status)
    else:
        statement = select(LinkCount.status, func.sum(LinkCount.n)).where(*on_counts)
        statement = statement.group_by(LinkCount.status)
    by_status = {status: int(number) for status, number in dbsession.execute(statement).all()}
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
    if field == "emails":
        # The expression of its index (links/models.py), as _text_key.
        return literal_column(first_email_sort_sql(dialect), String), True
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


# The sorts by a text that is not a column of the link itself.
_TEXT_OF: dict[str, Callable[[str], Any]] = {
    "created_by": _creator_name,
    "merchant_account": _account_name,
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


# --- Keys of few values ---------------------------------------------------------------------
#
# Each of these keys has few values, and the sort is by what the value names (a creator's
# or an account's name, folded), which no index of the link can hold: on PostgreSQL a page
# reads the links of one value at a time, by id (_grouped_rows), each value through its
# (firm_id, key, id) index (links/models.py GROUPED_COLUMNS), so that a value with few links
# or none is a seek, not a scan. SQLite's firms are small: the plain statement serves them.

# Beyond this many values (a firm of many users), the plain statement.
MAX_GROUPS = 20


# Compared and hashed as itself (its condition is SQL, whose == makes more SQL).
@dataclass(frozen=True, eq=False)
class KeyGroup:
    """The links whose sort key is ``value`` (None: the empty ones); with ``by_key``, those
    from ``value`` up, walked by (key, id) in an index of their own."""

    value: Any
    condition: ColumnElement[bool]
    by_key: bool = False

    def holds(self, value: Any) -> bool:
        if value is None or self.value is None:
            return value is None and self.value is None
        return bool(value >= self.value) if self.by_key else bool(value == self.value)

    def comes_after(self, value: Any, descending: bool) -> bool:
        """Whether links of this group may come after (or with) a row of ``value``."""
        if self.value is None:
            return True
        if value is None:
            return False
        if descending:
            return bool(self.value <= value)
        return self.by_key or bool(self.value >= value)


@dataclass(frozen=True)
class KeyGroups:
    """A key's groups, and what they were made from (``basis``: the firm's accounts or
    users as read, or nothing for a key whose values the code fixes): the same basis makes
    the same groups, kept (_groups_of) with the statements that read them (QueryPlan)."""

    basis: tuple[Any, ...]
    groups: list[KeyGroup]


def key_groups(dbsession: Session, firm_id: int, field: str, dialect: str) -> KeyGroups | None:
    """The groups of a key of few values, in ascending order; None: the plain statement."""
    if dialect != "postgresql" or field not in _GROUPS_OF:
        return None
    read, _make = _GROUPS_OF[field]
    return _groups_of(field, read(dbsession, firm_id))


@functools.lru_cache(maxsize=PLANS_KEPT)
def _groups_of(field: str, basis: tuple[Any, ...]) -> KeyGroups | None:
    _read, make = _GROUPS_OF[field]
    groups = make(basis)
    return None if groups is None else KeyGroups((field, *basis), groups)


def _folded_groups(column: Any, values: Iterable[tuple[Any, str | None]]) -> list[KeyGroup] | None:
    """A group per folded value (a raw value and its fold, as the sort key folds it), the
    blank ones last; None when there are too many."""
    by_fold: dict[str | None, list[Any]] = {}
    for raw, folded in values:
        by_fold.setdefault(folded, []).append(raw)
    if len(by_fold) > MAX_GROUPS:
        return None
    # Python compares str by code point, as the key's "C" collation does.
    folds = sorted(f for f in by_fold if f is not None) + ([None] if None in by_fold else [])
    return [KeyGroup(fold, column.in_(by_fold[fold])) for fold in folds]


def _fold(text: Any) -> Any:
    # As _text_key and _folded_text fold (the collation changes no value, only the order).
    return func.nullif(func.lower(text), "")


def _no_basis(_dbsession: Session, _firm_id: int) -> tuple[Any, ...]:
    return ()


def _choice_groups(column: Any, choices: tuple[str, ...]) -> list[KeyGroup] | None:
    # The code writes only these values (ASCII: Python's lower() is the database's).
    return _folded_groups(column, [(choice, choice.lower() or None) for choice in choices])


FIRM = bindparam("firm_id", None, type_=Integer)
_CREATOR_NAME = func.coalesce(func.nullif(User.name, ""), User.email)
# A link takes its merchant account's currency when it is made (links/services.py), and an
# account's currency never changes: the firm's accounts' currencies are all there is.
_FIRM_CURRENCIES = (
    select(MerchantAccount.currency, _fold(MerchantAccount.currency))
    .where(MerchantAccount.firm_id == FIRM)
    .distinct()
    .order_by(MerchantAccount.currency)
)
_FIRM_CREATORS = select(User.id, _fold(_CREATOR_NAME)).where(User.firm_id == FIRM).order_by(User.id)
_FIRM_ACCOUNTS = (
    select(MerchantAccount.id, _fold(MerchantAccount.name))
    .where(MerchantAccount.firm_id == FIRM)
    .order_by(MerchantAccount.id)
)


@functools.lru_cache(maxsize=32)
def _driver_statement(statement: Any, dialect: Any) -> DriverStatement:
    return DriverStatement(statement, dialect)


def _basis_reader(statement: Any) -> Callable[[Session, int], tuple[Any, ...]]:
    """What a key's groups are made from: ``statement``'s rows for the firm (straight on the
    driver, as the page's own statements)."""

    def read(dbsession: Session, firm_id: int) -> tuple[Any, ...]:
        connection = dbsession.connection()
        driver = _driver_statement(statement, connection.dialect)
        return tuple(tuple(row) for row in driver.rows(connection, {"firm_id": firm_id}))

    return read


def _creator_groups(basis: tuple[Any, ...]) -> list[KeyGroup] | None:
    groups = _folded_groups(PaymentLink.created_by_user_id, basis)
    if groups is None:
        return None
    # No creator (a user deleted since) sorts as a blank name.
    column = PaymentLink.created_by_user_id
    if groups and groups[-1].value is None:
        return [*groups[:-1], KeyGroup(None, or_(groups[-1].condition, column.is_(None)))]
    return [*groups, KeyGroup(None, column.is_(None))]


def _zero_then_by_key(column: Any) -> Callable[[tuple[Any, ...]], list[KeyGroup]]:
    """Links at 0 by id; the others by their own partial index (links/models.py), which a
    new link (no reminder sent, nothing paid yet) costs nothing: a bulk upload's 100,000
    links write no entry there."""

    def groups(_basis: tuple[Any, ...]) -> list[KeyGroup]:
        return [KeyGroup(0, column == 0), KeyGroup(1, column > 0, by_key=True)]

    return groups


# Each key's groups: what they are made from (read for the firm), and how.
_GROUPS_OF: dict[
    str,
    tuple[
        Callable[[Session, int], tuple[Any, ...]],
        Callable[[tuple[Any, ...]], list[KeyGroup] | None],
    ],
] = {
    "source": (_no_basis, lambda _b: _choice_groups(PaymentLink.source, SOURCES)),
    "email_status": (
        _no_basis,
        lambda _b: _choice_groups(PaymentLink.email_status, EMAIL_STATUSES),
    ),
    "currency": (
        _basis_reader(_FIRM_CURRENCIES),
        lambda basis: _folded_groups(PaymentLink.currency, basis),
    ),
    "created_by": (_basis_reader(_FIRM_CREATORS), _creator_groups),
    "merchant_account": (
        _basis_reader(_FIRM_ACCOUNTS),
        lambda basis: _folded_groups(PaymentLink.merchant_account_id, basis),
    ),
    "reminders_sent": (_no_basis, _zero_then_by_key(PaymentLink.reminders_sent)),
    "amount_paid": (_no_basis, _zero_then_by_key(PaymentLink.amount_paid_minor)),
}


def _order(key: ColumnElement[Any], nullable: bool, sort: Sort) -> list[Any]:
    by_key = _by(key, sort.descending)
    if nullable:
        by_key = by_key.nulls_last()
    return [by_key, _by(PaymentLink.id, sort.descending)]


def _total_statement(
    conditions: list[ColumnElement[bool]], on_counts: list[ColumnElement[bool]] | None
) -> Any:
    """How many links match, on every page (exact, as API.md asks). From the link counts
    (sent/models.py: a sum over the firm's few groups, whatever its number of links) when
    every condition is on counted columns (``on_counts``, _on_counts' answer): no search
    text, only the Show view and the filters on status, source, account, email status or
    creator; else the links counted."""
    if on_counts is None:
        return select(func.count()).select_from(PaymentLink).where(*conditions)
    return select(_counted(on_counts))


def _counted(on_counts: list[ColumnElement[bool]]) -> Any:
    """The number of links the link counts hold for ``on_counts`` (_on_counts)."""
    return select(func.coalesce(func.sum(LinkCount.n), 0)).where(*on_counts).scalar_subquery()


_LINKS = PaymentLink.__table__
_COUNTS = LinkCount.__table__


def _on_counts(
    dialect: str, conditions: list[ColumnElement[bool]]
) -> list[ColumnElement[bool]] | None:
    """``conditions`` on link_counts' columns instead of the links', or None when one needs
    more of a link than its counted columns (a search, a date, an amount) or the database
    keeps no counts (SQLite). The same expressions, columns swapped: a condition that reads
    only a link's counted columns holds for every link of a group or for none, so summing
    the groups it holds for is exactly counting the links it holds for."""
    if dialect != "postgresql":
        return None
    answerable = True

    def swap(element: Any, **_kw: Any) -> Any:
        nonlocal answerable
        if isinstance(element, ColumnClause) and element.table is _LINKS:
            if element.name in COUNTED_COLUMNS:
                return _COUNTS.c[element.name]
            answerable = False
        elif isinstance(element, TextClause) or (
            isinstance(element, ColumnClause) and element.table is None
        ):
            answerable = False  # SQL text we cannot see into
        return None

    swapped = [replacement_traverse(condition, {}, swap) for condition in conditions]
    return swapped if answerable else None


def _dialect(dbsession: Session) -> str:
    return str(dbsession.get_bind().dialect.name)
