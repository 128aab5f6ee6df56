"""The sandbox processor: tokenization as hosted fields would do it, and idempotent charges."""

from __future__ import annotations

import datetime as dt

import pytest
import webtest
from sqlalchemy import func, inspect, select
from zope.interface.verify import verifyClass, verifyObject

from clientpay_connect.pay.interfaces import IPaymentProcessor
from clientpay_connect.pay.models import SandboxCharge, SandboxToken
from clientpay_connect.pay.processor import Declined, ProcessorUnavailable, SandboxProcessor
from tests.support.payments import (
    ACCOUNT_CLOSED,
    ANSWER_LOST,
    BOTH_METHODS,
    CARD_OUTCOMES,
    SUCCEEDS,
    UNREACHABLE,
    bank_account,
    card,
    tokenize,
)


def test_the_sandbox_is_a_payment_processor(app):
    assert verifyClass(IPaymentProcessor, SandboxProcessor)
    assert verifyObject(IPaymentProcessor, app.registry["clientpay.processor"])
    assert app.registry["clientpay.processor"].name == "sandbox"


def test_with_a_real_processor_there_is_no_sandbox_to_tokenize_with(stripe_app):
    assert stripe_app.registry["clientpay.processor"].name == "stripe"
    stranger = webtest.TestApp(stripe_app)
    stranger.post_json("/sandbox/tokens", card(SUCCEEDS), status=404)
    stranger.post_json("/sandbox/tokens", {}, status=404)


def _stored_values(row: SandboxToken) -> list[str]:
    return [str(getattr(row, attr.key)) for attr in inspect(SandboxToken).column_attrs]


@pytest.mark.parametrize(("number", "outcome"), sorted(CARD_OUTCOMES.items()))
def test_a_card_becomes_a_token_that_keeps_only_brand_last4_and_outcome(
    testapp, dbsession, number, outcome
):
    body = testapp.post_json("/sandbox/tokens", card(number), status=200).json
    assert body["token"].startswith("tok_")
    assert body == {"token": body["token"], "method": "card", "brand": "visa", "last4": number[-4:]}
    row = dbsession.get(SandboxToken, body["token"])
    assert (row.method, row.brand, row.last4, row.outcome) == ("card", "visa", number[-4:], outcome)
    assert not any(number in value for value in _stored_values(row))


def test_spaces_and_dashes_in_a_card_number_are_what_people_type(testapp):
    body = testapp.post_json("/sandbox/tokens", card("5555 5555-5555 4444"), status=200).json
    assert (body["brand"], body["last4"]) == ("mastercard", "4444")


def test_a_bank_account_becomes_an_echeck_token(testapp, dbsession):
    body = testapp.post_json("/sandbox/tokens", bank_account(), status=200).json
    assert (body["method"], body["last4"]) == ("echeck", "6789")
    closed = testapp.post_json("/sandbox/tokens", bank_account(ACCOUNT_CLOSED), status=200).json
    assert dbsession.get(SandboxToken, body["token"]).outcome == "succeeded"
    assert dbsession.get(SandboxToken, closed["token"]).outcome == "account_closed"


def test_other_valid_numbers_succeed(testapp, dbsession):
    token = tokenize(testapp, card("378282246310005", cvc="1234"))
    row = dbsession.get(SandboxToken, token)
    assert (row.brand, row.outcome) == ("amex", "succeeded")


