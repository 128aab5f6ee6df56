"""GET /api/v1/links against a model in Python, for random data sets (hypothesis).

For each example: a firm of its own (its time zone never UTC, so that a timestamp's day is
the firm's day, not UTC's), with random users (some without a name), merchant accounts
(named, in currencies of 0, 2 and 3 minor digits) and links; a random status view, search,
set of filters and sort; then the walk through next_cursor with a small limit, while new
links are added between the pages. What the walk returns must be exactly what filtering and
sorting the same rows in Python gives: the links that existed before the walk each once and
in order (a link added during the walk may or may not show, but at most once), and a total
that counts every matching link. A range whose upper end is below its lower end is refused
(422), as the API document says.

The test is driven by the query module's own tables: every sort of SORT_KINDS and every
filter of FILTERS (by its FilterSpec's test and value) is drawn here, and one this file has
no model for fails test_every_sort_and_filter_has_a_model rather than going untested.
Run on SQLite, and on PostgreSQL when CLIENTPAY_TEST_DATABASE_URL is set;
CLIENTPAY_TEST_EXAMPLES=500 runs more examples than the default.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Date, Integer, String
from sqlalchemy.orm import Session

from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.db import UTCDateTime
from clientpay_connect.links.models import SOURCES, STATUSES, PaymentLink
from clientpay_connect.sent.query import (
    EMAIL_STATUSES,
    FILTERS,
    SORT_KINDS,
    STATUS_VIEWS,
    FilterSpec,
)
from tests.conftest import bearer
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory
from tests.support.sent import T0, make_link

URL = "/api/v1/links"
EXAMPLES = int(os.environ.get("CLIENTPAY_TEST_EXAMPLES", "40"))
QUESTIONS = 4  # walks per example's world
# Few distinct values, so that ties (broken by id) and empty values are common.
TEXT = st.text(alphabet="aAbBéÉ -%_1", max_size=3)
# Around midnight in UTC and in the zones below, and across New York's change to summer time
# (2025-03-09): a timestamp's UTC day and the firm's day often differ.
MOMENTS = st.sampled_from(
    [T0 + dt.timedelta(hours=h, minutes=m) for h, m in ((0, 0), (1, 0), (8, 45), (9, 0))]
    + [T0 + dt.timedelta(hours=h) for h in (12, 30, 200, 205, 500)]
)
DAYS = st.sampled_from([dt.date(2025, 1, 1) + dt.timedelta(days=d) for d in (0, 1, 40, 400)])
SMALL_INTS = st.sampled_from([0, 1, 3, 250, 10_000])
ZONES = ("America/New_York", "Asia/Tokyo", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns")
# Currencies and their minor digits (ISO 4217), as the model knows them. The admin's form
# offers two-digit currencies only, but the listing reads amounts in any link's own.
MINOR_DIGITS = {"USD": 2, "EUR": 2, "JPY": 0, "BHD": 3}
# One test session's users apart from another's on a shared database (emails are unique).
RUN = uuid.uuid4().hex[:8]
_serial = itertools.count()

# Columns that are the link's plumbing, not something Sent Pages shows, sorts or filters by;
# and the currency, which is its merchant account's.
PLUMBING = {
    "id",
    "firm_id",
    "merchant_account_id",
    "created_by_user_id",
    "token_hash",
    "token_encrypted",
    "parent_link_id",
    "bulk_row_id",
    "connection_id",
    "processing_started_at",
    "currency",
}
# Columns whose values come from a fixed list.
CHOICES: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from(STATUSES),
    "source": st.sampled_from(SOURCES),
    "email_status": st.sampled_from(EMAIL_STATUSES),
    "locale": st.sampled_from(["en", "es"]),
    "amount_minor": st.sampled_from([1, 99, 100, 999, 1_000, 10_000, 123_456]),
    "amount_paid_minor": st.sampled_from([0, 100, 5_000]),
    "emails": st.lists(
        st.sampled_from(["a@x.test", "Bé@Y.test", "c@x.test", "B_%@x.test"]), max_size=2
    ),
}


def column_values(column: Any) -> st.SearchStrategy[Any]:
    """Random values for a column of payment_links, by its name or else by its type: a
    column added later gets random values without anyone remembering to add them here."""
    if column.name in CHOICES:
        return CHOICES[column.name]
    kinds: list[tuple[type, st.SearchStrategy[Any]]] = [
        (UTCDateTime, MOMENTS),
        (Date, DAYS),
        (Boolean, st.booleans()),
        (Integer, SMALL_INTS),  # BigInteger is an Integer too
        (String, TEXT),
    ]
    for kind, values in kinds:
        if isinstance(column.type, kind):
            if column.nullable and not isinstance(column.type, Boolean):
                return st.none() | values
            return values
    raise AssertionError(f"payment_links.{column.name}: no random values for {column.type!r}")


RANDOM_COLUMNS = [c for c in PaymentLink.__table__.columns if c.name not in PLUMBING]
RANDOM_NAMES = {c.name for c in RANDOM_COLUMNS}


@st.composite
def link_rows(draw: st.DrawFn, accounts: int, users: int) -> dict[str, Any]:
    row = {column.name: draw(column_values(column)) for column in RANDOM_COLUMNS}
    # Which of the world's accounts and users (or none), and which client.
    row["account"] = draw(st.integers(0, accounts - 1))
    row["creator"] = draw(st.none() | st.integers(0, users - 1))
    row["client"] = draw(st.sampled_from([None, "C-1", "c-2"]))
    return row


PEOPLE_NAMES = st.sampled_from(["", "", "Ann Lee", "ann lee", "Émile", "bo"]) | TEXT
ACCOUNT_NAMES = st.sampled_from(["Operating", "operating", "Trust", "Émile", ""]) | TEXT


@st.composite
def people(draw: st.DrawFn) -> tuple[str, str]:
    """A user's name (often blank) and email address (unique, whatever the case)."""
    local = draw(st.sampled_from(["a", "A", "é", "b", "Zed"]))
    return draw(PEOPLE_NAMES), f"{local}.{next(_serial)}.{RUN}@x.test"


