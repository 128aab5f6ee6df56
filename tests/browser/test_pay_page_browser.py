"""The payer's story in a real browser: open the link, pay by card or eCheck, get a receipt.

The page's own script (static/pay.js) does the work: it tokenizes the card or bank account at
the sandbox processor, then posts only the token to the payment API. Each test has its own
firm and link in the live server's database.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, Route, ViewportSize, expect
from sqlalchemy import select

from clientpay_connect.accounts.services import create_firm
from clientpay_connect.admin.models import FirmSettings, MerchantAccount
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import NewLink, create_link, find_by_token
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import NARROW
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.browser

SUCCEEDS = "4242 4242 4242 4242"
DECLINED = "4000000000000002"
UNREACHABLE = "4000000000000515"
ROUTING = "110000000"
ACCOUNT_SUCCEEDS = "000123456789"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@dataclass
class PayLink:
    token: str
    firm_name: str

    @property
    def path(self) -> str:
        return f"/pay/{self.token}"


def make_link(live_server: LiveServer, amount_minor: int = 12_345, **fields: Any) -> PayLink:
    """A firm of its own (so no other test's settings leak in) and one outstanding link."""
    name = f"Rivera & Stone {uuid.uuid4().hex[:6]} LLP"
    with live_server.dbsession() as session:
        firm = create_firm(session, name)
        session.get_one(
            FirmSettings, firm.id
        ).disclaimer = "Payments are applied to the invoice shown. Card payments are final."
        account = MerchantAccount(firm_id=firm.id, name="Operating", currency="USD")
        session.add(account)
        session.flush()
        _link, token = create_link(
            session,
            live_server.app.registry["clientpay.encryptor"],
            None,
            NewLink(
                merchant_account=account,
                amount_minor=amount_minor,
                invoice_number="INV-5521",
                recipient_name="Jordan Client",
                emails=["jordan@example.test"],
                **fields,
            ),
        )
    return PayLink(token, name)


def stored(live_server: LiveServer, token: str) -> tuple[PaymentLink, list[Payment]]:
    with live_server.dbsession() as session:
        link = find_by_token(session, token)
        assert link is not None
        payments = list(
            session.scalars(select(Payment).where(Payment.link_id == link.id).order_by(Payment.id))
        )
        session.expunge_all()
    return link, payments


def pay_requests(page: Page, link: PayLink) -> list[Request]:
    """Every POST the page makes to the payment API, as the server would receive it."""
    seen: list[Request] = []

    def on_request(request: Request) -> None:
        if request.method == "POST" and request.url.endswith(f"/api/v1/pay/{link.token}"):
            seen.append(request)

    page.on("request", on_request)
    return seen


def fill_card(page: Page, number: str, month: str = "12", year: str | None = None) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry month").select_option(month)
    expiry_year = page.get_by_label("Expiry year")
    # The last year offered: always in the future, whatever today is.
    expiry_year.select_option(year or expiry_year.locator("option").last.get_attribute("value"))
    page.get_by_label("Security code (CVC)").fill("123")


def expect_receipt(page: Page, link: PayLink) -> str:
    page.wait_for_url(re.compile(rf"/pay/{re.escape(link.token)}/receipt"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment received")
    number = page.locator(".pay-receipt-number")
    expect(number).to_have_text(re.compile(r"\S+"))
    return number.inner_text().strip()


def test_pay_by_card_and_get_a_receipt(page: Page, live_server: LiveServer) -> None:
    link = make_link(live_server)
    requests = pay_requests(page, link)
    page.goto(link.path)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pay {link.firm_name}")
    expect(page.locator(".pay-amount")).to_have_text("$123.45")
    expect(page.get_by_label("Amount to pay (USD)")).to_have_value("123.45")
    expect(page.get_by_text("Card payments are final.")).to_be_visible()
    # pay.js has taken over: the form is shown, the no-JavaScript note is not.
    expect(page.get_by_text("JavaScript is needed to pay")).to_be_hidden()
    assert_accessible(page)

    fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").click()
    receipt_number = expect_receipt(page, link)

    expect(page.get_by_text("Visa ending in 4242")).to_be_visible()
    expect(page.locator(".pay-receipt-details")).to_contain_text(link.firm_name)
    expect(page.locator(".pay-receipt-details")).to_contain_text("$123.45")
    assert_accessible(page)

    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "paid"
    assert [(p.status, p.receipt_number, p.payer_name) for p in payments] == [
        (PAYMENT_SUCCEEDED, receipt_number, "Jordan Client")
    ]
    [request] = requests
    assert UUID.match(request.headers["idempotency-key"])
    body = request.post_data_json
    assert set(body) == {"payment_token", "amount", "payer_name", "payer_email"}
    assert body["amount"] == "123.45"
    assert body["payment_token"].startswith("tok_")
    # The card number went to the tokenization only, never to the payment API.
    assert "4242" not in (request.post_data or "")

    # The link is used up: opening it again says so, and offers the receipt.
    page.goto(link.path)
    expect(page.get_by_role("heading", level=1)).to_have_text("This invoice has been paid")
    expect(page.locator("#pay-form")).to_have_count(0)
    assert_accessible(page)


def test_a_declined_card_can_be_corrected_and_the_link_stays_payable(
    page: Page, live_server: LiveServer
) -> None:
    link = make_link(live_server)
    requests = pay_requests(page, link)
    page.goto(link.path)
    page.get_by_label("Your full name").fill("Jordan Q. Client")
    fill_card(page, DECLINED)
    page.get_by_role("button", name="Pay $123.45").click()

    alert = page.locator("#pay-error .pay-alert")
    expect(alert).to_have_text(re.compile(r"^Your card was declined"))
    expect(page).to_have_url(re.compile(rf"/pay/{re.escape(link.token)}$"))
    # What was typed is still there, and the button works again.
    expect(page.get_by_label("Your full name")).to_have_value("Jordan Q. Client")
    expect(page.get_by_label("Card number")).to_have_value(DECLINED)
    expect(page.get_by_role("button", name="Pay $123.45")).to_be_enabled()
    assert_accessible(page)
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "outstanding"
    assert [p.failure_code for p in payments] == ["card_declined"]

    fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").click()
    expect_receipt(page, link)
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "paid"
    assert [p.status for p in payments] == ["failed", PAYMENT_SUCCEEDED]
    # A new submission, a new key: the decline's key would only replay the decline.
    keys = [request.headers["idempotency-key"] for request in requests]
    assert len(keys) == 2
    assert keys[0] != keys[1]


@pytest.mark.parametrize("viewport", [NARROW], ids=["phone"])
def test_pay_by_echeck_on_a_narrow_screen(
    page: Page, live_server: LiveServer, viewport: ViewportSize
) -> None:
    link = make_link(live_server, amount_minor=50_000)
    page.goto(link.path)
    # Nothing sticks out sideways in the matter software's narrow panel.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.get_by_label("Routing number")).to_be_hidden()
    page.get_by_label("Bank account (eCheck)").check()
    expect(page.get_by_label("Card number")).to_be_hidden()
    page.get_by_label("Routing number").fill(ROUTING)
    page.get_by_label("Account number").fill(ACCOUNT_SUCCEEDS)
    page.get_by_label("Account type").select_option("checking")
    assert_accessible(page)
    page.get_by_role("button", name="Pay $500.00").click()
    expect_receipt(page, link)
    expect(page.get_by_text("Bank account ending in 6789")).to_be_visible()
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "paid"
    assert [(p.method, p.last4) for p in payments] == [("echeck", "6789")]


def test_a_partial_payment_uses_up_the_link(page: Page, live_server: LiveServer) -> None:
    link = make_link(live_server, amount_minor=100_000)
    page.goto(link.path)
    expect(page.get_by_text("Any payment uses up this link")).to_be_visible()
    page.get_by_label("Amount to pay (USD)").fill("250.00")
    fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $250.00").click()
    expect_receipt(page, link)
    expect(page.locator(".pay-balance")).to_contain_text("$750.00")
    stored_link, payments = stored(live_server, link.token)
    assert (stored_link.status, stored_link.amount_paid_minor) == ("partially_paid", 25_000)
    assert [p.amount_minor for p in payments] == [25_000]
    # Opened again, the link says what it took and what is left, and takes nothing more.
    page.goto(link.path)
    expect(page.get_by_role("heading", level=1)).to_have_text("Part of this invoice has been paid")
    expect(page.get_by_text("$750.00 remains")).to_be_visible()
    expect(page.locator("#pay-button")).to_have_count(0)
    assert_accessible(page)


def test_mistakes_are_caught_before_anything_is_sent(page: Page, live_server: LiveServer) -> None:
    link = make_link(live_server)
    requests = pay_requests(page, link)
    page.goto(link.path)
    page.get_by_label("Amount to pay (USD)").fill("500.00")
    page.get_by_label("Card number").fill("4242 4242 4242 4241")
    page.get_by_role("button", name="Pay now").click()

    expect(page.locator("#pay-error .pay-alert")).to_have_text(
        "Please check the highlighted fields."
    )
    expect(page.locator("#amount-error")).to_have_text(
        "Enter an amount more than zero and no more than $123.45."
    )
    expect(page.locator("#card-number-error")).to_be_visible()
    expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#card-expiry-error")).to_be_visible()
    # The first field in error has the focus.
    expect(page.get_by_label("Amount to pay (USD)")).to_be_focused()
    assert_accessible(page)
    assert requests == []
    assert stored(live_server, link.token)[0].status == "outstanding"

    # Each mark goes as soon as its field is right; still wrong, it stays.
    page.get_by_label("Amount to pay (USD)").fill("100")
    expect(page.locator("#amount-error")).to_be_hidden()
    expect(page.get_by_label("Amount to pay (USD)")).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Card number").fill("4242 4242 4242 4243")
    expect(page.locator("#card-number-error")).to_be_visible()
    page.get_by_label("Card number").fill(SUCCEEDS)
    expect(page.locator("#card-number-error")).to_be_hidden()
    expect(page.locator("#pay-error .pay-alert")).to_be_visible()
    fill_card(page, SUCCEEDS)
    expect(page.locator("#card-expiry-error")).to_be_hidden()
    # Nothing left to fix: the summary goes too.
    expect(page.locator("#pay-error .pay-alert")).to_have_count(0)
    assert_accessible(page)


def test_a_lost_answer_is_retried_with_the_same_key(page: Page, live_server: LiveServer) -> None:
    link = make_link(live_server)
    requests = pay_requests(page, link)
    failures = {"left": 1}

    def drop_once(route: Route) -> None:
        # The network fails before the first attempt reaches the server.
        if failures["left"]:
            failures["left"] -= 1
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(rf"/api/v1/pay/{re.escape(link.token)}$"), drop_once)
    page.goto(link.path)
    fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").click()
    expect(page.locator("#pay-error .pay-alert")).to_contain_text("could not reach")
    page.get_by_role("button", name="Pay $123.45").click()
    expect_receipt(page, link)
    keys = [request.headers["idempotency-key"] for request in requests]
    assert len(keys) == 2
    assert keys[0] == keys[1]


def test_an_answer_lost_after_the_charge_is_asked_for_again_with_the_same_body(
    page: Page, live_server: LiveServer
) -> None:
    link = make_link(live_server)
    requests = pay_requests(page, link)
    losses = {"left": 1}

    def lose_the_answer_once(route: Route) -> None:
        # The payment reaches the server and is charged; only its answer is lost.
        if losses["left"]:
            losses["left"] -= 1
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(rf"/api/v1/pay/{re.escape(link.token)}$"), lose_the_answer_once)
    page.goto(link.path)
    fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").click()
    expect(page.locator("#pay-error .pay-alert")).to_contain_text("could not reach")
    page.get_by_role("button", name="Pay $123.45").click()
    expect_receipt(page, link)
    # The same key with the very same body (the card's token too): the first answer, no charge.
    assert [r.headers["idempotency-key"] for r in requests] == [
        requests[0].headers["idempotency-key"]
    ] * 2
    assert requests[0].post_data_json == requests[1].post_data_json
    _link, payments = stored(live_server, link.token)
    assert [p.status for p in payments] == ["succeeded"]


def test_no_answer_from_the_processor_means_do_not_pay_again(
    page: Page, live_server: LiveServer
) -> None:
    link = make_link(live_server)
    page.goto(link.path)
    # The sandbox's number for a processor that cannot be reached.
    fill_card(page, UNREACHABLE)
    page.get_by_role("button", name="Pay $123.45").click()
    expect(page.locator("#pay-error .pay-alert")).to_contain_text("Please do not pay again")
    expect(page.locator("#pay-button")).to_be_disabled()
    assert stored(live_server, link.token)[0].status == "processing"
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your payment is being processed")


def test_a_double_click_pays_once(page: Page, live_server: LiveServer) -> None:
    link = make_link(live_server)
    requests = pay_requests(page, link)
    page.goto(link.path)
    fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").dblclick()
    expect_receipt(page, link)
    assert len(requests) == 1
    _link, payments = stored(live_server, link.token)
    assert len(payments) == 1


def test_the_page_in_spanish(page: Page, live_server: LiveServer) -> None:
    link = make_link(live_server, locale="es")
    page.goto(link.path)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pagar a {link.firm_name}")
    assert_accessible(page)
    page.get_by_label("Número de tarjeta").fill(DECLINED)
    page.get_by_label("Mes de vencimiento").select_option("12")
    year = page.get_by_label("Año de vencimiento")
    year.select_option(year.locator("option").last.get_attribute("value"))
    page.get_by_label("Código de seguridad (CVC)").fill("123")
    page.get_by_role("button", name="Pagar $123.45").click()
    expect(page.locator("#pay-error .pay-alert")).to_have_text(
        re.compile(r"^Su tarjeta fue rechazada")
    )
    assert_accessible(page)

    # The payer switches to English; the page follows, and so does the receipt.
    page.get_by_role("navigation", name="Idioma").get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    fill_card(page, SUCCEEDS)
    page.get_by_role("button", name="Pay $123.45").click()
    expect_receipt(page, link)
    expect(page).to_have_url(re.compile(r"\?lang=en$"))


def test_without_javascript_the_page_explains_why_it_cannot_take_a_payment(
    browser: Browser, live_server: LiveServer
) -> None:
    link = make_link(live_server)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        tab = context.new_page()
        tab.goto(link.path)
        expect(tab.get_by_role("heading", name="JavaScript is needed to pay")).to_be_visible()
        expect(tab.locator(".pay-amount")).to_have_text("$123.45")
        expect(tab.get_by_label("Card number")).to_be_hidden()
        expect(tab.locator("#pay-button")).to_be_hidden()
    finally:
        context.close()


def test_an_unknown_link_is_a_clear_page(page: Page) -> None:
    response = page.goto("/pay/this-is-not-a-real-link")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment link not found")
    assert_accessible(page)


def close_link(live_server: LiveServer, token: str, state: str) -> None:
    """The link as staff cancelling it, or time running out, leaves it."""
    with live_server.dbsession() as session:
        link = find_by_token(session, token)
        assert link is not None
        if state == "expired":
            link.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        else:
            link.status = state


@pytest.mark.parametrize(
    ("state", "locale", "heading"),
    [
        ("cancelled", "en", "This payment link was cancelled"),
        ("expired", "en", "This payment link has expired"),
        ("cancelled", "es", "Este enlace de pago fue cancelado"),
        ("expired", "es", "Este enlace de pago venció"),
    ],
)
def test_a_closed_link_is_an_accessible_page(
    page: Page, live_server: LiveServer, state: str, locale: str, heading: str
) -> None:
    link = make_link(live_server, locale=locale)
    close_link(live_server, link.token, state)
    page.goto(link.path)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("#pay-form")).to_have_count(0)
    assert_accessible(page)


