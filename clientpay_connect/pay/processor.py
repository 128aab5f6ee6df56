"""The payment processor boundary: what a charge answers, and the built-in sandbox processor.

The sandbox behaves like a hosted-fields processor. The payer's browser hands the card or bank
numbers to its tokenization endpoint (pay/sandbox_api.py) and our payment endpoint only ever
sees the token. The sandbox keeps its own ledger (SandboxToken, SandboxCharge) in our database
but writes it in its own short, committed transactions: it stands for a remote service, whose
records do not roll back with ours.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyramid.registry import Registry
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from zope.interface import implementer

from clientpay_connect.admin.models import METHOD_CARD, METHOD_ECHECK
from clientpay_connect.pay.interfaces import IPaymentProcessor
from clientpay_connect.pay.models import SandboxCharge, SandboxRefund, SandboxToken


@dataclass(frozen=True)
class ChargeResult:
    """A successful charge, as the processor reports it (never the card or account number)."""

    reference: str
    method: str
    brand: str
    last4: str
    amount_minor: int
    currency: str
    # False while the money is still on its way: a bank debit (ACH) is accepted at once but
    # clears, or is returned, days later. Such a payment is not paid until it settles.
    settled: bool = True
    # Not yet debited at all: the processor first wants the payer to verify the bank account
    # (Stripe's micro-deposits) on its page at this URL; the deposits arrive about then.
    verification_url: str = ""
    verification_arrives_at: dt.datetime | None = None
    # Not yet charged either: the card's bank wants the payer to confirm the payment first
    # (3-D Secure). What the payer's Stripe.js needs for it (the PaymentIntent's client
    # secret): handed to that payer's page in the answer, never stored (Stripe asks that it
    # not be) nor logged.
    authentication_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class OnlineAcceptance:
    """The payer's authorization of a debit, given on our page: a bank debit's mandate
    records where from (Stripe requires both for ACH)."""

    ip_address: str
    user_agent: str


@dataclass(frozen=True)
class ProcessorAccount:
    """The merchant account a charge pays into, as a processor sees it: its id and its own
    keys (empty at the sandbox, which needs none). The secret is never shown by repr."""

    id: int
    secret_key: str = field(default="", repr=False)
    publishable_key: str = ""


# Where a processor that keeps metadata keeps a refund's idempotency key: how a refund is
# found again after a lost answer, and how a webhook tells ours from one made elsewhere.
REFUND_KEY_METADATA = "clientpay_refund"


@dataclass(frozen=True)
class RefundResult:
    """A refund the processor made: its own id for it, and how much it gave back."""

    reference: str
    amount_minor: int


class RefundRefused(Exception):
    """The processor made no refund. ``code`` names why; ``message`` is for staff."""

    def __init__(self, code: str, message: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message or "The processor refused the refund."


class Declined(Exception):
    """The processor refused the charge; nothing was taken. ``code`` is the API's error code."""

    def __init__(self, code: str, message: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message or DECLINE_MESSAGES.get(code, "The payment was declined.")


class ProcessorUnavailable(Exception):
    """We do not know whether the charge happened (timeout, network, outage)."""


class Processor(Protocol):
    """IPaymentProcessor as the type checker sees it (zope interfaces are invisible to it)."""

    name: str

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
    ) -> ChargeResult: ...

    def lookup(
        self, idempotency_key: str, account: ProcessorAccount | None = None
    ) -> ChargeResult | None: ...

    def refund(
        self,
        charge_reference: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        account: ProcessorAccount | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RefundResult: ...


DECLINE_MESSAGES: dict[str, str] = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Please try again.",
    "account_closed": "The bank account is closed.",
    "no_account": "The bank could not find this account. Check the account number.",
    "debit_not_authorized": "The bank refused the debit: the account holder did not authorize it.",
    "invalid_currency": "The bank account cannot be debited in this currency.",
    "bank_account_unverified": (
        "This bank account was not verified, so nothing was debited. Please pay by card or "
        "with another bank account, or contact the firm."
    ),
    "authentication_failed": (
        "Your card's bank did not confirm the payment, so nothing was charged. Please try "
        "again, or use another card."
    ),
    "method_not_accepted": "This payment method is not accepted for this invoice.",
    "invalid_payment_token": (
        "The payment details have expired or were already used. Please enter them again."
    ),
}

