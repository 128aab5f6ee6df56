"""The payer's API through the real app: what a link shows, and paying it exactly once."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from clientpay_connect.admin.models import FirmSettings, NotificationRecipient
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import STATUSES, USED_UP, PaymentLink
from clientpay_connect.links.services import claim, release
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.pay import services
from clientpay_connect.pay.models import Payment, SandboxCharge
from tests import factories
from tests.support.payments import (
    ACCOUNT_CLOSED,
    CARD_OUTCOMES,
    SUCCEEDS,
    UNREACHABLE,
    bank_account,
    card,
    new_link,
    pay,
    submission,
    tokenize,
)


@pytest.fixture
def account(firm):
    return factories.MerchantAccountFactory(firm=firm)


@pytest.fixture
def firm_settings(dbsession, firm):
    return dbsession.get(FirmSettings, firm.id)


@pytest.fixture
def link_and_token(app, dbsession, account):
    return new_link(dbsession, app.registry, account, 12_345, invoice_number="INV-7")


@pytest.fixture
def link(link_and_token):
    return link_and_token[0]


@pytest.fixture
def token(link_and_token):
    return link_and_token[1]


def _fresh(dbsession, row):
    dbsession.refresh(row)
    return row


def _count(dbsession, model, *where):
    return dbsession.scalar(select(func.count()).select_from(model).where(*where))


def _payments(dbsession, link):
    return dbsession.scalars(
        select(Payment).where(Payment.link_id == link.id).order_by(Payment.id)
    ).all()


# What a link shows


def test_the_payer_sees_what_the_link_asks_for(
    testapp, dbsession, firm, firm_settings, link, token
):
    firm_settings.disclaimer = "Payments are final."
    dbsession.flush()
    body = testapp.get(f"/api/v1/pay/{token}").json
    assert body == {
        "status": "outstanding",
        "amount_due": "123.45",
        "amount_paid": "0.00",
        "currency": "USD",
        "firm_name": firm.name,
        "invoice_number": "INV-7",
        "due_date": None,
        "disclaimer": "Payments are final.",
        "methods": ["card", "echeck"],
        "recaptcha_site_key": None,
    }


def test_the_site_key_is_shown_only_when_recaptcha_is_on(testapp, dbsession, firm_settings, token):
    firm_settings.recaptcha_site_key = "site-key-1"
    dbsession.flush()
    assert testapp.get(f"/api/v1/pay/{token}").json["recaptcha_site_key"] is None
    firm_settings.recaptcha_enabled = True
    dbsession.flush()
    assert testapp.get(f"/api/v1/pay/{token}").json["recaptcha_site_key"] == "site-key-1"


def test_a_link_past_its_expiry_reads_expired(testapp, dbsession, link, token):
    link.expires_at = utcnow() - dt.timedelta(minutes=1)
    dbsession.flush()
    assert testapp.get(f"/api/v1/pay/{token}").json["status"] == "expired"


def test_an_unknown_token_is_404(testapp):
    assert testapp.get("/api/v1/pay/no-such-token", status=404).json["error"] == "not_found"
    body = testapp.post_json(
        "/api/v1/pay/no-such-token",
        submission("tok_x"),
        headers={"Idempotency-Key": "k"},
        status=404,
    ).json
    assert body["error"] == "not_found"


# Paying


def test_a_card_pays_the_link_and_queues_the_emails(testapp, dbsession, firm, link, token):
    dbsession.add_all(
        [
            NotificationRecipient(
                firm_id=firm.id, email="books@firm.test", events=["payment_received"]
            ),
            NotificationRecipient(firm_id=firm.id, email="it@firm.test", events=["email_failed"]),
        ]
    )
    dbsession.flush()
    answer = pay(testapp, token, submission(tokenize(testapp, card()), "$123.45"), status=201)
    [payment] = _payments(dbsession, link)
    assert answer.json == {
        "payment_id": payment.id,
        "status": "succeeded",
        "amount": "123.45",
        "currency": "USD",
        "receipt_number": payment.receipt_number,
        "link_status": "paid",
        "method": "card",
        "brand": "visa",
        "last4": "4242",
    }
    assert payment.receipt_number.startswith("R-") and len(payment.receipt_number) == 12
    assert (payment.status, payment.amount_minor, payment.payer_email) == (
        "succeeded",
        12_345,
        "pat@example.test",
    )
    assert payment.processor_ref.startswith("ch_")
    _fresh(dbsession, link)
    assert (link.status, link.amount_paid_minor, link.paid_at is not None) == ("paid", 12_345, True)
    mails = dbsession.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.payment_id == payment.id)
        .order_by(OutboxMessage.id)
    ).all()
    assert [(m.kind, m.recipients) for m in mails] == [
        ("receipt", ["pat@example.test"]),
        ("payment_notice", ["books@firm.test"]),
    ]


def test_an_echeck_pays_the_link(testapp, dbsession, link, token):
    answer = pay(testapp, token, submission(tokenize(testapp, bank_account())), status=201)
    assert (answer.json["method"], answer.json["last4"]) == ("echeck", "6789")
    assert _fresh(dbsession, link).status == "paid"


DECLINES = [(number, code) for number, code in CARD_OUTCOMES.items() if code != "succeeded"]


@pytest.mark.parametrize(("number", "code"), DECLINES)
def test_every_sandbox_decline_is_402_and_the_link_stays_payable(
    testapp, dbsession, link, token, number, code
):
    body = pay(testapp, token, submission(tokenize(testapp, card(number))), status=402).json
    [payment] = _payments(dbsession, link)
    assert body == {
        "error": code,
        "message": payment.failure_message,
        "errors": [],
        "payment_id": payment.id,
        "link_status": "outstanding",
    }
    assert (payment.status, payment.failure_code, payment.receipt_number) == ("failed", code, None)
    assert _fresh(dbsession, link).status == "outstanding"
    assert link.processing_started_at is None
    assert _count(dbsession, OutboxMessage, OutboxMessage.link_id == link.id) == 0


def test_a_closed_bank_account_is_402(testapp, dbsession, link, token):
    details = bank_account(ACCOUNT_CLOSED)
    body = pay(testapp, token, submission(tokenize(testapp, details)), status=402).json
    assert body["error"] == "account_closed"
    assert _fresh(dbsession, link).status == "outstanding"


def test_a_method_the_merchant_account_refuses_is_402_and_nothing_is_charged(
    testapp, dbsession, account, link, token
):
    account.accepts_card = False
    dbsession.flush()
    body = pay(testapp, token, submission(tokenize(testapp, card(SUCCEEDS))), status=402).json
    assert body["error"] == "method_not_accepted"
    assert dbsession.scalar(select(func.count()).select_from(SandboxCharge)) == 0
    assert _fresh(dbsession, link).status == "outstanding"
    pay(testapp, token, submission(tokenize(testapp, bank_account())), status=201)


def test_a_deactivated_merchant_account_takes_no_payment(testapp, dbsession, account, link, token):
    payment_token = tokenize(testapp, card())
    account.active = False
    dbsession.flush()
    assert testapp.get(f"/api/v1/pay/{token}").json["methods"] == []
    body = pay(testapp, token, submission(payment_token), status=409).json
    assert (body["error"], body["link_status"]) == ("merchant_account_inactive", "outstanding")
    assert _payments(dbsession, link) == []
    assert _count(dbsession, SandboxCharge) == 0
    assert _fresh(dbsession, link).status == "outstanding"
    # Reactivated, the same link takes the payment.
    account.active = True
    dbsession.flush()
    pay(testapp, token, submission(payment_token), status=201)


def test_after_a_decline_a_good_card_pays_the_link(testapp, dbsession, link, token):
    pay(testapp, token, submission(tokenize(testapp, card("4000000000000002"))), status=402)
    pay(testapp, token, submission(tokenize(testapp, card(SUCCEEDS))), status=201)
    assert [p.status for p in _payments(dbsession, link)] == ["failed", "succeeded"]
    assert _fresh(dbsession, link).status == "paid"


def test_a_used_token_is_refused_and_the_link_stays_payable(testapp, dbsession, link, token):
    used = tokenize(testapp, card("4000000000000002"))
    pay(testapp, token, submission(used), status=402)
    body = pay(testapp, token, submission(used), status=402).json
    assert body["error"] == "invalid_payment_token"
    assert _fresh(dbsession, link).status == "outstanding"


def test_a_partial_payment_consumes_the_link(testapp, dbsession, link, token):
    answer = pay(testapp, token, submission(tokenize(testapp, card()), "100"), status=201)
    assert (answer.json["amount"], answer.json["link_status"]) == ("100.00", "partially_paid")
    _fresh(dbsession, link)
    assert (link.status, link.amount_minor, link.amount_paid_minor) == (
        "partially_paid",
        12_345,
        10_000,
    )
    assert testapp.get(f"/api/v1/pay/{token}").json["status"] == "partially_paid"
    again = pay(testapp, token, submission(tokenize(testapp, card()), "23.45"), status=409).json
    assert (again["error"], again["link_status"]) == ("link_not_payable", "partially_paid")
    assert [p.status for p in _payments(dbsession, link)] == ["succeeded"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "123.46"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "12.345"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"payer_email": "not-an-address"}, "payer_email"),
        ({"payer_name": "  "}, "payer_name"),
        ({"payment_token": ""}, "payment_token"),
    ],
)
def test_bad_fields_are_422_and_leave_the_link_alone(
    testapp, dbsession, link, token, changes, field
):
    fields = {**submission(tokenize(testapp, card())), **changes}
    body = pay(testapp, token, fields, status=422).json
    assert body["error"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == [field]
    assert _fresh(dbsession, link).status == "outstanding"
    assert _payments(dbsession, link) == []


def test_a_missing_field_or_idempotency_key_is_422(testapp, dbsession, link, token):
    body = submission("tok_x")
    del body["amount"]
    answer = pay(testapp, token, body, status=422).json
    assert (answer["error"], answer["errors"]) == (
        "validation_error",
        [{"field": "amount", "message": "This field is required."}],
    )
    answer = testapp.post_json(f"/api/v1/pay/{token}", submission("tok_x"), status=422).json
    assert answer["error"] == "validation_error"
    assert [e["field"] for e in answer["errors"]] == ["Idempotency-Key"]
    assert _fresh(dbsession, link).status == "outstanding"
    assert _payments(dbsession, link) == []
    assert _count(dbsession, SandboxCharge) == 0


def test_an_expired_link_is_410_and_marked_expired(testapp, dbsession, link, token):
    link.expires_at = utcnow() - dt.timedelta(seconds=1)
    dbsession.flush()
    body = pay(testapp, token, submission(tokenize(testapp, card())), status=410).json
    assert body["error"] == "link_expired"
    assert _fresh(dbsession, link).status == "expired"
    pay(testapp, token, submission(tokenize(testapp, card())), status=410)
    assert _count(dbsession, SandboxCharge) == 0


def test_an_expiry_seen_late_leaves_a_claimed_link_to_its_payer(dbsession, link):
    """A request read the link as outstanding and past its time; before it marked it expired,
    a payer claimed it. The payer's charge is under way: the link must stay theirs."""
    link.expires_at = utcnow() - dt.timedelta(seconds=1)
    dbsession.flush()
    assert claim(dbsession, link.id)
    services.mark_expired(dbsession, link.id)
    assert _fresh(dbsession, link).status == "processing"
    # Given back (the charge was declined), the overdue link is then marked expired.
    assert release(dbsession, link.id)
    services.mark_expired(dbsession, link.id)
    assert _fresh(dbsession, link).status == "expired"


