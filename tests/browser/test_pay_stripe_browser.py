"""The payer's story in a real browser with Stripe as the processor: the card fields are
Stripe.js's, the browser makes the PaymentMethod, our server only ever sees its id.

Stripe here is localstripe (a fake Stripe API on loopback) behind tests/fakes/stripe_js.py,
which serves localstripe's stand-in Stripe.js completed with createPaymentMethod, and declines
Stripe's test cards that are declined when charged. The page's Content-Security-Policy names
that stand-in's origin; a violation of it, or any script error, fails the test (conftest's
``page``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import create_firm
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.crypto import Encryptor
from clientpay_connect.links.services import NewLink, create_link
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED
from tests.browser.accessibility import assert_accessible
from tests.browser.test_pay_page_browser import (
    UUID,
    PayLink,
    expect_receipt,
    pay_requests,
    stored,
)
from tests.fakes.httpserver import running
from tests.fakes.stripe_js import StripeJsStandIn
from tests.support.live_server import LiveServer, start_live_server
from tests.support.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, LocalStripe

pytestmark = pytest.mark.browser

SUCCEEDS = "4242424242424242"
# Declined when charged: by Stripe's (and this fake's) rule, and by localstripe's own.
DECLINED = ["4000000000000002", "4000000000000341"]


@pytest.fixture(scope="module")
def stripe_js(localstripe: LocalStripe) -> Iterator[StripeJsStandIn]:
    with running(StripeJsStandIn(localstripe.url, TEST_SECRET_KEY)) as fake:
        yield fake


@pytest.fixture(scope="module")
def live_server(
    base_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
    stripe_js: StripeJsStandIn,
) -> Iterator[LiveServer]:
    """The app served on loopback with Stripe as its processor, as in production: its API
    calls and the payer's Stripe.js both go to the stand-in (and on to localstripe)."""
    settings = {
        **base_settings,
        "clientpay.development": "false",
        "clientpay.processor": "clientpay_connect.pay.stripe_processor.StripeProcessor",
        "clientpay.stripe.api_base": stripe_js.base_url,
        "clientpay.stripe.js_url": f"{stripe_js.base_url}/js.stripe.com/v3/",
        "clientpay.stripe.max_network_retries": "0",
    }
    yield from start_live_server(settings, tmp_path_factory.mktemp("stripe-live-db"))


@pytest.fixture(autouse=True)
def fresh_stripe(localstripe: LocalStripe) -> None:
    # Link ids come again in another test module's database: so would its PaymentIntents.
    localstripe.forget_everything()


def add_stripe_account(
    session: Session,
    encryptor: Encryptor,
    firm_id: int,
    name: str = "Operating",
    accepts_echeck: bool = False,
) -> MerchantAccount:
    """A merchant account of the firm on Stripe with test keys (at localstripe)."""
    account = MerchantAccount(
        firm_id=firm_id,
        name=name,
        currency="USD",
        processor="stripe",
        accepts_card=True,
        accepts_echeck=accepts_echeck,
        stripe_secret_key_encrypted=encryptor.encrypt(TEST_SECRET_KEY),
        stripe_publishable_key=TEST_PUBLISHABLE_KEY,
    )
    session.add(account)
    session.flush()
    return account


def make_stripe_link(live_server: LiveServer, accepts_echeck: bool = False) -> tuple[int, PayLink]:
    """A firm of its own with a Stripe merchant account (test keys), and one link."""
    name = f"Okafor & Lane {uuid.uuid4().hex[:6]} LLP"
    encryptor = live_server.app.registry["clientpay.encryptor"]
    with live_server.dbsession() as session:
        firm = create_firm(session, name)
        account = add_stripe_account(session, encryptor, firm.id, accepts_echeck=accepts_echeck)
        link, token = create_link(
            session,
            encryptor,
            None,
            NewLink(
                merchant_account=account,
                amount_minor=12_345,
                invoice_number="INV-7310",
                recipient_name="Jordan Client",
                emails=["jordan@example.test"],
            ),
        )
        session.flush()
        link_id = link.id
    return link_id, PayLink(token, name)