OUTCOME_SUCCEEDED = "succeeded"
# Not Stripe numbers: the sandbox's way to let the outage paths be exercised end to end.
# The charge is made but its answer never arrives (the resolver job finds it later)...
OUTCOME_ANSWER_LOST = "answer_lost"
# ...or the processor cannot be reached at all, and nothing is charged.
OUTCOME_UNREACHABLE = "unreachable"

CARD_OUTCOMES: dict[str, str] = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
    "4000000000000507": OUTCOME_ANSWER_LOST,
    "4000000000000515": OUTCOME_UNREACHABLE,
}
# Stripe's test bank accounts and the ACH return each ends in (a bank debit's decline).
BANK_OUTCOMES: dict[tuple[str, str], str] = {
    ("110000000", "000111111116"): "no_account",
    ("110000000", "000111111113"): "account_closed",
    ("110000000", "000222222227"): "insufficient_funds",
    ("110000000", "000333333335"): "debit_not_authorized",
}
ACCOUNT_TYPES = ("checking", "savings")


@dataclass(frozen=True)
class SandboxDetails:
    """What the sandbox keeps of a card or bank account: how to behave, and how to show it."""

    method: str
    brand: str
    last4: str
    outcome: str


class InvalidDetails(Exception):
    """The numbers cannot be tokenized; one entry per field, as the API's error shape wants."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("invalid payment details")
        self.errors = errors


def read_details(body: Mapping[str, Any], today: dt.date) -> SandboxDetails:
    """Validate a card or a bank account as a processor's tokenization would."""
    if "card_number" in body:
        return _read_card(body, today)
    if "routing_number" in body or "account_number" in body:
        return _read_bank_account(body)
    raise InvalidDetails(
        [{"field": "card_number", "message": "Send a card or a bank account to tokenize."}]
    )


