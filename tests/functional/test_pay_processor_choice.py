"""Each merchant account pays through its own processor: on an instance for development, one
firm's test account on the sandbox and its operating account on Stripe (localstripe, behind
our bank-debit fake, over real HTTP), side by side in one app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.router import Router

from clientpay_connect import main
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.pay.facts import link_facts
from clientpay_connect.pay.models import Payment
from clientpay_connect.pay.tasks import RESOLVE_JOB
from tests import factories
from tests.conftest import login
from tests.fakes.stripe_cut import CuttingStripeProxy
from tests.functional import test_pay_stripe as card_tests
from tests.support import databases
from tests.support.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY
from tests.support.payments import ANSWER_LOST, SUCCEEDS, card, new_link, pay, submission, tokenize

# The card tests' database and payer, on this module's app (an instance for development).
proxy, proxy_passes = card_tests.proxy, card_tests.proxy_passes
stripe_db, payer = card_tests.stripe_db, card_tests.payer


@pytest.fixture(scope="module")
def stripe_pay_app(app_settings: dict[str, Any], proxy: CuttingStripeProxy) -> Iterator[Router]:
    """An instance for development whose default is the sandbox, Stripe offered beside it."""
    settings = {
        **app_settings,
        "clientpay.development": "true",
        "clientpay.processor": "clientpay_connect.pay.processor.SandboxProcessor",
        "clientpay.stripe.api_base": proxy.base_url,
        "clientpay.stripe.max_network_retries": "0",
    }
    application = main({}, **settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def two_accounts(stripe_pay_app, stripe_db):
    firm = factories.FirmFactory()
    encryptor = stripe_pay_app.registry["clientpay.encryptor"]
    sandbox = factories.MerchantAccountFactory(firm=firm, name="Test", processor="sandbox")
    stripe = factories.MerchantAccountFactory(
        firm=firm,
        name="Operating",
        processor="stripe",
        stripe_secret_key_encrypted=encryptor.encrypt(TEST_SECRET_KEY),
        stripe_publishable_key=TEST_PUBLISHABLE_KEY,
    )
    stripe_db.flush()
    return sandbox, stripe


def _payment(stripe_db, payment_id) -> Payment:
    stripe_db.expire_all()
    return stripe_db.get(Payment, payment_id)


def test_each_account_is_paid_through_its_own_processor(
    stripe_pay_app, payer, stripe_db, two_accounts, localstripe
):
    sandbox_account, stripe_account = two_accounts
    sandbox_link, sandbox_token = new_link(stripe_db, stripe_pay_app.registry, sandbox_account)
    stripe_link, stripe_token = new_link(stripe_db, stripe_pay_app.registry, stripe_account)

    by_sandbox = pay(payer, sandbox_token, submission(tokenize(payer, card(SUCCEEDS))), status=201)
    by_stripe = pay(
        payer, stripe_token, submission(localstripe.payment_method(SUCCEEDS)), status=201
    )

    sandbox_payment = _payment(stripe_db, by_sandbox.json["payment_id"])
    stripe_payment = _payment(stripe_db, by_stripe.json["payment_id"])
    assert (sandbox_payment.processor, sandbox_payment.processor_ref[:3]) == ("sandbox", "ch_")
    assert (stripe_payment.processor, stripe_payment.processor_ref[:3]) == ("stripe", "pi_")
    assert localstripe.payment_intents(link=str(sandbox_link.id)) == []
    [intent] = localstripe.payment_intents(link=str(stripe_link.id))
    assert intent.id == stripe_payment.processor_ref
    # What the payer's page knows of each link: which processor's fields to offer.
    assert link_facts(stripe_db, sandbox_token).processor == "sandbox"
    assert link_facts(stripe_db, stripe_token).processor == "stripe"


def test_a_token_of_the_other_processor_pays_nothing(
    stripe_pay_app, payer, stripe_db, two_accounts, localstripe
):
    sandbox_account, stripe_account = two_accounts
    _link, sandbox_token = new_link(stripe_db, stripe_pay_app.registry, sandbox_account)
    stripe_link, stripe_token = new_link(stripe_db, stripe_pay_app.registry, stripe_account)

    at_stripe = pay(payer, stripe_token, submission(tokenize(payer, card(SUCCEEDS))))
    at_sandbox = pay(payer, sandbox_token, submission(localstripe.payment_method(SUCCEEDS)))

    assert (at_stripe.status_int, at_stripe.json["error"]) == (402, "invalid_payment_token")
    assert (at_sandbox.status_int, at_sandbox.json["error"]) == (402, "invalid_payment_token")
    assert localstripe.payment_intents(link=str(stripe_link.id)) == []


def test_a_lost_answer_is_settled_by_the_processor_that_charged_it_after_the_account_moved(
    stripe_pay_app, payer, stripe_db, two_accounts, localstripe
):
    sandbox_account, _stripe_account = two_accounts
    link, token = new_link(stripe_db, stripe_pay_app.registry, sandbox_account)
    lost = pay(payer, token, submission(tokenize(payer, card(ANSWER_LOST))), status=503)
    # The admin moves the account to Stripe while the sandbox's charge is still unsettled.
    sandbox_account.processor = "stripe"
    stripe_db.flush()

    later = utcnow() + dt.timedelta(minutes=10)
    assert stripe_pay_app.registry["clientpay.jobs"].run_now(RESOLVE_JOB, later) == 1

    payment = _payment(stripe_db, lost.json["payment_id"])
    assert (payment.status, payment.processor) == ("succeeded", "sandbox")
    assert stripe_db.get(PaymentLink, link.id).status == "paid"


def test_the_admin_chooses_each_accounts_processor_from_those_offered(
    stripe_pay_app, payer, stripe_db, two_accounts
):
    sandbox_account, _stripe_account = two_accounts
    admin = factories.UserFactory(firm=sandbox_account.firm, role="admin")
    stripe_db.flush()
    login(payer, admin)

    page = payer.get("/admin/merchant-accounts")
    select = page.html.find("select", {"name": "processor"})
    offered = [option["value"] for option in select.find_all("option")]
    assert sorted(offered) == ["sandbox", "stripe"]
    assert select.find("option", selected=True)["value"] == "sandbox"  # the instance's default
    assert page.html.find(class_="processor-not-offered") is None

    edit = payer.get(f"/admin/merchant-accounts/{sandbox_account.id}")
    form = next(f for f in edit.forms.values() if "processor" in f.fields)
    form["processor"] = "stripe"
    form.submit(status=303)
    stripe_db.expire_all()
    assert stripe_db.get(type(sandbox_account), sandbox_account.id).processor == "stripe"


@pytest.fixture
def stripe_by_default(app_settings, proxy):
    """An instance for development whose default is Stripe, the sandbox offered beside it."""
    settings = {
        **app_settings,
        "clientpay.processor": "clientpay_connect.pay.stripe_processor.StripeProcessor",
        "clientpay.stripe.api_base": proxy.base_url,
    }
    application = main({}, **settings)
    yield application
    application.registry["dbengine"].dispose()


def test_staff_pages_say_test_mode_while_an_account_is_on_the_sandbox(stripe_by_default, stripe_db):
    account = factories.MerchantAccountFactory(
        processor="stripe", stripe_publishable_key="pk_live_x"
    )
    staff = factories.UserFactory(firm=account.firm, role="staff")
    stripe_db.flush()
    with databases.sharing_connection(stripe_by_default, stripe_db.connection()):
        browser = webtest.TestApp(stripe_by_default, extra_environ={"HTTP_HOST": "localhost"})
        login(browser, staff)
        assert browser.get("/").html.find(class_="test-mode-ribbon") is None
        factories.MerchantAccountFactory(firm=account.firm, processor="sandbox")
        stripe_db.flush()
        assert browser.get("/").html.find(class_="test-mode-ribbon") is not None
