"""GET /api/v1/links against a model in Python, for random data sets (hypothesis).

For each example: a firm of its own with random links; a random status view, search, set of
filters and sort; then the walk through next_cursor with a small limit, while new links are
added between the pages. What the walk returns must be exactly what filtering and sorting
the same rows in Python gives: the links that existed before the walk each once and in
order (a link added during the walk may or may not show, but at most once), and a total
that counts every matching link.

The test is driven by the query module's own tables (STATUS_VIEWS, SORT_KINDS,
FILTER_FIELDS): a sort or a filter added there is walked here too, and one this file has no
model for fails test_every_sort_and_filter_has_a_model rather than going untested.
Run on SQLite, and on PostgreSQL when CLIENTPAY_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, Date, Integer, String
from sqlalchemy.orm import Session

from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.db import UTCDateTime
from clientpay_connect.links.models import SOURCES, STATUSES, PaymentLink
from clientpay_connect.sent.query import (
    EMAIL_STATUSES,
    FILTER_FIELDS,
    SORT_KINDS,
    STATUS_VIEWS,
)
from tests.conftest import bearer
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory
from tests.support.sent import T0, make_link

URL = "/api/v1/links"
# Few distinct values, so that ties (broken by id) and empty values are common.
TEXT = st.text(alphabet="aAbBéÉ -%_1", max_size=3)
MOMENTS = st.sampled_from([T0 + dt.timedelta(hours=h) for h in (0, 1, 2, 30, 500)])
DAYS = st.sampled_from([dt.date(2025, 1, 1) + dt.timedelta(days=d) for d in (0, 1, 40, 400)])
SMALL_INTS = st.sampled_from([0, 1, 3, 250, 10_000])

# Columns that are the link's plumbing, not something Sent Pages shows, sorts or filters by.
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
    "message",
    "processing_started_at",
}
# Columns whose values come from a fixed list.
CHOICES: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from(STATUSES),
    "source": st.sampled_from(SOURCES),
    "email_status": st.sampled_from(EMAIL_STATUSES),
    "currency": st.just("USD"),
    "locale": st.sampled_from(["en", "es"]),
    "amount_minor": st.sampled_from([1, 99, 100, 10_000, 123_456]),
    "amount_paid_minor": st.sampled_from([0, 100, 5_000]),
    "emails": st.lists(st.sampled_from(["a@x.test", "Bé@Y.test", "c@x.test"]), max_size=2),
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


@st.composite
def link_rows(draw: st.DrawFn) -> dict[str, Any]:
    row = {column.name: draw(column_values(column)) for column in RANDOM_COLUMNS}
    # Which of the example's two accounts and two users (or none), and which client.
    row["account"] = draw(st.sampled_from([0, 1]))
    row["creator"] = draw(st.sampled_from([None, 0, 1]))
    row["client"] = draw(st.sampled_from([None, "C-1", "c-2"]))
    return row


@dataclass
class World:
    """One example's firm: whose links they are, and the links so far."""

    dbsession: Session
    app: Any
    accounts: list[Any]
    users: list[Any]
    links: list[PaymentLink] = field(default_factory=list)
    clients: dict[int, str] = field(default_factory=dict)

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


# --- The model: what each sort and filter means, in Python ----------------------------------


def text_key(value: str) -> str | None:
    """Text sorts ignoring case, by code point; a blank is no value."""
    return value.lower() if value else None


KIND_KEYS: dict[str, Callable[[Any], Any]] = {
    "int": lambda value: value,
    "date": lambda value: value,
    "datetime": lambda value: value,
    "text": lambda value: None if value is None else text_key(value),
}
# Sort fields whose value is not the link's attribute of the same name.
SORT_VALUES: dict[str, Callable[[PaymentLink], Any]] = {
    "amount": lambda link: link.amount_minor,
    "amount_paid": lambda link: link.amount_paid_minor,
    # A link's place in its life, not the status's name.
    "status": lambda link: STATUSES.index(link.status),
}


