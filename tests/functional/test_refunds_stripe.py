"""Refunds and disputes with Stripe as the processor: the real ``stripe`` library over HTTP to
localstripe (through a proxy that can lose Stripe's answer), and Stripe's webhooks signed with
the account's secret as Stripe signs them.

localstripe keeps refunds (and their metadata) but has no disputes: a dispute's event is
built here from Stripe's documented Dispute object, and signed the same way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.pay.models import Payment
from clientpay_connect.refunds.models import Dispute, Refund
from clientpay_connect.refunds.services import METADATA_KEY
from clientpay_connect.refunds.tasks import RESOLVE_JOB
from tests import factories
from tests.conftest import bearer, login
from tests.fakes.httpserver import running
from tests.fakes.stripe_cut import CuttingStripeProxy
from tests.functional.test_pay_stripe import WEBHOOK_SECRET, signed_event
from tests.support import databases
from tests.support.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, LocalStripe
from tests.support.payments import SUCCEEDS, new_link, pay, submission


@pytest.fixture(scope="module")
def cutting(localstripe: LocalStripe) -> Iterator[CuttingStripeProxy]:
    with running(CuttingStripeProxy(localstripe.url)) as server:
        yield server


@pytest.fixture(scope="module")
def refunds_app(stripe_settings: dict[str, Any], cutting: CuttingStripeProxy) -> Iterator[Router]:
    application = main({}, **{**stripe_settings, "clientpay.stripe.api_base": cutting.base_url})
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def db(
    refunds_app: Router, localstripe: LocalStripe, cutting: CuttingStripeProxy
) -> Iterator[Session]:
    """The test's connection, shared by the app and the test, rolled back at the end."""
    localstripe.forget_everything()
    cutting.cut_refunds = False
    try:
        with databases.rolled_back_session(refunds_app) as session:
            yield session
    finally:
        cutting.cut_refunds = False


@pytest.fixture
def web(refunds_app: Router, db: Session, client_ip: str) -> webtest.TestApp:
    # Each test its own address: the payer's rate limit counts per address, and this module's
    # payments (nine tests, faster than a minute) would otherwise share one.
    return webtest.TestApp(
        refunds_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
    )


def stripe_account(app: Router, **fields: Any) -> Any:
    encryptor = app.registry["clientpay.encryptor"]
    return factories.MerchantAccountFactory(
        processor="stripe",
        stripe_secret_key_encrypted=encryptor.encrypt(TEST_SECRET_KEY),
        stripe_publishable_key=TEST_PUBLISHABLE_KEY,
        stripe_webhook_secret_encrypted=encryptor.encrypt(WEBHOOK_SECRET),
        **fields,
    )


@pytest.fixture
def paid(refunds_app, db, web, localstripe) -> tuple[PaymentLink, Any]:
    """A link paid $123.45 through Stripe, and its PaymentIntent at localstripe."""
    link, token = new_link(db, refunds_app.registry, stripe_account(refunds_app), 12_345)
    pay(web, token, submission(localstripe.payment_method(SUCCEEDS), "123.45"), status=201)
    [intent] = localstripe.payment_intents(link=str(link.id))
    return link, intent


@pytest.fixture
def auth(db, paid) -> dict[str, str]:
    return bearer(db, factories.UserFactory(firm=paid[0].firm, role="staff"))


def refunds_at_stripe(localstripe: LocalStripe, intent: Any) -> list[Any]:
    listed = localstripe.client().v1.refunds.list(params={"payment_intent": intent.id})
    return list(listed.auto_paging_iter())


def refund(web, auth, link, amount, status="*"):
    return web.post_json(
        f"/api/v1/links/{link.id}/refund", {"amount": amount}, headers=auth, status=status
    )


def shown(web, auth, link) -> dict[str, Any]:
    answer: dict[str, Any] = web.get(f"/api/v1/links/{link.id}", headers=auth).json
    return answer


def charge_event(localstripe: LocalStripe, intent: Any, event_type: str = "charge.refunded"):
    """Stripe's charge.refunded for the PaymentIntent's charge, signed with the account's
    secret."""
    intent = localstripe.client().v1.payment_intents.retrieve(intent.id)
    charge_id = (
        intent.latest_charge if isinstance(intent.latest_charge, str) else intent.latest_charge.id
    )
    charge = localstripe.client().v1.charges.retrieve(charge_id)
    return signed_event(charge, event_type)


def webhook(web, link, event, status=200):
    body, headers = event
    return web.post(
        f"/webhooks/stripe/{link.merchant_account_id}", body, headers=headers, status=status
    )


