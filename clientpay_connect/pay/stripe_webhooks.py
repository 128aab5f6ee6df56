"""Stripe's webhooks: ``POST /webhooks/stripe/{merchant_account_id}``.

Each merchant account is its own Stripe account, with its own signing secret; the library's
own verification checks ``Stripe-Signature`` (400 when it fails, and nothing changes). An event
is handled once: its id is recorded in the same transaction as its effect.

``payment_intent.succeeded``, ``payment_intent.payment_failed`` and
``payment_intent.canceled`` (a bank debit whose account was never verified) settle an attempt
whose answer was lost, by asking Stripe (the resolver's way), never by believing the event's
copy; in the event's own transaction, so that an event Stripe could not be asked about is not
recorded, and Stripe's retry of it is not taken for a duplicate. Registered only while
Stripe is the processor.

``charge.refunded`` (a refund made here, or in Stripe's dashboard) and
``charge.dispute.created`` are shown on the link (refunds/stripe_refunds.py).
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from pyramid.httpexceptions import HTTPBadRequest, HTTPNotFound, HTTPServiceUnavailable
from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import select

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.pay import services
from clientpay_connect.pay.models import Payment, StripeEvent, StripeIntent
from clientpay_connect.pay.processor import ProcessorUnavailable
from clientpay_connect.pay.stripe_processor import StripeProcessor
from clientpay_connect.refunds import stripe_refunds
from clientpay_connect.security import PUBLIC
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

# payment_intent.canceled: Stripe cancels a bank debit whose account was never verified.
SETTLING_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
)
# Shown on the link (refunds/stripe_refunds.py).
REFUND_EVENTS = ("charge.refunded",)
DISPUTE_EVENTS = ("charge.dispute.created",)


def _merchant_account(request: Request) -> MerchantAccount:
    raw = request.matchdict["merchant_account_id"]
    account = request.dbsession.get(MerchantAccount, int(raw)) if raw.isdigit() else None
    if account is None or account.stripe_webhook_secret_encrypted is None:
        raise HTTPNotFound()
    return account


def _verified_event(request: Request, account: MerchantAccount) -> stripe.Event:
    secret = request.registry["clientpay.encryptor"].decrypt(
        account.stripe_webhook_secret_encrypted
    )
    try:
        return stripe.Webhook.construct_event(
            request.body.decode("utf-8"), request.headers.get("Stripe-Signature", ""), secret
        )
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError):
        raise HTTPBadRequest("The Stripe-Signature does not match this body.") from None


# require_csrf=False: Stripe sends no cookie of ours; the signature is what proves the sender.
@view_config(
    route_name="pay.stripe_webhook",
    request_method="POST",
    renderer="json",
    permission=PUBLIC,
    require_csrf=False,
)
def receive_event(request: Request) -> dict[str, Any]:
    account = _merchant_account(request)
    event = _verified_event(request, account)
    dbsession = request.dbsession
    seen = dbsession.execute(select(StripeEvent.id).where(StripeEvent.event_id == event.id)).first()
    if seen is not None:
        return {"received": True, "duplicate": True}
    dbsession.add(StripeEvent(event_id=event.id, merchant_account_id=account.id, type=event.type))
    # Flushed now: a concurrent delivery of the same event fails here, before any effect.
    dbsession.flush()
    if event.type in SETTLING_EVENTS:
        _settle(Work.from_request(request), account, str(event.data.object.id))
    elif event.type in REFUND_EVENTS:
        stripe_refunds.charge_refunded(Work.from_request(request), account, event.data.object)
    elif event.type in DISPUTE_EVENTS:
        stripe_refunds.dispute_created(Work.from_request(request), account, event.data.object)
    return {"received": True}


def _settle(work: Work, account: MerchantAccount, intent_id: str) -> None:
    """Settle our unsettled payment for this PaymentIntent of this account, if there is one
    (pending: its answer was lost; processing: a bank debit that cleared or was returned)."""
    row = work.dbsession.execute(
        select(Payment.id, Payment.processor_key)
        .join(StripeIntent, StripeIntent.attempt_key == Payment.processor_key)
        .join(PaymentLink, PaymentLink.id == Payment.link_id)
        .where(
            StripeIntent.payment_intent_id == intent_id,
            Payment.status.in_(services.UNSETTLED),
            # The account's own payments only: another account's secret proves nothing here.
            Payment.firm_id == account.firm_id,
            PaymentLink.merchant_account_id == account.id,
        )
    ).first()
    if row is None:
        return
    payment_id, processor_key = row
    processor_account = services.processor_account(work, account)
    try:
        services.settle_from_processor(
            work, payment_id, processor_key, processor_account, StripeProcessor.name
        )
    except ProcessorUnavailable:
        # Not recorded as handled (the error rolls the event back): Stripe sends it again.
        log.warning("payment %s: Stripe could not be asked after its webhook", payment_id)
        raise HTTPServiceUnavailable("Stripe could not be asked; send the event again.") from None
