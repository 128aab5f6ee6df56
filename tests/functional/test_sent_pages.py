"""The Sent Pages page through WebTest, as a signed-in person uses it without scripts: tabs
with counts, search, sort links, next page, copy-link targets, cancel selected, export."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import webtest
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.links.models import (
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    STATUS_PROCESSING,
    PaymentLink,
)
from clientpay_connect.links.services import find_by_token
from tests.conftest import login
from tests.factories import FirmFactory, MerchantAccountFactory
from tests.support.sent import make_link

PAGE = "/sent"
FORM = "sent-form"


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


@pytest.fixture
def signed_in(testapp: webtest.TestApp, staff: Any) -> webtest.TestApp:
    login(testapp, staff)
    return testapp


def row_ids(page: webtest.TestResponse) -> list[int]:
    return [int(tr["data-link-id"]) for tr in page.html.select("tbody tr[data-link-id]")]


def tabs(page: webtest.TestResponse) -> dict[str, tuple[str, bool]]:
    """Each tab's label → (its count, whether it is the current one)."""
    found = {}
    for a in page.html.select('nav[aria-label="Show"] a'):
        count = a.select_one(".tab-count")
        label = a.get_text(" ", strip=True).removesuffix(count.get_text(strip=True)).strip()
        found[label] = (count.get_text(strip=True), a.get("aria-current") == "page")
    return found


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def flashes(page: webtest.TestResponse) -> tuple[list[str], list[str]]:
    """(the status messages, the error messages) at the top of the page."""
    ok = [f.get_text(" ", strip=True) for f in page.html.select(".flash:not(.flash-error)")]
    bad = [f.get_text(" ", strip=True) for f in page.html.select(".flash.flash-error")]
    return ok, bad


def status_of(dbsession: Session, link: PaymentLink) -> str:
    dbsession.expire_all()
    fresh = dbsession.get(PaymentLink, link.id)
    assert fresh is not None
    return fresh.status


# --- Getting there -------------------------------------------------------------------------


def test_the_menu_leads_to_sent_pages(signed_in):
    home = signed_in.get("/")
    assert home.html.find("a", string="Sent Pages")["href"].endswith(PAGE)


def test_the_page_needs_a_sign_in(testapp):
    response = testapp.get(PAGE, status=302)
    assert "/login" in response.location


def test_an_empty_firm_is_told_where_links_come_from(signed_in):
    page = signed_in.get(PAGE)
    assert "No links yet" in page.html.select_one(".sent-empty").get_text()
    assert page.html.select_one("table") is None


# --- Rows ----------------------------------------------------------------------------------


def test_a_row_shows_the_link_and_leads_to_its_page(signed_in, new_link):
    link = new_link(
        amount_minor=123_450,
        amount_paid_minor=0,
        invoice_number="INV-1001",
        recipient_name="Dana Client",
        emails=["dana@example.test", "ap@example.test"],
    )

    page = signed_in.get(PAGE)
    row = page.html.select_one(f'tr[data-link-id="{link.id}"]')

    cells = [c.get_text(strip=True) for c in row.find_all(["td", "th"])]
    assert cells[1:7] == [
        "Outstanding",
        "INV-1001",
        "Dana Client",
        "$1,234.50",
        "$0.00",
        # One address a line; screen readers hear the comma between them.
        "dana@example.test,ap@example.test",
    ]
    assert row.select_one(".badge.badge-outstanding") is not None
    detail = row.find("a", string="INV-1001")["href"]
    assert urlsplit(detail).path == f"/links/{link.id}"
    assert signed_in.get(detail).html.select_one("[data-link-status]").get_text() == "Outstanding"


def test_each_row_has_a_copy_button_for_its_payers_url(signed_in, dbsession, new_link):
    link = new_link()

    page = signed_in.get(PAGE)
    button = page.html.select_one(f'tr[data-link-id="{link.id}"] [data-copy-target]')
    target = page.html.select_one(button["data-copy-target"])

    url = target.get_text(strip=True)
    assert url.startswith("http://localhost/pay/")
    found = find_by_token(dbsession, url.rsplit("/", 1)[1])
    assert found is not None and found.id == link.id


