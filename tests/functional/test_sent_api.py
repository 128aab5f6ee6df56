"""GET /api/v1/links (Sent Pages): status views, search, filters, sorts and cursors, limits,
and that no other firm's link ever shows. Through WebTest; run on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.links.models import (
    SOURCE_BULK,
    SOURCE_CONNECT,
    SOURCES,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    STATUSES,
    PaymentLink,
)
from clientpay_connect.sent.query import FILTERS, SORT_CHOICES, SORT_KINDS, STATUS_VIEWS
from tests.conftest import bearer
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory
from tests.support.sent import T0, make_link

URL = "/api/v1/links"


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


def get_list(testapp: Any, auth: dict[str, str], expect: int = 200, **params: Any) -> Any:
    return testapp.get(URL, params, headers=auth, status=expect).json


def ids_of(body: dict[str, Any]) -> list[int]:
    return [item["id"] for item in body["items"]]


def walk(testapp: Any, auth: dict[str, str], **params: Any) -> list[int]:
    """Every id that following next_cursor from the first page gives, in order."""
    seen: list[int] = []
    body = get_list(testapp, auth, **params)
    total = body["total"]
    while True:
        assert len(body["items"]) <= params.get("limit", 50)
        assert body["total"] == total  # the total is the query's, not the page's
        seen.extend(ids_of(body))
        if body["next_cursor"] is None:
            return seen
        body = get_list(testapp, auth, **params, cursor=body["next_cursor"])


# --- The answer's shape --------------------------------------------------------------------


def test_a_page_has_items_next_cursor_and_total(testapp, staff_auth, new_link):
    links = [new_link(invoice_number=f"INV-{n}") for n in range(3)]

    body = get_list(testapp, staff_auth, limit=2)

    assert set(body) == {"items", "next_cursor", "total"}
    assert body["total"] == 3
    assert isinstance(body["next_cursor"], str)
    # The default order is newest first; these were created in the same instant, so by id.
    assert ids_of(body) == [links[2].id, links[1].id]
    item = body["items"][0]
    assert item["invoice_number"] == "INV-2"
    assert item["amount"] == "100.00"
    assert item["url"].startswith("http://localhost/pay/")
    last = get_list(testapp, staff_auth, limit=2, cursor=body["next_cursor"])
    assert ids_of(last) == [links[0].id]
    assert last["next_cursor"] is None and last["total"] == 3


def test_items_are_the_same_link_objects_as_get_one(testapp, staff, staff_auth, new_link):
    link = new_link(invoice_number="INV-9", emails=["pay@example.test"], recipient_name="Dana")
    parent = new_link(status=STATUS_PARTIALLY_PAID, amount_paid_minor=4_000)
    balance = new_link(parent_link_id=parent.id)
    # Text beyond ASCII, a creator, every timestamp, another currency's digits.
    other = new_link(
        account=MerchantAccountFactory(firm=staff.firm, currency="KWD"),
        amount_minor=1_234_567,
        amount_refunded_minor=5,
        recipient_name="Émile Zoë “Ünï” 名前",
        message="Merci — à bientôt",
        creator=staff,
        due_date=dt.date(2025, 4, 1),
        **{
            name: T0 + dt.timedelta(seconds=n, microseconds=999_999)
            for n, name in enumerate(
                ("sent_at", "paid_at", "cancelled_at", "first_opened_at", "last_opened_at")
            )
        },
    )

    response = testapp.get(URL, headers=staff_auth)
    listed = {item["id"]: item for item in response.json["items"]}

    assert response.content_type == "application/json"
    assert "Émile Zoë “Ünï” 名前".encode() in response.body  # UTF-8 text
    for one in (link, parent, balance, other):
        single = testapp.get(f"{URL}/{one.id}", headers=staff_auth).json
        # The same fields in the same order, with the same values.
        assert list(listed[one.id].items()) == list(single.items())
    assert listed[parent.id]["balance_link_id"] == balance.id
    assert listed[other.id]["amount"] == "1234.567"
    assert listed[other.id]["amount_refunded"] == "0.005"
    assert listed[other.id]["created_by"] == (staff.name or staff.email)
    assert listed[other.id]["last_opened_at"] == "2025-03-01T15:30:04Z"


def test_an_empty_list(testapp, staff_auth):
    assert get_list(testapp, staff_auth) == {"items": [], "next_cursor": None, "total": 0}


# source: on PostgreSQL a page of it is read a value at a time (listing.py _grouped_rows).
@pytest.mark.parametrize("sort", ["amount", "source"])
def test_a_page_emptied_since_its_cursor_still_gives_the_total(
    testapp, dbsession, staff_auth, new_link, sort
):
    """On PostgreSQL the total comes with the page's rows; a page with no row left to carry
    it counts on its own."""
    links = [new_link(amount_minor=100 * n) for n in range(1, 4)]
    first = get_list(testapp, staff_auth, sort=sort, status="outstanding", limit=2)
    links[2].status = STATUS_CANCELLED  # the one link the next page would have shown
    dbsession.flush()

    rest = get_list(
        testapp, staff_auth, sort=sort, status="outstanding", limit=2, cursor=first["next_cursor"]
    )

    assert first["total"] == 3
    assert rest == {"items": [], "next_cursor": None, "total": 2}


def test_without_credentials_the_list_is_401(testapp, new_link):
    new_link()
    body = testapp.get(URL, status=401).json
    assert body["error"] == "unauthenticated"


# --- Another firm's links ------------------------------------------------------------------


def test_another_firms_links_never_show(testapp, dbsession, app, staff, staff_auth, new_link):
    mine = new_link(invoice_number="SHARED-1", recipient_name="Dana", emails=["d@example.test"])
    other_firm = FirmFactory()
    other_account = MerchantAccountFactory(firm=other_firm)
    other_user = UserFactory(firm=other_firm)
    theirs = make_link(
        dbsession,
        app,
        other_account,
        invoice_number="SHARED-2",
        recipient_name="Dana",
        emails=["d@example.test"],
        creator=other_user,
    )

    # (query, what it finds): never the other firm's link, however it is asked for.
    queries: list[tuple[dict[str, Any], list[int]]] = [
        ({}, [mine.id]),
        ({"q": "shared"}, [mine.id]),
        ({"q": "dana"}, [mine.id]),
        ({"status": "outstanding"}, [mine.id]),
        ({"sort": "amount", "limit": 1}, [mine.id]),
        ({"filter[merchant_account_id]": other_account.id}, []),
        ({"filter[created_by]": other_user.id}, []),
        ({"filter[created_by]": other_user.email}, []),
    ]
    for params, found in queries:
        assert walk(testapp, staff_auth, **params) == found, params
        assert get_list(testapp, staff_auth, **params)["total"] == len(found), params
    # And the other firm sees only its own.
    theirs_body = get_list(testapp, bearer(dbsession, other_user))
    assert ids_of(theirs_body) == [theirs.id]
    assert mine.id not in ids_of(theirs_body)


def test_a_cursor_cannot_reach_into_another_firm(testapp, dbsession, app, staff_auth, new_link):
    new_link()
    new_link()
    other_user = UserFactory(firm=FirmFactory())
    other_account = MerchantAccountFactory(firm=other_user.firm)
    theirs = [make_link(dbsession, app, other_account) for _ in range(3)]

    first = get_list(testapp, staff_auth, limit=1)
    rest = get_list(testapp, staff_auth, limit=50, cursor=first["next_cursor"])

    assert not set(ids_of(rest)) & {link.id for link in theirs}
    assert len(rest["items"]) == 1


# --- Status views --------------------------------------------------------------------------


@pytest.fixture
def one_of_each(new_link: Callable[..., PaymentLink]) -> dict[str, PaymentLink]:
    return {status: new_link(status=status, invoice_number=status) for status in STATUSES}


@pytest.mark.parametrize(
    ("view", "statuses"),
    [
        ("all", set(STATUSES)),
        # A payment in flight has not been received: it is still outstanding to the firm.
        ("outstanding", {STATUS_OUTSTANDING, STATUS_PROCESSING}),
        ("paid", {STATUS_PAID}),
        ("partially_paid", {STATUS_PARTIALLY_PAID}),
        ("cancelled", {STATUS_CANCELLED}),
        ("expired", {STATUS_EXPIRED}),
    ],
)
def test_each_status_view_lists_its_links(testapp, staff_auth, one_of_each, view, statuses):
    body = get_list(testapp, staff_auth, status=view)

    assert {item["status"] for item in body["items"]} == statuses
    assert body["total"] == len(statuses)


def test_no_status_means_all(testapp, staff_auth, one_of_each):
    assert get_list(testapp, staff_auth)["total"] == len(STATUSES)


def test_an_unknown_status_is_422(testapp, staff_auth):
    body = get_list(testapp, staff_auth, expect=422, status="pending")
    assert body["errors"][0]["field"] == "status"


# --- Free-text search ----------------------------------------------------------------------


@pytest.fixture
def searchable(new_link: Callable[..., PaymentLink]) -> dict[str, PaymentLink]:
    return {
        "invoice": new_link(invoice_number="INV-2024-117", recipient_name="Acme Holdings"),
        "name": new_link(invoice_number="A-1", recipient_name="Dana O'Neil"),
        "email": new_link(
            invoice_number="A-2", recipient_name="Lee", emails=["x@a.test", "Billing@Example.ORG"]
        ),
        "percent": new_link(invoice_number="100%-DEPOSIT", recipient_name="Kim"),
        "underscore": new_link(invoice_number="A_3", recipient_name="Pat"),
        "plain": new_link(invoice_number="A-4", recipient_name="Sam", emails=["sam@b.test"]),
    }


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("inv-2024", {"invoice"}),
        ("2024-11", {"invoice"}),
        ("DANA o'neil", {"name"}),
        ("neil", {"name"}),
        ("billing@example.org", {"email"}),
        ("EXAMPLE.org", {"email"}),
        ("x@a", {"email"}),
        ("  lee  ", {"email"}),  # surrounding spaces are not part of the search
        ("%", {"percent"}),  # LIKE's wildcards are searched for, not obeyed
        ("_", {"underscore"}),
        ('","', set()),  # the emails are searched one by one, not as their JSON text
        ("nobody", set()),
    ],
)
def test_q_finds_invoice_numbers_names_and_emails_ignoring_case(
    testapp, staff_auth, searchable, q, expected
):
    body = get_list(testapp, staff_auth, q=q)

    assert set(ids_of(body)) == {searchable[name].id for name in expected}
    assert body["total"] == len(expected)


def test_q_combines_with_the_status_view(testapp, staff_auth, new_link):
    paid = new_link(invoice_number="JOB-1", status=STATUS_PAID)
    new_link(invoice_number="JOB-2")
    new_link(invoice_number="OTHER", status=STATUS_PAID)

    body = get_list(testapp, staff_auth, q="job", status="paid")

    assert ids_of(body) == [paid.id]


def test_a_very_long_q_is_422(testapp, staff_auth):
    get_list(testapp, staff_auth, expect=422, q="x" * 201)


@pytest.mark.parametrize("name", ["q", "filter[invoice_number]", "filter[created_by]"])
def test_a_nul_character_is_422_not_a_database_error(testapp, staff_auth, name):
    # PostgreSQL refuses NUL in text: it must be turned away before it gets there.
    body = get_list(testapp, staff_auth, expect=422, **{name: "a\x00b"})
    assert body["errors"][0]["field"] == name


# --- Filters -------------------------------------------------------------------------------


def test_filter_by_source(testapp, staff_auth, new_link):
    bulk = new_link(source=SOURCE_BULK)
    new_link()
    connect = new_link(source=SOURCE_CONNECT)

    assert ids_of(get_list(testapp, staff_auth, **{"filter[source]": "bulk_upload"})) == [bulk.id]
    assert ids_of(get_list(testapp, staff_auth, **{"filter[source]": "connect"})) == [connect.id]


def test_filter_by_merchant_account(testapp, staff, staff_auth, new_link):
    trust = MerchantAccountFactory(firm=staff.firm, name="Trust", kind="trust")
    in_trust = new_link(account=trust)
    new_link()

    body = get_list(testapp, staff_auth, **{"filter[merchant_account_id]": trust.id})

    assert ids_of(body) == [in_trust.id]
    assert body["total"] == 1


def test_filter_by_invoice_number_is_exact_but_ignores_case(testapp, staff_auth, new_link):
    exact = new_link(invoice_number="INV-10")
    new_link(invoice_number="INV-100")

    body = get_list(testapp, staff_auth, **{"filter[invoice_number]": "inv-10"})

    assert ids_of(body) == [exact.id]


def test_filter_by_recipient_name(testapp, staff_auth, new_link):
    dana = new_link(recipient_name="Dana Client")
    new_link(recipient_name="Dana Clientele")

    body = get_list(testapp, staff_auth, **{"filter[recipient_name]": "DANA CLIENT"})

    assert ids_of(body) == [dana.id]


def test_filter_by_email_status(testapp, staff_auth, new_link):
    failed = new_link(email_status="failed")
    new_link(email_status="sent")

    assert ids_of(get_list(testapp, staff_auth, **{"filter[email_status]": "failed"})) == [
        failed.id
    ]


def test_filter_by_creator_id_name_or_email(testapp, staff, staff_auth, new_link):
    colleague = UserFactory(firm=staff.firm, name="Casey Colleague")
    by_colleague = new_link(creator=colleague)
    new_link(creator=staff)
    new_link()

    for value in (colleague.id, "casey colleague", colleague.email.upper()):
        body = get_list(testapp, staff_auth, **{"filter[created_by]": value})
        assert ids_of(body) == [by_colleague.id], value


def test_filters_combine_with_each_other_and_q(testapp, staff_auth, new_link):
    wanted = new_link(source=SOURCE_BULK, email_status="sent", invoice_number="B-1")
    new_link(source=SOURCE_BULK, email_status="failed", invoice_number="B-2")
    new_link(source=SOURCE_CONNECT, email_status="sent", invoice_number="B-3")

    params = {"filter[source]": "bulk_upload", "filter[email_status]": "sent", "q": "b-"}
    assert ids_of(get_list(testapp, staff_auth, **params)) == [wanted.id]


@pytest.mark.parametrize(
    "params",
    [
        {"filter[amount]": "10"},
        {"filter[]": "x"},
        {"filter[source]": "fax"},
        {"filter[email_status]": "lost"},
        {"filter[merchant_account_id]": "abc"},
    ],
)
def test_a_wrong_filter_is_422_and_names_the_parameter(testapp, staff_auth, params):
    body = get_list(testapp, staff_auth, expect=422, **params)
    assert body["error"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == list(params)


# --- Sorting and walking the cursors -------------------------------------------------------

ROWS = 120


def _sort_value(link: PaymentLink, field: str) -> Any:
    """The value a field sorts by, as the contract describes it (None: empty, goes last)."""
    if field == "status":
        return STATUSES.index(link.status)
    if field in ("invoice_number", "recipient_name", "source", "email_status", "currency"):
        return getattr(link, field).lower() or None
    if field in ("amount", "amount_paid"):
        return getattr(link, field + "_minor")
    if field == "created_by":
        creator = link.created_by
        return (creator.name or creator.email).lower() if creator is not None else None
    if field == "merchant_account":
        return link.merchant_account.name.lower() or None
    if field == "emails":
        return link.emails[0].lower() if link.emails and link.emails[0] else None
    return getattr(link, field)


def expected_order(links: list[PaymentLink], field: str, descending: bool) -> list[int]:
    present = [link for link in links if _sort_value(link, field) is not None]
    empty = [link for link in links if _sort_value(link, field) is None]
    present.sort(key=lambda link: (_sort_value(link, field), link.id), reverse=descending)
    empty.sort(key=lambda link: link.id, reverse=descending)
    return [link.id for link in present + empty]


@pytest.fixture
def many_links(new_link: Callable[..., PaymentLink], staff: Any) -> list[PaymentLink]:
    """120 links with plenty of ties (repeated amounts, days and instants, names differing
    only in case) and empty values (no due date, blank invoice numbers, never sent)."""
    accounts = [
        MerchantAccountFactory(firm=staff.firm, name=name) for name in ("trust", "Operating")
    ]
    people = [staff, UserFactory(firm=staff.firm, name="", email="zed@example.test"), None]
    links = []
    for n in range(ROWS):
        moment = T0 + dt.timedelta(hours=n % 17, microseconds=(n % 5) * 7)
        links.append(
            new_link(
                amount_minor=[500, 1_000, 99_999, 1_000, 25][n % 5] * (1 + n % 3),
                amount_paid_minor=[0, 0, 500, 1_000][n % 4],
                status=STATUSES[n % len(STATUSES)],
                invoice_number="" if n % 7 == 0 else f"{['inv', 'INV', 'Inv'][n % 3]}-{n % 11:03}",
                recipient_name="" if n % 9 == 0 else ["alice", "Bob", "ALICE", "carol"][n % 4],
                invoice_date=None if n % 6 == 0 else dt.date(2025, 1, 1 + n % 13),
                due_date=None if n % 4 == 0 else dt.date(2025, 2, 1 + n % 9),
                created_at=moment,
                sent_at=None if n % 3 == 0 else moment + dt.timedelta(minutes=n % 4),
                paid_at=None if n % 2 else moment + dt.timedelta(days=n % 6),
                expires_at=None if n % 5 == 0 else T0 + dt.timedelta(days=30 + n % 8),
                cancelled_at=None if n % 4 else moment + dt.timedelta(hours=n % 3),
                first_opened_at=None if n % 3 == 1 else moment + dt.timedelta(hours=n % 5),
                last_opened_at=None if n % 3 == 1 else moment + dt.timedelta(hours=5 + n % 2),
                reminders_sent=n % 4,
                source=SOURCES[n % len(SOURCES)],
                email_status=["sent", "failed", "not_sent"][n % 3],
                emails=[[], ["b@example.test", "a@example.test"], ["A@example.test"]][n % 3],
                created_by=people[n % 3],
                account=accounts[n % 2],
            )
        )
    return links


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("field", sorted(SORT_KINDS))
def test_walking_the_cursors_gives_every_row_once_in_order(
    testapp, staff_auth, many_links, field, descending
):
    sort = ("-" if descending else "") + field

    walked = walk(testapp, staff_auth, sort=sort, limit=17)

    assert walked == expected_order(many_links, field, descending)


def test_a_walk_with_a_status_view_and_search_stays_inside_them(testapp, staff_auth, many_links):
    walked = walk(testapp, staff_auth, sort="-due_date", status="outstanding", q="inv-00", limit=3)

    wanted = [
        link
        for link in many_links
        if link.status in (STATUS_OUTSTANDING, STATUS_PROCESSING)
        and "inv-00" in link.invoice_number.lower()
    ]
    assert wanted, "the data must have some such links for this test to mean anything"
    assert walked == expected_order(wanted, "due_date", True)


def test_amounts_sort_as_numbers_not_as_text(testapp, staff_auth, new_link):
    ten = new_link(amount_minor=1_000)
    nine = new_link(amount_minor=900)
    hundred = new_link(amount_minor=10_000)

    body = get_list(testapp, staff_auth, sort="amount")

    assert ids_of(body) == [nine.id, ten.id, hundred.id]


def test_empty_values_come_last_in_both_directions(testapp, staff_auth, new_link):
    none = new_link(due_date=None)
    early = new_link(due_date=dt.date(2025, 1, 1))
    late = new_link(due_date=dt.date(2025, 12, 31))

    assert ids_of(get_list(testapp, staff_auth, sort="due_date")) == [early.id, late.id, none.id]
    assert ids_of(get_list(testapp, staff_auth, sort="-due_date")) == [late.id, early.id, none.id]


def test_a_row_added_while_walking_does_not_repeat_or_shift_others(testapp, staff_auth, new_link):
    first = [new_link(amount_minor=100 * n) for n in range(1, 5)]
    page = get_list(testapp, staff_auth, sort="amount", limit=2)
    new_link(amount_minor=50)  # sorts before the cursor: an offset would repeat a row

    rest = get_list(testapp, staff_auth, sort="amount", limit=2, cursor=page["next_cursor"])

    assert ids_of(page) + ids_of(rest) == [link.id for link in first]


@pytest.mark.parametrize(
    ("sort", "first", "renamed", "rest"),
    [("created_by", "Ann", "Aa", ["Bo", "Cy"]), ("-created_by", "Cy", "Cz", ["Bo", "Ann"])],
)
def test_a_walk_goes_on_from_a_creator_name_nobody_has_any_more(
    testapp, dbsession, staff, staff_auth, new_link, sort, first, renamed, rest
):
    # On PostgreSQL a page by creator is read one name at a time (listing.py's KeyGroup):
    # the cursor's name must find its place among the names even once nobody has it.
    users = {name: UserFactory(firm=staff.firm, name=name) for name in ("Ann", "Bo", "Cy")}
    links = {name: new_link(creator=user) for name, user in users.items()}
    page = get_list(testapp, staff_auth, sort=sort, limit=1)
    assert ids_of(page) == [links[first].id]
    # Out of the walk's way: before the names still to come, in the sort's direction.
    users[first].name = renamed
    dbsession.flush()

    walked = []
    while page["next_cursor"]:
        page = get_list(testapp, staff_auth, sort=sort, limit=1, cursor=page["next_cursor"])
        walked += ids_of(page)

    assert walked == [links[name].id for name in rest]


def test_an_unknown_sort_is_422(testapp, staff_auth):
    body = get_list(testapp, staff_auth, expect=422, sort="message")
    assert body["errors"][0]["field"] == "sort"


# --- limit and cursor ----------------------------------------------------------------------


def test_the_default_page_is_50(testapp, staff_auth, new_link):
    for _ in range(51):
        new_link()

    body = get_list(testapp, staff_auth)

    assert len(body["items"]) == 50
    assert body["total"] == 51
    assert body["next_cursor"] is not None


def test_limit_500_is_allowed(testapp, staff_auth, new_link):
    new_link()
    assert get_list(testapp, staff_auth, limit=500)["total"] == 1


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5", "99999999999999999999"])
def test_a_limit_outside_1_to_500_is_422(testapp, staff_auth, limit):
    body = get_list(testapp, staff_auth, expect=422, limit=limit)
    assert body["errors"][0]["field"] == "limit"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        _b64(b"\xff\xfe"),
        _b64(b"[1, 2]"),
        _b64(json.dumps({"s": "-created_at", "v": "2025-01-01T00:00:00+00:00"}).encode()),
        _b64(json.dumps({"s": "-created_at", "v": "yesterday", "id": 1}).encode()),
        _b64(json.dumps({"s": "-created_at", "v": "2025-01-01T00:00:00", "id": 1}).encode()),
        _b64(json.dumps({"s": "-created_at", "v": "2025-01-01T00:00:00Z", "id": "1"}).encode()),
        _b64(json.dumps({"s": "-created_at", "v": "2025-01-01T00:00:00Z", "id": 2**40}).encode()),
        _b64(json.dumps({"s": "-created_at", "v": "0001-01-01T00:00:00+05:00", "id": 1}).encode()),
        _b64(json.dumps({"s": "amount", "v": 100, "id": 1}).encode()),  # another sort's
        "A" * 1001,
    ],
)
def test_a_bad_cursor_is_422(testapp, staff_auth, new_link, cursor):
    new_link()
    body = get_list(testapp, staff_auth, expect=422, cursor=cursor)
    assert body["error"] == "validation_error"
    assert body["errors"][0]["field"] == "cursor"


def test_a_cursor_only_works_with_its_own_sort(testapp, staff_auth, new_link):
    for n in range(3):
        new_link(amount_minor=100 + n)
    cursor = get_list(testapp, staff_auth, sort="amount", limit=1)["next_cursor"]

    get_list(testapp, staff_auth, expect=422, sort="-amount", cursor=cursor)
    assert len(get_list(testapp, staff_auth, sort="amount", cursor=cursor)["items"]) == 2


@pytest.mark.parametrize("cursor_sort", ["due_date", "amount", "invoice_number", "created_at"])
def test_a_cursor_value_of_the_wrong_type_is_422(testapp, staff_auth, cursor_sort):
    wrong = {"due_date": 5, "amount": "5", "invoice_number": 5, "created_at": 5}[cursor_sort]
    cursor = _b64(json.dumps({"s": cursor_sort, "v": wrong, "id": 1}).encode())
    get_list(testapp, staff_auth, expect=422, sort=cursor_sort, cursor=cursor)
    right = {"due_date": "2025-01-01", "amount": 5, "invoice_number": "a", "created_at": None}
    cursor = _b64(json.dumps({"s": cursor_sort, "v": right[cursor_sort], "id": 1}).encode())
    get_list(testapp, staff_auth, sort=cursor_sort, cursor=cursor)


def test_a_cursor_with_a_nul_in_its_text_is_422(testapp, staff_auth):
    cursor = _b64(json.dumps({"s": "invoice_number", "v": "a\x00", "id": 1}).encode())
    body = get_list(testapp, staff_auth, expect=422, sort="invoice_number", cursor=cursor)
    assert body["errors"][0]["field"] == "cursor"


def test_a_parameter_given_twice_is_422(testapp, staff_auth):
    response = testapp.get(
        URL + "?filter[source]=connect&filter[source]=bulk_upload", headers=staff_auth, status=422
    )
    assert response.json["errors"][0]["field"] == "filter[source]"


def test_the_session_of_the_pages_can_read_the_list(testapp, staff, new_link):
    from tests.conftest import login

    link = new_link()
    login(testapp, staff)

    assert ids_of(testapp.get(URL).json) == [link.id]


def test_the_list_is_documented_in_the_openapi_document(testapp):
    spec = testapp.get("/api/v1/openapi.json").json
    get = spec["paths"]["/links"]["get"]
    names = {p["name"] for p in get["parameters"]}
    assert {"status", "sort", "q", "limit", "cursor", "filter[source]"} <= names
    assert "post" in spec["paths"]["/links"]
    assert "get" in spec["paths"]["/links/export.xlsx"]


def test_the_documented_statuses_are_those_of_the_views_and_the_links(testapp):
    spec = testapp.get("/api/v1/openapi.json").json
    parameters = spec["paths"]["/links"]["get"]["parameters"]
    [status] = [p for p in parameters if p["name"] == "status"]
    assert status["schema"]["enum"] == list(STATUS_VIEWS)
    link_statuses = spec["components"]["schemas"]["Link"]["properties"]["status"]["enum"]
    assert link_statuses == list(STATUSES)


# --- The grid's filters: contains, ranges, days, statuses ----------------------------------


def test_text_filters_match_a_part_ignoring_case(testapp, staff, staff_auth, new_link):
    acme = new_link(
        invoice_number="INV-2024-117",
        recipient_name="Acme Holdings",
        emails=["ap@acme.test"],
        message="For the March retainer",
        created_by=staff,
    )
    other = new_link(invoice_number="X-9", recipient_name="Dana", emails=["d@example.test"])

    def matching(name: str, value: str) -> list[int]:
        return ids_of(get_list(testapp, staff_auth, **{f"filter[{name}]": value}))

    assert matching("invoice_number_contains", "2024-1") == [acme.id]
    assert matching("recipient_name_contains", "HOLD") == [acme.id]
    assert matching("emails_contains", "@ACME") == [acme.id]
    assert matching("message_contains", "retainer") == [acme.id]
    assert matching("created_by_contains", staff.name[2:].upper()) == [acme.id]
    assert matching("recipient_name_contains", "a") == [other.id, acme.id]
    # The exact filters keep their meaning: a part does not match.
    assert matching("invoice_number", "2024") == []
    # LIKE's wildcards are text like any other.
    assert matching("invoice_number_contains", "%") == []


def test_amount_ranges_include_both_ends(testapp, staff_auth, new_link):
    links = {
        minor: new_link(amount_minor=minor, amount_paid_minor=minor // 2)
        for minor in (999, 1_000, 5_000, 5_001)
    }

    def amounts(**filters: str) -> list[int]:
        params = {f"filter[{name}]": value for name, value in filters.items()}
        body = get_list(testapp, staff_auth, sort="amount", **params)
        return [links_by_id[i].amount_minor for i in ids_of(body)]

    links_by_id = {link.id: link for link in links.values()}
    assert amounts(amount_min="10.00") == [1_000, 5_000, 5_001]
    assert amounts(amount_max="50") == [999, 1_000, 5_000]
    assert amounts(amount_min="10", amount_max="50.00") == [1_000, 5_000]
    # A minimum with more decimals than cents rounds inwards: 9.991 is more than 9.99.
    assert amounts(amount_min="9.991") == [1_000, 5_000, 5_001]
    assert amounts(amount_paid_min="25.00") == [5_000, 5_001]


def test_an_amount_range_is_read_in_each_links_currency(testapp, staff, staff_auth, new_link):
    yen = new_link(
        account=MerchantAccountFactory(firm=staff.firm, currency="JPY"), amount_minor=100
    )
    dollars = new_link(amount_minor=10_000)  # $100.00
    new_link(amount_minor=9_999)

    body = get_list(testapp, staff_auth, **{"filter[amount_min]": "100"})

    assert sorted(ids_of(body)) == sorted([yen.id, dollars.id])


def test_reminders_sent_range(testapp, staff_auth, new_link):
    links = [new_link(reminders_sent=n) for n in range(4)]

    body = get_list(
        testapp,
        staff_auth,
        sort="reminders_sent",
        **{"filter[reminders_sent_min]": "1", "filter[reminders_sent_max]": "2"},
    )

    assert ids_of(body) == [links[1].id, links[2].id]


def test_date_ranges_include_both_days_and_leave_out_empty_ones(testapp, staff_auth, new_link):
    days = [dt.date(2025, 3, d) for d in (1, 2, 3, 4)]
    links = [new_link(due_date=day) for day in days]
    new_link(due_date=None)

    body = get_list(
        testapp,
        staff_auth,
        sort="due_date",
        **{"filter[due_date_from]": "2025-03-02", "filter[due_date_to]": "2025-03-03"},
    )

    assert ids_of(body) == [links[1].id, links[2].id]


def test_a_timestamps_day_is_the_firms_day(testapp, dbsession, staff, staff_auth, new_link):
    settings = dbsession.get(FirmSettings, staff.firm_id)
    settings.time_zone = "America/New_York"
    # 03:30 UTC on March 2nd is still March 1st in New York (22:30 EST).
    late_evening = new_link(created_at=dt.datetime(2025, 3, 2, 3, 30, tzinfo=dt.UTC))
    next_morning = new_link(created_at=dt.datetime(2025, 3, 2, 5, 30, tzinfo=dt.UTC))
    never_opened = new_link(first_opened_at=None)
    opened = new_link(first_opened_at=dt.datetime(2025, 3, 2, 12, 0, tzinfo=dt.UTC))

    def created_on(day: str) -> list[int]:
        params = {"filter[created_at_from]": day, "filter[created_at_to]": day}
        return ids_of(get_list(testapp, staff_auth, sort="created_at", **params))

    assert created_on("2025-03-01") == [late_evening.id]
    assert created_on("2025-03-02") == [next_morning.id]
    opened_ids = ids_of(
        get_list(testapp, staff_auth, **{"filter[first_opened_at_from]": "2025-03-01"})
    )
    assert opened_ids == [opened.id]
    assert never_opened.id not in opened_ids


def test_filter_status_narrows_the_show_view(testapp, staff_auth, one_of_each):
    def statuses(**params: str) -> set[str]:
        return {item["status"] for item in get_list(testapp, staff_auth, **params)["items"]}

    assert statuses(**{"filter[status]": "paid,cancelled"}) == {STATUS_PAID, STATUS_CANCELLED}
    assert statuses(status="outstanding", **{"filter[status]": "processing"}) == {STATUS_PROCESSING}
    # Within the view: a status the view does not show stays out.
    assert statuses(status="outstanding", **{"filter[status]": "paid"}) == set()


def test_a_walk_with_range_filters_gives_every_matching_row_once(testapp, staff_auth, many_links):
    walked = walk(
        testapp,
        staff_auth,
        sort="-last_opened_at",
        limit=7,
        **{
            "filter[amount_min]": "10",
            "filter[reminders_sent_max]": "2",
            "filter[status]": "outstanding,paid",
        },
    )

    wanted = [
        link
        for link in many_links
        if link.amount_minor >= 1_000
        and link.reminders_sent <= 2
        and link.status in (STATUS_OUTSTANDING, STATUS_PAID)
    ]
    assert wanted
    assert walked == expected_order(wanted, "last_opened_at", True)


@pytest.mark.parametrize(
    "params",
    [
        {"filter[amount_min]": "ten"},
        {"filter[amount_max]": "1,000.00"},
        {"filter[amount_min]": "-5"},
        {"filter[reminders_sent_min]": "1.5"},
        {"filter[due_date_from]": "2025-02-30"},
        {"filter[created_at_to]": "03/01/2025"},
        {"filter[status]": "paid,lost"},
        {"filter[status]": "paid,"},
        {"filter[emails]": "a"},
    ],
)
def test_a_wrong_grid_filter_is_422_and_names_the_parameter(testapp, staff_auth, params):
    body = get_list(testapp, staff_auth, expect=422, **params)
    assert [e["field"] for e in body["errors"]] == list(params)


@pytest.mark.parametrize(
    ("low", "high", "name"),
    [
        ("filter[amount_min]", "filter[amount_max]", "amount_max"),
        ("filter[due_date_from]", "filter[due_date_to]", "due_date_to"),
    ],
)
def test_a_range_that_ends_before_it_starts_is_422(testapp, staff_auth, low, high, name):
    values = ("20.00", "10.00") if "amount" in low else ("2025-03-02", "2025-03-01")
    body = get_list(testapp, staff_auth, expect=422, **{low: values[0], high: values[1]})
    assert [e["field"] for e in body["errors"]] == [f"filter[{name}]"]


def test_every_filter_and_sort_is_documented(testapp):
    spec = testapp.get("/api/v1/openapi.json").json
    for path in ("/links", "/links/export.xlsx"):
        parameters = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        assert {f"filter[{name}]" for name in FILTERS} <= set(parameters)
        assert set(parameters["sort"]["schema"]["enum"]) == set(SORT_CHOICES)
