"""Stripe behind the processor interface, through the official ``stripe`` library.

The payer's browser turns the card into a PaymentMethod with Stripe.js; our server only sees
its id (``pm_…``). Per attempt we create a PaymentIntent (Stripe's idempotency key is our
attempt key), record which one it is, then confirm it with that PaymentMethod. Stripe cannot
be asked "what became of the charge with this idempotency key", so the record, committed
before the confirmation is sent, is how ``lookup`` (the resolver) finds the PaymentIntent.

Each merchant account has its own Stripe account and keys: a client is made per secret key.

A US bank account (eCheck, ACH) is confirmed with the payer's mandate (accepted online, from
their IP address and user agent) and then stays ``processing`` for days: the charge answers
a result that is not ``settled``, and Stripe's webhook (or the resolver) settles it later.

A bank account typed in by hand Stripe first verifies with micro-deposits: the confirmed
PaymentIntent waits in ``requires_action`` (next_action ``verify_with_microdeposits``) until
the payer confirms the deposits on Stripe's hosted page. That too answers a result that is
not settled, carrying the page's URL; once verified the debit goes on as any other. Verified
wrongly, or never (Stripe cancels it after 10 days), it is declined: ``bank_account_unverified``.

A card whose bank wants the payer to confirm the payment (3-D Secure) leaves the confirmed
PaymentIntent in ``requires_action`` too (next_action ``use_stripe_sdk``, since we confirm with
``use_stripe_sdk``): nothing is charged yet. The charge answers a result that is not settled,
carrying the PaymentIntent's client secret, with which the payer's Stripe.js shows the bank's
check (``stripe.handleNextAction``). The payer's page then asks us again, and ``lookup`` reads
what became of it: succeeded, or refused by the bank (``authentication_failed``). One still
waiting there is the payer's no more: ``lookup`` cancels it (the payer gave up, or the
resolver's timeout passed), and so it does one the bank refused, so that the client secret
the payer's page held can never charge it later.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import stripe
from pyramid.registry import Registry
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from zope.interface import implementer

from clientpay_connect.admin.models import METHOD_CARD, METHOD_ECHECK
from clientpay_connect.pay.interfaces import IPaymentProcessor
from clientpay_connect.pay.models import StripeIntent
from clientpay_connect.pay.processor import (
    REFUND_KEY_METADATA,
    ChargeResult,
    Declined,
    OnlineAcceptance,
    ProcessorAccount,
    ProcessorUnavailable,
    RefundRefused,
    RefundResult,
)

# Stripe's PaymentMethod types, as our methods.
METHODS = {"card": METHOD_CARD, "us_bank_account": METHOD_ECHECK}
# The decline reasons the API names as they are; Stripe's many others (do_not_honor,
# lost_card, fraudulent, …) are, to a payer, a declined card.
OUR_DECLINE_CODES = (
    "card_declined",
    "insufficient_funds",
    "expired_card",
    "incorrect_cvc",
    "processing_error",
    # ACH returns, named by Stripe as the banks report them.
    "account_closed",
    "no_account",
    "debit_not_authorized",
    "invalid_currency",
)
BANK_DEBIT = "us_bank_account"
VERIFY_WITH_MICRODEPOSITS = "verify_with_microdeposits"
UNVERIFIED = "bank_account_unverified"
# Stripe's codes for a verification by micro-deposits that failed (wrong amounts or code,
# too many tries, never done in time): to a payer, a bank account that was not verified.
MICRODEPOSIT_FAILURE_PREFIX = "payment_method_microdeposit_"
# Stripe's codes that are ours under another name: the card's bank refused, or the payer never
# finished, the check it asked for (3-D Secure).
AUTHENTICATION_FAILED = "authentication_failed"
STRIPE_CODES = {"payment_intent_authentication_failure": AUTHENTICATION_FAILED}
# How Stripe asks for the payer's check of a card: in Stripe.js's frame on our page (what
# confirming with use_stripe_sdk asks for), or on the bank's page.
AUTHENTICATION_ACTIONS = ("use_stripe_sdk", "redirect_to_url")
# A PaymentIntent in one of these was never (and now can never be) charged.
NEVER_CHARGED = ("requires_confirmation", "requires_action", "canceled")


def decline_code(code: str | None, stripe_decline_code: str | None) -> str:
    """Our error code for Stripe's ``code`` and ``decline_code`` (the finer reason, given for
    ``card_declined``: insufficient_funds, …)."""
    for candidate in (stripe_decline_code, code):
        if candidate in OUR_DECLINE_CODES:
            return str(candidate)
        if candidate in STRIPE_CODES:
            return STRIPE_CODES[candidate]
    if (code or "").startswith(MICRODEPOSIT_FAILURE_PREFIX):
        return UNVERIFIED
    return "card_declined"


def _declined_by(error: stripe.StripeError) -> Declined:
    detail = error.error
    return Declined(decline_code(error.code, getattr(detail, "decline_code", None)))


@implementer(IPaymentProcessor)
class StripeProcessor:
    name = "stripe"

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        api_base: str = "",
        timeout: float = 10,
        max_network_retries: int = 2,
    ):
        self.session_factory = session_factory
        self.api_base = api_base
        self.timeout = timeout
        self.max_network_retries = max_network_retries
        self._clients: dict[str, stripe.StripeClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], registry: Registry) -> StripeProcessor:
        return cls(
            registry["dbsession_factory"],
            api_base=str(settings.get("clientpay.stripe.api_base") or ""),
            timeout=float(settings["clientpay.http_timeout"]),
            max_network_retries=int(settings["clientpay.stripe.max_network_retries"]),
        )

    @classmethod
    def create_service(cls, context: Any, request: Any) -> StripeProcessor:
        processor: StripeProcessor = request.registry["clientpay.processors"][cls.name]
        return processor

    def client(self, account: ProcessorAccount | None) -> stripe.StripeClient:
        """The client for the account's own Stripe account (one per secret key, reused)."""
        if account is None or not account.secret_key:
            # Nothing can be charged: refused before any request (the page shows no form).
            raise Declined("processing_error", "This account cannot take payments online yet.")
        with self._lock:
            client = self._clients.get(account.secret_key)
            if client is None:
                client = self._new_client(account.secret_key)
                self._clients[account.secret_key] = client
        return client

    def _new_client(self, secret_key: str) -> stripe.StripeClient:
        # Every call has a timeout; the library retries a network failure with the same
        # Idempotency-Key, which Stripe answers with the first answer.
        bases: Any = {"api": self.api_base} if self.api_base else None
        return stripe.StripeClient(
            secret_key,
            base_addresses=bases,
            max_network_retries=self.max_network_retries,
            http_client=stripe.RequestsClient(timeout=self.timeout),
        )

    @contextmanager
    def _ledger(self) -> Iterator[Session]:
        """A session of the processor's own, committed when the block ends."""
        with self.session_factory() as session, session.begin():
            yield session

    def charge(
        self,
        token: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        allowed_methods: Collection[str],
        account: ProcessorAccount | None = None,
        metadata: Mapping[str, str] | None = None,
        acceptance: OnlineAcceptance | None = None,
    ) -> ChargeResult:
        client = self.client(account)
        with _unavailable_on_outage():
            intent_id = self._intent_id(idempotency_key)
            if intent_id is None:
                method = self._payment_method(client, token)
                if METHODS.get(method.type) not in allowed_methods:
                    raise Declined("method_not_accepted")
                intent_id = self._create_intent(
                    client, method, amount_minor, currency, idempotency_key, metadata
                )
            intent = client.v1.payment_intents.retrieve(intent_id)
            if intent.status == "requires_confirmation":
                intent = self._confirm(client, intent_id, confirmation(intent, acceptance))
            return self._answer(client, intent)

    def lookup(
        self, idempotency_key: str, account: ProcessorAccount | None = None
    ) -> ChargeResult | None:
        intent_id = self._intent_id(idempotency_key)
        if intent_id is None:
            return None
        client = self.client(account)
        with _unavailable_on_outage():
            intent = client.v1.payment_intents.retrieve(intent_id)
            if awaiting_authentication(intent) or is_refused_card(intent):
                # The payer's bank check, never finished or refused: nothing was charged,
                # and the client secret their page held must never charge it later.
                return self._cancelled_for_the_payer(client, intent)
            if intent.status == "requires_confirmation" or (
                intent.status == "requires_action" and awaiting_verification(intent) is None
            ):
                # Our confirmation never reached Stripe: cancelled, it can never charge later.
                client.v1.payment_intents.cancel(intent_id)
                return None
            if intent.status == "canceled" and not was_confirmed_debit(intent):
                return None
            # Awaiting the payer's verification is left alone: still not settled.
            return self._answer(client, intent)

    def refund(
        self,
        charge_reference: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        account: ProcessorAccount | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RefundResult:
        """Refund part of the PaymentIntent ``charge_reference``. Asked again with the same
        key (after a lost answer), it answers with the refund made the first time: Stripe's
        idempotency key is the refund's own, and, since Stripe forgets a key after a day, the
        refund is first looked for among the PaymentIntent's by the key in its metadata."""
        params: Any = {
            "payment_intent": charge_reference,
            "amount": amount_minor,
            "metadata": {**(metadata or {}), REFUND_KEY_METADATA: idempotency_key},
        }
        try:
            client = self.client(account)
            with _unavailable_on_outage():
                refund = self._refund_with_key(client, charge_reference, idempotency_key)
                if refund is None:
                    refund = client.v1.refunds.create(
                        params, options={"idempotency_key": idempotency_key}
                    )
        except Declined as declined:
            raise RefundRefused(declined.code, declined.message) from None
        except stripe.InvalidRequestError as error:
            # Already refunded in the dashboard, more than is left, an unknown payment.
            raise RefundRefused(error.code or "refund_refused", error.user_message) from None
        if refund.status in ("failed", "canceled"):
            raise RefundRefused(refund.status, f"Stripe's refund {refund.id} {refund.status}.")
        # "pending" (a bank debit's refund, or a card's that Stripe sends later) is made:
        # only a failure later could undo it, and Stripe then sends charge.refund.updated.
        return RefundResult(reference=refund.id, amount_minor=refund.amount)

    def _refund_with_key(
        self, client: stripe.StripeClient, intent_id: str, idempotency_key: str
    ) -> stripe.Refund | None:
        listed = client.v1.refunds.list(params={"payment_intent": intent_id, "limit": 100})
        for refund in listed.auto_paging_iter():
            kept = refund.metadata.to_dict() if refund.metadata else {}
            if kept.get(REFUND_KEY_METADATA) == idempotency_key:
                return refund
        return None

    def _payment_method(self, client: stripe.StripeClient, token: str) -> stripe.PaymentMethod:
        try:
            return client.v1.payment_methods.retrieve(token)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or exc.code == "resource_missing":
                raise Declined("invalid_payment_token") from exc
            raise

    def _create_intent(
        self,
        client: stripe.StripeClient,
        method: stripe.PaymentMethod,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str] | None,
    ) -> str:
        """Create the PaymentIntent and commit which it is, before it is confirmed."""
        params: Any = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "payment_method": method.id,
            "payment_method_types": [method.type],
            "metadata": dict(metadata or {}),
        }
        intent = client.v1.payment_intents.create(
            params, options={"idempotency_key": idempotency_key}
        )
        try:
            with self._ledger() as session:
                session.add(StripeIntent(attempt_key=idempotency_key, payment_intent_id=intent.id))
        except IntegrityError:
            # Charged with this key at the same moment elsewhere: confirm theirs, not ours.
            found = self._intent_id(idempotency_key)
            if found is None:
                raise
            return found
        return intent.id

    def _confirm(
        self, client: stripe.StripeClient, intent_id: str, params: dict[str, Any]
    ) -> stripe.PaymentIntent:
        try:
            return client.v1.payment_intents.confirm(intent_id, params or None)  # type: ignore[arg-type]
        except stripe.CardError as error:
            raise _declined_by(error) from None

    def _answer(self, client: stripe.StripeClient, intent: stripe.PaymentIntent) -> ChargeResult:
        """The charge's result from its PaymentIntent, the same every time; Declined if it
        was refused, ProcessorUnavailable while it is still processing."""
        if intent.status == "succeeded":
            return self._result(client, intent)
        if intent.status == "requires_payment_method" and intent.last_payment_error is not None:
            raise Declined(refusal_code(intent))
        if awaiting_authentication(intent):
            # The card's bank wants the payer's check first; nothing is charged until then.
            return self._result(
                client, intent, settled=False, authentication_secret=intent.client_secret or ""
            )
        verification = awaiting_verification(intent)
        if verification is not None:
            # Stripe sends micro-deposits first; nothing is debited until the payer confirms
            # them on Stripe's page (days away), so the payment waits, like a debit clearing.
            url, arrives_at = verification
            return self._result(
                client, intent, settled=False, verification_url=url, arrives_at=arrives_at
            )
        if intent.status == "requires_action" and is_bank_debit(intent):
            # Some other verification we cannot offer the payer: nothing is debited.
            raise Declined(UNVERIFIED)
        if intent.status == "canceled" and was_confirmed_debit(intent):
            # Confirmed, then cancelled by Stripe: the account was never verified in time.
            raise Declined(UNVERIFIED)
        if intent.status in NEVER_CHARGED:
            raise Declined("processing_error")
        if intent.status == "processing" and is_bank_debit(intent):
            # Accepted; the bank answers in days (the webhook, or the resolver, settles it).
            return self._result(client, intent, settled=False)
        # Anything else still processing: not known yet; the resolver asks again.
        raise ProcessorUnavailable(f"payment intent {intent.id} is {intent.status}")

    def _result(
        self,
        client: stripe.StripeClient,
        intent: stripe.PaymentIntent,
        settled: bool = True,
        verification_url: str = "",
        arrives_at: dt.datetime | None = None,
        authentication_secret: str = "",
    ) -> ChargeResult:
        method_id = intent.payment_method
        method_id = method_id if isinstance(method_id, str) else method_id.id  # type: ignore[union-attr]
        method = client.v1.payment_methods.retrieve(method_id)
        details = method.card if method.type == "card" else method.us_bank_account
        return ChargeResult(
            reference=intent.id,
            method=METHODS.get(method.type, method.type),
            brand=str(getattr(details, "brand", "") or ""),
            last4=str(getattr(details, "last4", "") or ""),
            amount_minor=intent.amount,
            currency=intent.currency.upper(),
            settled=settled,
            verification_url=verification_url,
            verification_arrives_at=arrives_at,
            authentication_secret=authentication_secret,
        )

    def _cancelled_for_the_payer(
        self, client: stripe.StripeClient, intent: stripe.PaymentIntent
    ) -> ChargeResult:
        """Cancel a card's PaymentIntent that the payer's bank check (or the bank) left
        uncharged, and decline it; if the payer passed the check at this very moment (it can
        no longer be cancelled), what became of it."""
        code = refusal_code(intent)
        try:
            client.v1.payment_intents.cancel(intent.id)
        except stripe.InvalidRequestError:
            moved_on = client.v1.payment_intents.retrieve(intent.id)
            if moved_on.status != "canceled":
                return self._answer(client, moved_on)
        raise Declined(code)

    def _intent_id(self, idempotency_key: str) -> str | None:
        try:
            with self._ledger() as session:
                return session.execute(
                    select(StripeIntent.payment_intent_id).where(
                        StripeIntent.attempt_key == idempotency_key
                    )
                ).scalar_one_or_none()
        except OperationalError as exc:
            raise ProcessorUnavailable("our record of Stripe's attempts did not answer") from exc


