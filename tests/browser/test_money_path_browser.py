"""The whole money path, as the people involved live it.

A staff member emails a Quick Link; the message arrives at a real SMTP server on loopback;
the payer opens the link from that email in their own browser, pays by card and gets a
receipt (and a receipt email); back in the office the link shows Payment Received.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.accessibility import assert_accessible
from tests.support.live_server import LiveServer, Login
from tests.support.smtp import Received

pytestmark = pytest.mark.browser

SignIn = Callable[[Login], None]
PAY_URL = re.compile(r"https?://[^\s\"'<>]+/pay/[A-Za-z0-9_-]{43}")


def wait_for_mail(live_server: LiveServer, recipient: str, mentioning: str) -> Received:
    """The first message to ``recipient`` whose text mentions ``mentioning``."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for received in live_server.smtp.messages:
            if recipient in received.rcpt_tos and mentioning in received.text:
                return received
        time.sleep(0.1)
    raise AssertionError(f"no message to {recipient} mentioning {mentioning!r} arrived")


def test_an_emailed_link_is_paid_by_card_and_shows_payment_received(
    page: Page, browser: Browser, sign_in: SignIn, live_server: LiveServer
) -> None:
    invoice = "INV-" + uuid.uuid4().hex[:8].upper()
    payer_email = f"client-{uuid.uuid4().hex[:6]}@example.test"

    sign_in(live_server.staff)
    page.goto("/links/quick")
    page.get_by_label("Merchant account").select_option(label="Operating (operating account)")
    page.get_by_label("Total amount").fill("$250.00")
    page.get_by_label("Invoice number (optional)").fill(invoice)
    page.get_by_label("Recipient's name").fill("Morgan Client")
    page.get_by_label("Email address", exact=True).fill(payer_email)
    page.get_by_role("button", name="Send Link").click()
    expect(page.get_by_role("heading", name="Link sent")).to_be_visible()
    page.get_by_role("link", name="View the link's page").click()
    expect(page.locator("[data-link-status]")).to_have_text("Outstanding")
    link_page = page.url

    email = wait_for_mail(live_server, payer_email, invoice)
    assert "Morgan Client" in email.text
    urls = set(PAY_URL.findall(email.text)) | set(PAY_URL.findall(email.html))
    assert len(urls) == 1, urls
    pay_url = urls.pop()
    assert pay_url.startswith(live_server.url)

    # The payer has no account and none of the staff member's cookies: a browser of their own.
    payer_context = browser.new_context(base_url=live_server.url)
    try:
        payer = payer_context.new_page()
        payer.goto(pay_url)
        expect(payer.locator(".pay-amount")).to_have_text("$250.00")
        expect(payer.get_by_text(invoice).first).to_be_visible()
        payer.get_by_label("Your full name").fill("Morgan Client")
        payer.get_by_label("Email for your receipt").fill(payer_email)
        payer.get_by_label("Card number").fill("4242 4242 4242 4242")
        payer.get_by_label("Expiry month").select_option("12")
        year = payer.get_by_label("Expiry year")
        year.select_option(year.locator("option").last.get_attribute("value"))
        payer.get_by_label("Security code (CVC)").fill("123")
        payer.get_by_role("button", name="Pay $250.00").click()

        payer.wait_for_url(re.compile(r"/pay/[A-Za-z0-9_-]{43}/receipt$"))
        expect(payer.get_by_role("heading", level=1)).to_have_text("Payment received")
        receipt_number = payer.locator(".pay-receipt-number").inner_text().strip()
        assert receipt_number.startswith("R-")
        assert_accessible(payer)
    finally:
        payer_context.close()

    receipt = wait_for_mail(live_server, payer_email, receipt_number)
    assert "$250.00" in receipt.text

    page.goto(link_page)
    expect(page.locator("[data-link-status]")).to_have_text("Payment Received")
    expect(page.get_by_text("$250.00").first).to_be_visible()