def _digits(value: Any) -> str | None:
    """The digits of a number as typed (spaces and dashes allowed), None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).replace(" ", "").replace("-", "")
    return text if text.isdigit() else None


def luhn_valid(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def routing_number_valid(number: str) -> bool:
    """The ABA checksum: weights 3, 7, 1 repeated must sum to a multiple of ten."""
    if len(number) != 9 or not number.isdigit():
        return False
    weights = (3, 7, 1) * 3
    return sum(int(d) * w for d, w in zip(number, weights, strict=True)) % 10 == 0


def card_brand(number: str) -> str:
    prefix2, prefix4 = int(number[:2]), int(number[:4])
    if number.startswith("4"):
        return "visa"
    if 51 <= prefix2 <= 55 or 2221 <= prefix4 <= 2720:
        return "mastercard"
    if prefix2 in (34, 37):
        return "amex"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3]) <= 649:
        return "discover"
    return "unknown"


def _read_card(body: Mapping[str, Any], today: dt.date) -> SandboxDetails:
    errors: list[dict[str, str]] = []
    number = _digits(body.get("card_number"))
    if number is None or not 12 <= len(number) <= 19 or not luhn_valid(number):
        errors.append({"field": "card_number", "message": "The card number is not valid."})
    errors.extend(_expiry_errors(body.get("exp_month"), body.get("exp_year"), today))
    cvc = body.get("cvc")
    if not isinstance(cvc, str) or not cvc.isdigit() or not 3 <= len(cvc) <= 4:
        errors.append({"field": "cvc", "message": "The security code is 3 or 4 digits."})
    if errors or number is None:
        raise InvalidDetails(errors)
    outcome = CARD_OUTCOMES.get(number, OUTCOME_SUCCEEDED)
    return SandboxDetails(METHOD_CARD, card_brand(number), number[-4:], outcome)


def _expiry_errors(month_value: Any, year_value: Any, today: dt.date) -> list[dict[str, str]]:
    month, year = _digits(month_value), _digits(year_value)
    errors = []
    if month is None or not 1 <= int(month) <= 12:
        errors.append({"field": "exp_month", "message": "The expiry month is 1 to 12."})
    if year is None or len(year) not in (2, 4):
        errors.append({"field": "exp_year", "message": "The expiry year is not valid."})
    if errors or month is None or year is None:
        return errors
    full_year = int(year) + 2000 if len(year) == 2 else int(year)
    # A card is good through the last day of its expiry month.
    if (full_year, int(month)) < (today.year, today.month):
        return [{"field": "exp_year", "message": "The card has expired."}]
    return []


def _read_bank_account(body: Mapping[str, Any]) -> SandboxDetails:
    errors: list[dict[str, str]] = []
    routing = _digits(body.get("routing_number"))
    if routing is None or not routing_number_valid(routing):
        errors.append({"field": "routing_number", "message": "The routing number is not valid."})
    account = _digits(body.get("account_number"))
    if account is None or not 4 <= len(account) <= 17:
        errors.append(
            {"field": "account_number", "message": "The account number is 4 to 17 digits."}
        )
    if body.get("account_type") not in ACCOUNT_TYPES:
        errors.append({"field": "account_type", "message": "Choose checking or savings."})
    if errors or routing is None or account is None:
        raise InvalidDetails(errors)
    outcome = BANK_OUTCOMES.get((routing, account), OUTCOME_SUCCEEDED)
    return SandboxDetails(METHOD_ECHECK, "", account[-4:], outcome)


@implementer(IPaymentProcessor)
class SandboxProcessor:
    """A processor that charges nobody: outcomes follow the test numbers it tokenized."""

    name = "sandbox"
    # It marks invoices paid without moving money: offered only on an instance for development.
    development_only = True

    def __init__(self, session_factory: sessionmaker[Session], delay_ms: int = 0):
        self.session_factory = session_factory
        self.delay_ms = delay_ms

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], registry: Registry) -> SandboxProcessor:
        return cls(registry["dbsession_factory"], int(settings["clientpay.sandbox.delay_ms"]))

    @classmethod
    def create_service(cls, context: Any, request: Any) -> SandboxProcessor:
        processor: SandboxProcessor = request.registry["clientpay.processors"][cls.name]
        return processor

    @contextmanager
    def _ledger(self) -> Iterator[Session]:
        """A session of the sandbox's own, committed when the block ends."""
        with self.session_factory() as session, session.begin():
            yield session

    def tokenize(self, details: SandboxDetails) -> str:
        token = "tok_" + secrets.token_urlsafe(24)
        with self._ledger() as session:
            session.add(
                SandboxToken(
                    token=token,
                    method=details.method,
                    brand=details.brand,
                    last4=details.last4,
                    outcome=details.outcome,
                )
            )
        return token

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
        # The sandbox has one ledger for every account, and keeps no metadata or mandate.
        if self.delay_ms:
            # The network round trip of a real processor; it widens every race window.
            time.sleep(self.delay_ms / 1000)
        try:
            charge, card = self._record_charge(
                token, amount_minor, currency, idempotency_key, allowed_methods
            )
        except IntegrityError:
            # Someone charged with this key at the same moment: theirs is the charge.
            charge, card = self._existing_charge(idempotency_key)
        except OperationalError as exc:
            raise ProcessorUnavailable("the sandbox ledger did not answer") from exc
        if charge.outcome == OUTCOME_ANSWER_LOST:
            raise ProcessorUnavailable("the charge was sent but its answer was lost")
        return _answer(charge, card)

    def lookup(
        self, idempotency_key: str, account: ProcessorAccount | None = None
    ) -> ChargeResult | None:
        try:
            charge, card = self._existing_charge(idempotency_key)
        except LookupError:
            return None
        return _answer(charge, card)

    def _record_charge(
        self,
        token: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        allowed_methods: Collection[str],
    ) -> tuple[SandboxCharge, SandboxToken]:
        with self._ledger() as session:
            found = _charge_with_key(session, idempotency_key)
            if found is not None:
                return found
            card = session.get(SandboxToken, token)
            if card is None or _token_used(session, token):
                # Like a real processor's token: single use, and unknown ones are refused.
                raise Declined("invalid_payment_token")
            if card.method not in allowed_methods:
                raise Declined("method_not_accepted")
            if card.outcome == OUTCOME_UNREACHABLE:
                raise ProcessorUnavailable("the sandbox is unreachable")
            charge = SandboxCharge(
                idempotency_key=idempotency_key,
                token=token,
                amount_minor=amount_minor,
                currency=currency,
                outcome=card.outcome,
                reference="ch_" + secrets.token_hex(12),
            )
            session.add(charge)
            session.flush()
            return charge, card

    def _existing_charge(self, idempotency_key: str) -> tuple[SandboxCharge, SandboxToken]:
        with self._ledger() as session:
            found = _charge_with_key(session, idempotency_key)
        if found is None:
            raise LookupError(idempotency_key)
        return found

    def refund(
        self,
        charge_reference: str,
        amount_minor: int,
        currency: str,
        idempotency_key: str,
        account: ProcessorAccount | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> RefundResult:
        if self.delay_ms:
            time.sleep(self.delay_ms / 1000)
        refund: SandboxRefund | None
        try:
            refund = self._record_refund(charge_reference, amount_minor, idempotency_key)
        except IntegrityError:
            # The same key at the same moment elsewhere: theirs is the refund.
            with self._ledger() as session:
                refund = _refund_with_key(session, idempotency_key)
            if refund is None:
                raise
        except OperationalError as exc:
            raise ProcessorUnavailable("the sandbox ledger did not answer") from exc
        return RefundResult(reference=refund.reference, amount_minor=refund.amount_minor)

    def _record_refund(
        self, charge_reference: str, amount_minor: int, idempotency_key: str
    ) -> SandboxRefund:
        with self._ledger() as session:
            found = _refund_with_key(session, idempotency_key)
            if found is not None:
                return found
            # Locked, as a processor keeps its own books straight whatever its callers do.
            charge = session.execute(
                select(SandboxCharge)
                .where(SandboxCharge.reference == charge_reference)
                .with_for_update()
            ).scalar_one_or_none()
            if charge is None or charge.outcome not in (OUTCOME_SUCCEEDED, OUTCOME_ANSWER_LOST):
                raise RefundRefused("charge_not_found", "The processor has no such payment.")
            refunded = session.execute(
                select(func.coalesce(func.sum(SandboxRefund.amount_minor), 0)).where(
                    SandboxRefund.charge_reference == charge_reference
                )
            ).scalar_one()
            if refunded + amount_minor > charge.amount_minor:
                raise RefundRefused(
                    "amount_too_large", "The refund is more than is left of the payment."
                )
            refund = SandboxRefund(
                idempotency_key=idempotency_key,
                charge_reference=charge_reference,
                amount_minor=amount_minor,
                reference="re_" + secrets.token_hex(12),
            )
            session.add(refund)
            session.flush()
            return refund


def _refund_with_key(session: Session, key: str) -> SandboxRefund | None:
    return session.execute(
        select(SandboxRefund).where(SandboxRefund.idempotency_key == key)
    ).scalar_one_or_none()


def _charge_with_key(session: Session, key: str) -> tuple[SandboxCharge, SandboxToken] | None:
    row = session.execute(
        select(SandboxCharge, SandboxToken)
        .join(SandboxToken, SandboxToken.token == SandboxCharge.token)
        .where(SandboxCharge.idempotency_key == key)
    ).one_or_none()
    return (row[0], row[1]) if row is not None else None


def _token_used(session: Session, token: str) -> bool:
    used = session.execute(select(SandboxCharge.id).where(SandboxCharge.token == token).limit(1))
    return used.first() is not None


def _answer(charge: SandboxCharge, card: SandboxToken) -> ChargeResult:
    """The charge's result, the same every time it is asked for; Declined if it was refused."""
    if charge.outcome not in (OUTCOME_SUCCEEDED, OUTCOME_ANSWER_LOST):
        raise Declined(charge.outcome)
    return ChargeResult(
        reference=charge.reference,
        method=card.method,
        brand=card.brand,
        last4=card.last4,
        amount_minor=charge.amount_minor,
        currency=charge.currency,
    )
