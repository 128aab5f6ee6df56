"""The money path with Stripe, end to end, as the people involved live it.

A staff member's firm takes cards on a Stripe merchant account (test keys; Stripe is
localstripe behind the Stripe.js stand-in, as in test_pay_stripe_browser.py). The payer opens
the link: a declined card is said to be declined and the link stays payable; another card
pays and gets a receipt. Back in the office the staff member refunds part of it from the
link's page; Stripe has the refund against the payment's charge, the page says what is left
to refund, Sent Pages shows it in its Amount Refunded column, and the payer is emailed a
notice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from clientpay_connect.accounts.models import User
from clientpay_connect.links.services import NewLink, create_link
from tests.browser import test_pay_stripe_browser as stripe_browser
from tests.browser.accessibility import assert_accessible
from tests.browser.test_money_path_browser import wait_for_mail
from tests.browser.test_pay_page_browser import PayLink, expect_receipt, stored
from tests.browser.test_pay_stripe_browser import fill_stripe_card, succeeded_intents
from tests.browser.test_refund_browser import refund_on_the_page
from tests.browser.test_sent_pages_browser import header, open_columns, open_grid, rows, search
from tests.support.live_server import LiveServer, Login
from tests.support.localstripe import LocalStripe

pytestmark = pytest.mark.browser

# The Stripe module's fixtures, named here so that pytest uses them in this module too: the
# app served with Stripe as its processor, the Stripe.js stand-in in front of localstripe,
# and localstripe emptied before each test.
live_server = stripe_browser.live_server
stripe_js = stripe_browser.stripe_js
fresh_stripe = stripe_browser.fresh_stripe

SignIn = Callable[[Login], None]

SUCCEEDS = "4242 4242 4242 4242"
# Stripe's test card declined when charged (a generic decline), by Stripe and by the stand-in.
DECLINED = "4000000000000002"


def stripe_link_of_the_staffs_firm(
    live_server: LiveServer, invoice: str, payer_email: str
) -> tuple[int, PayLink]:
    """The staff member's firm gets a Stripe merchant account (test keys, at localstripe),
    and the staff member a link of $123.45 on it."""
    encryptor = live_server.app.registry["clientpay.encryptor"]
    with live_server.dbsession() as dbsession:
        staff = dbsession.scalars(select(User).where(User.email == live_server.staff.email)).one()
        account = stripe_browser.add_stripe_account(
            dbsession, encryptor, staff.firm_id, name=f"Stripe Operating {uuid.uuid4().hex[:4]}"
        )
        link, token = create_link(
            dbsession,
            encryptor,
            staff,
            NewLink(
                merchant_account=account,
                amount_minor=12_345,
                invoice_number=invoice,
                recipient_name="Jordan Client",
                emails=[payer_email],
            ),
        )
        dbsession.flush()
        return link.id, PayLink(token, staff.firm.name)


def pay_declined_then_accepted(page: Page, link: PayLink, payer_email: str) -> str:
    """The payer's side: a declined card, then one that pays; the receipt's number."""
    page.goto(link.path)
    expect(page.locator(".test-mode-ribbon")).to_be_visible()
    expect(page.locator("#card-element input")).to_have_count(5)
    assert_accessible(page)
    page.get_by_label("Your full name").fill("Jordan Client")
    page.get_by_label("Email for your receipt").fill(payer_email)

    fill_stripe_card(page, DECLINED)
    page.get_by_role("button", name="Pay $123.45").click()
    expect(page.locator("#pay-error .pay-alert")).to_have_text(
        "Your card was declined. Please check the details or use another card."
    )
    expect(page).to_have_url(re.compile(rf"/pay/{re.escape(link.token)}$"))
    expect(page.get_by_role("button", name="Pay $123.45")).to_be_enabled()
    assert_accessible(page)

    fill_stripe_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").click()
    receipt_number = expect_receipt(page, link)
    expect(page.get_by_text("Visa ending in 4242")).to_be_visible()
    assert_accessible(page)
    return receipt_number


def open_the_links_page_to_refund(page: Page, link_id: int) -> None:
    """The staff member opens the paid link's page: all of it can be refunded."""
    page.goto(f"/links/{link_id}")
    expect(page.locator("[data-link-status]")).to_have_text("Payment Received")
    # Stripe's test keys: staff are told too that no real money moved.
    expect(page.locator(".test-mode-ribbon")).to_be_visible()
    expect(page.get_by_label(re.compile(r"Amount to refund"))).to_have_value("123.45")
    assert_accessible(page)