def fill_stripe_card(page: Page, number: str) -> None:
    """Type the card into Stripe.js's fields (the stand-in's, which lie in our page where
    Stripe's lie in its frame)."""
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("34")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("10001")


def succeeded_intents(localstripe: LocalStripe, link_id: int) -> list[Any]:
    return [i for i in localstripe.payment_intents(link=str(link_id)) if i.status == "succeeded"]


def everything_stored(live_server: LiveServer) -> Iterator[str]:
    """Every value of every column of every table of the server's database, as text."""
    engine = live_server.app.registry["dbengine"]
    tables = MetaData()
    with engine.connect() as connection:
        tables.reflect(connection)
        for table in tables.sorted_tables:
            for row in connection.execute(select(table)):
                yield from (str(value) for value in row if value is not None)


def test_a_payer_pays_by_card_in_stripes_fields_and_our_server_never_sees_the_number(
    page: Page,
    live_server: LiveServer,
    localstripe: LocalStripe,
    stripe_js: StripeJsStandIn,
    caplog: pytest.LogCaptureFixture,
    session_log: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    link_id, link = make_stripe_link(live_server)
    requests = pay_requests(page, link)
    page.goto(link.path)
    expect(page.locator(".test-mode-ribbon")).to_be_visible()
    # pay.js has mounted Stripe.js's card field, in the box the page left for it.
    expect(page.locator("#card-element input")).to_have_count(5)
    assert_accessible(page)

    fill_stripe_card(page, SUCCEEDS)
    # Twice, as an impatient payer does: one payment.
    page.get_by_role("button", name="Pay $123.45").dblclick()
    receipt_number = expect_receipt(page, link)

    expect(page.get_by_text("Visa ending in 4242")).to_be_visible()
    expect(page.locator(".test-mode-ribbon")).to_be_visible()
    [intent] = succeeded_intents(localstripe, link_id)
    assert intent.amount == 12_345
    assert len(localstripe.payment_intents(link=str(link_id))) == 1
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "paid"
    assert [(p.status, p.receipt_number, p.processor_ref) for p in payments] == [
        (PAYMENT_SUCCEEDED, receipt_number, intent.id)
    ]
    # Only the PaymentMethod's id came to us, with the payer's name, email and amount.
    [request] = requests
    assert UUID.match(request.headers["idempotency-key"])
    body = request.post_data_json
    assert set(body) == {"payment_token", "amount", "payer_name", "payer_email"}
    assert body["payment_token"] == intent.payment_method
    assert stripe_js.card_numbers[body["payment_token"]] == SUCCEEDS
    # Nowhere on our side: not in what the page sent, our logs, or our database.
    assert SUCCEEDS not in (request.post_data or "")
    assert caplog.records, "the server's logs were captured"
    assert SUCCEEDS not in caplog.text
    assert SUCCEEDS not in session_log.read_text(encoding="utf-8")
    stored_values = list(everything_stored(live_server))
    assert receipt_number in stored_values  # the dump does see the payment
    assert not [value for value in stored_values if SUCCEEDS in value.replace(" ", "")]


@pytest.mark.parametrize("number", DECLINED)
def test_a_declined_card_shows_why_and_the_link_stays_payable(
    page: Page, live_server: LiveServer, localstripe: LocalStripe, number: str
) -> None:
    link_id, link = make_stripe_link(live_server)
    requests = pay_requests(page, link)
    page.goto(link.path)
    fill_stripe_card(page, number)
    page.get_by_role("button", name="Pay $123.45").click()

    alert = page.locator("#pay-error .pay-alert")
    expect(alert).to_have_text(
        "Your card was declined. Please check the details or use another card."
    )
    expect(page.get_by_role("button", name="Pay $123.45")).to_be_enabled()
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "outstanding"
    assert [p.failure_code for p in payments] == ["card_declined"]
    assert succeeded_intents(localstripe, link_id) == []

    # Another card, on the same page: paid.
    fill_stripe_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").click()
    expect_receipt(page, link)
    assert len(succeeded_intents(localstripe, link_id)) == 1
    keys = [request.headers["idempotency-key"] for request in requests]
    assert len(set(keys)) == 2


# Stripe's test card whose bank always asks the payer to confirm (3-D Secure).
ASKS_FOR_3DS = "4000002760003184"


def test_a_card_whose_bank_asks_to_confirm_is_paid_once_the_payer_confirms(
    page: Page, live_server: LiveServer, localstripe: LocalStripe
) -> None:
    link_id, link = make_stripe_link(live_server)
    requests = pay_requests(page, link)
    page.goto(link.path)
    fill_stripe_card(page, ASKS_FOR_3DS)
    page.get_by_role("button", name="Pay $123.45").click()

    # The bank's check, which Stripe.js shows over our page (the stand-in's: two buttons).
    check = page.get_by_role("button", name="Fail authentication")
    expect(check).to_be_visible()
    expect(page.get_by_role("button", name="Processing your payment…")).to_be_disabled()
    assert succeeded_intents(localstripe, link_id) == []
    check.click()

    alert = page.locator("#pay-error .pay-alert")
    expect(alert).to_have_text(
        "Your card's bank did not confirm the payment, so you were not charged. "
        "Please try again, or use another card."
    )
    expect(page.get_by_role("button", name="Pay $123.45")).to_be_enabled()
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "outstanding"
    assert [p.failure_code for p in payments] == ["authentication_failed"]

    # Again, and this time the payer confirms: paid, once.
    page.get_by_role("button", name="Pay $123.45").click()
    page.get_by_role("button", name="Complete authentication").click()
    receipt_number = expect_receipt(page, link)

    [intent] = succeeded_intents(localstripe, link_id)
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "paid"
    assert [(p.status, p.receipt_number) for p in payments] == [
        ("failed", None),
        (PAYMENT_SUCCEEDED, receipt_number),
    ]
    assert payments[1].processor_ref == intent.id
    # Each attempt asked twice with its key (to charge, then after the check): two keys.
    keys = [request.headers["idempotency-key"] for request in requests]
    assert len(keys) == 4
    assert keys[0] == keys[1] != keys[2] == keys[3]


def test_bank_account_numbers_go_to_stripe_js_only(
    page: Page, live_server: LiveServer, stripe_js: StripeJsStandIn
) -> None:
    """eCheck through Stripe: the page hands the bank account to Stripe.js (a us_bank_account
    PaymentMethod, served by the ACH fake in front of localstripe); our server gets only the
    PaymentMethod's id, answers that the debit is processing, and the page says so."""
    _link_id, link = make_stripe_link(live_server, accepts_echeck=True)
    to_us = pay_requests(page, link)
    to_stripe: list[Request] = []
    page.on(
        "request",
        lambda request: (
            to_stripe.append(request)
            if request.url.startswith(stripe_js.base_url) and request.method == "POST"
            else None
        ),
    )
    page.goto(link.path)
    page.get_by_label("Bank account (eCheck)").check()
    expect(page.locator("#card-fields")).to_be_hidden()
    page.get_by_label("Routing number").fill("110000000")
    page.get_by_label("Account number").fill("000123456789")
    page.get_by_label("Account type").select_option("savings")
    page.get_by_role("button", name="Pay $123.45").click()

    expect(page.locator(".pay-alert-done")).to_contain_text("bank payment was submitted")
    [ours] = to_us
    body = ours.post_data_json
    assert str(body["payment_token"]).startswith("pm_")
    assert "000123456789" not in (ours.post_data or "")
    assert "110000000" not in (ours.post_data or "")
    [request] = to_stripe
    assert request.url == f"{stripe_js.base_url}/v1/payment_methods"
    sent = dict(item.split("=", 1) for item in (request.post_data or "").split("&"))
    assert sent["type"] == "us_bank_account"
    assert sent["us_bank_account%5Baccount_number%5D"] == "000123456789"
    assert sent["us_bank_account%5Brouting_number%5D"] == "110000000"
    assert sent["us_bank_account%5Baccount_type%5D"] == "savings"
    assert sent["key"] == TEST_PUBLISHABLE_KEY
    stored_link, payments = stored(live_server, link.token)
    # Clearing takes days: taken, not yet paid, and not payable again meanwhile.
    assert [payment.status for payment in payments] == ["processing"]
    assert stored_link.status == "processing"


def test_a_bank_account_stripe_verifies_first_sends_the_payer_to_stripes_page(
    page: Page, live_server: LiveServer, localstripe: LocalStripe
) -> None:
    """Stripe holds the debit until the payer confirms micro-deposits: the page says so and
    links to Stripe's hosted verification page; nothing is paid and the link waits."""
    link_id, link = make_stripe_link(live_server, accepts_echeck=True)
    localstripe.ach.verify_with_microdeposits = True
    try:
        page.goto(link.path)
        page.get_by_label("Bank account (eCheck)").check()
        page.get_by_label("Routing number").fill("110000000")
        page.get_by_label("Account number").fill("000123456789")
        page.get_by_role("button", name="Pay $123.45").click()

        done = page.locator(".pay-alert-done")
        expect(done).to_contain_text("two small deposits")
    finally:
        localstripe.ach.verify_with_microdeposits = False
    [intent] = localstripe.payment_intents(link=str(link_id))
    stripe_url = intent.next_action.verify_with_microdeposits.hosted_verification_url
    verify = done.get_by_role("link", name="Verify your bank account")
    expect(verify).to_have_attribute("href", stripe_url)
    expect(page.locator("#pay-button")).to_be_disabled()
    stored_link, payments = stored(live_server, link.token)
    assert [payment.status for payment in payments] == ["processing"]
    assert stored_link.status == "processing"


def test_without_stripe_js_the_page_offers_no_card_form(
    page: Page, live_server: LiveServer, stripe_js: StripeJsStandIn
) -> None:
    """Stripe.js blocked (an extension, a network that drops it): the card could then only
    come to us, so the page shows no form and says what to do."""
    _link_id, link = make_stripe_link(live_server)
    page.route(f"{stripe_js.base_url}/js.stripe.com/v3/", lambda route: route.abort())
    page.goto(link.path)
    expect(page.get_by_role("heading", name="The secure payment form did not load")).to_be_visible()
    expect(page.locator("#pay-section")).to_be_hidden()
    assert_accessible(page)


def test_a_card_stripe_js_cannot_take_is_shown_by_its_field_and_nothing_is_sent_to_us(
    page: Page, live_server: LiveServer
) -> None:
    _link_id, link = make_stripe_link(live_server)
    to_us = pay_requests(page, link)
    page.goto(link.path)
    page.get_by_role("button", name="Pay $123.45").click()

    # Stripe.js's own words, beside its field, and the summary above the button.
    expect(page.locator("#card-element-error")).to_have_text("Your card number is incomplete.")
    expect(page.locator("#pay-error .pay-alert")).to_have_text(
        "Please check the highlighted fields."
    )
    expect(page.locator("#card-element")).to_have_attribute("aria-invalid", "true")
    assert to_us == []

    fill_stripe_card(page, SUCCEEDS)
    expect(page.locator("#card-element-error")).to_be_hidden()
    expect(page.locator("#pay-error .pay-alert")).to_have_count(0)
    page.get_by_role("button", name="Pay $123.45").click()
    expect_receipt(page, link)
    assert len(to_us) == 1
