"""What Stripe's webhooks tell of refunds and disputes (pay/stripe_webhooks.py calls these,
in the event's own transaction, after its signature was checked and its id recorded).

``charge.refunded``: the event's copy is not believed; Stripe is asked for the refunds of the
PaymentIntent, and each is matched to ours by its id (re_…), or by our refund's key in its
metadata (a refund we made whose answer has not reached us yet); the others were made in
Stripe's dashboard and are added. Recorded twice, a refund still counts once.

``charge.dispute.created``: localstripe has no disputes, and the event is signed by the
account's own secret, so its copy is what is recorded.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from pyramid.httpexceptions import HTTPServiceUnavailable
from sqlalchemy import select

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.pay.interfaces import IPaymentProcessor
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from clientpay_connect.pay.services import processor_account
from clientpay_connect.pay.stripe_processor import StripeProcessor
from clientpay_connect.refunds.services import (
    ProcessorDispute,
    ProcessorRefund,
    metadata_key,
    record_dispute,
    record_processor_refunds,
)
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

# What Stripe lists of a PaymentIntent's refunds that gave money back (or will: pending).
MADE = ("succeeded", "pending")


def account_payment(work: Work, account: MerchantAccount, intent_id: str) -> Payment | None:
    """Our succeeded payment for this PaymentIntent of this account, if there is one."""
    if not intent_id:
        return None
    return work.dbsession.execute(
        select(Payment)
        .join(PaymentLink, PaymentLink.id == Payment.link_id)
        .where(
            Payment.processor_ref == intent_id,
            Payment.status == PAYMENT_SUCCEEDED,
            # The account's own payments only: another account's secret proves nothing here.
            Payment.firm_id == account.firm_id,
            PaymentLink.merchant_account_id == account.id,
        )
    ).scalar_one_or_none()


def charge_refunded(work: Work, account: MerchantAccount, event_object: Any) -> None:
    charge = _as_dict(event_object)
    payment = account_payment(work, account, str(charge.get("payment_intent") or ""))
    if payment is None:
        return
    client = _client(work, account)
    try:
        listed = client.v1.refunds.list(
            params={"payment_intent": payment.processor_ref, "limit": 100}
        )
        made = [
            ProcessorRefund(r.id, int(r.amount), metadata_key(_as_dict(r.metadata)))
            for r in listed.auto_paging_iter()
            if r.status in MADE
        ]
    except stripe.StripeError:
        # Not recorded as handled (the error rolls the event back): Stripe sends it again.
        log.warning("payment %s: Stripe's refunds could not be listed", payment.id)
        raise HTTPServiceUnavailable("Stripe could not be asked; send the event again.") from None
    record_processor_refunds(work, payment, made)


def dispute_created(work: Work, account: MerchantAccount, event_object: Any) -> None:
    dispute = _as_dict(event_object)
    payment = account_payment(work, account, str(dispute.get("payment_intent") or ""))
    if payment is None:
        log.warning("dispute %s: no payment of ours for it", dispute.get("id"))
        return
    record_dispute(
        work,
        payment,
        ProcessorDispute(
            reference=str(dispute["id"]),
            amount_minor=int(dispute.get("amount") or payment.amount_minor),
            currency=str(dispute.get("currency") or payment.currency),
            reason=str(dispute.get("reason") or ""),
            status=str(dispute.get("status") or ""),
        ),
    )


def _client(work: Work, account: MerchantAccount) -> stripe.StripeClient:
    processor: StripeProcessor = work.find_service(IPaymentProcessor, name=StripeProcessor.name)
    return processor.client(processor_account(work, account))


def _as_dict(stripe_object: Any) -> dict[str, Any]:
    """A StripeObject's fields (it is no dict: ``.get`` is not one of them)."""
    if stripe_object is None:
        return {}
    fields: dict[str, Any] = stripe_object.to_dict()
    return fields
