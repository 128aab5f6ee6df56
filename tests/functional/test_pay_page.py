"""The payer's page and receipt through the real app: what each state of a link shows."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.db import utcnow
from clientpay_connect.headers import content_security_policy
from tests import factories
from tests.support.payments import bank_account, card, new_link, pay, submission, tokenize

DISCLAIMER = "Payments are applied to your oldest invoice first.\nQuestions? Call us."


@pytest.fixture
def account(firm: Any) -> Any:
    return factories.MerchantAccountFactory(firm=firm)


@pytest.fixture
def firm_settings(dbsession: Any, firm: Any) -> FirmSettings:
    settings: FirmSettings = dbsession.get(FirmSettings, firm.id)
    settings.disclaimer = DISCLAIMER
    dbsession.flush()
    return settings


@pytest.fixture
def link_and_token(app: Any, dbsession: Any, account: Any, firm_settings: FirmSettings) -> Any:
    return new_link(
        dbsession,
        app.registry,
        account,
        123_450,
        invoice_number="INV-2041",
        invoice_date=dt.date(2025, 2, 3),
        due_date=dt.date(2025, 3, 5),
        recipient_name="Dana Client",
        emails=["dana@example.test"],
    )


@pytest.fixture
def link(link_and_token: Any) -> Any:
    return link_and_token[0]


@pytest.fixture
def token(link_and_token: Any) -> str:
    return str(link_and_token[1])


def script_data(page: Any) -> dict[str, Any]:
    element = page.html.find("script", id="pay-data")
    assert element is not None, "the page has no data block for pay.js"
    assert element["type"] == "application/json"
    data: dict[str, Any] = json.loads(element.string)
    return data


def text_of(page: Any) -> str:
    return " ".join(page.html.get_text(" ").split())


# An outstanding link: the form


def test_an_outstanding_link_shows_what_is_due_and_the_form(testapp, firm, token):
    page = testapp.get(f"/pay/{token}", status=200)
    text = text_of(page)
    assert page.html.find("h1").get_text(strip=True) == f"Pay {firm.name}"
    assert "$1,234.50" in text
    assert "INV-2041" in text
    assert "March 5, 2025" in text
    assert "February 3, 2025" in text
    form = page.html.find("form", id="pay-form")
    assert form is not None
    amount = form.find("input", id="amount")
    assert amount["value"] == "1234.50"
    assert form.find("input", id="payer-name")["value"] == "Dana Client"
    assert form.find("input", id="payer-email")["value"] == "dana@example.test"
    # A partial payment is allowed, and the page says what it costs.
    hint = page.html.find(id="amount-hint").get_text(" ", strip=True)
    assert "less than the amount due" in hint
    assert "uses up this link" in hint
    assert "new link" in hint
    assert page.html.find("button", id="pay-button").get_text(strip=True) == "Pay $1,234.50"


def test_the_firms_disclaimer_is_at_the_bottom(testapp, token):
    page = testapp.get(f"/pay/{token}")
    footer = page.html.find("footer")
    disclaimer = footer.find(class_="pay-disclaimer")
    assert disclaimer is not None
    assert disclaimer.find("p").get_text() == DISCLAIMER


def test_card_and_bank_numbers_are_outside_the_form_and_have_no_name(testapp, token):
    page = testapp.get(f"/pay/{token}")
    form = page.html.find("form", id="pay-form")
    secret_fields = [
        "card-number",
        "card-exp-month",
        "card-exp-year",
        "card-cvc",
        "routing-number",
        "account-number",
        "account-type",
    ]
    for field_id in secret_fields:
        element = page.html.find(id=field_id)
        assert element is not None, field_id
        assert not element.has_attr("name"), f"{field_id} would be posted with a form"
        assert not element.has_attr("form"), f"{field_id} is attached to a form"
        assert form not in element.parents, f"{field_id} is inside the form posted to us"
    # Only our own fields are named.
    names = {field["name"] for field in page.html.select("[name]") if field.name != "meta"}
    assert names == {"payer_name", "payer_email", "amount", "method"}


def test_the_page_offers_the_methods_of_the_links_merchant_account(
    app, dbsession, firm, firm_settings, testapp
):
    cards_only = factories.MerchantAccountFactory(firm=firm, accepts_echeck=False)
    _link, token = new_link(dbsession, app.registry, cards_only, 5_000)
    page = testapp.get(f"/pay/{token}")
    assert page.html.find(id="card-fields") is not None
    assert page.html.find(id="bank-fields") is None
    assert page.html.find("input", {"type": "radio"}) is None
    assert script_data(page)["methods"] == ["card"]

    echeck_only = factories.MerchantAccountFactory(firm=firm, accepts_card=False)
    _link, token = new_link(dbsession, app.registry, echeck_only, 5_000)
    page = testapp.get(f"/pay/{token}")
    assert page.html.find(id="card-fields") is None
    assert page.html.find(id="bank-fields") is not None
    assert page.html.find("input", {"name": "method"})["value"] == "echeck"


def test_a_choice_of_card_or_echeck_when_the_account_takes_both(testapp, token):
    page = testapp.get(f"/pay/{token}")
    radios = page.html.select("input[type=radio][name=method]")
    assert [radio["value"] for radio in radios] == ["card", "echeck"]
    assert radios[0].has_attr("checked")
    # Card first; the bank fields wait until the payer chooses them.
    assert not page.html.find(id="card-fields").has_attr("hidden")
    assert page.html.find(id="bank-fields").has_attr("hidden")


def test_an_inactive_merchant_account_takes_no_payment(app, dbsession, firm, testapp):
    closed = factories.MerchantAccountFactory(firm=firm, active=False)
    _link, token = new_link(dbsession, app.registry, closed, 5_000)
    page = testapp.get(f"/pay/{token}")
    assert page.html.find("form") is None
    assert "cannot take payments online" in text_of(page)


def test_pay_js_gets_its_addresses_and_messages_from_the_page(testapp, token):
    page = testapp.get(f"/pay/{token}")
    data = script_data(page)
    assert data["pay_url"] == f"/api/v1/pay/{token}"
    assert data["tokens_url"] == "/sandbox/tokens"
    assert data["receipt_url"] == f"/pay/{token}/receipt"
    assert data["amount_due"] == "1234.50"
    assert data["currency"] == "USD"
    assert data["minor_digits"] == 2
    assert data["recaptcha"] is False
    assert data["messages"]["card_declined"].startswith("Your card was declined")
    assert "$1,234.50" in data["messages"]["amount"]
    # The addresses pay.js uses are real: the sandbox tokenizes and the API answers.
    payment_token = tokenize(testapp, card())
    assert payment_token.startswith("tok_")
    assert testapp.get(data["pay_url"]).json["status"] == "outstanding"
    script = page.html.find("script", src=True)
    assert "/static/pay.js" in script["src"]
    assert testapp.get(script["src"]).status_int == 200


def test_the_data_block_cannot_break_out_of_its_script_element(app, dbsession, firm, testapp):
    firm.name = "</script><script>alert(1)</script> & Co"
    account = factories.MerchantAccountFactory(firm=firm)
    _link, token = new_link(dbsession, app.registry, account, 5_000)
    page = testapp.get(f"/pay/{token}")
    assert "<script>alert(1)</script>" not in page.text
    assert script_data(page)["messages"]["not_payable"].endswith(
        "Please contact </script><script>alert(1)</script> & Co."
    )


def test_without_javascript_the_page_says_it_is_needed(testapp, token):
    page = testapp.get(f"/pay/{token}")
    noscript = page.html.find("noscript")
    assert noscript is not None
    assert "JavaScript" in noscript.get_text()
    # The form stays hidden until pay.js shows it: there is no way to pay without it.
    assert page.html.find(id="pay-section").has_attr("hidden")


# Headers


def test_the_page_sends_no_referrer_and_is_not_cached(testapp, token):
    page = testapp.get(f"/pay/{token}")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.html.find("meta", attrs={"name": "robots"})["content"] == "noindex, nofollow"


def test_without_recaptcha_the_page_keeps_the_sites_policy_and_loads_nothing_from_google(
    app, testapp, token
):
    page = testapp.get(f"/pay/{token}")
    expected = content_security_policy(app.registry.settings.get("clientpay.frame_ancestors", ""))
    assert page.headers["Content-Security-Policy"] == expected
    assert "google" not in page.text
    assert page.html.find(class_="g-recaptcha") is None


def test_with_recaptcha_the_page_loads_google_and_allows_it_in_the_policy(
    dbsession, firm_settings, testapp, token
):
    firm_settings.recaptcha_enabled = True
    firm_settings.recaptcha_site_key = "site-key-123"
    dbsession.flush()
    page = testapp.get(f"/pay/{token}")
    widget = page.html.find(class_="g-recaptcha")
    assert widget["data-sitekey"] == "site-key-123"
    scripts = [tag["src"] for tag in page.html.find_all("script", src=True)]
    assert "https://www.google.com/recaptcha/api.js?hl=en" in scripts
    assert script_data(page)["recaptcha"] is True
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["Content-Security-Policy"].split(";")
    )
    assert policy["script-src"] == "'self' https://www.google.com https://www.gstatic.com"
    assert policy["frame-src"] == "https://www.google.com https://www.gstatic.com"
    # Everything else stays as strict as on every other page.
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert "frame-ancestors" in policy
    # Only this page: the receipt and other pages keep the plain policy.
    other = testapp.get("/login")
    assert "google" not in other.headers["Content-Security-Policy"]


def test_recaptcha_switched_on_without_a_site_key_shows_no_widget(
    dbsession, firm_settings, testapp, token
):
    firm_settings.recaptcha_enabled = True
    firm_settings.recaptcha_site_key = ""
    dbsession.flush()
    page = testapp.get(f"/pay/{token}")
    assert page.html.find(class_="g-recaptcha") is None
    assert "google" not in page.headers["Content-Security-Policy"]


# Links that can no longer be paid


@pytest.mark.parametrize(
    ("status", "heading", "explanation"),
    [
        ("cancelled", "This payment link was cancelled", "cancelled this link"),
        ("expired", "This payment link has expired", "contact"),
        ("processing", "Your payment is being processed", "will not be charged twice"),
    ],
)
def test_a_link_that_cannot_be_paid_says_so_and_shows_no_form(
    dbsession, testapp, link, token, status, heading, explanation
):
    link.status = status
    dbsession.flush()
    page = testapp.get(f"/pay/{token}", status=200)
    assert page.html.find("h1").get_text(strip=True) == heading
    assert explanation in text_of(page)
    assert page.html.find("form") is None
    assert page.html.find(id="card-number") is None
    assert page.html.find("script", id="pay-data") is None
    assert "pay.js" not in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_an_outstanding_link_past_its_expiry_is_shown_as_expired(dbsession, testapp, link, token):
    link.expires_at = utcnow() - dt.timedelta(minutes=1)
    dbsession.flush()
    page = testapp.get(f"/pay/{token}")
    assert page.html.find("h1").get_text(strip=True) == "This payment link has expired"
    assert page.html.find("form") is None


def test_a_paid_link_says_so_and_points_to_the_receipt(testapp, link, token):
    pay(testapp, token, submission(tokenize(testapp, card()), amount="1234.50"), status=201)
    page = testapp.get(f"/pay/{token}")
    assert page.html.find("h1").get_text(strip=True) == "This invoice has been paid"
    assert "A payment of $1,234.50 was received on" in text_of(page)
    assert page.html.find("form") is None
    receipt = page.html.find("a", string="View the receipt")
    assert receipt["href"] == f"/pay/{token}/receipt"


def test_a_partially_paid_link_says_what_was_received_and_what_remains(
    testapp, dbsession, firm, link, token
):
    # Seen before the payment too: the page kept for the outstanding link is not shown again.
    assert testapp.get(f"/pay/{token}").html.find(id="card-number") is not None
    pay(testapp, token, submission(tokenize(testapp, card()), amount="234.50"), status=201)
    page = testapp.get(f"/pay/{token}")
    text = text_of(page)
    assert page.html.find("h1").get_text(strip=True) == "Part of this invoice has been paid"
    assert (
        f"A payment of $234.50 was received; $1,000.00 remains — contact {firm.name} "
        "for a new link."
    ) in text
    assert page.html.find("title").get_text() == f"Part of this invoice has been paid · {firm.name}"
    assert "This invoice has been paid" not in text
    assert page.html.find("form") is None
    assert page.html.find("a", string="View the receipt")["href"] == f"/pay/{token}/receipt"
    # Past the link's expiry it stays what it is: the payment was made.
    link.expires_at = utcnow() - dt.timedelta(days=1)
    dbsession.flush()
    later = testapp.get(f"/pay/{token}")
    assert later.html.find("h1").get_text(strip=True) == "Part of this invoice has been paid"


def test_a_partially_paid_link_speaks_spanish_too(app, dbsession, account, firm, testapp):
    _link, token = new_link(dbsession, app.registry, account, 125_000, locale="es")
    pay(testapp, token, submission(tokenize(testapp, card()), amount="250.00"), status=201)
    page = testapp.get(f"/pay/{token}")
    text = text_of(page)
    assert page.html.find("h1").get_text(strip=True) == "Se ha pagado parte de esta factura"
    assert (
        f"Se recibió un pago de $250.00; quedan $1,000.00 por pagar. Comuníquese con "
        f"{firm.name} para obtener un nuevo enlace."
    ) in text
    assert page.html.find("a", string="Ver el recibo") is not None
    receipt = testapp.get(f"/pay/{token}/receipt")
    assert "$1,000.00" in receipt.html.find(class_="pay-balance").get_text(" ", strip=True)


def test_an_unknown_token_is_a_clear_404_page(testapp):
    page = testapp.get("/pay/no-such-token-anywhere", status=404)
    assert page.html.find("h1").get_text(strip=True) == "Payment link not found"
    assert "contact the firm that sent it" in text_of(page)
    assert page.html.find("form") is None
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # No staff navigation, no sign-in link: a payer has no account.
    assert "/login" not in page.text


def test_the_receipt_of_an_unknown_token_is_a_404_too(testapp):
    testapp.get("/pay/no-such-token-anywhere/receipt", status=404)


def test_guessing_tokens_is_slowed_down(app_settings, db_connection, client_ip):
    import webtest

    from clientpay_connect import main

    settings = {
        **app_settings,
        "clientpay.limits.token_lookups": "2/minute",
        "clientpay.limits.storage_url": "memory://",
        "clientpay.redis_url": "",
    }
    strict = main({}, **settings)
    try:
        client = webtest.TestApp(strict, extra_environ={"REMOTE_ADDR": client_ip})
        client.get("/pay/guess-1", status=404)
        client.get("/pay/guess-2", status=404)
        page = client.get("/pay/guess-3", status=429)
        assert page.html.find("h1").get_text(strip=True) == "Too many attempts"
        # Another address is not affected.
        other = webtest.TestApp(strict, extra_environ={"REMOTE_ADDR": "192.0.2.77"})
        other.get("/pay/guess-4", status=404)
    finally:
        strict.registry["dbengine"].dispose()


# The receipt


def test_the_receipt_shows_what_was_paid_how_and_to_whom(testapp, firm, link, token):
    pay(testapp, token, submission(tokenize(testapp, card()), amount="1234.50"), status=201)
    answer = testapp.get(f"/api/v1/pay/{token}")
    assert answer.json["status"] == "paid"
    page = testapp.get(f"/pay/{token}/receipt", status=200)
    text = text_of(page)
    assert page.html.find("h1").get_text(strip=True) == "Payment received"
    number = page.html.find(class_="pay-receipt-number").get_text(strip=True)
    assert number
    assert "$1,234.50" in text
    assert "Visa ending in 4242" in text
    assert firm.name in text
    assert "INV-2041" in text
    assert "Pat Payer" in text
    # Dated by the firm's clock (its settings' time zone), not the server's.
    today = utcnow().astimezone(ZoneInfo("America/New_York"))
    assert f"{today:%B} {today.day}, {today.year}" in text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.html.find("form") is None
    # No balance note: the whole amount was paid.
    assert page.html.find(class_="pay-balance") is None


def test_the_receipt_number_is_the_one_the_api_gave(testapp, token):
    answer = pay(testapp, token, submission(tokenize(testapp, card()), amount="10.00"), status=201)
    page = testapp.get(f"/pay/{token}/receipt")
    shown = page.html.find(class_="pay-receipt-number").get_text(strip=True)
    assert shown == answer.json["receipt_number"]


def test_a_partial_payment_receipt_explains_the_balance(testapp, token):
    pay(testapp, token, submission(tokenize(testapp, bank_account()), amount="234.50"), status=201)
    page = testapp.get(f"/pay/{token}/receipt")
    balance = page.html.find(class_="pay-balance").get_text(" ", strip=True)
    assert "$1,234.50" in balance
    assert "$1,000.00" in balance
    assert "new link" in balance
    assert "Bank account ending in 6789" in text_of(page)


def test_there_is_no_receipt_for_a_link_not_yet_paid(testapp, token):
    answer = testapp.get(f"/pay/{token}/receipt", status=303)
    assert answer.location.endswith(f"/pay/{token}")
    answer = testapp.get(f"/pay/{token}/receipt?lang=es", status=303)
    assert answer.location.endswith(f"/pay/{token}?lang=es")


# Spanish


def test_a_spanish_link_shows_the_page_in_spanish(app, dbsession, account, firm, testapp):
    _link, token = new_link(
        dbsession, app.registry, account, 123_450, due_date=dt.date(2025, 3, 5), locale="es"
    )
    page = testapp.get(f"/pay/{token}")
    text = text_of(page)
    assert page.html.find("html")["lang"] == "es"
    assert page.html.find("h1").get_text(strip=True) == f"Pagar a {firm.name}"
    assert "Monto adeudado" in text
    assert "5 de marzo de 2025" in text
    assert "Número de tarjeta" in text
    assert "Ir al contenido principal" in text
    assert page.html.find("button", id="pay-button").get_text(strip=True) == "Pagar $1,234.50"
    messages = script_data(page)["messages"]
    assert messages["card_declined"].startswith("Su tarjeta fue rechazada")
    assert messages["insufficient_funds"].startswith("Su pago fue rechazado por fondos")
    assert "Amount due" not in text


def test_the_payer_can_switch_to_spanish_and_back(testapp, token):
    english = testapp.get(f"/pay/{token}")
    switch = {a["lang"]: a for a in english.html.select("nav.pay-lang a")}
    assert switch["en"].get("aria-current") == "true"
    assert switch["es"].get_text(strip=True) == "Español"
    spanish = testapp.get(switch["es"]["href"])
    assert spanish.request.path_qs == f"/pay/{token}?lang=es"
    assert spanish.html.find("html")["lang"] == "es"
    assert "Monto adeudado" in text_of(spanish)
    # The receipt keeps the payer's choice.
    assert script_data(spanish)["receipt_url"] == f"/pay/{token}/receipt?lang=es"
    back = testapp.get(f"/pay/{token}?lang=en")
    assert "Amount due" in text_of(back)


def test_an_explicit_english_choice_beats_a_spanish_link(app, dbsession, account, testapp):
    _link, token = new_link(dbsession, app.registry, account, 5_000, locale="es")
    assert "Amount due" in text_of(testapp.get(f"/pay/{token}?lang=en"))
    # An unsupported choice falls back to the link's language.
    assert "Monto adeudado" in text_of(testapp.get(f"/pay/{token}?lang=fr"))


def test_closed_states_and_receipts_speak_spanish(app, dbsession, account, testapp):
    link, token = new_link(dbsession, app.registry, account, 5_000, locale="es")
    link.status = "cancelled"
    dbsession.flush()
    page = testapp.get(f"/pay/{token}")
    assert page.html.find("h1").get_text(strip=True) == "Este enlace de pago fue cancelado"

    _link, token = new_link(dbsession, app.registry, account, 5_000, locale="es")
    pay(testapp, token, submission(tokenize(testapp, card()), amount="50.00"), status=201)
    receipt = testapp.get(f"/pay/{token}/receipt")
    text = text_of(receipt)
    assert receipt.html.find("h1").get_text(strip=True) == "Pago recibido"
    assert "Visa terminada en 4242" in text
    assert "Número de recibo" in text


def test_an_unknown_token_follows_the_browsers_language(testapp):
    page = testapp.get(
        "/pay/no-such-token", headers={"Accept-Language": "es-MX,es;q=0.9"}, status=404
    )
    assert page.html.find("h1").get_text(strip=True) == "No se encontró el enlace de pago"
    assert page.html.find("html")["lang"] == "es"


def test_the_page_is_well_formed_enough_for_a_parser(testapp, token):
    # Every label points at a field that exists: the form is usable by assistive technology.
    page = testapp.get(f"/pay/{token}")
    soup = BeautifulSoup(page.text, "html.parser")
    for label in soup.find_all("label", attrs={"for": True}):
        assert soup.find(id=label["for"]) is not None, label["for"]
    for element in soup.find_all(attrs={"aria-describedby": True}):
        for ref in element["aria-describedby"].split():
            assert soup.find(id=ref) is not None, ref


@pytest.mark.parametrize("status", ["paid", "cancelled", "expired"])
def test_a_closed_link_tells_the_payer_how_to_reach_the_firm(
    dbsession, testapp, firm, link, token, status
):
    dbsession.get(FirmSettings, firm.id).reply_to_email = "billing@rivera.test"
    link.status = status
    dbsession.flush()
    page = testapp.get(f"/pay/{token}")
    contact = page.html.select_one(".pay-contact")
    assert contact.get_text(" ", strip=True) == (
        f"To reach {firm.name}, write to billing@rivera.test ."
    )
    assert contact.find("a")["href"] == "mailto:billing@rivera.test"


def test_without_a_firm_address_the_closed_page_points_to_the_email(
    app, dbsession, account, firm, testapp
):
    dbsession.get(FirmSettings, firm.id).reply_to_email = ""
    link, token = new_link(dbsession, app.registry, account, 5_000, locale="es")
    link.status = "cancelled"
    dbsession.flush()
    page = testapp.get(f"/pay/{token}")
    assert page.html.select_one(".pay-contact").get_text(strip=True) == (
        f"Para comunicarse con {firm.name}, responda al correo que le trajo este enlace."
    )
    assert page.html.select_one(".pay-contact a") is None