def the_charge_of(intent: Any) -> str:
    # The PaymentIntent names its charge, by id or (expanded) as the object.
    latest = intent.latest_charge
    return str(latest if isinstance(latest, str) else latest.id)


def test_a_stripe_payment_declined_then_paid_is_refunded_in_part_and_sent_pages_shows_it(
    page: Page,
    sign_in: SignIn,
    live_server: LiveServer,
    localstripe: LocalStripe,
) -> None:
    invoice = "INV-" + uuid.uuid4().hex[:8].upper()
    payer_email = f"jordan-{uuid.uuid4().hex[:6]}@example.test"
    link_id, link = stripe_link_of_the_staffs_firm(live_server, invoice, payer_email)

    # The payer first, in a fresh browser (no cookies): conftest's ``page`` fails the test on
    # any breach of the Stripe page's Content-Security-Policy or any script error.
    receipt_number = pay_declined_then_accepted(page, link, payer_email)

    # Stripe took exactly one payment, of the whole amount; the declined one was cancelled.
    [intent] = succeeded_intents(localstripe, link_id)
    assert intent.amount == 12_345
    intents = localstripe.payment_intents(link=str(link_id))
    assert sorted(i.status for i in intents) == ["canceled", "succeeded"]
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "paid"
    assert [p.status for p in payments] == ["failed", "succeeded"]
    assert payments[0].failure_code == "card_declined"
    assert payments[1].processor_ref == intent.id
    assert payments[1].receipt_number == receipt_number
    wait_for_mail(live_server, payer_email, receipt_number)

    # The office: the staff member (none of the payer's cookies) refunds $40.00 of the
    # $123.45 from the link's page.
    page.context.clear_cookies()
    sign_in(live_server.staff)
    open_the_links_page_to_refund(page, link_id)
    asked = refund_on_the_page(page, "40.00", "Overbilled hours")

    expect(page.get_by_text("Refunded $40.00")).to_be_visible()
    assert asked and "cannot be undone" in asked[0]
    expect(page.locator("[data-amount-refunded]")).to_have_text("$40.00")
    expect(page.locator("[data-refund]")).to_contain_text("Overbilled hours")
    expect(page.locator("[data-refund]")).to_contain_text("$40.00")
    expect(page.get_by_label(re.compile(r"Amount to refund \(at most \$83\.45\)"))).to_have_value(
        "83.45"
    )
    assert_accessible(page)

    # Stripe has that refund, against the payment's charge, and no other.
    refunds = localstripe.client().v1.refunds.list(params={"payment_intent": intent.id}).data
    assert [(r.amount, r.currency, r.status) for r in refunds] == [(4_000, "usd", "succeeded")]
    assert refunds[0].charge == the_charge_of(intent)

    # Sent Pages: the link is paid, and the Amount Refunded column (shown as a user shows
    # it, through the column chooser) says $40.00.
    open_grid(page)
    search(page, invoice)
    row = rows(page).filter(has_text=invoice)
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("Payment Received")
    expect(header(page, "Amount Refunded")).to_be_hidden()
    panel = open_columns(page)
    panel.get_by_role("checkbox", name="Amount Refunded", exact=True).check()
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(header(page, "Amount Refunded")).to_be_visible()
    refunded_cell = row.locator('.tabulator-cell[tabulator-field="amount_refunded"]')
    expect(refunded_cell).to_have_text("$40.00")
    expect(row.locator('.tabulator-cell[tabulator-field="amount_paid"]')).to_have_text("$123.45")
    assert_accessible(page)

    # The payer is told, by email, of the part refunded.
    notice = wait_for_mail(live_server, payer_email, "Amount refunded: $40.00")
    assert "part of your payment" in notice.text
    assert "Refunded to: Visa ending in 4242" in notice.text
    assert receipt_number in notice.text
    assert notice.message["Subject"].startswith("Refund of $40.00")