def test_another_firms_links_never_show(signed_in, dbsession, app, new_link):
    mine = new_link(invoice_number="MINE")
    other = MerchantAccountFactory(firm=FirmFactory())
    make_link(dbsession, app, other, invoice_number="THEIRS")

    page = signed_in.get(PAGE)

    assert row_ids(page) == [mine.id]
    assert "THEIRS" not in page.text
    assert tabs(page)["All"] == ("1", True)


# --- Tabs ----------------------------------------------------------------------------------


@pytest.fixture
def mixed(new_link: Any) -> dict[str, PaymentLink]:
    return {
        "outstanding": new_link(invoice_number="O-1"),
        "outstanding2": new_link(invoice_number="O-2", recipient_name="Dana"),
        "processing": new_link(invoice_number="P-1", status=STATUS_PROCESSING),
        "paid": new_link(invoice_number="D-1", status=STATUS_PAID, amount_paid_minor=10_000),
        "partial": new_link(
            invoice_number="H-1", status=STATUS_PARTIALLY_PAID, amount_paid_minor=2_500
        ),
        "cancelled": new_link(invoice_number="C-1", status=STATUS_CANCELLED),
        "expired": new_link(invoice_number="X-1", status=STATUS_EXPIRED),
    }


def test_the_tabs_show_their_counts_and_which_is_current(signed_in, mixed):
    page = signed_in.get(PAGE)

    assert tabs(page) == {
        "All": ("7", True),
        # A link being paid right now is still outstanding.
        "Outstanding": ("3", False),
        "Payment Received": ("1", False),
        # A partial payment is received, but it is not the whole amount: a view of its own.
        "Partially Paid": ("1", False),
        "Cancelled": ("1", False),
        "Expired": ("1", False),
    }


@pytest.mark.parametrize(
    ("tab", "expected"),
    [
        ("Outstanding", {"outstanding", "outstanding2", "processing"}),
        ("Payment Received", {"paid"}),
        ("Partially Paid", {"partial"}),
        ("Cancelled", {"cancelled"}),
        ("Expired", {"expired"}),
        (
            "All",
            {
                "outstanding",
                "outstanding2",
                "processing",
                "paid",
                "partial",
                "cancelled",
                "expired",
            },
        ),
    ],
)
def test_a_tab_shows_its_links(signed_in, mixed, tab, expected):
    page = signed_in.get(PAGE)
    link = next(
        a for a in page.html.select('nav[aria-label="Show"] a') if a.get_text().startswith(tab)
    )

    shown = signed_in.get(link["href"])

    assert set(row_ids(shown)) == {mixed[name].id for name in expected}
    assert tabs(shown)[tab][1] is True


def test_a_partially_paid_row_says_so(signed_in, mixed):
    page = signed_in.get(PAGE, {"status": "partially_paid"})
    [row] = page.html.select("tbody tr")
    badge = row.select_one("[data-status]")
    assert (badge.get_text(), badge["class"]) == (
        "Partially Paid",
        ["badge", "badge-partially_paid"],
    )


# --- Search --------------------------------------------------------------------------------


def test_searching_filters_the_rows_and_the_counts(signed_in, mixed):
    form = signed_in.get(PAGE).forms["sent-search"]
    assert form.action.endswith(PAGE) and form.method.lower() == "get"
    form["q"] = "o-"

    page = form.submit()

    assert set(row_ids(page)) == {mixed["outstanding"].id, mixed["outstanding2"].id}
    assert tabs(page)["All"] == ("2", True)
    assert tabs(page)["Payment Received"] == ("0", False)
    assert page.html.select_one("#q")["value"] == "o-"
    assert page.html.find("a", string="Clear the search") is not None


