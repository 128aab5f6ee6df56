"""Sent Pages in a real browser: the grid (sent-grid.js) lists the links created through the
API, sorts by a header click or by keyboard, filters in its headers, shows, hides and moves
columns, keeps the layout for the user across sign-ins and browsers, cancels ticked rows
without losing the view, exports what it shows, fits 1280 px and keeps its first column on a
phone; axe passes."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from openpyxl import load_workbook
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Locator,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)
from sqlalchemy import select

from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import create_api_token, find_user_by_email
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import (
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_PAID,
    PaymentLink,
)
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import NARROW, TIMEOUT_MS, WIDE
from tests.support.live_server import LiveServer, Login

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]
BOTH_WIDTHS = pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["wide", "narrow"])


PHONE: ViewportSize = {"width": 390, "height": 800}


@pytest.fixture(autouse=True)
def fresh_layout(live_server: LiveServer) -> None:
    """The live server's staff member is every test's: each starts from the default grid."""
    with live_server.dbsession() as dbsession:
        user = find_user_by_email(dbsession, live_server.staff.email)
        assert user is not None
        user.preferences = {}


@pytest.fixture
def prefix() -> str:
    # The live server's database lives for the whole session: each test searches for its own.
    return "SP" + uuid.uuid4().hex[:6].upper()


@pytest.fixture
def staff_token(live_server: LiveServer) -> Iterator[str]:
    with live_server.dbsession() as dbsession:
        user = find_user_by_email(dbsession, live_server.staff.email)
        assert user is not None
        _row, token = create_api_token(dbsession, user, "sent pages browser test")
    yield token


@pytest.fixture
def create_link(
    context: BrowserContext, live_server: LiveServer, staff_token: str
) -> Callable[..., dict[str, Any]]:
    """POST /api/v1/links with the staff's API token, as the matter software would."""
    headers = {"Authorization": f"Bearer {staff_token}"}
    accounts = context.request.get(f"{live_server.url}/api/v1/merchant-accounts", headers=headers)
    operating = next(a for a in accounts.json()["items"] if a["name"] == "Operating")

    def create(**fields: Any) -> dict[str, Any]:
        body = {"merchant_account_id": operating["id"], "amount": "100", **fields}
        response = context.request.post(
            f"{live_server.url}/api/v1/links", data=body, headers=headers
        )
        assert response.status == 201, response.text()
        link: dict[str, Any] = response.json()
        return link

    return create


def open_sent_pages(page: Page, sign_in: SignIn, live_server: LiveServer, q: str) -> None:
    sign_in(live_server.staff)
    open_grid(page)
    search(page, q)


def open_grid(page: Page) -> None:
    page.goto("/sent")
    expect(page.get_by_role("heading", name="Sent Pages", level=1)).to_be_visible()
    expect(page.locator("#sent-grid-app[data-ready]")).to_be_visible()


def search(page: Page, q: str) -> None:
    page.get_by_label("Search").fill(q)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_label("Search")).to_have_value(q)


def rows(page: Page) -> Locator:
    return page.locator("#sent-grid .tabulator-row")


def names(page: Page) -> Locator:
    """Each row's name (its invoice number), in the frozen first column."""
    return page.locator("#sent-grid .tabulator-row .grid-link-cell > a:not(.grid-balance)")


def header(page: Page, title: str) -> Locator:
    return page.locator("#sent-grid .tabulator-col").filter(
        has=page.locator(".tabulator-col-title", has_text=re.compile(f"^{re.escape(title)}$"))
    )


def shown_titles(page: Page) -> list[str]:
    """The titles of the visible field columns, left to right (not the Link column)."""
    titles: list[str] = page.evaluate(
        """() => window.sentGrid.table.getColumns()
            .filter(c => c.isVisible() && c.getField() !== "id")
            .map(c => c.getDefinition().title)"""
    )
    return titles


def wait_until_saved(page: Page) -> None:
    page.wait_for_function("() => window.sentGrid.settled()", timeout=TIMEOUT_MS)


