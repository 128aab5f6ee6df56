"""Quick Link in a real browser: generate a link and copy it, send one and see who it went to,
fix a mistake; the pages pass axe at the panel's width and at a desktop's."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, ViewportSize, expect
from sqlalchemy import select

from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import find_by_token
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import NARROW, WIDE
from tests.support.live_server import LiveServer, Login

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]
BOTH_WIDTHS = pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["wide", "narrow"])


def invoice_number() -> str:
    # The live server's database lives for the whole session: every test its own invoice.
    return "INV-" + uuid.uuid4().hex[:8].upper()


def open_quick_link(page: Page, sign_in: SignIn, live_server: LiveServer) -> None:
    sign_in(live_server.staff)
    page.goto("/links/quick")
    expect(page.get_by_role("heading", name="Quick Link", level=1)).to_be_visible()
    # The demo firm has two accounts, so nothing is chosen for us.
    page.get_by_label("Merchant account").select_option(label="Operating (operating account)")


@BOTH_WIDTHS
def test_generate_link_then_copy_it(
    context: BrowserContext,
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    viewport: ViewportSize,
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    open_quick_link(page, sign_in, live_server)
    assert_accessible(page)
    page.get_by_label("Total amount").fill("$1,250.00")
    number = invoice_number()
    page.get_by_label("Invoice number (optional)").fill(number)

    page.get_by_label("No").check()
    # The email half goes away; only its button remains to press.
    expect(page.get_by_role("button", name="Send Link")).to_be_hidden()
    expect(page.get_by_label("Recipient's name")).to_be_hidden()
    page.get_by_role("button", name="Generate Link").click()

    expect(page.get_by_role("heading", name="Your link is ready")).to_be_visible()
    url_field = page.get_by_label("Payment link")
    expect(url_field).to_have_attribute("readonly", "")
    url = url_field.input_value()
    assert url.startswith(live_server.url + "/pay/")
    assert_accessible(page)

    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#announcer")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url

    with live_server.dbsession() as dbsession:
        link = find_by_token(dbsession, url.rsplit("/pay/", 1)[1])
        assert link is not None
        assert (link.amount_minor, link.invoice_number) == (125_000, number)
        assert link.email_status == "not_sent"


def test_send_link_to_two_addresses_shows_the_confirmation(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    open_quick_link(page, sign_in, live_server)
    page.get_by_label("Total amount").fill("480")
    number = invoice_number()
    page.get_by_label("Invoice number (optional)").fill(number)
    expect(page.get_by_role("button", name="Generate Link")).to_be_hidden()
    page.get_by_label("Recipient's name").fill("Dana Client")
    page.get_by_label("Email address", exact=True).fill("dana@example.test")

    page.get_by_role("button", name="Add another address").click()
    second = page.get_by_label("Email address 2")
    expect(second).to_be_focused()
    second.fill("accounts@example.test")
    page.get_by_role("button", name="Send Link").click()

    expect(page.get_by_role("heading", name="Link sent")).to_be_visible()
    recipients = page.locator("[data-recipients] li")
    expect(recipients).to_have_text(["dana@example.test", "accounts@example.test"])
    assert_accessible(page)

    page.get_by_role("link", name="View the link's page").click()
    expect(page.locator("[data-link-status]")).to_have_text("Outstanding")
    expect(page.get_by_text(number).first).to_be_visible()
    with live_server.dbsession() as dbsession:
        link = dbsession.execute(
            select(PaymentLink).where(PaymentLink.invoice_number == number)
        ).scalar_one()
        assert link.emails == ["dana@example.test", "accounts@example.test"]
        assert link.email_status in ("queued", "sent")


def test_mistakes_are_shown_beside_their_fields_and_nothing_typed_is_lost(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    open_quick_link(page, sign_in, live_server)
    page.get_by_label("Total amount").fill("12.345")
    page.get_by_label("Email address", exact=True).fill("dana@example.test, dana@")
    page.get_by_role("button", name="Send Link").click()

    amount = page.get_by_label("Total amount")
    expect(amount).to_have_value("12.345")
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(amount).to_have_accessible_description(
        re.compile("An amount in USD has at most 2 decimals.")
    )
    email = page.get_by_label("Email address", exact=True)
    expect(email).to_have_value("dana@example.test, dana@")
    expect(email).to_have_accessible_description(
        re.compile("“dana@” is not a valid email address.")
    )
    expect(page.get_by_role("alert")).to_contain_text("Please correct these 2 fields")
    assert_accessible(page)

    # Corrected, a field loses its mark and its message before the form goes again.
    amount.fill("12.34")
    expect(amount).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#amount-error")).to_be_hidden()
    expect(email).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


def test_enter_in_a_field_follows_the_yes_no_choice(
    page: Page, sign_in: SignIn, live_server: LiveServer
) -> None:
    open_quick_link(page, sign_in, live_server)
    page.get_by_label("No").check()
    page.get_by_label("Invoice number (optional)").fill(invoice_number())
    amount = page.get_by_label("Total amount")
    amount.fill("20")
    amount.press("Enter")
    expect(page.get_by_role("heading", name="Your link is ready")).to_be_visible()


@BOTH_WIDTHS
def test_the_link_page_is_accessible(
    page: Page, sign_in: SignIn, live_server: LiveServer, viewport: ViewportSize
) -> None:
    open_quick_link(page, sign_in, live_server)
    page.get_by_label("Total amount").fill("99")
    page.get_by_label("No").check()
    page.get_by_role("button", name="Generate Link").click()
    page.get_by_role("link", name="View the link's page").click()
    expect(page.locator("[data-link-status]")).to_have_text("Outstanding")
    expect(page.get_by_role("button", name="Cancel link")).to_be_visible()
    assert_accessible(page)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel link").click()
    expect(page.locator("[data-link-status]")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel link")).to_have_count(0)