def test_a_search_keeps_the_tab_and_the_tabs_keep_the_search(signed_in, mixed):
    page = signed_in.get(PAGE, {"status": "outstanding"})
    form = page.forms["sent-search"]
    form["q"] = "dana"

    page = form.submit()

    assert row_ids(page) == [mixed["outstanding2"].id]
    paid_tab = next(
        a for a in page.html.select('nav[aria-label="Show"] a') if "Payment" in a.get_text()
    )
    assert query_of(paid_tab["href"]) == {"status": ["paid"], "q": ["dana"]}


def test_nothing_found_says_so(signed_in, mixed):
    page = signed_in.get(PAGE, {"q": "nobody-has-this"})
    assert "No links match this search." in page.html.select_one(".sent-empty").get_text()


# --- Sorting -------------------------------------------------------------------------------


def headers(page: webtest.TestResponse) -> dict[str, Any]:
    return {th.get_text(strip=True): th for th in page.html.select("thead th")}


def test_the_newest_links_come_first_and_created_says_so(signed_in, new_link):
    older, newer = new_link(), new_link()

    page = signed_in.get(PAGE)

    assert row_ids(page) == [newer.id, older.id]
    created = headers(page)["Created"]
    assert created["aria-sort"] == "descending"
    assert sum(1 for th in page.html.select("thead th") if th.has_attr("aria-sort")) == 1
    # Its link turns the order around.
    assert query_of(created.a["href"])["sort"] == ["created_at"]


def test_a_header_link_sorts_and_then_toggles(signed_in, new_link):
    small = new_link(amount_minor=900)
    large = new_link(amount_minor=10_000)
    middle = new_link(amount_minor=1_000)

    page = signed_in.get(PAGE)
    amount = headers(page)["Amount"]
    assert not amount.has_attr("aria-sort")
    page = signed_in.get(amount.a["href"])

    assert row_ids(page) == [small.id, middle.id, large.id]
    assert headers(page)["Amount"]["aria-sort"] == "ascending"
    assert not headers(page)["Created"].has_attr("aria-sort")

    page = signed_in.get(headers(page)["Amount"].a["href"])

    assert row_ids(page) == [large.id, middle.id, small.id]
    assert headers(page)["Amount"]["aria-sort"] == "descending"


def test_sort_links_keep_the_tab_and_search(signed_in, mixed):
    page = signed_in.get(PAGE, {"status": "outstanding", "q": "o-"})

    href = headers(page)["Invoice"].a["href"]

    assert query_of(href) == {"status": ["outstanding"], "q": ["o-"], "sort": ["invoice_number"]}


def test_emails_are_not_a_sort_link(signed_in, new_link):
    new_link()
    assert headers(signed_in.get(PAGE))["Emails"].a is None


# --- Pages ---------------------------------------------------------------------------------


def test_next_page_and_first_page(signed_in, new_link):
    links = [new_link(amount_minor=100 * (n + 1)) for n in range(55)]

    first = signed_in.get(PAGE, {"sort": "amount"})
    assert row_ids(first) == [link.id for link in links[:50]]
    assert "Links 1\N{EN DASH}50 of 55" in first.text
    assert first.html.find("a", string="First page") is None

    second = signed_in.get(first.html.find("a", string="Next page")["href"])

    assert row_ids(second) == [link.id for link in links[50:]]
    assert "Links 51\N{EN DASH}55 of 55" in second.text
    assert second.html.find("a", string="Next page") is None
    back = second.html.find("a", string="First page")["href"]
    assert query_of(back) == {"sort": ["amount"]}


def test_a_spoilt_page_address_shows_the_first_page_and_says_why(signed_in, new_link):
    link = new_link()

    page = signed_in.get(PAGE, {"cursor": "garbage", "limit": "9999"}, status=200)

    assert row_ids(page) == [link.id]
    _ok, errors = flashes(page)
    assert any("cursor" in e and "limit" in e for e in errors)


# --- Export --------------------------------------------------------------------------------