@dataclass
class World:
    """One example's firm: whose links they are, and the links so far."""

    dbsession: Session
    app: Any
    zone: ZoneInfo
    accounts: list[Any]
    users: list[Any]
    links: list[PaymentLink] = field(default_factory=list)
    clients: dict[int, str] = field(default_factory=dict)

    def rows(self, max_size: int) -> st.SearchStrategy[list[dict[str, Any]]]:
        # As many short lists as long ones (a plain st.lists keeps to a few rows mostly).
        row = link_rows(len(self.accounts), len(self.users))
        sizes = st.sampled_from(range(max_size + 1))  # st.integers favours 0 and max_size
        return sizes.flatmap(lambda n: st.lists(row, min_size=n, max_size=n))

    def add(self, row: dict[str, Any]) -> PaymentLink:
        fields = {k: v for k, v in row.items() if k not in ("account", "creator", "client")}
        creator = self.users[row["creator"]] if row["creator"] is not None else None
        link = make_link(
            self.dbsession, self.app, self.accounts[row["account"]], creator=creator, **fields
        )
        if row["client"] is not None:
            self.dbsession.add(
                LinkInvoice(
                    firm_id=link.firm_id,
                    link_id=link.id,
                    invoice_id=f"I-{link.id}",
                    client_id=row["client"],
                    balance_minor=link.amount_minor,
                    amount_minor=link.amount_minor,
                )
            )
            self.dbsession.flush()
            self.clients[link.id] = row["client"]
        self.links.append(link)
        return link

    def creator(self, link: PaymentLink) -> Any:
        return next((u for u in self.users if u.id == link.created_by_user_id), None)

    def account(self, link: PaymentLink) -> Any:
        return next(a for a in self.accounts if a.id == link.merchant_account_id)


# --- The model: what each field of a link is, and how each sort and filter reads it --------

# Fields that are not the link's column of the same name: what a sort or a filter sees.
DERIVED: dict[str, Callable[[World, PaymentLink], Any]] = {
    "amount": lambda _w, link: link.amount_minor,
    "amount_paid": lambda _w, link: link.amount_paid_minor,
    # As the link object names its creator: the name, else the email address.
    "created_by": lambda w, link: (c.name or c.email) if (c := w.creator(link)) else None,
    "merchant_account": lambda w, link: w.account(link).name,
    # The first address, as the link lists them; none when it has none.
    "emails": lambda _w, link: link.emails[0] if link.emails else None,
    "client_id": lambda w, link: w.clients.get(link.id),
    "merchant_account_id": lambda _w, link: link.merchant_account_id,
    "currency": lambda _w, link: link.currency,
}
# Where filter[<field>_contains] looks, when not in the field's one value: any address, the
# creator's name or email.
CONTAINS_TEXTS: dict[str, Callable[[World, PaymentLink], list[str]]] = {
    "emails": lambda _w, link: list(link.emails),
    "created_by": lambda w, link: [c.name, c.email] if (c := w.creator(link)) else [],
}
# The column types that hold each kind of sort's values.
KIND_TYPES: dict[str, type] = {
    "int": Integer,
    "date": Date,
    "datetime": UTCDateTime,
    "text": String,
}