def is_bank_debit(intent: stripe.PaymentIntent) -> bool:
    # getattr: localstripe's PaymentIntents carry no payment_method_types.
    return BANK_DEBIT in (getattr(intent, "payment_method_types", None) or ())


def awaiting_verification(intent: stripe.PaymentIntent) -> tuple[str, dt.datetime | None] | None:
    """The hosted verification page's URL, and when the deposits should arrive, of a bank
    debit Stripe holds until the payer verifies the account with micro-deposits."""
    if intent.status != "requires_action" or not is_bank_debit(intent):
        return None
    action = getattr(intent, "next_action", None)
    if action is None or getattr(action, "type", None) != VERIFY_WITH_MICRODEPOSITS:
        return None
    details = getattr(action, VERIFY_WITH_MICRODEPOSITS, None)
    url = str(getattr(details, "hosted_verification_url", None) or "")
    if not url:
        return None
    arrival = getattr(details, "arrival_date", None)
    return url, dt.datetime.fromtimestamp(int(arrival), dt.UTC) if arrival else None


def awaiting_authentication(intent: stripe.PaymentIntent) -> bool:
    """A card's PaymentIntent waiting for the payer to pass their bank's check (3-D Secure)."""
    if intent.status != "requires_action" or is_bank_debit(intent):
        return False
    action = getattr(intent, "next_action", None)
    return getattr(action, "type", None) in AUTHENTICATION_ACTIONS


