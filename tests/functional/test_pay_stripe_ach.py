"""Paying a link by eCheck (ACH) through Stripe: the real ``stripe`` library over HTTP to our
fake of Stripe's bank-debit endpoints (tests/fakes/stripe_ach.py), in front of localstripe.

The payer's PaymentMethod is made with the publishable key, as Stripe.js does on the page; a
bank debit is accepted at once and clears (or is returned) days later, which a test plays
with ``localstripe.clear_bank_debits()``. Until then the payment is processing, the link
neither paid nor payable; Stripe's webhook, or the resolver when it does not come, settles it.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import stripe
import transaction
from sqlalchemy import func, select

from clientpay_connect.db import utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.compose import MailComposer
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.pay.models import Payment
from clientpay_connect.pay.tasks import RESOLVE_JOB
from clientpay_connect.work import Work
from tests.functional import test_pay_stripe as card_tests
from tests.support.localstripe import TEST_SECRET_KEY
from tests.support.payments import ACCOUNT_CLOSED, SUCCEEDS, pay, submission

# The Stripe app, its database and the payer, as the card tests set them up.
proxy, proxy_passes = card_tests.proxy, card_tests.proxy_passes
stripe_pay_app, stripe_db = card_tests.stripe_pay_app, card_tests.stripe_db
payer, link_and_token = card_tests.payer, card_tests.link_and_token
signed_event = card_tests.signed_event

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) ClientPayTest/1.0"


def _pay_by_bank(payer, token, method, key=None):
    return payer.post_json(
        f"/api/v1/pay/{token}",
        submission(method, "123.45"),
        headers={"Idempotency-Key": key or uuid.uuid4().hex, "User-Agent": USER_AGENT},
        status="*",
    )


def _fresh(stripe_db, model, row_id):
    stripe_db.expire_all()
    return stripe_db.get(model, row_id)


def _emails(stripe_db, payment_id, kind="receipt"):
    stripe_db.expire_all()
    query = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.payment_id == payment_id, OutboxMessage.kind == kind)
    )
    return int(stripe_db.scalar(query))


def _resolve_later(app) -> int:
    return app.registry["clientpay.jobs"].run_now(RESOLVE_JOB, utcnow() + dt.timedelta(minutes=10))


def _processing_neither_paid_nor_payable(payer, stripe_db, localstripe, intent, accepted):
    """The payment is processing, not paid and not payable either (the money is on its way,
    or waits on the payer); a replay of its key answers the same."""
    body = accepted.json
    payment = _fresh(stripe_db, Payment, body["payment_id"])
    assert (payment.status, payment.processor_ref, payment.receipt_number) == (
        "processing",
        intent.id,
        None,
    )
    token = accepted.request.path.rsplit("/", 1)[-1]
    assert _fresh(stripe_db, PaymentLink, payment.link_id).status == "processing"
    assert payer.get(f"/api/v1/pay/{token}").json["status"] == "processing"
    again = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert (again.status_int, again.json["error"]) == (409, "link_not_payable")
    key = accepted.request.headers["Idempotency-Key"]
    replay = _pay_by_bank(payer, token, accepted.request.json["payment_token"], key)
    assert (replay.status_int, replay.json) == (202, body)
    return payment


def _clears_and_the_resolver_settles_it(app, stripe_db, localstripe, link, accepted):
    """The bank clears the debit; with no webhook, the resolver settles it, once."""
    localstripe.clear_bank_debits()
    assert _resolve_later(app) == 1
    assert _resolve_later(app) == 0

    payment = _fresh(stripe_db, Payment, accepted.json["payment_id"])
    assert payment.status == "succeeded"
    assert _fresh(stripe_db, PaymentLink, link.id).status == "paid"
    assert _emails(stripe_db, payment.id) == 1


def test_an_echeck_is_processing_until_the_bank_clears_it_and_the_webhook_settles_it_once(
    stripe_pay_app, payer, stripe_db, link_and_token, localstripe, client_ip
):
    link, token = link_and_token
    key = uuid.uuid4().hex

    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method(), key)

    assert accepted.status_int == 202
    body = accepted.json
    assert (body["status"], body["link_status"], body["method"], body["last4"]) == (
        "processing",
        "processing",
        "echeck",
        "6789",
    )
    assert "processing" in body["message"]
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert (intent.status, intent.amount, intent.payment_method_types) == (
        "processing",
        12_345,
        ["us_bank_account"],
    )
    # The debit's mandate records the payer's acceptance on our page.
    mandate = localstripe.client().v1.mandates.retrieve(intent.mandate)
    online = mandate.customer_acceptance.online
    assert (online.ip_address, online.user_agent) == (client_ip, USER_AGENT)
    payment = _processing_neither_paid_nor_payable(payer, stripe_db, localstripe, intent, accepted)
    assert _pay_by_bank(payer, token, "ignored", key).status_int == 422  # key reused
    # The resolver asks, and leaves a debit still clearing alone.
    assert _resolve_later(stripe_pay_app) == 0
    assert _fresh(stripe_db, Payment, payment.id).status == "processing"
    assert _emails(stripe_db, payment.id) == 0

    [event] = localstripe.clear_bank_debits()
    assert event["type"] == "payment_intent.succeeded"
    cleared = localstripe.client().v1.payment_intents.retrieve(intent.id)
    body_bytes, headers = signed_event(cleared, "payment_intent.succeeded")
    path = f"/webhooks/stripe/{link.merchant_account_id}"
    assert payer.post(path, body_bytes, headers=headers).json == {"received": True}
    assert payer.post(path, body_bytes, headers=headers).json["duplicate"] is True

    payment = _fresh(stripe_db, Payment, payment.id)
    assert (payment.status, payment.method, payment.last4) == ("succeeded", "echeck", "6789")
    assert payment.receipt_number
    assert _fresh(stripe_db, PaymentLink, link.id).status == "paid"
    assert _emails(stripe_db, payment.id) == 1
    assert _resolve_later(stripe_pay_app) == 0  # nothing left to settle
    final = _pay_by_bank(payer, token, accepted.request.json["payment_token"], key)
    assert (final.status_int, final.json["status"]) == (201, "succeeded")
    assert [i.id for i in localstripe.payment_intents(link=str(link.id))] == [intent.id]


def test_an_echeck_cleared_without_a_webhook_is_settled_by_the_resolver(
    stripe_pay_app, payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method())
    assert accepted.status_int == 202

    _clears_and_the_resolver_settles_it(stripe_pay_app, stripe_db, localstripe, link, accepted)


def test_a_returned_echeck_fails_and_the_link_is_payable_again(
    stripe_pay_app, payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method(ACCOUNT_CLOSED))
    assert accepted.status_int == 202

    [event] = localstripe.clear_bank_debits()
    assert event["type"] == "payment_intent.payment_failed"
    assert _resolve_later(stripe_pay_app) == 1

    payment = _fresh(stripe_db, Payment, accepted.json["payment_id"])
    assert (payment.status, payment.failure_code) == ("failed", "account_closed")
    assert payment.receipt_number is None
    assert _fresh(stripe_db, PaymentLink, link.id).status == "outstanding"
    assert _emails(stripe_db, payment.id) == 0
    paid = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert paid.status_int == 201


def test_an_echeck_is_refused_where_the_account_takes_cards_only(
    payer, stripe_db, link_and_token, localstripe
):
    link, token = link_and_token
    link.merchant_account.accepts_echeck = False
    stripe_db.flush()
    refused = _pay_by_bank(payer, token, localstripe.bank_account_method())
    assert (refused.status_int, refused.json["error"]) == (402, "method_not_accepted")
    assert localstripe.payment_intents(link=str(link.id)) == []


@pytest.fixture
def verifying(localstripe):
    """Stripe verifies the bank account typed in by hand with micro-deposits first."""
    localstripe.ach.verify_with_microdeposits = True
    yield localstripe
    localstripe.ach.verify_with_microdeposits = False
    localstripe.ach.microdeposit_type = "amounts"


def _verification_email(app, stripe_db, payment_id):
    """The payer's email with the verification page's link, as it would be sent."""
    stripe_db.expire_all()
    [row] = stripe_db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.payment_id == payment_id, OutboxMessage.kind == "bank_verification"
        )
    ).all()
    work = Work(app.registry, stripe_db, transaction.TransactionManager())
    return row, work.find_service(MailComposer).compose(stripe_db, row, utcnow())


def _deliver(payer, link, intent_id, localstripe, event_type):
    intent = localstripe.client().v1.payment_intents.retrieve(intent_id)
    body_bytes, headers = signed_event(intent, event_type)
    path = f"/webhooks/stripe/{link.merchant_account_id}"
    assert payer.post(path, body_bytes, headers=headers).json == {"received": True}
    assert payer.post(path, body_bytes, headers=headers).json["duplicate"] is True


def test_an_account_stripe_verifies_first_waits_for_the_payer_then_is_debited_and_settled_once(
    stripe_pay_app, payer, stripe_db, link_and_token, verifying
):
    localstripe = verifying
    link, token = link_and_token
    key = uuid.uuid4().hex

    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method(), key)

    # Accepted, not debited: the payer is sent to Stripe's page to confirm the deposits.
    assert accepted.status_int == 202
    body = accepted.json
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert intent.status == "requires_action"
    stripe_url = intent.next_action.verify_with_microdeposits.hosted_verification_url
    arrival = intent.next_action.verify_with_microdeposits.arrival_date
    assert (body["status"], body["link_status"], body["method"], body["last4"]) == (
        "processing",
        "processing",
        "echeck",
        "6789",
    )
    assert body["hosted_verification_url"] == stripe_url
    assert stripe_url.startswith("https://payments.stripe.com/microdeposit/")
    assert body["verification_arrival_date"] == (
        dt.datetime.fromtimestamp(arrival, dt.UTC).date().isoformat()
    )
    assert "1-2 business days" in body["message"]
    payment = _processing_neither_paid_nor_payable(payer, stripe_db, localstripe, intent, accepted)

    # The payer's email gives the same link.
    row, email = _verification_email(stripe_pay_app, stripe_db, payment.id)
    assert row.recipients == ["pat@example.test"]
    assert stripe_url not in str(row.params)
    assert stripe_url in email.message.body
    assert stripe_url in email.message.html
    assert email.subject.startswith("Verify your bank account")
    assert "ending in 6789" in email.message.body

    # The resolver leaves it alone while Stripe waits for the payer: not lost, not failed.
    assert _resolve_later(stripe_pay_app) == 0
    waiting = localstripe.client().v1.payment_intents.retrieve(intent.id)
    assert waiting.status == "requires_action"
    assert _fresh(stripe_db, Payment, payment.id).status == "processing"
    assert _emails(stripe_db, payment.id, "bank_verification") == 1

    # The payer confirms the deposits (Stripe's test amounts) on Stripe's page.
    secret = localstripe.client()
    with pytest.raises(stripe.InvalidRequestError) as wrong:
        secret.v1.payment_intents.verify_microdeposits(intent.id, {"amounts": [10, 11]})
    assert wrong.value.code == "payment_method_microdeposit_verification_amounts_mismatch"
    verified = secret.v1.payment_intents.verify_microdeposits(intent.id, {"amounts": [32, 45]})
    assert verified.status == "processing"
    assert _resolve_later(stripe_pay_app) == 0  # the debit now clears, as any other
    assert _fresh(stripe_db, Payment, payment.id).status == "processing"

    [event] = localstripe.clear_bank_debits()
    assert event["type"] == "payment_intent.succeeded"
    _deliver(payer, link, intent.id, localstripe, "payment_intent.succeeded")

    payment = _fresh(stripe_db, Payment, payment.id)
    assert (payment.status, payment.method, payment.last4) == ("succeeded", "echeck", "6789")
    assert payment.receipt_number
    assert _fresh(stripe_db, PaymentLink, link.id).status == "paid"
    assert _emails(stripe_db, payment.id) == 1
    assert _emails(stripe_db, payment.id, "bank_verification") == 1
    assert _resolve_later(stripe_pay_app) == 0
    final = _pay_by_bank(payer, token, accepted.request.json["payment_token"], key)
    assert (final.status_int, final.json["status"]) == (201, "succeeded")
    assert [i.id for i in localstripe.payment_intents(link=str(link.id))] == [intent.id]


def test_an_account_verified_with_a_descriptor_code_is_settled_by_the_resolver(
    stripe_pay_app, payer, stripe_db, link_and_token, verifying
):
    localstripe = verifying
    localstripe.ach.microdeposit_type = "descriptor_code"
    link, token = link_and_token
    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method())
    assert accepted.status_int == 202
    [intent] = localstripe.payment_intents(link=str(link.id))
    assert intent.next_action.verify_with_microdeposits.microdeposit_type == "descriptor_code"

    localstripe.client().v1.payment_intents.verify_microdeposits(
        intent.id, {"descriptor_code": "SM11AA"}
    )
    _clears_and_the_resolver_settles_it(stripe_pay_app, stripe_db, localstripe, link, accepted)


def test_an_answer_lost_while_stripe_holds_the_debit_is_found_waiting_by_the_resolver(
    stripe_pay_app, payer, stripe_db, link_and_token, verifying, proxy_passes
):
    """The confirmation reached Stripe, its answer did not: the resolver finds the intent
    waiting for the payer's verification, leaves it at Stripe, and emails the payer its link,
    once however often it asks."""
    localstripe = verifying
    link, token = link_and_token
    proxy_passes.cut_confirmations = True
    lost = _pay_by_bank(payer, token, localstripe.bank_account_method())
    proxy_passes.cut_confirmations = False
    assert lost.status_int == 503
    payment_id = lost.json["payment_id"]
    assert _fresh(stripe_db, Payment, payment_id).status == "pending"

    assert _resolve_later(stripe_pay_app) == 0
    assert _resolve_later(stripe_pay_app) == 0

    [intent] = localstripe.payment_intents(link=str(link.id))
    assert intent.status == "requires_action"
    payment = _fresh(stripe_db, Payment, payment_id)
    assert payment.status == "processing"
    assert payment.verification_url == (
        intent.next_action.verify_with_microdeposits.hosted_verification_url
    )
    assert _fresh(stripe_db, PaymentLink, link.id).status == "processing"
    assert _emails(stripe_db, payment_id, "bank_verification") == 1
    replay = _pay_by_bank(
        payer, token, lost.request.json["payment_token"], lost.request.headers["Idempotency-Key"]
    )
    assert (replay.status_int, replay.json["hosted_verification_url"]) == (
        202,
        payment.verification_url,
    )


def test_an_account_never_verified_is_cancelled_by_stripe_and_the_link_is_payable_again(
    stripe_pay_app, payer, stripe_db, link_and_token, verifying
):
    localstripe = verifying
    link, token = link_and_token
    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method())
    assert accepted.status_int == 202
    [intent] = localstripe.payment_intents(link=str(link.id))

    # Ten days pass: Stripe cancels the intent and says so.
    [event] = localstripe.ach.expire_verifications()
    assert event["type"] == "payment_intent.canceled"
    _deliver(payer, link, intent.id, localstripe, "payment_intent.canceled")

    payment = _fresh(stripe_db, Payment, accepted.json["payment_id"])
    assert (payment.status, payment.failure_code) == ("failed", "bank_account_unverified")
    assert "verified" in payment.failure_message
    assert payment.receipt_number is None
    assert _fresh(stripe_db, PaymentLink, link.id).status == "outstanding"
    assert _emails(stripe_db, payment.id) == 0
    assert localstripe.clear_bank_debits() == []
    paid = pay(payer, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"))
    assert paid.status_int == 201


def test_an_account_verified_wrongly_too_often_fails_by_the_resolver(
    stripe_pay_app, payer, stripe_db, link_and_token, verifying
):
    localstripe = verifying
    link, token = link_and_token
    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method())
    [intent] = localstripe.payment_intents(link=str(link.id))
    secret = localstripe.client()
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError):
            secret.v1.payment_intents.verify_microdeposits(intent.id, {"amounts": [1, 2]})
    failed = secret.v1.payment_intents.verify_microdeposits(intent.id, {"amounts": [1, 2]})
    assert failed.status == "requires_payment_method"

    assert _resolve_later(stripe_pay_app) == 1
    payment = _fresh(stripe_db, Payment, accepted.json["payment_id"])
    assert (payment.status, payment.failure_code) == ("failed", "bank_account_unverified")
    assert _fresh(stripe_db, PaymentLink, link.id).status == "outstanding"
    again = _pay_by_bank(payer, token, localstripe.bank_account_method())
    assert again.status_int == 202


def test_the_bank_account_fake_wants_what_stripe_wants(localstripe):
    """What the page's Stripe.js must send (the fake refuses as Stripe's reference says)."""
    client = localstripe.client()
    params: dict = {
        "type": "us_bank_account",
        "us_bank_account": {"routing_number": "110000000", "account_number": "000123456789"},
    }
    try:
        client.v1.payment_methods.create(params=params)
    except Exception as exc:  # the library's InvalidRequestError
        assert getattr(exc, "param", None) == "billing_details[name]"
    else:
        raise AssertionError("a bank account without the holder's name was taken")
    method = client.v1.payment_methods.create(
        params={**params, "billing_details": {"name": "Pat Payer"}}
    )
    assert (method.us_bank_account.last4, method.us_bank_account.bank_name) == (
        "6789",
        "STRIPE TEST BANK",
    )
    assert "000123456789" not in str(method)
    intent = client.v1.payment_intents.create(
        params={
            "amount": 5_000,
            "currency": "usd",
            "payment_method": method.id,
            "payment_method_types": ["us_bank_account"],
        }
    )
    try:
        client.v1.payment_intents.confirm(intent.id)
    except Exception as exc:
        assert "mandate_data" in str(getattr(exc, "param", ""))
    else:
        raise AssertionError("a debit without a mandate was confirmed")
    secret = localstripe.client(TEST_SECRET_KEY)
    assert secret.v1.payment_intents.retrieve(intent.id).status == "requires_confirmation"
    # Stripe's Idempotency-Key, which localstripe ignores: the same key, the first answer.
    again: dict = {**params, "billing_details": {"name": "Pat Payer"}}
    options: dict = {"idempotency_key": "key-" + uuid.uuid4().hex}
    first = client.v1.payment_methods.create(params=again, options=options)
    assert client.v1.payment_methods.create(params=again, options=options).id == first.id


def test_the_fake_plays_a_dispute_of_a_cleared_debit_or_of_a_card_payment(
    payer, stripe_db, link_and_token, localstripe
):
    """For the dispute webhooks: charge.dispute.created as Stripe sends it (localstripe has
    no disputes); what the app does with it is the dispute handling's to test."""
    _link, token = link_and_token
    accepted = _pay_by_bank(payer, token, localstripe.bank_account_method())
    payment = _fresh(stripe_db, Payment, accepted.json["payment_id"])
    localstripe.clear_bank_debits()
    debit = localstripe.ach.dispute(payment.processor_ref)
    card = localstripe.client().v1.payment_intents.create(
        params={
            "amount": 2_000,
            "currency": "usd",
            "payment_method": localstripe.payment_method(SUCCEEDS),
            "confirm": True,
        }
    )
    by_card = localstripe.ach.dispute(card.id, "fraudulent", TEST_SECRET_KEY)

    for event, intent_id, amount in (
        (debit, payment.processor_ref, 12_345),
        (by_card, card.id, 2_000),
    ):
        dispute = event["data"]["object"]
        assert (event["type"], dispute["object"], dispute["status"]) == (
            "charge.dispute.created",
            "dispute",
            "needs_response",
        )
        assert (dispute["payment_intent"], dispute["amount"]) == (intent_id, amount)
        assert dispute["charge"]