def value_of(world: World, link: PaymentLink, name: str) -> Any:
    if name in DERIVED:
        return DERIVED[name](world, link)
    if name not in RANDOM_NAMES:
        raise AssertionError(f"field {name!r}: no model (add it to DERIVED)")
    return getattr(link, name)


def text_key(value: str | None) -> str | None:
    """Text sorts ignoring case, by code point; a blank is no value."""
    return value.lower() if value else None


KIND_KEYS: dict[str, Callable[[Any], Any]] = {
    "int": lambda value: value,
    "date": lambda value: value,
    "datetime": lambda value: value,
    "text": text_key,
}


def sort_value(world: World, link: PaymentLink, name: str) -> Any:
    if name == "status":  # a link's place in its life, not the status's name
        return STATUSES.index(link.status)
    return KIND_KEYS[SORT_KINDS[name]](value_of(world, link, name))


def sort_problem(name: str) -> str | None:
    """Why the model cannot sort by ``name``, if it cannot."""
    kind = SORT_KINDS[name]
    if kind not in KIND_KEYS:
        return f"sort {name!r}: no model for its kind {kind!r}"
    if name == "status" or name in DERIVED:
        return None
    column = PaymentLink.__table__.columns.get(name)
    if column is None or name not in RANDOM_NAMES:
        return f"sort {name!r}: no model (add it to DERIVED)"
    if not isinstance(column.type, KIND_TYPES[kind]):
        return f"sort {name!r}: its column is no {kind} (add it to DERIVED)"
    return None


def expected_order(world: World, links: list[PaymentLink], name: str, desc: bool) -> list[int]:
    """Values in order, ties by id in the same direction; empty values last either way."""
    keyed = [(sort_value(world, link, name), link.id) for link in links]
    present = sorted((k for k in keyed if k[0] is not None), reverse=desc)
    empty = sorted((k for k in keyed if k[0] is None), reverse=desc)
    return [link_id for _key, link_id in present + empty]


# What each FilterSpec test means (query.py's FilterSpec says it in words).


def equals(world: World, link: PaymentLink, spec: FilterSpec, value: str) -> bool:
    wanted: Any = int(value) if spec.value == "id" else value
    return bool(value_of(world, link, spec.field) == wanted)


def equals_text(world: World, link: PaymentLink, spec: FilterSpec, value: str) -> bool:
    mine = value_of(world, link, spec.field)
    return mine is not None and mine.lower() == value.lower()


def contains(world: World, link: PaymentLink, spec: FilterSpec, value: str) -> bool:
    texts = contains_texts(world, link, spec.field)
    return any(value.lower() in text.lower() for text in texts)


def contains_texts(world: World, link: PaymentLink, name: str) -> list[str]:
    if name in CONTAINS_TEXTS:
        return CONTAINS_TEXTS[name](world, link)
    mine = value_of(world, link, name)
    return [] if mine is None else [mine]


def one_of(world: World, link: PaymentLink, spec: FilterSpec, value: str) -> bool:
    return value_of(world, link, spec.field) in [part.strip() for part in value.split(",")]


def comparable(world: World, link: PaymentLink, spec: FilterSpec) -> Any:
    """The link's value as a range filter compares it: an amount in its own currency's major
    units, a timestamp as its day in the firm's time zone; None when it has none."""
    mine = value_of(world, link, spec.field)
    if mine is None:
        return None
    if spec.value == "amount":
        return Decimal(mine).scaleb(-MINOR_DIGITS[link.currency])
    if isinstance(mine, dt.datetime):
        return mine.astimezone(world.zone).date()
    return mine


def bound(spec: FilterSpec, value: str) -> Any:
    readers: dict[str, Callable[[str], Any]] = {
        "amount": Decimal,
        "count": int,
        "date": dt.date.fromisoformat,
    }
    return readers[spec.value](value)


def at_least(world: World, link: PaymentLink, spec: FilterSpec, value: str) -> bool:
    mine = comparable(world, link, spec)
    return mine is not None and mine >= bound(spec, value)


