"""Paying a link with Stripe as the processor, over real HTTP to localstripe (a fake Stripe
API on loopback), through a proxy that can lose Stripe's answer after the charge was made.

The payer's PaymentMethod is made at localstripe as the page's Stripe.js would; our API only
ever sees its id. Each test looks at the PaymentIntents localstripe holds for its link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.pay.models import Payment, StripeEvent
from clientpay_connect.pay.processor import ProcessorAccount, ProcessorUnavailable
from clientpay_connect.pay.stripe_processor import StripeProcessor
from clientpay_connect.pay.tasks import RESOLVE_JOB
from tests import factories
from tests.conftest import login
from tests.fakes.httpserver import (
    DROP,
    Drop,
    FakeHTTPServer,
    FakeRequest,
    FakeResponse,
    running,
)
from tests.fakes.stripe_cut import CuttingStripeProxy
from tests.support import databases
from tests.support.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, LocalStripe
from tests.support.payments import SUCCEEDS, new_link, pay, submission

DECLINED_WHEN_CHARGED = "4000000000000341"
WEBHOOK_SECRET = "whsec_clientpay_test_signing_secret"


@pytest.fixture(scope="module")
def proxy(localstripe: LocalStripe) -> Iterator[CuttingStripeProxy]:
    with running(CuttingStripeProxy(localstripe.url)) as server:
        yield server


@pytest.fixture(scope="module")
def stripe_pay_app(stripe_settings: dict[str, Any], proxy: CuttingStripeProxy) -> Iterator[Router]:
    settings = {**stripe_settings, "clientpay.stripe.api_base": proxy.base_url}
    application = main({}, **settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def proxy_passes(proxy: CuttingStripeProxy) -> Iterator[CuttingStripeProxy]:
    proxy.cut_confirmations = proxy.lose_confirmations = False
    yield proxy
    proxy.cut_confirmations = proxy.lose_confirmations = False


@pytest.fixture
def stripe_db(
    stripe_pay_app: Router, proxy_passes: CuttingStripeProxy, localstripe: LocalStripe
) -> Iterator[Session]:
    """The test's connection (rolled back at the end), shared by the app and the test."""
    localstripe.forget_everything()
    with databases.rolled_back_session(stripe_pay_app) as session:
        yield session


@pytest.fixture
def payer(stripe_pay_app: Router, stripe_db: Session, client_ip: str) -> webtest.TestApp:
    return webtest.TestApp(
        stripe_pay_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
    )


@pytest.fixture
def link_and_token(stripe_pay_app: Router, stripe_db: Session) -> tuple[PaymentLink, str]:
    encryptor = stripe_pay_app.registry["clientpay.encryptor"]
    account = factories.MerchantAccountFactory(
        processor="stripe",
        stripe_secret_key_encrypted=encryptor.encrypt(TEST_SECRET_KEY),
        stripe_publishable_key=TEST_PUBLISHABLE_KEY,
        stripe_webhook_secret_encrypted=encryptor.encrypt(WEBHOOK_SECRET),
    )
    return new_link(stripe_db, stripe_pay_app.registry, account, 12_345)


def _payment(stripe_db: Session, payment_id: int) -> Payment:
    stripe_db.expire_all()
    return stripe_db.get(Payment, payment_id)


def test_a_payer_pays_with_a_payment_method_from_stripe_js(
    payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    method = localstripe.payment_method(SUCCEEDS)

    paid = pay(payer, token, submission(method, "123.45"), status=201).json

    assert (paid["method"], paid["brand"], paid["last4"]) == ("card", "visa", "4242")
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 12_345, "usd")
    assert intent.payment_method == method
    assert intent.metadata.to_dict() == {
        "firm": str(link.firm_id),
        "link": str(link.id),
        "payment": str(paid["payment_id"]),
    }
    payment = _payment(stripe_db, paid["payment_id"])
    assert (payment.status, payment.processor_ref) == ("succeeded", intent.id)
    assert method not in (payment.last4 or "")


