"""Sent Pages in a real browser: links created through the API show up, sort by a click,
copy a payer's link, cancel a selection (after confirming); axe passes at both widths."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, ViewportSize, expect
from sqlalchemy import select

from clientpay_connect.accounts.services import create_api_token, find_user_by_email
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import STATUS_CANCELLED, STATUS_PAID, PaymentLink
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import NARROW, WIDE
from tests.support.live_server import LiveServer, Login

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]
BOTH_WIDTHS = pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["wide", "narrow"])


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
    page.goto("/sent")
    expect(page.get_by_role("heading", name="Sent Pages", level=1)).to_be_visible()
    page.get_by_label("Search").fill(q)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_label("Search")).to_have_value(q)


def rows(page: Page) -> Any:
    return page.locator("tbody tr")


def mark_paid(live_server: LiveServer, link_id: int) -> None:
    with live_server.dbsession() as dbsession:
        link = dbsession.get(PaymentLink, link_id)
        assert link is not None
        link.status = STATUS_PAID
        link.amount_paid_minor = link.amount_minor
        link.paid_at = utcnow()


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
    expect(rows(page)).to_have_count(3)
    expect(rows(page).locator("th")).to_have_text([f"{prefix}-2", f"{prefix}-1", f"{prefix}-0"])
    expect(page.get_by_role("columnheader", name="Created")).to_have_attribute(
        "aria-sort", "descending"
    )
    first = rows(page).first
    expect(first.locator(".badge")).to_have_text("Outstanding")
    expect(first).to_contain_text("$75.00")
    expect(first).to_contain_text("Client 2")
    assert_accessible(page)

    page.get_by_role("link", name="Amount", exact=True).click()
    expect(page.get_by_role("columnheader", name="Amount", exact=True)).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(rows(page).locator("th")).to_have_text([f"{prefix}-2", f"{prefix}-0", f"{prefix}-1"])

    rows(page).locator("th a").first.click()
    expect(page).to_have_url(re.compile(rf"/links/{created[2]['id']}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Link for Client 2 — {prefix}-2")


def test_cancel_selected_after_confirming(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    outstanding = create_link(invoice_number=f"{prefix}-OPEN")
    paid = create_link(invoice_number=f"{prefix}-PAID")
    mark_paid(live_server, paid["id"])
    open_sent_pages(page, sign_in, live_server, prefix)

    page.get_by_label(f"Select {prefix}-OPEN").check()
    page.get_by_label(f"Select {prefix}-PAID").check()
    questions: list[str] = []

    def say_no(dialog: Dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", say_no)
    page.get_by_role("button", name="Cancel selected").click()
    # Saying no leaves everything as it was.
    expect(page.get_by_label(f"Select {prefix}-OPEN")).to_be_checked()
    assert questions and questions[0].startswith("Cancel the 2 selected links?")
    assert status_in_db(live_server, outstanding["id"]) != STATUS_CANCELLED

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel selected").click()

    expect(page.get_by_role("status").filter(has_text="Cancelled 1 link")).to_contain_text(
        f"{prefix}-OPEN"
    )
    expect(page.get_by_role("alert")).to_contain_text(f"{prefix}-PAID is payment received")
    open_row = rows(page).filter(has_text=f"{prefix}-OPEN")
    expect(open_row.locator(".badge")).to_have_text("Cancelled")
    expect(page.get_by_label("Search")).to_have_value(prefix)
    assert status_in_db(live_server, outstanding["id"]) == STATUS_CANCELLED
    assert status_in_db(live_server, paid["id"]) == STATUS_PAID
    assert_accessible(page)


def status_in_db(live_server: LiveServer, link_id: int) -> str:
    with live_server.dbsession() as dbsession:
        return str(
            dbsession.execute(
                select(PaymentLink.status).where(PaymentLink.id == link_id)
            ).scalar_one()
        )


def test_select_all_selects_every_row_of_the_page(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    for n in range(3):
        create_link(invoice_number=f"{prefix}-{n}")
    open_sent_pages(page, sign_in, live_server, prefix)

    page.get_by_label("Select every link on this page").check()

    for n in range(3):
        expect(page.get_by_label(f"Select {prefix}-{n}")).to_be_checked()
    page.get_by_label(f"Select {prefix}-1").uncheck()
    expect(page.get_by_label("Select every link on this page")).not_to_be_checked()


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


def test_export_downloads_a_workbook_of_the_search(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    create_link: Callable[..., dict[str, Any]],
    prefix: str,
) -> None:
    create_link(invoice_number=f"{prefix}-X")
    open_sent_pages(page, sign_in, live_server, prefix)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export to Excel").click()

    download = download_info.value
    assert re.fullmatch(r"sent-pages-\d{4}-\d{2}-\d{2}\.xlsx", download.suggested_filename)


def test_at_1280px_the_copy_column_is_inside_the_box(
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
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth"), wrap.evaluate(
        "el => [el.scrollWidth, el.clientWidth]"
    )
    box = wrap.bounding_box()
    copy = page.get_by_role("button", name=re.compile("^Copy the payment link of")).first
    inner = copy.bounding_box()
    assert box is not None and inner is not None
    assert inner["x"] + inner["width"] <= box["x"] + box["width"], (inner, box)