def at_most(world: World, link: PaymentLink, spec: FilterSpec, value: str) -> bool:
    mine = comparable(world, link, spec)
    return mine is not None and mine <= bound(spec, value)


def made_by(world: World, link: PaymentLink, _spec: FilterSpec, value: str) -> bool:
    if value.isascii() and value.isdigit() and int(value) > 0:
        return link.created_by_user_id == int(value)
    wanted = value.lower()
    ids = {u.id for u in world.users if wanted in (u.name.lower(), u.email.lower())}
    return link.created_by_user_id in ids


def for_client(world: World, link: PaymentLink, _spec: FilterSpec, value: str) -> bool:
    return world.clients.get(link.id) == value


Matcher = Callable[[World, PaymentLink, FilterSpec, str], bool]
TEST_MODELS: dict[str, Matcher] = {
    "equals": equals,
    "equals_text": equals_text,
    "contains": contains,
    "in": one_of,
    "min": at_least,
    "max": at_most,
    "from": at_least,
    "to": at_most,
    "created_by": made_by,
    "client": for_client,
}
# A range's lower end and its upper end (FilterSpec tests).
RANGE_ENDS = {"min": "max", "from": "to"}


# --- Random filter values, near the world's own values --------------------------------------


def some_case(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper(), text.lower(), text.swapcase()])