@pytest.mark.parametrize("status", ["paid", "cancelled", "processing"])
def test_a_link_that_is_not_outstanding_is_409(testapp, dbsession, link, token, status):
    link.status = status
    dbsession.flush()
    body = pay(testapp, token, submission(tokenize(testapp, card())), status=409).json
    assert (body["error"], body["link_status"]) == ("link_not_payable", status)
    assert _payments(dbsession, link) == []


def test_the_same_idempotency_key_five_times_charges_once(testapp, dbsession, link, token):
    body = submission(tokenize(testapp, card()))
    answers = [pay(testapp, token, body, key="same-key") for _ in range(5)]
    assert {a.status_int for a in answers} == {201}
    assert all(a.json == answers[0].json for a in answers)
    [payment] = _payments(dbsession, link)
    assert (
        _count(dbsession, SandboxCharge, SandboxCharge.idempotency_key == payment.processor_key)
        == 1
    )
    assert _count(dbsession, SandboxCharge) == 1
    assert _count(dbsession, OutboxMessage, OutboxMessage.kind == "receipt") == 1


@pytest.mark.parametrize("field", ["amount", "payer_email", "payer_name", "payment_token"])
def test_an_idempotency_key_reused_with_another_body_is_422(testapp, dbsession, link, token, field):
    body = submission(tokenize(testapp, card()))
    first = pay(testapp, token, body, key="one-key", status=201).json
    other = {
        "amount": "100.00",
        "payer_email": "someone.else@example.test",
        "payer_name": "Someone Else",
        "payment_token": tokenize(testapp, card()),
    }
    answer = pay(testapp, token, {**body, field: other[field]}, key="one-key", status=422).json
    assert answer["error"] == "idempotency_key_reused"
    assert answer["errors"] == []
    # The first payment stands as it was, and nothing more was charged.
    [payment] = _payments(dbsession, link)
    assert (payment.id, payment.amount_minor, payment.payer_email) == (
        first["payment_id"],
        12_345,
        "pat@example.test",
    )
    assert _count(dbsession, SandboxCharge) == 1
    # The very same body still gets the first answer.
    assert pay(testapp, token, body, key="one-key", status=201).json == first