def test_export_to_excel_takes_the_current_query(signed_in, mixed):
    page = signed_in.get(PAGE, {"status": "outstanding", "q": "o-", "sort": "amount"})

    export = page.html.find("a", string="Export to Excel")["href"]

    assert urlsplit(export).path == "/api/v1/links/export.xlsx"
    assert query_of(export) == {"status": ["outstanding"], "q": ["o-"], "sort": ["amount"]}
    # The staff session is enough to download it.
    download = signed_in.get(export)
    assert download.headers["Content-Disposition"].startswith("attachment;")


# --- Cancel selected -----------------------------------------------------------------------


def select_rows(page: webtest.TestResponse, links: list[PaymentLink]) -> webtest.Form:
    form = page.forms[FORM]
    wanted = {str(link.id) for link in links}
    for box in form.fields["ids"]:
        if box._value in wanted:
            box.checked = True
    return form


def test_cancel_selected_cancels_the_outstanding_and_says_why_others_were_not(
    signed_in, dbsession, mixed
):
    page = signed_in.get(PAGE, {"sort": "invoice_number"})
    form = select_rows(
        page,
        [
            mixed["outstanding"],
            mixed["outstanding2"],
            mixed["paid"],
            mixed["partial"],
            mixed["processing"],
        ],
    )
    button = page.html.find("button", string="Cancel selected")
    assert button.has_attr("data-confirm")

    result = form.submit(status=303).follow()

    ok, errors = flashes(result)
    assert ok == ["Cancelled 2 links: O-1, O-2. They can no longer be paid."]
    assert errors == [
        "3 links were not cancelled, because only outstanding links can be: "
        "D-1 is payment received; H-1 is partially paid; P-1 is processing."
    ]
    assert status_of(dbsession, mixed["outstanding"]) == STATUS_CANCELLED
    assert status_of(dbsession, mixed["outstanding2"]) == STATUS_CANCELLED
    assert status_of(dbsession, mixed["paid"]) == STATUS_PAID
    assert status_of(dbsession, mixed["partial"]) == STATUS_PARTIALLY_PAID
    assert status_of(dbsession, mixed["processing"]) == STATUS_PROCESSING
    # Back where the person was, with the same order.
    assert query_of(result.request.url) == {"sort": ["invoice_number"]}
    badges = {
        int(tr["data-link-id"]): tr.select_one("[data-status]").get_text()
        for tr in result.html.select("tbody tr")
    }
    assert badges[mixed["outstanding"].id] == "Cancelled"
    audited = dbsession.execute(
        select(AuditEvent.target_id).where(AuditEvent.action == "link.cancelled")
    ).scalars()
    assert sorted(map(int, audited)) == sorted([mixed["outstanding"].id, mixed["outstanding2"].id])


def test_cancel_selected_returns_to_the_same_tab_search_and_page(signed_in, new_link):
    for n in range(52):
        new_link(invoice_number=f"N-{n:02}")
    first = signed_in.get(PAGE, {"status": "outstanding", "q": "n-", "sort": "invoice_number"})
    second = signed_in.get(first.html.find("a", string="Next page")["href"])
    form = second.forms[FORM]
    form.fields["ids"][0].checked = True

    result = form.submit(status=303)

    back = query_of(result.location)
    assert back["status"] == ["outstanding"] and back["q"] == ["n-"]
    assert back["sort"] == ["invoice_number"] and "cursor" in back
    # The page it returns to: the same rows as before, minus the one that is now cancelled.
    again = result.follow()
    assert row_ids(again) == row_ids(second)[1:]
    assert "Links 51\N{EN DASH}51 of 51" in again.text  # one fewer outstanding now


def test_cancel_selected_with_nothing_selected_asks_for_a_selection(signed_in, mixed, dbsession):
    page = signed_in.get(PAGE)

    result = page.forms[FORM].submit(status=303).follow()

    assert flashes(result)[1] == ["Select the links to cancel first."]
    assert status_of(dbsession, mixed["outstanding"]) == STATUS_OUTSTANDING