def press_tab_until(page: Page, element_id: str, limit: int = 30) -> None:
    """Tab forward, as a keyboard user does, until the element with ``element_id`` has the
    focus; fail if it never gets it (it would be out of the keyboard's reach)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} never got the focus after {limit} presses of Tab")


def test_the_payment_is_made_with_the_keyboard_alone(page: Page, live_server: LiveServer) -> None:
    link = make_link(live_server)
    page.goto(link.path)
    expect(page.locator("#pay-section")).to_be_visible()
    # No mouse from here on: every field is reached with Tab, in the order it is read.
    for element_id in ["payer-name", "payer-email", "amount", "card-number"]:
        press_tab_until(page, element_id)
        # What the firm filled in is replaced, as a person would select it and type over.
        page.keyboard.press("Control+A")
        if element_id == "payer-name":
            page.keyboard.type("Kim Keyboard")
        elif element_id == "payer-email":
            page.keyboard.type("kim@example.test")
        elif element_id == "card-number":
            page.keyboard.type("4242424242424242")
    # A closed select changes with the arrow keys; End picks the last year (in the future).
    page.keyboard.press("Tab")
    expect(page.get_by_label("Expiry month")).to_be_focused()
    page.keyboard.type("12")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Expiry year")).to_be_focused()
    page.keyboard.press("End")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Security code (CVC)")).to_be_focused()
    page.keyboard.type("123")
    press_tab_until(page, "pay-button")
    # The focus is drawn where it is, so a sighted keyboard user can see it.
    outline = page.locator("#pay-button").evaluate(
        "el => [getComputedStyle(el).outlineStyle, getComputedStyle(el).boxShadow]"
    )
    assert outline != ["none", "none"], outline
    page.keyboard.press("Enter")

    expect_receipt(page, link)
    stored_link, payments = stored(live_server, link.token)
    assert stored_link.status == "paid"
    assert [(p.payer_name, p.payer_email, p.last4) for p in payments] == [
        ("Kim Keyboard", "kim@example.test", "4242")
    ]