def test_a_reused_key_after_a_decline_is_422_too(testapp, dbsession, link, token):
    declined = submission(tokenize(testapp, card("4000000000000002")))
    pay(testapp, token, declined, key="k", status=402)
    other = submission(tokenize(testapp, card()))
    assert pay(testapp, token, other, key="k", status=422).json["error"] == "idempotency_key_reused"
    assert [p.status for p in _payments(dbsession, link)] == ["failed"]
    assert _fresh(dbsession, link).status == "outstanding"
    pay(testapp, token, other, status=201)


def test_an_idempotency_key_belongs_to_its_link(testapp, app, dbsession, account, link, token):
    """The same key sent to another link is another payment: never the first link's answer."""
    other, other_token = new_link(dbsession, app.registry, account, 5_000, invoice_number="B")
    first = pay(testapp, token, submission(tokenize(testapp, card())), key="shared", status=201)
    body = submission(tokenize(testapp, card()), "50.00")
    second = pay(testapp, other_token, body, key="shared", status=201).json
    [payment_a] = _payments(dbsession, link)
    [payment_b] = _payments(dbsession, other)
    assert first.json["payment_id"] == payment_a.id
    assert (second["payment_id"], second["receipt_number"], second["amount"]) == (
        payment_b.id,
        payment_b.receipt_number,
        "50.00",
    )
    assert payment_b.receipt_number != payment_a.receipt_number
    assert (_fresh(dbsession, other).status, other.amount_paid_minor) == ("paid", 5_000)
    assert _count(dbsession, SandboxCharge) == 2
    # Each link replays its own payment.
    assert pay(testapp, other_token, body, key="shared", status=201).json == second