def mark_paid(live_server: LiveServer, link_id: int) -> None:
    with live_server.dbsession() as dbsession:
        link = dbsession.get(PaymentLink, link_id)
        assert link is not None
        link.status = STATUS_PAID
        link.amount_paid_minor = link.amount_minor
        link.paid_at = utcnow()


def status_in_db(live_server: LiveServer, link_id: int) -> str:
    with live_server.dbsession() as dbsession:
        return str(
            dbsession.execute(
                select(PaymentLink.status).where(PaymentLink.id == link_id)
            ).scalar_one()
        )


def saved_layout(live_server: LiveServer) -> dict[str, Any]:
    with live_server.dbsession() as dbsession:
        user = dbsession.execute(
            select(User).where(User.email == live_server.staff.email)
        ).scalar_one()
        layout: dict[str, Any] = (user.preferences or {}).get("sent_grid", {})
        return layout


@contextmanager
def another_browser(
    browser: Browser, live_server: LiveServer, size: ViewportSize
) -> Iterator[Page]:
    """Sent Pages in a browser of its own (no cookies, no storage of the test's page), signed
    in as the staff member through the form."""
    context = browser.new_context(base_url=live_server.url, viewport=size, is_mobile=size == PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Email").fill(live_server.staff.email)
        page.get_by_label("Password").fill(live_server.staff.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        open_grid(page)
        yield page
    finally:
        context.close()


def open_columns(page: Page) -> Locator:
    page.get_by_role("button", name="Choose columns").click()
    panel = page.get_by_role("group", name="Columns")
    expect(panel).to_be_visible()
    return panel


# --- Listing, sorting, keyboard ------------------------------------------------------------


@BOTH_WIDTHS
def test_links_created_through_the_api_are_listed_and_sort_by_a_click(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
    viewport: ViewportSize,
) -> None:
    created = [
        create_link(amount=amount, invoice_number=f"{prefix}-{n}", recipient_name=f"Client {n}")
        for n, amount in enumerate(["250.00", "1,200.50", "75"])
    ]

    open_sent_pages(page, sign_in, live_server, prefix)

    # Newest first by default.
    expect(names(page)).to_have_text([f"{prefix}-2", f"{prefix}-1", f"{prefix}-0"])
    first = rows(page).first
    expect(first.locator(".badge")).to_have_text("Outstanding")
    expect(first).to_contain_text("$75.00")
    expect(first).to_contain_text("Client 2")
    expect(page.locator("#grid-summary")).to_have_text("Links 1\u20133 of 3")
    expect(page.locator('[data-count="all"]')).to_have_text("3")
    assert_accessible(page)

    header(page, "Amount").locator(".tabulator-col-title").click()
    expect(header(page, "Amount")).to_have_attribute("aria-sort", "ascending")
    expect(names(page)).to_have_text([f"{prefix}-2", f"{prefix}-0", f"{prefix}-1"])
    header(page, "Amount").locator(".tabulator-col-title").click()
    expect(header(page, "Amount")).to_have_attribute("aria-sort", "descending")
    expect(names(page)).to_have_text([f"{prefix}-1", f"{prefix}-0", f"{prefix}-2"])

    names(page).first.click()
    expect(page).to_have_url(re.compile(rf"/links/{created[1]['id']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Link for Client 1 — {prefix}-1")


class HeldAnswers:
    """GET /api/v1/links requests that ``hold`` picks are kept waiting (a slow answer); the
    others go through. A newer load must make the page abort the held ones."""

    def __init__(self, page: Page, hold: Callable[[dict[str, list[str]]], bool]) -> None:
        self.page = page
        self.hold = hold
        self.routes: list[Route] = []
        self.failed: list[Request] = []
        page.on("requestfailed", lambda request: self.failed.append(request))
        page.route(re.compile(r"/api/v1/links\?"), self._route)

    def _route(self, route: Route) -> None:
        if self.hold(parse_qs(urlsplit(route.request.url).query)):
            self.routes.append(route)
        else:
            route.continue_()

    def wait_until_aborted(self) -> None:
        """Wait until the page has aborted every held request: its answer can never come."""
        assert self.routes, "no request was held"
        # Playwright hands events over only inside its own calls: none is missed between the
        # check and the wait.
        while not all(route.request in self.failed for route in self.routes):
            self.page.wait_for_event("requestfailed", timeout=10_000)
        assert {route.request.failure for route in self.routes} == {"net::ERR_ABORTED"}
        self.routes = []


def test_two_fast_clicks_on_a_header_sort_one_way_then_the_other(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    for n, amount in enumerate(["250.00", "1,200.50", "75"]):
        create_link(amount=amount, invoice_number=f"{prefix}-{n}")
    open_sent_pages(page, sign_in, live_server, prefix)
    # The first click's answer (ascending) comes last.
    held = HeldAnswers(page, lambda params: params.get("sort") == ["amount"])

    header(page, "Amount").locator(".tabulator-col-title").click(click_count=2)

    expect(header(page, "Amount")).to_have_attribute("aria-sort", "descending")
    expect(names(page)).to_have_text([f"{prefix}-1", f"{prefix}-0", f"{prefix}-2"])
    held.wait_until_aborted()
    expect(header(page, "Amount")).to_have_attribute("aria-sort", "descending")
    expect(names(page)).to_have_text([f"{prefix}-1", f"{prefix}-0", f"{prefix}-2"])
    expect(page.locator("#grid-summary")).to_have_text("Links 1\u20133 of 3")
    wait_until_saved(page)
    assert saved_layout(live_server)["sort"] == "-amount"


def test_an_older_filter_or_page_still_loading_is_aborted_by_the_newer_one(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    # 26 for "acme": two pages of 25; one other.
    for n in range(26):
        create_link(invoice_number=f"{prefix}-A{n:02}", recipient_name=f"Acme {n}")
    create_link(invoice_number=f"{prefix}-Z", recipient_name="Zed")
    open_sent_pages(page, sign_in, live_server, prefix)
    summary = page.locator("#grid-summary")
    pager = page.locator("#sent-grid-pager")
    expect(summary).to_have_text("Links 1\u201325 of 27")

    # A filter typed, then changed before the first one's answer came.
    held = HeldAnswers(
        page, lambda params: params.get("filter[recipient_name_contains]") == ["acme"]
    )
    recipient = page.get_by_label("Filter Recipient (contains)")
    expect(recipient).to_have_attribute("placeholder", "Contains…")
    recipient.fill("acme")
    expect(summary).to_have_text("Loading…")
    recipient.fill("zed")
    expect(names(page)).to_have_text([f"{prefix}-Z"])
    held.wait_until_aborted()
    expect(names(page)).to_have_text([f"{prefix}-Z"])
    expect(summary).to_have_text("Links 1\u20131 of 1")
    expect(pager.get_by_role("button", name="2", exact=True)).to_have_count(0)
    page.unroute(re.compile(r"/api/v1/links\?"))

    # Page 2 asked for, then (Show: All again) page 1 before page 2 came.
    recipient.fill("")
    expect(summary).to_have_text("Links 1\u201325 of 27")
    held = HeldAnswers(page, lambda params: "cursor" in params)
    pager.get_by_role("button", name="Next").click()
    expect(summary).to_have_text("Loading…")
    page.get_by_role("link", name=re.compile("^All")).click()
    expect(summary).to_have_text("Links 1\u201325 of 27")
    held.wait_until_aborted()
    expect(summary).to_have_text("Links 1\u201325 of 27")
    expect(names(page)).to_have_count(25)
    expect(names(page).first).to_have_text(f"{prefix}-Z")
    expect(pager.locator(".tabulator-page.active")).to_have_text("1")


def test_the_status_filter_takes_several_statuses_by_mouse_or_keyboard(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    outstanding = create_link(invoice_number=f"{prefix}-O")
    paid = create_link(invoice_number=f"{prefix}-P")
    expired = create_link(invoice_number=f"{prefix}-E")
    mark_paid(live_server, paid["id"])
    with live_server.dbsession() as dbsession:
        row = dbsession.get(PaymentLink, expired["id"])
        assert row is not None
        row.status = STATUS_EXPIRED
    open_sent_pages(page, sign_in, live_server, prefix)
    expect(names(page)).to_have_count(3)

    status = page.get_by_role("button", name="Filter Status: Any")
    status.click()
    choices = page.get_by_role("group", name="Status")
    expect(choices).to_be_visible()
    assert_accessible(page)  # with the choices open
    choices.get_by_role("checkbox", name="Outstanding").check()
    expect(names(page)).to_have_text([outstanding["invoice_number"]])
    choices.get_by_role("checkbox", name="Payment Received").check()
    expect(names(page)).to_have_text([paid["invoice_number"], outstanding["invoice_number"]])
    page.keyboard.press("Escape")
    expect(choices).to_be_hidden()
    button = page.get_by_role(
        "button", name="Filter Status: Outstanding, Payment Received", exact=True
    )
    expect(button).to_have_text("Outstanding, Payment Received")
    expect(header(page, "Status")).to_have_attribute("aria-sort", "none")  # no sort by clicks
    rows(page).first.hover()  # a row under the pointer keeps its links readable
    assert_accessible(page)

    # By keyboard: the choices come next after their button; Escape leads back to it.
    button.focus()
    page.keyboard.press("Enter")
    expect(choices).to_be_visible()
    page.keyboard.press("Tab")
    expect(choices.get_by_role("checkbox", name="Outstanding")).to_be_focused()
    page.keyboard.press("Space")  # unticks Outstanding
    expect(names(page)).to_have_text([paid["invoice_number"]])
    for _ in range(5):  # past Processing, Payment Received, Partially Paid, Cancelled
        page.keyboard.press("Tab")
    expect(choices.get_by_role("checkbox", name="Expired")).to_be_focused()
    page.keyboard.press("Space")
    expect(names(page)).to_have_text([expired["invoice_number"], paid["invoice_number"]])
    page.keyboard.press("Escape")
    expect(choices).to_be_hidden()
    chosen = page.get_by_role("button", name="Filter Status: Payment Received, Expired")
    expect(chosen).to_be_focused()

    wait_until_saved(page)
    assert saved_layout(live_server)["filters"] == {"status": ["paid", "expired"]}
    open_grid(page)  # comes back as left
    search(page, prefix)
    expect(chosen).to_be_visible()
    expect(names(page)).to_have_text([expired["invoice_number"], paid["invoice_number"]])


def test_the_search_comes_back_at_the_next_sign_in_until_it_is_cleared(
    browser: Browser,
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    create_link(invoice_number=f"{prefix}-1")
    create_link(invoice_number=f"{prefix}-2")
    open_sent_pages(page, sign_in, live_server, prefix)
    expect(names(page)).to_have_count(2)
    wait_until_saved(page)
    assert saved_layout(live_server)["q"] == prefix

    with another_browser(browser, live_server, WIDE) as again:
        expect(again.get_by_label("Search")).to_have_value(prefix)
        expect(names(again)).to_have_text([f"{prefix}-2", f"{prefix}-1"])
        expect(again.locator("#grid-summary")).to_have_text("Links 1\u20132 of 2")

        again.get_by_role("link", name="Clear the search").click()
        expect(again.get_by_label("Search")).to_have_value("")
        expect(again.get_by_label("Search")).to_be_focused()
        expect(again.get_by_role("link", name="Clear the search")).to_be_hidden()
        expect(again.locator("#grid-summary")).not_to_have_text(re.compile(r" of 2$"))
        wait_until_saved(again)
        assert "q" not in saved_layout(live_server)
        assert_accessible(again)

    open_grid(page)
    expect(page.get_by_label("Search")).to_have_value("")


def test_keyboard_only_sorts_filters_and_chooses_columns(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    for n, name in enumerate(["Bea", "Al", "Cy"]):
        create_link(invoice_number=f"{prefix}-{n}", recipient_name=f"{name} {prefix}")
    open_sent_pages(page, sign_in, live_server, prefix)

    recipient = header(page, "Recipient")
    recipient.focus()
    page.keyboard.press("Enter")
    expect(recipient).to_have_attribute("aria-sort", "ascending")
    expect(names(page)).to_have_text([f"{prefix}-1", f"{prefix}-0", f"{prefix}-2"])

    page.get_by_label("Filter Recipient (contains)").focus()
    page.keyboard.type("cy")
    expect(names(page)).to_have_text([f"{prefix}-2"])

    page.get_by_role("button", name="Choose columns").focus()
    page.keyboard.press("Enter")
    panel = page.get_by_role("group", name="Columns")
    expect(panel.get_by_role("checkbox", name="Recipient", exact=True)).to_be_focused()
    page.keyboard.press("Space")  # unticks Recipient
    expect(header(page, "Recipient")).to_be_hidden()
    assert_accessible(page)  # with the configurator open
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Choose columns")).to_be_focused()
    assert_accessible(page)

    # A filter the API would refuse is left out, and said so, until it is right.
    page.get_by_label("Amount min").fill("a lot")
    refused = page.get_by_role("alert").filter(has_text="Left out of the filters")
    expect(refused).to_contain_text("Amount min: give a plain number")
    expect(names(page)).to_have_text([f"{prefix}-2"])
    page.get_by_label("Amount min").fill("1,000")
    expect(refused).to_contain_text("Amount min: give a plain number")
    page.get_by_label("Amount min").fill("500")
    expect(rows(page)).to_have_count(0)
    page.get_by_label("Amount min").fill("")
    expect(refused).to_have_count(0)
    expect(names(page)).to_have_text([f"{prefix}-2"])


def test_a_column_is_moved_by_dragging_its_header(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    create_link(invoice_number=f"{prefix}-D")
    open_sent_pages(page, sign_in, live_server, prefix)
    assert shown_titles(page)[:3] == ["Recipient", "Invoice Number", "Status"]

    status = header(page, "Status").locator(".tabulator-col-title").bounding_box()
    recipient = header(page, "Recipient").locator(".tabulator-col-title").bounding_box()
    assert status is not None and recipient is not None
    page.mouse.move(status["x"] + 10, status["y"] + 5)
    page.mouse.down()
    # Tabulator starts a move after the button has been held a moment.
    page.wait_for_timeout(400)
    page.mouse.move(recipient["x"] + 5, recipient["y"] + 5, steps=12)
    page.mouse.up()

    expect(header(page, "Status")).to_be_visible()
    assert shown_titles(page)[:3] == ["Status", "Recipient", "Invoice Number"]
    wait_until_saved(page)
    fields = [column["field"] for column in saved_layout(live_server)["columns"]]
    assert fields[:3] == ["status", "recipient_name", "invoice_number"]


# --- The layout, saved for the user --------------------------------------------------------


def test_the_layout_comes_back_at_the_next_sign_in_in_another_browser(
    browser: Browser,
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    for n, (amount, name) in enumerate([("30", "Acme"), ("10", "Acme Two"), ("20", "Other")]):
        create_link(amount=amount, invoice_number=f"{prefix}-{n}", recipient_name=name)
    open_sent_pages(page, sign_in, live_server, prefix)

    panel = open_columns(page)
    panel.get_by_role("checkbox", name="Emails", exact=True).uncheck()  # hide a column
    panel.get_by_role("button", name="Move Amount left").click()  # move another
    panel.get_by_role("checkbox", name="Source", exact=True).check()
    page.keyboard.press("Escape")
    header(page, "Amount").locator(".tabulator-col-title").click()  # sort
    page.get_by_label("Filter Recipient (contains)").fill("acme")  # filter
    expect(names(page)).to_have_text([f"{prefix}-1", f"{prefix}-0"])
    page.get_by_role("link", name=re.compile("^Outstanding")).click()  # Show
    expect(names(page)).to_have_text([f"{prefix}-1", f"{prefix}-0"])
    titles = shown_titles(page)
    assert "Emails" not in titles and "Source" in titles
    assert titles.index("Amount") < titles.index("Status")
    wait_until_saved(page)
    stored = saved_layout(live_server)
    assert stored["sort"] == "amount" and stored["show"] == "outstanding"
    assert stored["filters"] == {"recipient_name": "acme"}

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Email")).to_be_visible()

    # Another browser (no cookies, no storage of the first), signing in afresh.
    with another_browser(browser, live_server, WIDE) as again:
        search(again, prefix)

        assert shown_titles(again) == titles
        expect(header(again, "Amount")).to_have_attribute("aria-sort", "ascending")
        expect(again.get_by_label("Filter Recipient (contains)")).to_have_value("acme")
        expect(again.get_by_role("link", name=re.compile("^Outstanding"))).to_have_attribute(
            "aria-current", "page"
        )
        expect(names(again)).to_have_text([f"{prefix}-1", f"{prefix}-0"])


# --- Cancel --------------------------------------------------------------------------------


def test_cancel_with_nothing_ticked_says_so_without_asking(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    create_link(invoice_number=f"{prefix}-A")
    open_sent_pages(page, sign_in, live_server, prefix)
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))

    page.get_by_role("button", name="Cancel selected").click()

    expect(page.get_by_role("alert").filter(has_text="Select the links")).to_be_visible()
    assert asked == []


def test_cancelling_two_rows_keeps_the_view_and_skips_a_paid_one(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    # 30 links: two pages of 25, so that "the same page" means something.
    links = [
        create_link(amount=str(10 + n), invoice_number=f"{prefix}-{n:02}", recipient_name=f"R{n}")
        for n in range(30)
    ]
    paid = links[3]
    mark_paid(live_server, paid["id"])
    open_sent_pages(page, sign_in, live_server, prefix)
    header(page, "Amount").locator(".tabulator-col-title").click()
    expect(header(page, "Amount")).to_have_attribute("aria-sort", "ascending")
    header(page, "Amount").locator(".tabulator-col-title").click()  # by amount, largest first
    expect(header(page, "Amount")).to_have_attribute("aria-sort", "descending")
    page.get_by_label("Amount min").fill("11")
    panel = open_columns(page)
    panel.get_by_role("checkbox", name="Emails", exact=True).uncheck()
    page.keyboard.press("Escape")
    # The filter applies a moment after typing stops: then the first page has $39 to $15.
    expect(page.locator("#grid-summary")).to_have_text("Links 1\u201325 of 29")
    expect(names(page).first).to_have_text(f"{prefix}-29")
    page.locator("#sent-grid-pager").get_by_role("button", name="Next").click()
    expect(page.locator("#grid-summary")).to_have_text("Links 26\u201329 of 29")
    # 29 links of at least $11: page 1 has $39 down to $15, page 2 $14 down to $11.
    expect(names(page)).to_have_text([f"{prefix}-{n:02}" for n in (4, 3, 2, 1)])
    titles = shown_titles(page)

    page.get_by_label(f"Select {prefix}-04").check()
    page.get_by_label(f"Select {prefix}-02").check()
    page.get_by_label(f"Select {prefix}-03").check()  # paid: skipped
    questions: list[str] = []

    def say_no(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", say_no)
    page.get_by_role("button", name="Cancel selected").click()
    assert questions and questions[0].startswith("Cancel the 3 selected links?")
    assert status_in_db(live_server, links[4]["id"]) != STATUS_CANCELLED

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel selected").click()

    expect(page.get_by_role("status").filter(has_text="Cancelled 2 links")).to_contain_text(
        f"{prefix}-02, {prefix}-04"
    )
    expect(page.get_by_role("alert").filter(has_text="not cancelled")).to_contain_text(
        f"{prefix}-03 is payment received"
    )
    # The view is as it was: page 2, the same sort, filter and columns, the rows updated.
    expect(page.locator("#sent-grid-pager .tabulator-page.active")).to_have_text("2")
    expect(header(page, "Amount")).to_have_attribute("aria-sort", "descending")
    expect(page.get_by_label("Amount min")).to_have_value("11")
    assert shown_titles(page) == titles
    expect(names(page)).to_have_text([f"{prefix}-{n:02}" for n in (4, 3, 2, 1)])
    expect(rows(page).filter(has_text=f"{prefix}-04").locator(".badge")).to_have_text("Cancelled")
    expect(rows(page).filter(has_text=f"{prefix}-03").locator(".badge")).to_have_text(
        "Payment Received"
    )
    assert status_in_db(live_server, links[4]["id"]) == STATUS_CANCELLED
    assert status_in_db(live_server, links[2]["id"]) == STATUS_CANCELLED
    assert status_in_db(live_server, paid["id"]) == STATUS_PAID
    # A used link offers no copy.
    expect(page.get_by_role("button", name=f"Copy the payment link of {prefix}-04")).to_have_count(
        0
    )
    expect(page.get_by_role("button", name=f"Copy the payment link of {prefix}-01")).to_have_count(
        1
    )
    assert_accessible(page)


def test_a_partially_paid_row_leads_to_its_balance_link(
    context: BrowserContext,
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    staff_token: str,
    prefix: str,
) -> None:
    without = create_link(invoice_number=f"{prefix}-NOBAL")
    parent = create_link(invoice_number=f"{prefix}-BAL")
    for link in (without, parent):
        with live_server.dbsession() as dbsession:
            row = dbsession.get(PaymentLink, link["id"])
            assert row is not None
            row.status = "partially_paid"
            row.amount_paid_minor = row.amount_minor // 2
            row.paid_at = utcnow()
    answer = context.request.post(
        f"{live_server.url}/api/v1/links/{parent['id']}/balance-link",
        data={},
        headers={"Authorization": f"Bearer {staff_token}"},
    )
    assert answer.status == 201, answer.text()
    balance = answer.json()

    open_sent_pages(page, sign_in, live_server, prefix)
    page.get_by_role("link", name="Partially Paid").click()
    expect(names(page)).to_have_count(2)

    expect(page.get_by_role("link", name=f"Balance link of {prefix}-BAL")).to_have_attribute(
        "href", f"/links/{balance['id']}"
    )
    make = page.get_by_role("link", name=f"Make a balance link of {prefix}-NOBAL")
    expect(make).to_have_attribute("href", f"/links/{without['id']}#balance-heading")
    # A used link's payer link is not offered for copying.
    expect(page.get_by_role("button", name=re.compile("^Copy the payment link of"))).to_have_count(
        0
    )
    make.click()
    expect(page.get_by_role("heading", name=re.compile("^Unpaid balance"))).to_be_visible()


# --- Copy, export --------------------------------------------------------------------------


@BOTH_WIDTHS
def test_copy_a_payers_link_from_its_row(
    context: BrowserContext,
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
    viewport: ViewportSize,
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    create_link(invoice_number=f"{prefix}-A")
    wanted = create_link(invoice_number=f"{prefix}-B")
    open_sent_pages(page, sign_in, live_server, prefix)

    page.get_by_role("button", name=f"Copy the payment link of {prefix}-B").click()

    expect(page.locator("#announcer")).to_have_text("Link copied")
    assert page.evaluate("navigator.clipboard.readText()") == wanted["url"]


def test_the_export_has_the_grids_rows_in_its_columns(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    for n, amount in enumerate(["5", "40", "25", "60"]):
        create_link(amount=amount, invoice_number=f"{prefix}-{n}", recipient_name=f"Name {n}")
    open_sent_pages(page, sign_in, live_server, prefix)
    panel = open_columns(page)
    panel.get_by_role("checkbox", name="Emails", exact=True).uncheck()
    panel.get_by_role("checkbox", name="Created", exact=True).uncheck()
    panel.get_by_role("checkbox", name="Reminders Sent", exact=True).check()
    panel.get_by_role("button", name="Move Invoice Number left").click()
    page.keyboard.press("Escape")
    header(page, "Amount").locator(".tabulator-col-title").click()
    page.get_by_label("Amount min").fill("10")
    expect(names(page)).to_have_text([f"{prefix}-2", f"{prefix}-1", f"{prefix}-3"])
    titles = shown_titles(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export to Excel").click()

    download = download_info.value
    assert re.fullmatch(r"sent-pages-\d{4}-\d{2}-\d{2}\.xlsx", download.suggested_filename)
    path = download.path()
    assert path is not None
    with open(path, "rb") as file:
        workbook = load_workbook(io.BytesIO(file.read()))
    sheet = workbook["Sent Pages"]
    exported = list(sheet.iter_rows(values_only=True))
    assert list(exported[0]) == titles
    invoice = titles.index("Invoice Number")
    assert [row[invoice] for row in exported[1:]] == [f"{prefix}-2", f"{prefix}-1", f"{prefix}-3"]
    amount = titles.index("Amount")
    assert [row[amount] for row in exported[1:]] == [25, 40, 60]
    assert [row[titles.index("Reminders Sent")] for row in exported[1:]] == [0, 0, 0]


# --- Widths --------------------------------------------------------------------------------


def test_at_1280px_no_column_is_cut_off(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    create_link(
        invoice_number=f"{prefix}-LONG-INVOICE-NUMBER-2026",
        recipient_name="Alexandra Montgomery-Fitzwilliam",
        emails=["alexandra.montgomery-fitzwilliam@example-law-clients.test"],
        amount="1,234,567.89",
    )
    open_sent_pages(page, sign_in, live_server, prefix)
    panel = open_columns(page)
    for box in panel.get_by_role("checkbox").all():
        box.check()  # every column
    page.keyboard.press("Escape")

    # The page itself never scrolls sideways: the grid keeps inside the window...
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDE["width"]
    grid = page.locator("#sent-grid").bounding_box()
    assert grid is not None and grid["x"] + grid["width"] <= WIDE["width"]
    # ...and what is wider than the grid scrolls inside it, up to the very last column.
    holder = page.locator("#sent-grid .tabulator-tableholder")
    holder.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    last = page.locator("#sent-grid .tabulator-row").first.locator(".tabulator-cell").last
    box = holder.bounding_box()
    inner = last.bounding_box()
    assert box is not None and inner is not None
    assert inner["x"] + inner["width"] <= box["x"] + box["width"] + 1, (inner, box)
    assert inner["x"] >= box["x"], (inner, box)
    # The row's actions stay in view, whatever the scroll.
    copy = page.get_by_role("button", name=re.compile("^Copy the payment link of"))
    copied = copy.bounding_box()
    assert copied is not None and copied["x"] >= box["x"] and copied["x"] < WIDE["width"]


def test_on_a_phone_the_grid_scrolls_with_its_first_column_fixed(
    browser: Browser,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    create_link(invoice_number=f"{prefix}-P", recipient_name="Pat Phone")
    with another_browser(browser, live_server, PHONE) as page:
        search(page, prefix)
        expect(names(page)).to_have_text([f"{prefix}-P"])
        expect(page.locator("#grid-summary")).to_have_text("Links 1\u20131 of 1")

        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        holder = page.locator("#sent-grid .tabulator-tableholder")
        assert holder.evaluate("el => el.scrollWidth > el.clientWidth")
        name = names(page).first
        before = name.bounding_box()
        holder.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
        assert holder.evaluate("el => el.scrollLeft") > 0
        after = name.bounding_box()
        assert before is not None and after is not None
        assert after["x"] == pytest.approx(before["x"], abs=1)
        expect(name).to_be_in_viewport()
        assert_accessible(page)

        # The status choices open whole inside the phone's window, beside or above their button.
        page.get_by_role("button", name="Filter Status: Any").click()
        choices = page.get_by_role("group", name="Status")
        expect(choices).to_be_in_viewport(ratio=1)
        box = choices.bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        choices.get_by_role("checkbox", name="Outstanding").check()
        expect(names(page)).to_have_text([f"{prefix}-P"])
