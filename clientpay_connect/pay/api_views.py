"""The payer's API: what a link asks for, and paying it once.

Both endpoints are PUBLIC: the link's secret token in the URL is the only credential. The
POST opts out of CSRF because it rides on no cookie or session a forged request could borrow;
a cross-site page that knows the token could pay the link anyway.

The payment commits twice before it answers: once after claiming the link and recording the
attempt (so that no other payer can claim it and a crash leaves a trace for the resolver),
and once after the processor's answer. The processor is called between the two, outside any
transaction of ours. Nothing here logs the token or any number of the payer's.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.api.errors import ApiError, conflict, error_response, not_found
from clientpay_connect.crypto import sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import STATUS_EXPIRED, STATUS_OUTSTANDING, PaymentLink
from clientpay_connect.links.services import (
    REFUSED_ACCOUNT_INACTIVE,
    REFUSED_EXPIRED,
    find_by_token,
    is_past_expiry,
    payment_refusal,
)
from clientpay_connect.money import format_amount
from clientpay_connect.pay import services
from clientpay_connect.pay.interfaces import ICaptchaVerifier, IPaymentProcessor
from clientpay_connect.pay.processor import Declined, ProcessorUnavailable
from clientpay_connect.security import PUBLIC
from clientpay_connect.throttle.deriver import throttle
from clientpay_connect.work import Work


def _token_tag(request: Request) -> str:
    # Rate-limit keys and anything else that outlives the request carry a hash, not the token.
    return sha256_hex(request.matchdict["token"])[:16]


def _find_link(request: Request) -> PaymentLink:
    link = find_by_token(request.dbsession, request.matchdict["token"])
    if link is None:
        raise not_found("There is no payment link at this address.")
    return link


def _json(status: int, body: dict[str, Any]) -> Response:
    response = Response(json_body=body, status=status, charset="utf-8")
    response.content_type = "application/json"
    return response


@view_config(
    route_name="pay.api", request_method="GET", renderer="json", permission=PUBLIC, openapi=True
)
def show_link(request: Request) -> dict[str, Any]:
    throttle(request, "clientpay.limits.token_lookups", f"pay-lookup-ip:{request.client_addr}")
    link = _find_link(request)
    settings = request.dbsession.get(FirmSettings, link.firm_id)
    recaptcha = settings is not None and settings.recaptcha_enabled
    past_expiry = is_past_expiry(link, utcnow())
    return {
        "status": STATUS_EXPIRED if past_expiry else link.status,
        "amount_due": format_amount(link.amount_due_minor, link.currency),
        "amount_paid": format_amount(link.amount_paid_minor, link.currency),
        "currency": link.currency,
        "firm_name": link.firm.name,
        "invoice_number": link.invoice_number,
        "due_date": link.due_date.isoformat() if link.due_date else None,
        "disclaimer": settings.disclaimer if settings is not None else "",
        # No method while the account takes no payments: the page then offers none either.
        "methods": link.merchant_account.methods if link.account_active else [],
        "recaptcha_site_key": settings.recaptcha_site_key if recaptcha and settings else None,
    }


def _limit_pay_attempts(request: Request) -> None:
    throttle(
        request,
        "clientpay.limits.pay_attempts",
        f"pay-ip:{request.client_addr}",
        f"pay-link:{_token_tag(request)}",
    )


# require_csrf=False: see the module's docstring. The rate limit is counted before the body is
# validated (throttle/deriver.py).
@view_config(
    route_name="pay.api",
    request_method="POST",
    permission=PUBLIC,
    require_csrf=False,
    openapi=True,
    rate_limit=_limit_pay_attempts,
)
def submit_payment(request: Request) -> Response:
    key = request.headers["Idempotency-Key"]
    link = _find_link(request)
    request_hash = services.submission_hash(request.openapi_validated.body)
    earlier = services.find_attempt(request.dbsession, link.id, key, request_hash)
    if earlier is not None:
        return _json(*services.payment_answer(earlier))
    refusal = _refuse_unpayable(request, link)
    if refusal is not None:
        return refusal
    attempt = services.read_attempt(request.openapi_validated.body, link)
    # Read before any commit below: the link is detached once its transaction ends.
    methods = link.merchant_account.methods
    _check_captcha(request, link)
    payment = services.start_payment(request.dbsession, link, attempt, key, request_hash)
    if payment is None:
        return _lost_the_claim(request, link.id, key, request_hash)
    payment_id, processor_key = payment.id, payment.processor_key
    Work.from_request(request).checkpoint()
    return _charge(request, payment_id, processor_key, attempt, link.currency, methods)


def _refuse_unpayable(request: Request, link: PaymentLink) -> Response | None:
    """410 for an expired link (marking it so), 409 for any other that cannot be paid."""
    refusal = payment_refusal(link, utcnow())
    if refusal is None:
        return None
    if refusal == REFUSED_EXPIRED:
        if link.status == STATUS_OUTSTANDING:
            services.mark_expired(request.dbsession, link.id)
        return error_response(request, _expired())
    if refusal == REFUSED_ACCOUNT_INACTIVE:
        raise conflict(
            REFUSED_ACCOUNT_INACTIVE,
            f"This link cannot be paid online. Please contact {link.firm.name}.",
            link_status=link.status,
        )
    raise _not_payable(link.status)


def _expired() -> ApiError:
    return ApiError(410, "link_expired", "This payment link has expired.")


def _not_payable(link_status: str) -> ApiError:
    return conflict(
        "link_not_payable", "This link cannot be paid (any more).", link_status=link_status
    )


def _check_captcha(request: Request, link: PaymentLink) -> None:
    settings = request.dbsession.get(FirmSettings, link.firm_id)
    if settings is None or not settings.recaptcha_enabled:
        return
    secret = settings.recaptcha_secret_encrypted
    answer = request.openapi_validated.body.get("recaptcha_token") or ""
    # Google is asked between two transactions: a slow answer must not hold the database.
    Work.from_request(request).checkpoint()
    verifier = request.find_service(ICaptchaVerifier)
    if not secret or not verifier.verify(
        request.encryptor.decrypt(secret), answer, request.client_addr
    ):
        raise ApiError(
            422,
            "captcha_failed",
            "Please confirm that you are not a robot, then try again.",
            [{"field": "recaptcha_token", "message": "The reCAPTCHA check did not pass."}],
        )


def _lost_the_claim(request: Request, link_id: int, key: str, request_hash: str) -> Response:
    # The winner may be this very payer, retrying at the same instant with the same key.
    earlier = services.find_attempt(request.dbsession, link_id, key, request_hash)
    if earlier is not None:
        return _json(*services.payment_answer(earlier))
    link = request.dbsession.get(PaymentLink, link_id, populate_existing=True)
    raise _not_payable(link.status if link is not None else STATUS_EXPIRED)


def _charge(
    request: Request,
    payment_id: int,
    processor_key: str,
    attempt: services.Attempt,
    currency: str,
    allowed_methods: list[str],
) -> Response:
    processor = request.find_service(IPaymentProcessor)
    try:
        result = processor.charge(
            attempt.payment_token, attempt.amount_minor, currency, processor_key, allowed_methods
        )
    except Declined as declined:
        payment = services.fail_payment(
            request.dbsession, payment_id, declined.code, declined.message
        )
        return _json(*services.payment_answer(payment))
    except ProcessorUnavailable:
        # The link stays claimed: only the resolver job, asking the processor later, may
        # decide whether it was paid.
        return error_response(
            request,
            ApiError(
                503,
                "processor_unavailable",
                "We could not get an answer from the payment processor. Do not pay again: "
                "we will check with the processor and email your receipt if the payment "
                "went through.",
                extra={"payment_id": payment_id, "link_status": "processing"},
            ),
        )
    payment = services.complete_payment(Work.from_request(request), payment_id, result)
    return _json(*services.payment_answer(payment))