def test_a_whole_refund_is_made_at_stripe_in_minor_units_with_our_key(
    web, db, paid, auth, localstripe
):
    link, intent = paid

    made = refund(web, auth, link, "123.45", status=201).json

    [at_stripe] = refunds_at_stripe(localstripe, intent)
    assert (at_stripe.id, at_stripe.amount, at_stripe.status) == (
        made["processor_ref"],
        12_345,
        "succeeded",
    )
    row = db.get(Refund, made["id"])
    assert at_stripe.metadata.to_dict() == {
        "firm": str(link.firm_id),
        "link": str(link.id),
        "payment": str(row.payment_id),
        "refund": str(row.id),
        METADATA_KEY: row.idempotency_key,
    }
    assert shown(web, auth, link)["amount_refunded"] == "123.45"
    refund(web, auth, link, "0.01", status=409)
    assert len(refunds_at_stripe(localstripe, intent)) == 1


def test_parts_refund_up_to_what_was_paid_and_never_past_it(web, paid, auth, localstripe):
    link, intent = paid

    refund(web, auth, link, "23.45", status=201)
    refund(web, auth, link, "100.01", status=422)
    refund(web, auth, link, "100.00", status=201)
    over = refund(web, auth, link, "1.00", status=409).json

    assert over["error"] == "fully_refunded"
    assert sorted(r.amount for r in refunds_at_stripe(localstripe, intent)) == [2_345, 10_000]
    assert shown(web, auth, link)["amount_refunded"] == "123.45"


def test_a_refund_stripe_refuses_is_recorded_failed_and_its_amount_freed(
    web, db, paid, auth, localstripe
):
    link, intent = paid
    # A PaymentIntent Stripe does not know (404): its InvalidRequestError is a refusal.
    payment = db.scalars(select(Payment).where(Payment.link_id == link.id)).one()
    payment.processor_ref = "pi_" + uuid.uuid4().hex[:24]
    db.flush()

    refused = refund(web, auth, link, "10.00", status=409).json

    assert refused["error"] == "refund_refused"
    db.expire_all()
    [row] = db.scalars(select(Refund).where(Refund.link_id == link.id)).all()
    assert (row.status, row.processor_ref) == ("failed", None)
    assert row.failure_message
    assert db.get(PaymentLink, link.id).refunds_claimed_minor == 0
    assert refunds_at_stripe(localstripe, intent) == []


def test_a_refund_made_in_stripes_dashboard_shows_on_the_link_once(
    web, db, paid, auth, localstripe
):
    link, intent = paid
    admin = factories.UserFactory(firm=link.firm, role="admin")
    db.flush()
    made = localstripe.client().v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 2_000}
    )
    event = charge_event(localstripe, intent)

    assert webhook(web, link, event).json == {"received": True}
    assert webhook(web, link, event).json == {"received": True, "duplicate": True}
    # Stripe tells of it again in another event (another refund later lists them all).
    webhook(web, link, charge_event(localstripe, intent))

    [row] = db.scalars(select(Refund).where(Refund.link_id == link.id)).all()
    assert (row.processor_ref, row.amount_minor, row.origin, row.status) == (
        made.id,
        2_000,
        "processor",
        "succeeded",
    )
    assert shown(web, auth, link)["amount_refunded"] == "20.00"
    listed = web.get(f"/api/v1/links/{link.id}/refunds", headers=auth).json
    assert [r["origin"] for r in listed["refunds"]] == ["processor"]
    notices = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "refund_notice")).all()
    assert [n.recipients for n in notices] == [["pat@example.test"]]
    # The firm's admins hear of a refund none of them made here.
    [told] = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "firm_notice")).all()
    assert (told.recipients, told.subject) == (
        [admin.email],
        "A refund of $20.00 was made in Stripe",
    )
    # What is left to refund here counts it.
    refund(web, auth, link, "103.46", status=422)
    refund(web, auth, link, "103.45", status=201)


def test_the_webhook_of_a_refund_we_made_does_not_count_it_twice(web, db, paid, auth, localstripe):
    link, intent = paid
    refund(web, auth, link, "50.00", status=201)

    webhook(web, link, charge_event(localstripe, intent))

    assert db.scalar(select(func.count()).select_from(Refund)) == 1
    assert shown(web, auth, link)["amount_refunded"] == "50.00"