def oftener(
    likely: st.SearchStrategy[str], unlikely: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    """``likely`` three times in four: a value of the world's own matches some of its links,
    where random text mostly matches none."""
    return st.sampled_from([likely, likely, likely, unlikely]).flatmap(lambda s: s)


def pick(seen: list[Any], fallback: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(seen or [fallback])


def whole_texts(world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    seen = [value_of(world, link, spec.field) for link in world.links]
    return oftener(pick([v for v in seen if v], "none").flatmap(some_case), TEXT)


def parts_of_texts(world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    seen = [t for link in world.links for t in contains_texts(world, link, spec.field) if t]

    def part(text: str) -> st.SearchStrategy[str]:
        # At least one character: an empty value is no filter.
        start = st.integers(0, max(len(text) - 1, 0))
        return start.flatmap(
            lambda a: st.integers(a + 1, max(len(text), a + 1)).map(lambda b: text[a:b])
        ).flatmap(some_case)

    return oftener(pick(seen, "none").flatmap(part), TEXT)


def creators(world: World, _spec: FilterSpec) -> st.SearchStrategy[str]:
    ways = [str(u.id) for u in world.users] + [u.name for u in world.users if u.name]
    ways += [u.email for u in world.users]
    known = st.sampled_from(ways).flatmap(
        lambda way: st.just(way) if way.isdigit() else some_case(way)
    )
    return oftener(known, TEXT)


def clients(_world: World, _spec: FilterSpec) -> st.SearchStrategy[str]:
    return st.sampled_from(["C-1", "c-2", "C-3"])


TEXT_VALUES: dict[str, Callable[[World, FilterSpec], st.SearchStrategy[str]]] = {
    "equals_text": whole_texts,
    "contains": parts_of_texts,
    "created_by": creators,
    "client": clients,
}


def amounts(world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    """A link's amount read in any currency's digits, give or take a thousandth: bounds on
    and beside the values, and ones a yen or a dinar amount must round."""
    seen = [
        (value_of(world, link, spec.field), MINOR_DIGITS[link.currency]) for link in world.links
    ]
    own_or_other = st.sampled_from([None, *sorted(set(MINOR_DIGITS.values()))])
    return st.builds(
        lambda value, digits, nudge: plain(
            Decimal(value[0]).scaleb(-(value[1] if digits is None else digits)) + nudge
        ),
        pick(seen, (100, 2)),
        own_or_other,
        st.sampled_from([Decimal(0), Decimal("0.001"), Decimal("-0.001"), Decimal("0.5")]),
    )


def plain(amount: Decimal) -> str:
    """As the API writes an amount: "12.5", never "1.25E+1" nor a sign."""
    text = format(max(amount, Decimal(0)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def counts(world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    seen = [value_of(world, link, spec.field) for link in world.links]
    return st.builds(lambda n, d: str(max(n + d, 0)), pick(seen, 0), st.sampled_from([-1, 0, 1]))


def days(world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    """Days of the links' values (a timestamp's in the firm's zone and in UTC), or beside."""
    seen: list[dt.date] = []
    for link in world.links:
        mine = value_of(world, link, spec.field)
        if isinstance(mine, dt.datetime):
            seen += [mine.astimezone(world.zone).date(), mine.astimezone(dt.UTC).date()]
        elif mine is not None:
            seen.append(mine)
    shifts = st.sampled_from([-1, 0, 0, 1]).map(lambda d: dt.timedelta(days=d))
    return st.builds(lambda day, shift: (day + shift).isoformat(), pick(seen, T0.date()), shifts)


def choice(_world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    return st.sampled_from(spec.choices)


def choices(_world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    parts = st.lists(st.sampled_from(spec.choices), min_size=1, max_size=3, unique=True)
    # Commas alone: the API document's pattern refuses a space after one.
    return parts.map(",".join)


def ids(world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    if spec.field != "merchant_account_id":
        raise AssertionError(f"filter on {spec.field!r} by id: no model")
    return st.sampled_from([str(a.id) for a in world.accounts] + ["999999999"])


def texts(world: World, spec: FilterSpec) -> st.SearchStrategy[str]:
    if spec.test not in TEXT_VALUES:
        raise AssertionError(f"a {spec.test!r} filter of text: no values (add to TEXT_VALUES)")
    return TEXT_VALUES[spec.test](world, spec)


VALUE_MODELS: dict[str, Callable[[World, FilterSpec], st.SearchStrategy[str]]] = {
    "choice": choice,
    "choices": choices,
    "id": ids,
    "text": texts,
    "amount": amounts,
    "count": counts,
    "date": days,
}


def filter_problem(name: str) -> str | None:
    """Why the model cannot draw or check filter[name], if it cannot."""
    spec = FILTERS[name]
    if spec.test not in TEST_MODELS:
        return f"filter[{name}]: no model for the test {spec.test!r} (add it to TEST_MODELS)"
    if spec.value not in VALUE_MODELS:
        return f"filter[{name}]: no values for {spec.value!r} (add it to VALUE_MODELS)"
    if spec.value == "text" and spec.test not in TEXT_VALUES:
        return f"filter[{name}]: no text values for {spec.test!r} (add it to TEXT_VALUES)"
    if spec.field not in DERIVED and spec.field not in RANDOM_NAMES:
        return f"filter[{name}]: no model of the field {spec.field!r} (add it to DERIVED)"
    return None


def filter_values(world: World, name: str) -> st.SearchStrategy[str]:
    problem = filter_problem(name)
    if problem:
        raise AssertionError(problem)
    spec = FILTERS[name]
    # An empty value is no filter (the API ignores it): not this test's.
    return VALUE_MODELS[spec.value](world, spec).filter(str.strip)


def searched(link: PaymentLink, q: str) -> bool:
    wanted = q.lower()
    texts = [link.invoice_number, link.recipient_name, *link.emails]
    return any(wanted in text.lower() for text in texts)


@dataclass(frozen=True)
class Question:
    status: str
    sort: str
    q: str
    filters: dict[str, str]
    limit: int

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"status": self.status, "sort": self.sort, "limit": self.limit}
        if self.q:
            params["q"] = self.q
        params.update({f"filter[{name}]": value for name, value in self.filters.items()})
        return params

    def trimmed_filters(self) -> dict[str, str]:
        # The API trims a search and a filter's value, and ignores one left empty.
        return {name: value.strip() for name, value in self.filters.items() if value.strip()}

    def refused(self) -> bool:
        """Whether a range's upper end is below its lower end (422)."""
        filters = self.trimmed_filters()
        for name, value in filters.items():
            spec = FILTERS[name]
            upper = filters.get(f"{spec.field}_{RANGE_ENDS.get(spec.test)}")
            if upper is not None and bound(spec, upper) < bound(spec, value):
                return True
        return False

    def matching(self, world: World) -> list[PaymentLink]:
        statuses = STATUS_VIEWS[self.status]
        q = self.q.strip()
        filters = [(FILTERS[n], v) for n, v in self.trimmed_filters().items()]
        return [
            link
            for link in world.links
            if (not statuses or link.status in statuses)
            and (not q or searched(link, q))
            and all(TEST_MODELS[spec.test](world, link, spec, v) for spec, v in filters)
        ]

    def expected(self, world: World) -> list[int]:
        name, descending = self.sort.lstrip("-"), self.sort.startswith("-")
        return expected_order(world, self.matching(world), name, descending)


FILTERS_BY_TEST: dict[str, list[str]] = {}
for _name, _spec in FILTERS.items():
    FILTERS_BY_TEST.setdefault(_spec.test, []).append(_name)


@st.composite
def questions(draw: st.DrawFn, world: World) -> Question:
    # A kind of test first, then a filter of that kind: each test is drawn as often as any
    # other, however many filters use it (nine "from", one "client").
    tests = draw(st.lists(st.sampled_from(list(FILTERS_BY_TEST)), unique=True, max_size=2))
    names = [draw(st.sampled_from(FILTERS_BY_TEST[test])) for test in tests]
    # Now and then both ends of one range, so that a refused one comes up too.
    if names and draw(st.booleans()):
        spec = FILTERS[names[0]]
        other = f"{spec.field}_{RANGE_ENDS.get(spec.test)}"
        if other in FILTERS and other not in names:
            names.append(other)
    filters = {name: draw(filter_values(world, name), label=name) for name in names}
    # Mostly no search and the view of all links, so that the filters and the sort have rows
    # to work on: each of the other views, and most searches, leave few.
    searches = TEXT.filter(str.strip) | st.sampled_from(["x.test", "É", "1", "%"])
    q = draw(searches) if draw(st.integers(0, 3)) == 3 else ""
    status = draw(st.sampled_from(list(STATUS_VIEWS))) if draw(st.integers(0, 2)) == 2 else "all"
    return Question(
        status=status,
        sort=draw(st.sampled_from([p + f for f in SORT_KINDS for p in ("", "-")])),
        q=q,
        filters=filters,
        limit=draw(st.integers(1, 4)),
    )


def test_every_sort_and_filter_has_a_model():
    """A sort or filter added to the query module's tables without a model here fails."""
    problems = [sort_problem(name) for name in SORT_KINDS]
    problems += [filter_problem(name) for name in FILTERS]
    assert [p for p in problems if p] == []


@dataclass(frozen=True)
class Cast:
    """Who a world's firm has: its time zone, its users and its merchant accounts."""

    zone: str
    users: list[tuple[str, str]]
    accounts: list[tuple[str, str]]


casts = st.builds(
    Cast,
    zone=st.sampled_from(ZONES),
    users=st.lists(people(), min_size=1, max_size=3),
    accounts=st.lists(
        st.tuples(ACCOUNT_NAMES, st.sampled_from(sorted(MINOR_DIGITS))), min_size=1, max_size=3
    ),
)


def make_world(dbsession: Session, app: Any, cast: Cast) -> World:
    """A new firm per example: the examples share the test's transaction, not their links."""
    firm = FirmFactory(settings__time_zone=cast.zone)
    users = [UserFactory(firm=firm, name=name, email=email) for name, email in cast.users]
    accounts = [
        MerchantAccountFactory(firm=firm, name=name, currency=currency)
        for name, currency in cast.accounts
    ]
    return World(dbsession, app, ZoneInfo(cast.zone), accounts, users)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_walk_is_the_model_page_after_page(testapp, dbsession, app, data):
    world = make_world(dbsession, app, data.draw(casts, label="cast"))
    for row in data.draw(world.rows(14), label="rows"):
        world.add(row)
    auth = bearer(dbsession, world.users[0])
    # Several questions of one world: the world costs more to make than a walk.
    for _ in range(QUESTIONS):
        question = data.draw(questions(world), label="question")
        if question.refused():
            response = testapp.get(URL, question.params(), headers=auth, status=422)
            assert response.json["error"] == "validation_error", response.json
        else:
            walk(testapp, auth, data, world, question)


def walk(testapp: Any, auth: dict[str, str], data: Any, world: World, question: Question) -> None:
    """The walk through next_cursor, adding links between the pages, against the model."""
    before = question.expected(world)
    walked: list[int] = []
    params = question.params()
    while True:
        body = testapp.get(URL, params, headers=auth).json
        assert len(body["items"]) <= question.limit
        assert body["total"] == len(question.matching(world))
        walked.extend(item["id"] for item in body["items"])
        if body["next_cursor"] is None:
            break
        params = {**question.params(), "cursor": body["next_cursor"]}
        for row in data.draw(world.rows(2), label="added"):
            world.add(row)

    assert len(walked) == len(set(walked)), "a link came twice"
    sort = question.sort.lstrip("-")
    values = {link.id: sort_value(world, link, sort) for link in world.links}
    assert [i for i in walked if i in set(before)] == before, [(i, values[i]) for i in walked]
    added = set(question.expected(world)) - set(before)
    assert set(walked) - set(before) <= added, "a link that does not match came"
