"""The resolver job settles links that a crash or a silent processor left processing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from clientpay_connect.db import utcnow
from clientpay_connect.links.services import claim
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.pay.models import Payment
from clientpay_connect.pay.processor import Declined
from clientpay_connect.pay.tasks import RESOLVE_JOB
from tests import factories
from tests.support.payments import (
    ANSWER_LOST,
    BOTH_METHODS,
    SUCCEEDS,
    card,
    new_link,
    pay,
    submission,
    tokenize,
)

LATER = dt.timedelta(minutes=10)


@pytest.fixture
def link_and_token(app, dbsession, firm):
    account = factories.MerchantAccountFactory(firm=firm)
    return new_link(dbsession, app.registry, account, 5_000)


def _resolve(app, now):
    return app.registry["clientpay.jobs"].run_now(RESOLVE_JOB, now)


def _crashed_attempt(dbsession, link, key):
    """What a request that died after its first commit leaves: a claim and a pending payment."""
    assert claim(dbsession, link.id)
    payment = Payment(
        firm_id=link.firm_id,
        link_id=link.id,
        amount_minor=5_000,
        currency="USD",
        payer_name="Pat Payer",
        payer_email="pat@example.test",
        idempotency_key="payer-key",
        processor_key=key,
    )
    dbsession.add(payment)
    dbsession.flush()
    return payment


def _settled(dbsession, link, payment):
    dbsession.refresh(link)
    dbsession.refresh(payment)
    return link.status, payment.status


def test_it_runs_every_five_minutes(app):
    assert app.registry["clientpay.jobs"].jobs[RESOLVE_JOB].schedule == {"minute": "*/5"}


def test_a_charge_the_processor_made_completes_the_payment(app, testapp, dbsession, link_and_token):
    link, _token = link_and_token
    payment = _crashed_attempt(dbsession, link, "pk-crashed-after-charge")
    processor = app.registry["clientpay.processor"]
    processor.charge(
        tokenize(testapp, card(SUCCEEDS)), 5_000, "USD", "pk-crashed-after-charge", BOTH_METHODS
    )

    assert _resolve(app, utcnow() + LATER) == 1

    assert _settled(dbsession, link, payment) == ("paid", "succeeded")
    assert (link.amount_paid_minor, payment.last4, payment.receipt_number[:2]) == (
        5_000,
        "4242",
        "R-",
    )
    receipts = dbsession.scalars(
        select(OutboxMessage.recipients).where(OutboxMessage.payment_id == payment.id)
    ).all()
    assert receipts == [["pat@example.test"]]


def test_a_charge_the_processor_never_saw_fails_and_frees_the_link(
    app, testapp, dbsession, link_and_token
):
    link, token = link_and_token
    payment = _crashed_attempt(dbsession, link, "pk-crashed-before-charge")

    assert _resolve(app, utcnow() + LATER) == 1

    assert _settled(dbsession, link, payment) == ("outstanding", "failed")
    assert payment.failure_code == "not_charged"
    pay(testapp, token, submission(tokenize(testapp, card()), "50"), status=201)


def test_a_declined_charge_fails_with_the_processors_code(app, testapp, dbsession, link_and_token):
    link, _token = link_and_token
    payment = _crashed_attempt(dbsession, link, "pk-declined")
    processor = app.registry["clientpay.processor"]
    with pytest.raises(Declined, match="insufficient_funds"):
        processor.charge(
            tokenize(testapp, card("4000000000009995")), 5_000, "USD", "pk-declined", BOTH_METHODS
        )

    _resolve(app, utcnow() + LATER)

    assert _settled(dbsession, link, payment) == ("outstanding", "failed")
    assert payment.failure_code == "insufficient_funds"


def test_a_payment_still_within_its_time_is_left_alone(app, dbsession, link_and_token):
    link, _token = link_and_token
    payment = _crashed_attempt(dbsession, link, "pk-recent")

    assert _resolve(app, utcnow() + dt.timedelta(seconds=30)) == 0

    assert _settled(dbsession, link, payment) == ("processing", "pending")


def test_a_lost_answer_is_found_later_and_the_payer_then_sees_the_receipt(
    app, testapp, dbsession, link_and_token
):
    link, token = link_and_token
    body = submission(tokenize(testapp, card(ANSWER_LOST)), "50.00")
    lost = pay(testapp, token, body, key="payer-key", status=503).json
    assert lost["error"] == "processor_unavailable"

    assert _resolve(app, utcnow() + LATER) == 1

    payment = dbsession.get(Payment, lost["payment_id"])
    assert _settled(dbsession, link, payment) == ("paid", "succeeded")
    replay = pay(testapp, token, body, key="payer-key", status=201).json
    assert (replay["receipt_number"], replay["amount"]) == (payment.receipt_number, "50.00")
