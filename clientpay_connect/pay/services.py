"""Paying a link exactly once: claim it, record the attempt, charge outside any transaction,
settle. ``submit_payment`` takes a payer's submission through those steps, committing between
them; the resolver job (pay/tasks.py) settles what a lost answer left claimed.

``clientpay.processor`` names its default, the sandbox, by this module's path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import is_valid_email, normalize_email
from clientpay_connect.admin.models import FirmSettings, MerchantAccount
from clientpay_connect.crypto import sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.links import services as links
from clientpay_connect.links.models import (
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PROCESSING,
    PaymentLink,
    paid_status,
)
from clientpay_connect.mail.models import (
    KIND_BANK_VERIFICATION,
    KIND_PAYMENT_NOTICE,
    KIND_RECEIPT,
)
from clientpay_connect.mail.outbox import queue_email
from clientpay_connect.money import AmountError, format_amount, parse_amount
from clientpay_connect.notifications.recipients import subscribers
from clientpay_connect.notifications.services import link_facts, notify_payment_failed
from clientpay_connect.pay import processors
from clientpay_connect.pay.interfaces import (
    CaptchaFailed,
    ICaptchaVerifier,
    IdempotencyKeyReused,
    InvalidSubmission,
    IPaymentProcessor,
    LinkExpired,
    LinkNotPayable,
    PaymentOutcomeUnknown,
    UnknownLink,
)
from clientpay_connect.pay.models import (
    PAYMENT_FAILED,
    PAYMENT_PENDING,
    PAYMENT_PROCESSING,
    PAYMENT_SUCCEEDED,
    Payment,
)
from clientpay_connect.pay.processor import (
    ChargeResult,
    Declined,
    OnlineAcceptance,
    Processor,
    ProcessorAccount,
    ProcessorUnavailable,
    SandboxProcessor,
)
from clientpay_connect.pay.processors import ProcessorNotOffered, not_offered_reason
from clientpay_connect.postings.services import create_posting_for_payment
from clientpay_connect.work import Work

__all__ = ["SandboxProcessor"]

log = logging.getLogger(__name__)

RECEIPT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # base32: no 0/1/8/9 to misread
NOTICE_EVENT = "payment_received"
# The failure code of a payment the processor never heard of (the resolver's verdict).
NOT_CHARGED = "not_charged"
# The refusal of a link whose merchant account's processor this instance does not offer.
REFUSED_PROCESSOR_NOT_OFFERED = "processor_not_offered"
# A payment the processor has not settled yet: the one a link's claim waits on.
UNSETTLED = (PAYMENT_PENDING, PAYMENT_PROCESSING)


@dataclass(frozen=True)
class Attempt:
    """A payer's validated submission."""

    payment_token: str
    amount_minor: int
    payer_name: str
    payer_email: str


def read_attempt(body: Mapping[str, Any], link: PaymentLink) -> Attempt:
    """Validate the payer's fields against the link; InvalidSubmission names each bad one."""
    errors: list[dict[str, str]] = []
    amount_minor = _amount(body.get("amount"), link, errors)
    payer_name = str(body.get("payer_name") or "").strip()
    if not payer_name or len(payer_name) > 200:
        errors.append({"field": "payer_name", "message": "Enter your name (up to 200 letters)."})
    payer_email = normalize_email(str(body.get("payer_email") or ""))
    if not is_valid_email(payer_email):
        errors.append({"field": "payer_email", "message": "Enter a valid email address."})
    payment_token = str(body.get("payment_token") or "").strip()
    if not payment_token or len(payment_token) > 64:
        errors.append({"field": "payment_token", "message": "The payment details are missing."})
    if errors:
        raise InvalidSubmission(errors)
    return Attempt(payment_token, amount_minor, payer_name, payer_email)


def _amount(value: Any, link: PaymentLink, errors: list[dict[str, str]]) -> int:
    try:
        amount_minor = parse_amount(str(value or ""), link.currency)
    except AmountError as exc:
        errors.append({"field": "amount", "message": str(exc)})
        return 0
    if amount_minor > link.amount_due_minor:
        due = format_amount(link.amount_due_minor, link.currency)
        errors.append({"field": "amount", "message": f"The amount due is {due}; pay no more."})
    return amount_minor