def test_a_replayed_decline_gets_the_first_answer(testapp, dbsession, link, token):
    body = submission(tokenize(testapp, card("4000000000009995")))
    first = pay(testapp, token, body, key="declined-key", status=402)
    second = pay(testapp, token, body, key="declined-key", status=402)
    assert first.json == second.json
    assert len(_payments(dbsession, link)) == 1


def test_an_unreachable_processor_leaves_the_link_processing(testapp, dbsession, link, token):
    body = submission(tokenize(testapp, card(UNREACHABLE)))
    answer = pay(testapp, token, body, key="k-down", status=503).json
    [payment] = _payments(dbsession, link)
    assert (answer["error"], answer["payment_id"]) == ("processor_unavailable", payment.id)
    assert (payment.status, _fresh(dbsession, link).status) == ("pending", "processing")
    replay = pay(testapp, token, body, key="k-down", status=409).json
    assert (replay["error"], replay["payment_id"]) == ("payment_in_progress", payment.id)
    other = pay(testapp, token, submission(tokenize(testapp, card())), status=409).json
    assert (other["error"], other["link_status"]) == ("link_not_payable", "processing")


def test_neither_the_link_token_nor_the_card_number_is_logged(testapp, link, token, caplog):
    caplog.set_level(logging.DEBUG)
    for number in (SUCCEEDS, UNREACHABLE):
        testapp.post_json("/sandbox/tokens", card(number))
    pay(testapp, token, submission(tokenize(testapp, card(UNREACHABLE))), status=503)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in logged
    assert SUCCEEDS not in logged and UNREACHABLE not in logged


def test_the_database_refuses_a_second_successful_payment_for_a_link(dbsession, link):
    for key in ("a", "b"):
        dbsession.add(
            Payment(
                firm_id=link.firm_id,
                link_id=link.id,
                status="succeeded",
                amount_minor=100,
                currency="USD",
                idempotency_key=key,
                processor_key=f"pk-{key}-{link.id}",
            )
        )
    with pytest.raises(IntegrityError, match=r"(?i)unique"):
        dbsession.flush()


def test_a_failed_and_a_successful_payment_may_share_a_link(dbsession, link):
    for key, status in (("a", "failed"), ("b", "succeeded"), ("c", "failed")):
        dbsession.add(
            Payment(
                firm_id=link.firm_id,
                link_id=link.id,
                status=status,
                amount_minor=100,
                currency="USD",
                idempotency_key=key,
                processor_key=f"pk-{key}-{link.id}",
            )
        )
    dbsession.flush()
    assert _count(dbsession, Payment, Payment.link_id == link.id) == 3
    assert dbsession.get(PaymentLink, link.id) is link


def test_the_documented_link_statuses_are_the_links_own(testapp):
    schemas = testapp.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert schemas["PayableLink"]["properties"]["status"]["enum"] == list(STATUSES)
    assert schemas["PaymentSucceeded"]["properties"]["link_status"]["enum"] == list(USED_UP)


@pytest.mark.parametrize("field", ["payment_token", "payer_name", "payer_email"])
def test_a_text_with_the_nul_character_is_a_422_and_changes_nothing(
    testapp, dbsession, link, token, field
):
    # PostgreSQL's text columns refuse it: found by schemathesis as a 500 from the charge.
    body = submission(tokenize(testapp, card()), "$10.00")
    body[field] = body[field] + "\x00"
    answer = pay(testapp, token, body, status=422)
    assert answer.json["errors"] == [
        {"field": field, "message": "Text cannot contain the NUL character (\\u0000)."}
    ]
    assert _payments(dbsession, link) == []
    assert _fresh(dbsession, link).status == "outstanding"