def test_a_refund_whose_answer_was_lost_is_settled_by_the_webhook_not_made_again(
    web, db, paid, auth, localstripe, cutting
):
    link, intent = paid
    cutting.cut_refunds = True
    lost = refund(web, auth, link, "40.00", status=503).json
    cutting.cut_refunds = False

    assert lost["error"] == "processor_unavailable"
    [at_stripe] = refunds_at_stripe(localstripe, intent)  # Stripe made it; we did not hear.
    row = db.get(Refund, lost["refund_id"])
    assert row.status == "pending"
    # Held meanwhile: no second refund can take what the lost one may have taken.
    refund(web, auth, link, "83.46", status=422)

    webhook(web, link, charge_event(localstripe, intent))

    db.refresh(row)
    assert (row.status, row.processor_ref) == ("succeeded", at_stripe.id)
    assert shown(web, auth, link)["amount_refunded"] == "40.00"
    assert len(refunds_at_stripe(localstripe, intent)) == 1


def test_a_refund_event_with_a_bad_signature_is_400_and_changes_nothing(
    web, db, paid, auth, localstripe
):
    link, intent = paid
    localstripe.client().v1.refunds.create(params={"payment_intent": intent.id, "amount": 2_000})
    body, headers = charge_event(localstripe, intent)
    forged = signed_event(
        localstripe.client().v1.payment_intents.retrieve(intent.id),
        "charge.refunded",
        "whsec_other",
    )

    webhook(
        web,
        link,
        (body.replace(b'"object": "event"', b'"object": "event", "x": 1'), headers),
        status=400,
    )
    webhook(web, link, forged, status=400)

    assert db.scalar(select(func.count()).select_from(Refund)) == 0
    assert shown(web, auth, link)["amount_refunded"] == "0.00"


def dispute_event(intent: Any, dispute_id: str) -> tuple[bytes, dict[str, str]]:
    """charge.dispute.created as Stripe sends it (localstripe has no disputes)."""

    class Dispute:
        def to_dict(self) -> dict[str, Any]:
            return {
                "id": dispute_id,
                "object": "dispute",
                "amount": intent.amount,
                "currency": intent.currency,
                "charge": "ch_" + uuid.uuid4().hex[:24],
                "payment_intent": intent.id,
                "reason": "fraudulent",
                "status": "needs_response",
            }

    return signed_event(Dispute(), "charge.dispute.created")


def test_a_dispute_is_shown_on_the_link_and_emailed_to_the_firms_admins(web, db, paid, localstripe):
    link, intent = paid
    admin = factories.UserFactory(firm=link.firm, role="admin")
    factories.UserFactory(firm=link.firm, role="admin", active=False)
    staff = factories.UserFactory(firm=link.firm, role="staff")
    db.flush()
    event = dispute_event(intent, "dp_" + uuid.uuid4().hex[:20])

    webhook(web, link, event)
    webhook(web, link, event)  # Stripe's retry: one effect.

    [dispute] = db.scalars(select(Dispute).where(Dispute.link_id == link.id)).all()
    assert (dispute.amount_minor, dispute.reason, dispute.status) == (
        12_345,
        "fraudulent",
        "needs_response",
    )
    [mail] = db.scalars(select(OutboxMessage).where(OutboxMessage.kind == "firm_notice")).all()
    assert mail.recipients == [admin.email]
    assert mail.status == "sent"
    assert "disputed" in mail.subject
    listed = web.get(f"/api/v1/links/{link.id}/refunds", headers=bearer(db, staff)).json
    assert [d["reason"] for d in listed["disputes"]] == ["fraudulent"]
    login(web, staff)
    page = web.get(f"/links/{link.id}")
    assert "fraudulent" in page.html.select_one("[data-dispute]").text


def test_the_resolver_settles_a_lost_refund_with_the_one_stripe_made_not_a_second(
    refunds_app, web, db, paid, auth, localstripe, cutting
):
    link, intent = paid
    cutting.cut_refunds = True
    lost = refund(web, auth, link, "40.00", status=503).json
    cutting.cut_refunds = False
    [at_stripe] = refunds_at_stripe(localstripe, intent)

    jobs = refunds_app.registry["clientpay.jobs"]
    assert jobs.run_now(RESOLVE_JOB, utcnow()) == 0  # Too soon: its request may still wait.
    assert jobs.run_now(RESOLVE_JOB, utcnow() + dt.timedelta(minutes=10)) == 1

    row = db.get(Refund, lost["refund_id"])
    db.refresh(row)
    assert (row.status, row.processor_ref) == ("succeeded", at_stripe.id)
    # localstripe ignores Idempotency-Key: the key in the refund's metadata found it.
    assert len(refunds_at_stripe(localstripe, intent)) == 1
    assert shown(web, auth, link)["amount_refunded"] == "40.00"