def sort_value(link: PaymentLink, name: str) -> Any:
    if name in SORT_VALUES:
        return SORT_VALUES[name](link)
    if name not in PaymentLink.__table__.columns:
        raise AssertionError(f"sort {name!r}: no model (add it to SORT_VALUES)")
    if name not in {c.name for c in RANDOM_COLUMNS}:
        raise AssertionError(f"sort {name!r}: its column never gets random values")
    return getattr(link, name)


def expected_order(links: list[PaymentLink], name: str, descending: bool) -> list[int]:
    """Values in order, ties by id in the same direction; empty values last either way."""
    kind_key = KIND_KEYS[SORT_KINDS[name]]
    keyed = [(kind_key(sort_value(link, name)), link.id) for link in links]
    present = sorted((k for k in keyed if k[0] is not None), reverse=descending)
    empty = sorted((k for k in keyed if k[0] is None), reverse=descending)
    return [link_id for _key, link_id in present + empty]


@dataclass(frozen=True)
class FilterModel:
    """How to draw a value for a filter in a world, and whether a link matches it."""

    values: Callable[[World], st.SearchStrategy[str]]
    matches: Callable[[World, PaymentLink, str], bool]


def some_case(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper(), text.lower(), text.swapcase()])


def existing_text(attribute: str) -> Callable[[World], st.SearchStrategy[str]]:
    def values(world: World) -> st.SearchStrategy[str]:
        seen = [getattr(link, attribute) for link in world.links] or ["none"]
        return st.sampled_from(seen).flatmap(some_case) | TEXT

    return values


def equals_ignoring_case(attribute: str) -> FilterModel:
    return FilterModel(
        existing_text(attribute),
        lambda _w, link, value: getattr(link, attribute).lower() == value.lower(),
    )


def equals(attribute: str, choices: tuple[str, ...]) -> FilterModel:
    return FilterModel(
        lambda _world: st.sampled_from(choices),
        lambda _w, link, value: getattr(link, attribute) == value,
    )


def creators(world: World) -> st.SearchStrategy[str]:
    ways = [str(u.id) for u in world.users] + [u.name for u in world.users]
    ways += [u.email for u in world.users]
    return st.sampled_from(ways).flatmap(
        lambda way: st.just(way) if way.isdigit() else some_case(way)
    )


def made_by(world: World, link: PaymentLink, value: str) -> bool:
    for user in world.users:
        if value == str(user.id) or value.lower() in (user.name.lower(), user.email.lower()):
            return link.created_by_user_id == user.id
    return False


FILTER_MODELS: dict[str, FilterModel] = {
    "source": equals("source", SOURCES),
    "email_status": equals("email_status", EMAIL_STATUSES),
    "merchant_account_id": FilterModel(
        lambda world: st.sampled_from([str(a.id) for a in world.accounts] + ["999999999"]),
        lambda _w, link, value: link.merchant_account_id == int(value),
    ),
    "invoice_number": equals_ignoring_case("invoice_number"),
    "recipient_name": equals_ignoring_case("recipient_name"),
    "created_by": FilterModel(creators, made_by),
    "client_id": FilterModel(
        lambda _world: st.sampled_from(["C-1", "c-2", "C-3"]),
        lambda world, link, value: world.clients.get(link.id) == value,
    ),
}

# Range filters (filter[amount_min], filter[due_date_from], ...): the bound's suffix, and
# whether the link's value must be at or above it (else at or below).
RANGE_SUFFIXES = {"_min": True, "_max": False, "_from": True, "_to": False}
# How a bound is written in the query, per kind of field (amounts in major units, as the API
# writes them); and how it is read back to compare.
RANGE_BOUNDS: dict[str, tuple[Callable[[Any], str], Callable[[str], Any]]] = {
    "int": (lambda minor: str(Decimal(minor).scaleb(-2)), lambda text: int(Decimal(text) * 100)),
    "date": (lambda day: day.isoformat(), dt.date.fromisoformat),
}