@pytest.mark.parametrize(
    ("details", "fields"),
    [
        (card("4242424242424241"), ["card_number"]),
        (card("42424242"), ["card_number"]),
        (card(exp_month=13), ["exp_month"]),
        (card(exp_year=2001), ["exp_year"]),
        (card(cvc="12"), ["cvc"]),
        (card(cvc=123), ["cvc"]),
        (card("not a number", exp_month="x", cvc="12345"), ["card_number", "exp_month", "cvc"]),
        (bank_account(routing_number="110000001"), ["routing_number"]),
        (bank_account(account="12"), ["account_number"]),
        (bank_account(account_type="brokerage"), ["account_type"]),
        ({"amount": "1.00"}, ["card_number"]),
    ],
)
def test_invalid_details_are_422_per_field_and_store_nothing(testapp, dbsession, details, fields):
    before = dbsession.scalar(select(func.count()).select_from(SandboxToken))
    body = testapp.post_json("/sandbox/tokens", details, status=422).json
    assert body["error"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == fields
    assert dbsession.scalar(select(func.count()).select_from(SandboxToken)) == before


def test_a_card_expiring_this_month_is_still_good(testapp, dbsession):
    today = dt.date.today()
    details = card(exp_month=today.month, exp_year=today.year)
    body = testapp.post_json("/sandbox/tokens", details, status=200).json
    assert (body["method"], body["brand"], body["last4"]) == ("card", "visa", "4242")
    stored = dbsession.get(SandboxToken, body["token"])
    assert (stored.method, stored.last4, stored.outcome) == ("card", "4242", "succeeded")


@pytest.mark.parametrize(
    ("body", "content_type"), [("[1, 2]", "application/json"), ("card=4242", None)]
)
def test_a_body_that_is_not_a_json_object_is_422(testapp, dbsession, body, content_type):
    before = dbsession.scalar(select(func.count()).select_from(SandboxToken))
    answer = testapp.post("/sandbox/tokens", body, content_type=content_type, status=422).json
    assert answer == {
        "error": "validation_error",
        "message": "Some fields need attention.",
        "errors": [{"field": "", "message": "Send the details as a JSON object."}],
    }
    assert dbsession.scalar(select(func.count()).select_from(SandboxToken)) == before


def test_a_charge_is_made_once_per_idempotency_key(testapp, dbsession, app):
    processor = app.registry["clientpay.processor"]
    token = tokenize(testapp, card(SUCCEEDS))
    first = processor.charge(token, 5000, "USD", "key-1", BOTH_METHODS)
    again = processor.charge(token, 5000, "USD", "key-1", BOTH_METHODS)
    assert first == again
    assert processor.lookup("key-1") == first
    assert (first.method, first.brand, first.last4, first.amount_minor) == (
        "card",
        "visa",
        "4242",
        5000,
    )
    charges = dbsession.scalars(select(SandboxCharge).where(SandboxCharge.token == token)).all()
    assert [c.reference for c in charges] == [first.reference]


def test_a_token_pays_once_and_an_unknown_one_never(testapp, app):
    processor = app.registry["clientpay.processor"]
    token = tokenize(testapp, card(SUCCEEDS))
    processor.charge(token, 5000, "USD", "key-a", BOTH_METHODS)
    with pytest.raises(Declined) as reused:
        processor.charge(token, 5000, "USD", "key-b", BOTH_METHODS)
    assert reused.value.code == "invalid_payment_token"
    with pytest.raises(Declined):
        processor.charge("tok_nobody_made_this", 5000, "USD", "key-c", BOTH_METHODS)
    assert processor.lookup("key-b") is None


def test_a_declined_charge_stays_declined_when_asked_again(testapp, app):
    processor = app.registry["clientpay.processor"]
    token = tokenize(testapp, card("4000000000000002"))
    for _ in range(2):
        with pytest.raises(Declined) as declined:
            processor.charge(token, 5000, "USD", "key-declined", BOTH_METHODS)
        assert declined.value.code == "card_declined"
    with pytest.raises(Declined):
        processor.lookup("key-declined")


def test_the_outage_numbers_leave_the_outcome_to_lookup(testapp, app):
    processor = app.registry["clientpay.processor"]
    lost = tokenize(testapp, card(ANSWER_LOST))
    with pytest.raises(ProcessorUnavailable):
        processor.charge(lost, 5000, "USD", "key-lost", BOTH_METHODS)
    assert processor.lookup("key-lost").amount_minor == 5000
    unreachable = tokenize(testapp, card(UNREACHABLE))
    with pytest.raises(ProcessorUnavailable):
        processor.charge(unreachable, 5000, "USD", "key-unreachable", BOTH_METHODS)
    assert processor.lookup("key-unreachable") is None