def refusal_code(intent: stripe.PaymentIntent) -> str:
    """Our decline code for a PaymentIntent left uncharged: refused (its last error says
    why), or a card's whose bank check the payer never finished."""
    if awaiting_authentication(intent):
        return AUTHENTICATION_FAILED
    error = intent.last_payment_error
    if error is None:
        return "processing_error"
    return decline_code(error.code, getattr(error, "decline_code", None))


def is_refused_card(intent: stripe.PaymentIntent) -> bool:
    """A card's PaymentIntent that was refused and waits for another card: Stripe.js could
    still confirm it with one, given its client secret."""
    return intent.status == "requires_payment_method" and not is_bank_debit(intent)


def was_confirmed_debit(intent: stripe.PaymentIntent) -> bool:
    # A mandate is made only when a debit is confirmed: a cancelled one without it was ours,
    # cancelled before Stripe heard of the confirmation (nothing was ever asked of the payer).
    return is_bank_debit(intent) and bool(getattr(intent, "mandate", None))


def confirmation(
    intent: stripe.PaymentIntent, acceptance: OnlineAcceptance | None
) -> dict[str, Any]:
    """What confirming ``intent`` sends beyond its id: for a bank debit, the payer's mandate,
    which Stripe requires (accepted online, from this IP address and user agent); for a
    card, how the payer's bank check is to be done."""
    if not is_bank_debit(intent):
        # A card's bank may want the payer's check (3-D Secure): with this, Stripe asks for
        # it in Stripe.js's frame on our page (stripe.handleNextAction) rather than by
        # sending the payer to a page of the bank's, and back to a return_url.
        return {"use_stripe_sdk": True}
    if acceptance is None or not acceptance.ip_address or not acceptance.user_agent:
        # Without them there is no mandate, and Stripe would refuse the debit anyway.
        raise Declined(
            "processing_error",
            "Your browser did not send what a bank debit's authorization records. "
            "Please pay by card, or try another browser.",
        )
    online = {"ip_address": acceptance.ip_address, "user_agent": acceptance.user_agent}
    return {"mandate_data": {"customer_acceptance": {"type": "online", "online": online}}}


@contextmanager
def _unavailable_on_outage() -> Iterator[None]:
    """Stripe did not answer, or answered that it failed: we do not know what happened."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise ProcessorUnavailable(str(exc)) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        # The account's keys are wrong: nothing was charged, and nothing can be until fixed.
        raise Declined("processing_error", "This account cannot take payments online.") from exc