def test_another_firms_link_cannot_be_cancelled_from_here(signed_in, dbsession, app, new_link):
    mine = new_link(invoice_number="MINE")
    theirs = make_link(dbsession, app, MerchantAccountFactory(firm=FirmFactory()))
    page = signed_in.get(PAGE)
    token = page.forms[FORM]["csrf_token"].value

    result = signed_in.post(
        "/sent/cancel",
        [("csrf_token", token), ("ids", str(theirs.id)), ("ids", str(mine.id))],
        status=303,
    ).follow()

    assert status_of(dbsession, theirs) == STATUS_OUTSTANDING
    assert status_of(dbsession, mine) == STATUS_CANCELLED
    ok, errors = flashes(result)
    assert ok == ["Cancelled 1 link: MINE. They can no longer be paid."]
    assert errors == ["1 selected link was not found."]


def test_cancel_selected_needs_the_csrf_token(signed_in, dbsession, new_link):
    link = new_link()

    signed_in.post("/sent/cancel", {"ids": str(link.id)}, status=403)

    assert status_of(dbsession, link) == STATUS_OUTSTANDING


def test_values_no_link_can_have_are_ignored(signed_in, new_link):
    new_link()
    token = signed_in.get(PAGE).forms[FORM]["csrf_token"].value

    result = signed_in.post(
        "/sent/cancel",
        [("csrf_token", token), ("ids", "abc"), ("ids", "9" * 40), ("ids", "²")],
        status=303,
    ).follow()

    assert flashes(result)[1] == ["Select the links to cancel first."]


# --- What the grid (sent-grid.js) reads from the page and from /sent/counts ----------------


def grid_config(page: webtest.TestResponse) -> dict[str, Any]:
    app = page.html.find(id="sent-grid-app")
    assert app is not None and app.has_attr("hidden")  # shown by the script only
    config: dict[str, Any] = json.loads(app["data-config"])
    return config


def test_the_page_gives_the_grid_the_users_saved_layout(signed_in, dbsession, staff, account):
    layout = {
        "columns": [{"field": "amount", "visible": True, "width": 120}],
        "sort": "-amount",
        "show": "outstanding",
        "filters": {"recipient_name": "acme", "amount": {"min": "10.00"}},
    }
    staff.preferences = {"sent_grid": layout}
    dbsession.flush()

    config = grid_config(signed_in.get(PAGE))

    assert config["layout"] == layout
    assert config["api"] == "/api/v1/links"
    assert config["detail"] == "/links/"
    assert config["accounts"] == [{"id": account.id, "name": account.name}]
    # The grid's titles are the export's headers, so that a download reads as the grid does.
    assert config["titles"]["amount_paid"] == "Amount Paid"
    assert config["titles"]["merchant_account_id"] == "Merchant Account"


def test_a_user_without_a_saved_layout_gets_an_empty_one(signed_in):
    assert grid_config(signed_in.get(PAGE))["layout"] == {}


def test_the_counts_follow_the_search_and_filters(signed_in, new_link):
    new_link(amount_minor=500)
    big = [
        new_link(amount_minor=5_000, status=status)
        for status in (STATUS_OUTSTANDING, STATUS_PAID, STATUS_CANCELLED)
    ]

    counts = signed_in.get("/sent/counts", {"filter[amount_min]": "10"}).json

    assert counts == {
        "all": len(big),
        "outstanding": 1,
        "paid": 1,
        "partially_paid": 0,
        "cancelled": 1,
        "expired": 0,
    }


def test_the_counts_refuse_a_wrong_filter_and_need_a_signed_in_user(signed_in, testapp):
    answer = signed_in.get("/sent/counts", {"filter[amount_min]": "ten"}, status=422)
    assert answer.json["errors"][0]["field"] == "filter[amount_min]"
    signed_in.reset()
    assert signed_in.get("/sent/counts", status="*").status_int in (302, 303, 401, 403)
