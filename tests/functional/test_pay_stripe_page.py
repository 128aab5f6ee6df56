"""The payment page when the link's merchant account pays through Stripe: its card fields are
Stripe.js's (loaded from Stripe), no input of ours could take a card number, and only this
page's Content-Security-Policy lets Stripe in, exactly Stripe's origins."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.headers import content_security_policy
from clientpay_connect.pay.i18n import LANG_PARAM
from tests import factories
from tests.support import databases
from tests.support.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, LocalStripe
from tests.support.payments import SUCCEEDS, new_link, pay, submission

# Our own fields: the only inputs of the page that have a name.
OUR_FIELDS = {"payer_name", "payer_email", "amount", "method"}
# A name, id or autocomplete that says "card number", "security code" or "account number".
CARD_LIKE = re.compile(r"card|cc-|cvc|cvv|csc|pan\b|account.?number|routing", re.I)


@pytest.fixture(scope="module")
def standin_app(stripe_settings: dict[str, Any], localstripe: LocalStripe) -> Iterator[Router]:
    """Stripe, with Stripe.js from localstripe's stand-in (as the browser tests have it)."""
    settings = {
        **stripe_settings,
        "clientpay.stripe.js_url": f"{localstripe.url}/js.stripe.com/v3/",
    }
    application = main({}, **settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def stripe_db(stripe_app: Router) -> Iterator[Session]:
    with databases.rolled_back_session(stripe_app) as session:
        yield session


@pytest.fixture
def payer(stripe_app: Router, stripe_db: Session, client_ip: str) -> webtest.TestApp:
    return webtest.TestApp(
        stripe_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
    )


def stripe_link(
    app: Router, session: Session, accepts_echeck: bool = False, **account: Any
) -> tuple[Any, str]:
    encryptor = app.registry["clientpay.encryptor"]
    fields = {
        "processor": "stripe",
        "accepts_card": True,
        "accepts_echeck": accepts_echeck,
        "stripe_secret_key_encrypted": encryptor.encrypt(TEST_SECRET_KEY),
        "stripe_publishable_key": TEST_PUBLISHABLE_KEY,
        **account,
    }
    merchant_account = factories.MerchantAccountFactory(**fields)
    return new_link(session, app.registry, merchant_account, 12_345)


def policy_of(response: Any) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def script_data(page: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(page.html.find("script", id="pay-data").string)
    return data


@pytest.mark.parametrize("accepts_echeck", [False, True], ids=["card", "card and eCheck"])
def test_no_input_of_the_page_could_take_a_card_number(
    stripe_app, payer, stripe_db, accepts_echeck
):
    _link, token = stripe_link(stripe_app, stripe_db, accepts_echeck=accepts_echeck)
    page = payer.get(f"/pay/{token}", status=200)

    fields = page.html.find_all(["input", "select", "textarea"])
    assert {field.get("name") for field in fields if field.has_attr("name")} <= OUR_FIELDS
    for field in fields:
        if field.get("name") in OUR_FIELDS:
            continue
        # Whatever else there is (the bank account's, for Stripe.js) has no name, so no form
        # could ever send it to us, and stands outside our form.
        assert not field.has_attr("name")
        assert field.find_parent("form") is None
        assert not field.get("autocomplete", "").startswith("cc-")
    # Nothing to type a card number or security code in: Stripe's frame has them. The bank
    # account's fields are the page's own (Stripe.js has no field of its own for a typed
    # bank account), nameless, handed to Stripe.js only (static/pay.js).
    typed = [field for field in fields if field.get("type") not in ("radio", "hidden")]
    cards = [
        field
        for field in typed
        if CARD_LIKE.search(" ".join([field.get("id", ""), field.get("autocomplete", "")]))
        and not field.find_parent(id="bank-fields")
    ]
    assert cards == []
    # Stripe.js draws the card fields in the one box left for it.
    assert page.html.find(id="card-element").find_all(True) == []
    assert ("bank-fields" in page.text) is accepts_echeck


def test_the_page_loads_stripe_js_from_stripe_with_the_accounts_publishable_key(
    stripe_app, payer, stripe_db
):
    _link, token = stripe_link(stripe_app, stripe_db)
    page = payer.get(f"/pay/{token}", status=200)

    scripts = [tag["src"] for tag in page.html.find_all("script", src=True)]
    assert scripts[0] == "https://js.stripe.com/v3/"
    assert scripts[1].endswith("/pay.js")
    data = script_data(page)
    assert data["stripe"] == {"publishable_key": TEST_PUBLISHABLE_KEY, "locale": "en"}
    assert data["tokens_url"] == ""
    assert data["methods"] == ["card"]
    assert TEST_SECRET_KEY not in page.text
    assert "/sandbox/tokens" not in page.text
    # Stripe.js speaks the payer's language: its messages (a card number too short) show as
    # they are.
    spanish = payer.get(f"/pay/{token}", params={LANG_PARAM: "es"}, status=200)
    assert script_data(spanish)["stripe"]["locale"] == "es"


def test_the_payment_page_allows_exactly_stripes_origins(stripe_app, payer, stripe_db):
    _link, token = stripe_link(stripe_app, stripe_db)
    policy = policy_of(payer.get(f"/pay/{token}", status=200))

    assert policy["script-src"] == "'self' https://js.stripe.com https://*.js.stripe.com"
    assert policy["frame-src"] == (
        "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"
    )
    assert policy["connect-src"] == "'self' https://api.stripe.com"
    # Everything else as strict as every other page.
    strict = dict(
        part.strip().split(" ", 1)
        for part in content_security_policy(
            stripe_app.registry.settings.get("clientpay.frame_ancestors", "")
        ).split(";")
    )
    assert {
        k: v for k, v in policy.items() if k not in ("script-src", "frame-src", "connect-src")
    } == {k: v for k, v in strict.items() if k not in ("script-src", "connect-src")}


def test_only_the_payment_page_lets_stripe_in(stripe_app, payer, stripe_db, localstripe):
    _link, token = stripe_link(stripe_app, stripe_db)
    assert "stripe" in payer.get(f"/pay/{token}").headers["Content-Security-Policy"]
    pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"), status=201)

    others = [
        payer.get(f"/pay/{token}", status=200),  # now the page saying the link was paid
        payer.get(f"/pay/{token}/receipt", status=200),
        payer.get("/login"),
        payer.get("/pay/not-a-link-token-at-all", status=404),
    ]
    for response in others:
        assert "stripe" not in response.headers["Content-Security-Policy"], response.request.url
        assert response.html.find("script", src=re.compile("stripe")) is None


def test_with_recaptcha_the_page_allows_google_and_stripe_and_nothing_else(
    stripe_app, payer, stripe_db
):
    link, token = stripe_link(stripe_app, stripe_db)
    settings = stripe_db.get(FirmSettings, link.firm_id)
    settings.recaptcha_enabled = True
    settings.recaptcha_site_key = "site-key-123"
    stripe_db.flush()
    policy = policy_of(payer.get(f"/pay/{token}", status=200))

    google = "https://www.google.com https://www.gstatic.com"
    assert policy["script-src"] == f"'self' {google} https://js.stripe.com https://*.js.stripe.com"
    assert policy["frame-src"] == (
        f"{google} https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"
    )
    assert policy["connect-src"] == "'self' https://api.stripe.com"


def test_with_a_stand_in_for_stripe_js_the_policy_names_the_stand_in(
    standin_app, client_ip, localstripe
):
    with databases.rolled_back_session(standin_app) as session:
        _link, token = stripe_link(standin_app, session)
        payer = webtest.TestApp(standin_app, extra_environ={"REMOTE_ADDR": client_ip})
        page = payer.get(f"/pay/{token}", status=200)
    policy = policy_of(page)
    assert policy["script-src"] == f"'self' {localstripe.url}"
    assert policy["frame-src"] == localstripe.url
    assert policy["connect-src"] == f"'self' {localstripe.url}"
    assert "stripe.com" not in page.headers["Content-Security-Policy"]
    assert page.html.find("script", src=True)["src"] == f"{localstripe.url}/js.stripe.com/v3/"


def test_an_account_without_a_publishable_key_offers_no_form_and_lets_nothing_in(
    stripe_app, payer, stripe_db
):
    _link, token = stripe_link(stripe_app, stripe_db, stripe_publishable_key="")
    page = payer.get(f"/pay/{token}", status=200)
    assert page.html.find(id="pay-form") is None
    assert "Online payment is not available" in page.text
    assert "stripe" not in page.headers["Content-Security-Policy"]
    assert page.html.find("script", src=re.compile("stripe")) is None


def test_an_account_on_another_processor_gets_no_stripe_fields(stripe_app, payer, stripe_db):
    """Its card fields would be another processor's: not Stripe's, even with a key stored."""
    _link, token = stripe_link(stripe_app, stripe_db, processor="sandbox")
    page = payer.get(f"/pay/{token}", status=200)
    assert page.html.find(id="card-element") is None
    assert page.html.find("script", src=re.compile("stripe")) is None
    assert "stripe" not in page.headers["Content-Security-Policy"]