def test_a_card_stripe_declines_leaves_the_link_payable(
    payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    declined = pay(
        payer, token, submission(localstripe.payment_method(DECLINED_WHEN_CHARGED), "123.45")
    )
    assert declined.status_int == 402
    assert (declined.json["error"], declined.json["link_status"]) == (
        "card_declined",
        "outstanding",
    )
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert intent.status == "requires_payment_method"

    paid = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert paid.status_int == 201
    statuses = sorted(i.status for i in localstripe.payment_intents(link=str(link.id)))
    assert statuses == ["requires_payment_method", "succeeded"]


def test_a_payment_method_stripe_never_issued_is_refused(payer, link_and_token):
    _link, token = link_and_token
    refused = pay(payer, token, submission("pm_nobody_made_this", "123.45"))
    assert (refused.status_int, refused.json["error"]) == (402, "invalid_payment_token")


def test_an_answer_lost_after_stripe_charged_is_settled_by_the_resolver_not_charged_again(
    stripe_pay_app, payer, stripe_db, link_and_token, localstripe, proxy_passes
):
    link, token = link_and_token
    proxy_passes.cut_confirmations = True
    lost = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    proxy_passes.cut_confirmations = False

    assert (lost.status_int, lost.json["error"]) == (503, "processor_unavailable")
    assert proxy_passes.cut, "the confirmation went through the proxy"
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert intent.status == "succeeded"  # Stripe charged; we did not hear of it.
    # Nobody can pay the link meanwhile: it stays claimed for the resolver.
    again = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert (again.status_int, again.json["error"]) == (409, "link_not_payable")

    later = utcnow() + dt.timedelta(minutes=10)
    settled = stripe_pay_app.registry["clientpay.jobs"].run_now(RESOLVE_JOB, later)

    assert settled == 1
    payment = _payment(stripe_db, lost.json["payment_id"])
    assert (payment.status, payment.processor_ref, payment.last4) == (
        "succeeded",
        intent.id,
        "4242",
    )
    assert stripe_db.get(PaymentLink, link.id).status == "paid"
    assert [i.id for i in localstripe.payment_intents(link=str(link.id))] == [intent.id]


def test_a_confirmation_that_never_reached_stripe_is_cancelled_and_the_link_freed(
    stripe_pay_app, payer, stripe_db, link_and_token, localstripe, proxy_passes
):
    link, token = link_and_token
    proxy_passes.lose_confirmations = True
    lost = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    proxy_passes.lose_confirmations = False
    assert lost.status_int == 503
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert intent.status == "requires_confirmation"

    later = utcnow() + dt.timedelta(minutes=10)
    assert stripe_pay_app.registry["clientpay.jobs"].run_now(RESOLVE_JOB, later) == 1

    payment = _payment(stripe_db, lost.json["payment_id"])
    assert (payment.status, payment.failure_code) == ("failed", "not_charged")
    # Cancelled at Stripe: it can never be confirmed (and charged) later.
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert intent.status == "canceled"
    assert stripe_db.get(PaymentLink, link.id).status == "outstanding"
    paid = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert paid.status_int == 201


# --- 3-D Secure: the card's bank wants the payer to confirm ---------------------------------

# Stripe's test card that always asks for 3-D Secure (localstripe asks for it too).
ASKS_FOR_3DS = "4000002760003184"


def _asked_to_confirm(payer, stripe_db, link, token, localstripe):
    """The payer submits a card whose bank wants their check: nothing is charged yet. The
    submission, its key, the answer and the PaymentIntent."""
    key = uuid.uuid4().hex
    body = submission(localstripe.payment_method(ASKS_FOR_3DS), "123.45")
    asked = pay(payer, token, body, key=key, status=202).json
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert (asked["status"], asked["link_status"]) == ("requires_action", "processing")
    assert asked["client_secret"] == intent.client_secret
    assert intent.status == "requires_action"
    assert intent.next_action.type == "use_stripe_sdk"
    # Confirmed asking for the check in Stripe.js's frame on our page, not on a bank's page.
    assert intent.id in localstripe.ach.confirmed_with_stripe_sdk
    payment = _payment(stripe_db, asked["payment_id"])
    assert (payment.status, payment.awaiting_authentication) == ("processing", True)
    return body, key, asked, intent


def test_a_card_whose_bank_asks_the_payer_to_confirm_is_charged_once_they_have(
    payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    body, key, asked, intent = _asked_to_confirm(payer, stripe_db, link, token, localstripe)
    # Held for this payer meanwhile: nobody else can pay the link.
    other = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert (other.status_int, other.json["error"]) == (409, "link_not_payable")
    assert _receipts(stripe_db, asked["payment_id"]) == 0

    localstripe.authenticate(asked["client_secret"], success=True)
    paid = pay(payer, token, body, key=key, status=201).json
    replayed = pay(payer, token, body, key=key, status=201).json

    assert paid["payment_id"] == asked["payment_id"] == replayed["payment_id"]
    assert (paid["status"], paid["link_status"]) == ("succeeded", "paid")
    assert replayed["receipt_number"] == paid["receipt_number"]
    assert "client_secret" not in paid
    [charged] = localstripe.payment_intents(link=str(link.id))
    assert (charged.id, charged.status) == (intent.id, "succeeded")
    assert stripe_db.get(PaymentLink, link.id).status == "paid"
    assert _receipts(stripe_db, paid["payment_id"]) == 1


def test_a_failed_bank_check_is_declined_and_that_attempt_can_never_charge(
    payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    body, key, asked, intent = _asked_to_confirm(payer, stripe_db, link, token, localstripe)

    localstripe.authenticate(asked["client_secret"], success=False)
    declined = pay(payer, token, body, key=key, status=402).json

    assert (declined["error"], declined["link_status"]) == ("authentication_failed", "outstanding")
    assert "bank did not confirm" in declined["message"]
    payment = _payment(stripe_db, asked["payment_id"])
    assert (payment.status, payment.failure_code) == ("failed", "authentication_failed")
    # Cancelled at Stripe: the secret the payer's page held can no longer confirm it.
    [cancelled] = localstripe.payment_intents(link=str(link.id))
    assert (cancelled.id, cancelled.status) == (intent.id, "canceled")
    assert stripe_db.get(PaymentLink, link.id).status == "outstanding"
    paid = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert paid.status_int == 201


def test_asking_again_before_the_check_is_done_cancels_the_attempt(
    payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    body, key, asked, _ = _asked_to_confirm(payer, stripe_db, link, token, localstripe)

    # The payer closed Stripe's check, or their page lost the first answer and asked again.
    again = pay(payer, token, body, key=key, status=402).json

    assert (again["error"], again["payment_id"]) == ("authentication_failed", asked["payment_id"])
    [cancelled] = localstripe.payment_intents(link=str(link.id))
    assert cancelled.status == "canceled"
    assert stripe_db.get(PaymentLink, link.id).status == "outstanding"


def test_a_payer_who_never_finishes_the_check_is_declined_by_the_resolver(
    stripe_pay_app, payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    body, key, asked, _ = _asked_to_confirm(payer, stripe_db, link, token, localstripe)
    jobs = stripe_pay_app.registry["clientpay.jobs"]

    # Within the timeout the payer may still be at their bank's check: left alone.
    assert jobs.run_now(RESOLVE_JOB, utcnow() + dt.timedelta(minutes=1)) == 0
    assert localstripe.payment_intents(link=str(link.id))[0].status == "requires_action"
    assert jobs.run_now(RESOLVE_JOB, utcnow() + dt.timedelta(minutes=10)) == 1

    payment = _payment(stripe_db, asked["payment_id"])
    assert (payment.status, payment.failure_code) == ("failed", "authentication_failed")
    assert localstripe.payment_intents(link=str(link.id))[0].status == "canceled"
    assert stripe_db.get(PaymentLink, link.id).status == "outstanding"
    # Their page, back at last, is told how it ended.
    late = pay(payer, token, body, key=key, status=402).json
    assert late["error"] == "authentication_failed"


def test_the_webhook_settles_a_payment_the_payer_confirmed_and_left(
    payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    body, key, asked, intent = _asked_to_confirm(payer, stripe_db, link, token, localstripe)
    localstripe.authenticate(asked["client_secret"], success=True)
    # The payer's page never asked again (closed, or offline): Stripe's event settles it.
    [charged] = localstripe.payment_intents(link=str(link.id))
    event, headers = signed_event(charged)

    payer.post(_webhook_path(link), event, headers=headers, status=200)

    payment = _payment(stripe_db, asked["payment_id"])
    assert (payment.status, payment.processor_ref) == ("succeeded", intent.id)
    assert stripe_db.get(PaymentLink, link.id).status == "paid"
    assert pay(payer, token, body, key=key, status=201).json["payment_id"] == payment.id
    assert _receipts(stripe_db, payment.id) == 1


# --- Webhooks ----------------------------------------------------------------------------


def signed_event(
    intent: Any, event_type: str = "payment_intent.succeeded", secret: str = WEBHOOK_SECRET
) -> tuple[bytes, dict[str, str]]:
    """An event as Stripe (and localstripe) sends it: the body, and its Stripe-Signature
    (HMAC-SHA256 of "timestamp.body" with the endpoint's signing secret)."""
    created = int(time.time())
    body = json.dumps(
        {
            "id": "evt_" + uuid.uuid4().hex[:24],
            "object": "event",
            "type": event_type,
            "created": created,
            "data": {"object": intent.to_dict()},
        }
    ).encode()
    mac = hmac.new(secret.encode(), b"%d.%s" % (created, body), hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={created},v1={mac}", "Content-Type": "application/json"}


def _webhook_path(link: PaymentLink) -> str:
    return f"/webhooks/stripe/{link.merchant_account_id}"


def _lost_answer(payer, token, localstripe, proxy) -> tuple[int, Any]:
    proxy.cut_confirmations = True
    lost = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    proxy.cut_confirmations = False
    assert lost.status_int == 503
    return lost.json["payment_id"], None


def _receipts(stripe_db: Session, payment_id: int) -> int:
    stripe_db.expire_all()
    query = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.payment_id == payment_id, OutboxMessage.kind == "receipt")
    )
    return int(stripe_db.scalar(query))


def test_the_webhook_settles_an_answer_lost_once_however_often_it_comes(
    payer, stripe_db, link_and_token, localstripe, proxy_passes
):
    link, token = link_and_token
    payment_id, _ = _lost_answer(payer, token, localstripe, proxy_passes)
    [intent] = localstripe.payment_intents(link=str(link.id))
    body, headers = signed_event(intent)

    first = payer.post(_webhook_path(link), body, headers=headers, status=200)
    again = payer.post(_webhook_path(link), body, headers=headers, status=200)

    assert first.json == {"received": True}
    assert again.json == {"received": True, "duplicate": True}
    payment = _payment(stripe_db, payment_id)
    assert (payment.status, payment.processor_ref) == ("succeeded", intent.id)
    assert stripe_db.get(PaymentLink, link.id).status == "paid"
    assert _receipts(stripe_db, payment_id) == 1
    assert [i.id for i in localstripe.payment_intents(link=str(link.id))] == [intent.id]


@pytest.mark.parametrize("forgery", ["other secret", "changed body", "no signature"])
def test_a_webhook_with_a_bad_signature_is_400_and_changes_nothing(
    payer, stripe_db, link_and_token, localstripe, proxy_passes, forgery
):
    link, token = link_and_token
    payment_id, _ = _lost_answer(payer, token, localstripe, proxy_passes)
    [intent] = localstripe.payment_intents(link=str(link.id))
    secret = "whsec_someone_else" if forgery == "other secret" else WEBHOOK_SECRET
    body, headers = signed_event(intent, secret=secret)
    if forgery == "changed body":
        body = body.replace(b'"object": "event"', b'"object": "event", "x": 1')
    if forgery == "no signature":
        del headers["Stripe-Signature"]

    payer.post(_webhook_path(link), body, headers=headers, status=400)

    assert _payment(stripe_db, payment_id).status == "pending"
    assert stripe_db.scalar(select(func.count()).select_from(StripeEvent)) == 0
    assert _receipts(stripe_db, payment_id) == 0


def test_a_webhook_for_an_account_without_a_signing_secret_is_404(payer, stripe_db):
    account = factories.MerchantAccountFactory(processor="stripe")
    stripe_db.flush()
    payer.post(f"/webhooks/stripe/{account.id}", b"{}", status=404)
    payer.post("/webhooks/stripe/999999", b"{}", status=404)
    payer.post("/webhooks/stripe/not-a-number", b"{}", status=404)


def test_there_are_no_stripe_webhooks_on_the_sandbox(testapp):
    testapp.post("/webhooks/stripe/1", b"{}", status=404)


# --- Test mode -----------------------------------------------------------------------------


def test_the_payer_page_says_test_mode_with_stripe_test_keys_only(
    stripe_pay_app, payer, stripe_db, link_and_token
):
    link, token = link_and_token
    page = payer.get(f"/pay/{token}", status=200)
    assert "Test mode" in page.html.find(class_="test-mode-ribbon").text

    account = stripe_db.get(MerchantAccount, link.merchant_account_id)
    account.stripe_publishable_key = "pk_live_clientpay"
    stripe_db.flush()
    live = payer.get(f"/pay/{token}", status=200)
    assert live.html.find(class_="test-mode-ribbon") is None


def test_the_sandbox_payer_page_says_test_mode(testapp, app, dbsession, firm):
    _link, token = new_link(dbsession, app.registry, factories.MerchantAccountFactory(firm=firm))
    page = testapp.get(f"/pay/{token}", status=200)
    ribbon = page.html.find(class_="test-mode-ribbon")
    assert "No money moves" in ribbon.text


# --- Timeouts ------------------------------------------------------------------------------


class SilentStripe(FakeHTTPServer):
    """Takes the connection and never answers (until the test ends)."""

    name = "silent-stripe"

    def handle(self, request: FakeRequest) -> FakeResponse | Drop:
        self.hold(30)
        return DROP


def test_a_stripe_that_does_not_answer_is_given_up_on_within_the_timeout(stripe_pay_app, stripe_db):
    with running(SilentStripe()) as silent:
        processor = StripeProcessor(
            stripe_pay_app.registry["dbsession_factory"],
            api_base=silent.base_url,
            timeout=0.5,
            max_network_retries=0,
        )
        account = ProcessorAccount(1, TEST_SECRET_KEY)
        started = time.monotonic()
        with pytest.raises(ProcessorUnavailable):
            processor.charge("pm_x", 5_000, "USD", "key-" + uuid.uuid4().hex, ("card",), account)
        assert time.monotonic() - started < 5


def test_staff_pages_say_test_mode_while_an_account_has_stripe_test_keys(
    payer, stripe_db, link_and_token
):
    link, _token = link_and_token
    staff = factories.UserFactory(firm=link.firm, role="staff")
    stripe_db.flush()
    login(payer, staff)
    assert payer.get("/").html.find(class_="test-mode-ribbon") is not None

    account = stripe_db.get(MerchantAccount, link.merchant_account_id)
    account.stripe_publishable_key = "pk_live_clientpay"
    stripe_db.flush()
    assert payer.get("/").html.find(class_="test-mode-ribbon") is None


def test_staff_pages_say_test_mode_on_the_sandbox(testapp, staff):
    login(testapp, staff)
    assert "No money moves" in testapp.get("/").html.find(class_="test-mode-ribbon").text