# What a submission asks for: a key replays these, and only these. The reCAPTCHA answer is
# left out: it proves a person, and is not part of what is paid.
SUBMISSION_FIELDS = ("payment_token", "amount", "payer_name", "payer_email")


def submission_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 of the submission's fields as sent (as Stripe compares a key's requests)."""
    fields = {name: body.get(name) for name in SUBMISSION_FIELDS}
    return sha256_hex(json.dumps(fields, sort_keys=True, separators=(",", ":")))


def find_attempt(
    dbsession: Session, link_id: int, idempotency_key: str, request_hash: str
) -> Payment | None:
    """The payment an earlier request with this Idempotency-Key made, if any.

    Raises IdempotencyKeyReused if that request asked for something else: answering it with
    the first payment's answer would tell a payer that another amount or card was charged.
    """
    payment = dbsession.execute(
        select(Payment).where(
            Payment.link_id == link_id, Payment.idempotency_key == idempotency_key
        )
    ).scalar_one_or_none()
    if payment is not None and payment.request_hash not in (None, request_hash):
        raise IdempotencyKeyReused()
    return payment


def mark_expired(dbsession: Session, link_id: int) -> None:
    # Conditional, like the claim: a payer who claimed it a moment ago keeps it.
    dbsession.execute(
        update(PaymentLink)
        .where(PaymentLink.id == link_id, PaymentLink.status == STATUS_OUTSTANDING)
        .values(status=STATUS_EXPIRED)
        .execution_options(synchronize_session=False)
    )


def start_payment(
    dbsession: Session,
    link: PaymentLink,
    attempt: Attempt,
    idempotency_key: str,
    request_hash: str,
    processor: str = "",
) -> Payment | None:
    """Claim the link and record a pending payment (to be charged through ``processor``);
    None if another payer holds the link."""
    if not links.claim(dbsession, link.id):
        return None
    payment = Payment(
        firm_id=link.firm_id,
        link_id=link.id,
        status=PAYMENT_PENDING,
        amount_minor=attempt.amount_minor,
        currency=link.currency,
        payer_name=attempt.payer_name,
        payer_email=attempt.payer_email,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        processor=processor,
        # Ours, not the payer's: a payer could reuse a key across links, the processor must not.
        processor_key="pk_" + secrets.token_hex(24),
        created_at=utcnow(),
    )
    dbsession.add(payment)
    dbsession.flush()
    return payment


@dataclass(frozen=True)
class Submission:
    """A payer's POST: the link's secret token, the body as validated against the OpenAPI
    document, the Idempotency-Key header and where it came from (for reCAPTCHA)."""

    link_token: str
    body: Mapping[str, Any]
    idempotency_key: str
    client_addr: str | None
    # The payer's browser, for a bank debit's mandate (with client_addr).
    user_agent: str = ""


@dataclass(frozen=True)
class Outcome:
    """Where a payer's submission stands: its stored payment and, while the card's bank
    wants the payer's check (3-D Secure), what their page needs for it, which is never
    stored (payment_answer tells the payer both)."""

    payment: Payment
    authentication_secret: str = ""


def submit_payment(work: Work, submission: Submission) -> Outcome:
    """Pay a link once for ``submission``; the stored payment whose answer (payment_answer)
    the payer gets: succeeded, declined (the link payable again), or an earlier attempt with
    the same key, as it stands. A card payment waiting for the payer's bank check is asked
    for again, with the same key, once the payer's page has done it: it is then settled by
    what the processor says became of it (_after_authentication).

    Commits twice: after claiming the link and recording the attempt (no other payer can
    claim it, and a crash leaves a trace for the resolver), then with the processor's answer,
    which is asked between the two, outside any transaction of ours. Raises UnknownLink,
    LinkExpired, LinkNotPayable, CaptchaFailed, InvalidSubmission, IdempotencyKeyReused or, when
    the processor does not answer, PaymentOutcomeUnknown.
    """
    dbsession = work.dbsession
    link = find_link(dbsession, submission.link_token)
    key = submission.idempotency_key
    request_hash = submission_hash(submission.body)
    earlier = find_attempt(dbsession, link.id, key, request_hash)
    if earlier is not None and is_awaiting_authentication(earlier):
        return Outcome(_after_authentication(work, link, earlier))
    if earlier is not None:
        return Outcome(earlier)
    _refuse_unpayable(work, link)
    processor = _offered_processor(work, link)
    attempt = read_attempt(submission.body, link)
    # Read before any commit below: the link is detached once its transaction ends.
    methods, currency = link.merchant_account.methods, link.currency
    account = processor_account(work, link.merchant_account)
    _check_captcha(work, link, submission)
    payment = start_payment(dbsession, link, attempt, key, request_hash, processor)
    if payment is None:
        return Outcome(_lost_the_claim(dbsession, link.id, key, request_hash))
    payment_id, processor_key = payment.id, payment.processor_key
    metadata = {"firm": str(link.firm_id), "link": str(link.id), "payment": str(payment_id)}
    work.checkpoint()
    acceptance = OnlineAcceptance(submission.client_addr or "", submission.user_agent)
    charge = Charge(
        processor, processor_key, attempt, currency, methods, account, metadata, acceptance
    )
    return _charge(work, payment_id, charge)


def is_awaiting_authentication(payment: Payment) -> bool:
    return payment.status == PAYMENT_PROCESSING and payment.awaiting_authentication


def _after_authentication(work: Work, link: PaymentLink, payment: Payment) -> Payment:
    """Settle a card payment whose bank wanted the payer's check, now that their page has
    asked again: succeeded, or declined (authentication_failed when the check failed or
    was never finished: the processor cancels the attempt, and the link is payable again)."""
    account = processor_account(work, link.merchant_account)
    payment_id, processor_key, processor = payment.id, payment.processor_key, payment.processor
    # The processor is asked outside any transaction of ours, as the charge was.
    work.checkpoint()
    try:
        return settle_from_processor(work, payment_id, processor_key, account, processor)
    except (ProcessorUnavailable, ProcessorNotOffered) as unknown:
        # Still processing: the resolver job asks the processor again later.
        raise PaymentOutcomeUnknown(payment_id) from unknown


def processor_account(work: Work, merchant_account: MerchantAccount) -> ProcessorAccount:
    """The merchant account as the processor needs it: its own keys, the secret decrypted."""
    secret = merchant_account.stripe_secret_key_encrypted
    encryptor = work.registry["clientpay.encryptor"]
    return ProcessorAccount(
        id=merchant_account.id,
        secret_key=encryptor.decrypt(secret) if secret else "",
        publishable_key=merchant_account.stripe_publishable_key or "",
    )


def find_link(dbsession: Session, token: str) -> PaymentLink:
    """The link with this secret token; UnknownLink if there is none."""
    link = links.find_by_token(dbsession, token)
    if link is None:
        raise UnknownLink()
    return link


def _refuse_unpayable(work: Work, link: PaymentLink) -> None:
    """LinkExpired for an expired link (marked so, and committed: the refusal aborts the
    rest), LinkNotPayable for any other that cannot be paid."""
    refusal = links.payment_refusal(link, utcnow())
    if refusal is None:
        return
    if refusal == links.REFUSED_EXPIRED:
        if link.status == STATUS_OUTSTANDING:
            mark_expired(work.dbsession, link.id)
            work.checkpoint()
        raise LinkExpired()
    if refusal == links.REFUSED_ACCOUNT_INACTIVE:
        raise LinkNotPayable(
            link.status,
            links.REFUSED_ACCOUNT_INACTIVE,
            f"This link cannot be paid online. Please contact {link.firm.name}.",
        )
    raise LinkNotPayable(link.status)


def _offered_processor(work: Work, link: PaymentLink) -> str:
    """The name of the processor the link's merchant account pays through; LinkNotPayable
    (nothing charged) when this instance does not offer it: the sandbox, on an instance that
    is not for development, must never mark a real invoice paid."""
    name = link.merchant_account.processor
    if not processors.offers(work.registry, name):
        log.warning("merchant account %s: %s", link.merchant_account_id, not_offered_reason(name))
        raise LinkNotPayable(
            link.status,
            REFUSED_PROCESSOR_NOT_OFFERED,
            f"This link cannot be paid online. Please contact {link.firm.name}.",
        )
    return name


def _check_captcha(work: Work, link: PaymentLink, submission: Submission) -> None:
    settings = work.dbsession.get(FirmSettings, link.firm_id)
    if settings is None or not settings.recaptcha_enabled:
        return
    secret = settings.recaptcha_secret_encrypted
    answer = submission.body.get("recaptcha_token") or ""
    # Google is asked between two transactions: a slow answer must not hold the database.
    work.checkpoint()
    verifier = work.find_service(ICaptchaVerifier)
    encryptor = work.registry["clientpay.encryptor"]
    if not secret or not verifier.verify(encryptor.decrypt(secret), answer, submission.client_addr):
        raise CaptchaFailed()


def _lost_the_claim(dbsession: Session, link_id: int, key: str, request_hash: str) -> Payment:
    # The winner may be this very payer, retrying at the same instant with the same key.
    earlier = find_attempt(dbsession, link_id, key, request_hash)
    if earlier is not None:
        return earlier
    link = dbsession.get(PaymentLink, link_id, populate_existing=True)
    raise LinkNotPayable(link.status if link is not None else STATUS_EXPIRED)


@dataclass(frozen=True)
class Charge:
    """What the processor (by name) is asked to charge for one attempt."""

    processor: str
    processor_key: str
    attempt: Attempt
    currency: str
    allowed_methods: list[str]
    account: ProcessorAccount
    metadata: dict[str, str]
    acceptance: OnlineAcceptance | None = None


def _charge(work: Work, payment_id: int, charge: Charge) -> Outcome:
    processor = work.find_service(IPaymentProcessor, name=charge.processor)
    try:
        result = processor.charge(
            charge.attempt.payment_token,
            charge.attempt.amount_minor,
            charge.currency,
            charge.processor_key,
            charge.allowed_methods,
            account=charge.account,
            metadata=charge.metadata,
            acceptance=charge.acceptance,
        )
    except Declined as declined:
        return Outcome(fail_payment(work, payment_id, declined.code, declined.message))
    except ProcessorUnavailable as unavailable:
        # The link stays claimed: only the resolver job, asking the processor later, may
        # decide whether it was paid.
        raise PaymentOutcomeUnknown(payment_id) from unavailable
    # The secret is told to the payer only while the payment awaits their check (payment_answer).
    return Outcome(record_result(work, payment_id, result), result.authentication_secret)


def record_result(work: Work, payment_id: int, result: ChargeResult) -> Payment:
    """Record what the processor answered: a settled charge completes the payment, one
    whose money is still on its way (a bank debit) leaves it processing."""
    if result.settled:
        return complete_payment(work, payment_id, result)
    return accept_payment(work, payment_id, result)


def accept_payment(work: Work, payment_id: int, result: ChargeResult) -> Payment:
    """The processor took a bank debit that clears in days: the payment is processing, and
    the link stays claimed (not paid, not payable) until the processor settles it.

    No receipt yet: a payer is told "processing" and gets the receipt when it succeeds. A
    debit the processor holds until the payer verifies the account is processing too; the
    payer is emailed the verification page's link (once: only the writer that won). So is a
    card payment the card's bank wants the payer to confirm first (3-D Secure), awaiting
    their check on our page; the link stays claimed meanwhile, and the resolver declines it
    if they never finish.
    """
    dbsession = work.dbsession
    won = dbsession.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status == PAYMENT_PENDING)
        .values(
            status=PAYMENT_PROCESSING,
            verification_url=result.verification_url,
            verification_arrives_at=result.verification_arrives_at,
            awaiting_authentication=bool(result.authentication_secret),
            **_charged_with(result),
        )
        .execution_options(synchronize_session=False)
    )
    payment = _reload(dbsession, payment_id)
    if won.rowcount == 1 and payment.verification_url:  # type: ignore[attr-defined]
        queue_email(
            work,
            firm_id=payment.firm_id,
            kind=KIND_BANK_VERIFICATION,
            recipients=[payment.payer_email],
            link_id=payment.link_id,
            payment_id=payment.id,
        )
    return payment


def _charged_with(result: ChargeResult) -> dict[str, str]:
    """What a payment keeps of how it was charged (never the card or account number)."""
    return {
        "method": result.method,
        "brand": result.brand,
        "last4": result.last4,
        "processor_ref": result.reference,
    }


def new_receipt_number() -> str:
    return "R-" + "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(10))


def complete_payment(work: Work, payment_id: int, result: ChargeResult) -> Payment:
    """Record the processor's success: the payment succeeds, the link is paid, mail is queued.

    Each change is conditional on the state we left it in, so that when the request and the
    resolver job both get here only one of them writes (and sends the emails).
    """
    now = utcnow()
    dbsession = work.dbsession
    won = dbsession.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status.in_(UNSETTLED))
        .values(
            status=PAYMENT_SUCCEEDED,
            receipt_number=new_receipt_number(),
            completed_at=now,
            **_charged_with(result),
        )
        .execution_options(synchronize_session=False)
    )
    payment = _reload(dbsession, payment_id)
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return payment
    _mark_paid(dbsession, payment, now)
    _queue_payment_emails(work, payment)
    # In the same transaction: a Connect payment is never without its posting.
    create_posting_for_payment(work, payment, payment.link)
    return payment


def _mark_paid(dbsession: Session, payment: Payment, now: dt.datetime) -> None:
    paid = dbsession.execute(
        update(PaymentLink)
        .where(PaymentLink.id == payment.link_id, PaymentLink.status == STATUS_PROCESSING)
        .values(
            status=paid_status(payment.link.amount_minor, payment.amount_minor),
            amount_paid_minor=payment.amount_minor,
            paid_at=now,
            processing_started_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if paid.rowcount != 1:  # type: ignore[attr-defined]
        # Money was taken for a link we no longer held (the resolver gave up on it too soon).
        log.error(
            "payment %s succeeded but link %s was not processing", payment.id, payment.link_id
        )


def fail_payment(work: Work, payment_id: int, code: str, message: str) -> Payment:
    """Record a refusal: the payment fails and the link is payable again; the firm's
    recipients of "payment failed" are told (once: only the writer that won)."""
    dbsession = work.dbsession
    won = dbsession.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.status.in_(UNSETTLED))
        .values(
            status=PAYMENT_FAILED,
            failure_code=code,
            failure_message=message,
            completed_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    payment = _reload(dbsession, payment_id)
    if won.rowcount == 1:  # type: ignore[attr-defined]
        links.release(dbsession, payment.link_id)
        notify_payment_failed(work, payment, link_facts(payment.link))
    return payment


def _reload(dbsession: Session, payment_id: int) -> Payment:
    return dbsession.execute(
        select(Payment).where(Payment.id == payment_id).execution_options(populate_existing=True)
    ).scalar_one()


def _queue_payment_emails(work: Work, payment: Payment) -> None:
    mails = [(KIND_RECEIPT, [payment.payer_email])]
    staff = notice_recipients(work.dbsession, payment.firm_id)
    if staff:
        mails.append((KIND_PAYMENT_NOTICE, staff))
    for kind, recipients in mails:
        queue_email(
            work,
            firm_id=payment.firm_id,
            kind=kind,
            recipients=recipients,
            link_id=payment.link_id,
            payment_id=payment.id,
        )


def notice_recipients(dbsession: Session, firm_id: int) -> list[str]:
    return subscribers(dbsession, firm_id, NOTICE_EVENT)


def payment_answer(payment: Payment, authentication_secret: str = "") -> tuple[int, dict[str, Any]]:
    """The HTTP status and body that tell a payer how this attempt went.

    Built from the stored payment, so that a replayed Idempotency-Key gets the very answer
    the first request got; but for the card's bank check (3-D Secure), asked for only in the
    answer to the request that charged (its secret is not stored): a replay settles it
    instead (submit_payment).
    """
    if is_awaiting_authentication(payment) and authentication_secret:
        return 202, {
            **_charged_answer(payment),
            "status": "requires_action",
            "link_status": STATUS_PROCESSING,
            "client_secret": authentication_secret,
            "message": (
                "Your card's bank asks you to confirm this payment. Nothing has been charged "
                "until you do."
            ),
        }
    if payment.status == PAYMENT_SUCCEEDED:
        return 201, {
            **_charged_answer(payment),
            "receipt_number": payment.receipt_number,
            "link_status": paid_status(payment.link.amount_minor, payment.amount_minor),
        }
    if payment.status == PAYMENT_FAILED:
        return 402, {
            "error": payment.failure_code,
            "message": payment.failure_message,
            "errors": [],
            "payment_id": payment.id,
            # A refused payment gave the link back.
            "link_status": STATUS_OUTSTANDING,
        }
    if payment.status == PAYMENT_PROCESSING and payment.verification_url:
        return 202, {
            **_charged_answer(payment),
            "link_status": STATUS_PROCESSING,
            "hosted_verification_url": payment.verification_url,
            "verification_arrival_date": _arrival_date(payment),
            "message": (
                "This bank account must be verified before it is debited. Stripe will send "
                "two small deposits (or one with a code) to it in 1-2 business days; follow "
                "the link, which we also emailed you, to confirm them, and the payment then "
                "goes through."
            ),
        }
    if payment.status == PAYMENT_PROCESSING and not payment.awaiting_authentication:
        return 202, {
            **_charged_answer(payment),
            "link_status": STATUS_PROCESSING,
            "message": (
                "Your bank payment has been submitted and is processing. Bank payments take "
                "a few business days to clear; we will email your receipt when it does."
            ),
        }
    return 409, {
        "error": "payment_in_progress",
        "message": "This payment is still being processed. Please wait a moment and reload.",
        "errors": [],
        "payment_id": payment.id,
        "link_status": STATUS_PROCESSING,
    }


def _arrival_date(payment: Payment) -> str | None:
    arrives = payment.verification_arrives_at
    return arrives.date().isoformat() if arrives else None


def _charged_answer(payment: Payment) -> dict[str, Any]:
    """What a payer is told of a charge the processor took (succeeded, or still clearing)."""
    return {
        "payment_id": payment.id,
        "status": payment.status,
        "amount": format_amount(payment.amount_minor, payment.currency),
        "currency": payment.currency,
        "method": payment.method,
        "brand": payment.brand,
        "last4": payment.last4,
    }


def settle_from_processor(
    work: Work, payment_id: int, processor_key: str, account: ProcessorAccount, processor_name: str
) -> Payment:
    """Settle a pending payment by what the processor says became of its charge (for the
    resolver, and Stripe's webhooks): succeeded, declined, or never made (nothing charged).
    A bank debit still clearing leaves it processing. Raises ProcessorUnavailable while the
    processor cannot tell. Called outside any transaction of ours; settling twice (the
    resolver and a webhook) writes once. ``processor_name`` is the processor that charged it;
    ProcessorNotOffered if this instance no longer offers it."""
    if not processors.offers(work.registry, processor_name):
        raise ProcessorNotOffered(processor_name)
    processor: Processor = work.find_service(IPaymentProcessor, name=processor_name)
    try:
        result = processor.lookup(processor_key, account=account)
    except Declined as declined:
        return fail_payment(work, payment_id, declined.code, declined.message)
    if result is None:
        return fail_payment(
            work,
            payment_id,
            NOT_CHARGED,
            "The payment did not reach the processor; nothing was charged.",
        )
    return record_result(work, payment_id, result)


@dataclass(frozen=True)
class StuckPayment:
    link_id: int
    payment_id: int | None
    processor_key: str | None
    merchant_account_id: int
    # Empty on payments made before it was kept: the merchant account's processor's.
    processor: str | None


def stuck_payments(dbsession: Session, started_before: dt.datetime) -> list[StuckPayment]:
    """Links claimed before ``started_before`` and still processing, with their pending payment."""
    rows = dbsession.execute(
        select(
            PaymentLink.id,
            Payment.id,
            Payment.processor_key,
            PaymentLink.merchant_account_id,
            Payment.processor,
        )
        .outerjoin(Payment, (Payment.link_id == PaymentLink.id) & Payment.status.in_(UNSETTLED))
        .where(
            PaymentLink.status == STATUS_PROCESSING,
            (PaymentLink.processing_started_at < started_before)
            | PaymentLink.processing_started_at.is_(None),
        )
        .order_by(PaymentLink.id)
    ).all()
    return [StuckPayment(*row) for row in rows]