def range_model(name: str) -> FilterModel | None:
    for suffix, at_least in RANGE_SUFFIXES.items():
        field_name = name.removesuffix(suffix)
        if field_name == name or field_name not in SORT_KINDS:
            continue
        kind = SORT_KINDS[field_name]
        if kind not in RANGE_BOUNDS or field_name == "status":
            return None
        write, read = RANGE_BOUNDS[kind]

        def values(world: World, f: str = field_name, w: Callable[[Any], str] = write) -> Any:
            seen = [sort_value(link, f) for link in world.links]
            return st.sampled_from([v for v in seen if v is not None] or [0]).map(w)

        def matches(
            _world: World,
            link: PaymentLink,
            value: str,
            f: str = field_name,
            r: Callable[[str], Any] = read,
            up: bool = at_least,
        ) -> bool:
            mine = sort_value(link, f)
            return mine is not None and (mine >= r(value) if up else mine <= r(value))

        return FilterModel(values, matches)
    return None


def filter_model(name: str) -> FilterModel:
    model = FILTER_MODELS.get(name) or range_model(name)
    if model is None:
        raise AssertionError(f"filter[{name}]: no model (add it to FILTER_MODELS)")
    return model


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

    def matching(self, world: World) -> list[PaymentLink]:
        statuses = STATUS_VIEWS[self.status]
        # The API trims a search and a filter's value, and ignores one left empty.
        q = self.q.strip()
        filters = {name: value.strip() for name, value in self.filters.items() if value.strip()}
        return [
            link
            for link in world.links
            if (not statuses or link.status in statuses)
            and (not q or searched(link, q))
            and all(filter_model(n).matches(world, link, v) for n, v in filters.items())
        ]

    def expected(self, world: World) -> list[int]:
        return expected_order(
            self.matching(world), self.sort.lstrip("-"), self.sort.startswith("-")
        )


@st.composite
def questions(draw: st.DrawFn, world: World) -> Question:
    names = draw(st.lists(st.sampled_from(FILTER_FIELDS), unique=True, max_size=2))
    # An empty value is refused (422), as the API document says; that is not this test's.
    filters = {name: draw(filter_model(name).values(world).filter(str.strip)) for name in names}
    q = draw(st.just("") | TEXT.filter(str.strip) | st.sampled_from(["x.test", "É", "1"]))
    return Question(
        status=draw(st.sampled_from(list(STATUS_VIEWS))),
        sort=draw(st.sampled_from([p + f for f in SORT_KINDS for p in ("", "-")])),
        q=q,
        filters=filters,
        limit=draw(st.integers(1, 4)),
    )


def test_every_sort_and_filter_has_a_model():
    """A sort or filter added to the query module's tables without a model here fails."""
    assert set(SORT_KINDS.values()) <= set(KIND_KEYS), "a kind of sort has no model"
    for name in SORT_KINDS:
        assert name in SORT_VALUES or name in {c.name for c in RANDOM_COLUMNS}, name
    for name in FILTER_FIELDS:
        filter_model(name)


@pytest.fixture
def firm_world(dbsession: Session, app: Any) -> Callable[[], World]:
    """A new firm per example: the examples share the test's transaction, not their links."""

    def make() -> World:
        firm = FirmFactory()
        accounts = [MerchantAccountFactory(firm=firm) for _ in range(2)]
        users = [UserFactory(firm=firm, name=name) for name in ("Ann Lee", "Bo Ng")]
        return World(dbsession, app, accounts, users)

    return make


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_walk_is_the_model_page_after_page(testapp, dbsession, firm_world, data):
    world = firm_world()
    for row in data.draw(st.lists(link_rows(), max_size=14), label="rows"):
        world.add(row)
    auth = bearer(dbsession, world.users[0])
    question = data.draw(questions(world), label="question")
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
        for row in data.draw(st.lists(link_rows(), max_size=2), label="added"):
            world.add(row)

    assert len(walked) == len(set(walked)), "a link came twice"
    sort = question.sort.lstrip("-")
    values = {link.id: sort_value(link, sort) for link in world.links}
    assert [i for i in walked if i in set(before)] == before, [(i, values[i]) for i in walked]
    added = set(question.expected(world)) - set(before)
    assert set(walked) - set(before) <= added, "a link that does not match came"
