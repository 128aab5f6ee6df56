"""The payer's API: what a link asks for, and paying it once.

Both endpoints are PUBLIC: the link's secret token in the URL is the only credential. The
POST opts out of CSRF because it rides on no cookie or session a forged request could borrow;
a cross-site page that knows the token could pay the link anyway.

The payment is one service's (pay/services.py submit_payment); this module maps its outcome,
a payment or a refusal (pay/interfaces.py), to HTTP. Nothing here logs the token or any
number of the payer's.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.api.errors import ApiError, conflict, error_response
from clientpay_connect.crypto import sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import STATUS_EXPIRED, STATUS_PROCESSING, PaymentLink
from clientpay_connect.links.services import is_past_expiry
from clientpay_connect.money import format_amount
from clientpay_connect.pay import processors, services
from clientpay_connect.pay.interfaces import (
    CaptchaFailed,
    IdempotencyKeyReused,
    InvalidSubmission,
    LinkExpired,
    LinkNotPayable,
    PaymentOutcomeUnknown,
    PaymentRefused,
    UnknownLink,
)
from clientpay_connect.security import PUBLIC
from clientpay_connect.throttle.deriver import throttle
from clientpay_connect.work import Work


def _token_tag(request: Request) -> str:
    # Rate-limit keys and anything else that outlives the request carry a hash, not the token.
    return sha256_hex(request.matchdict["token"])[:16]


def _json(status: int, body: dict[str, Any]) -> Response:
    response = Response(json_body=body, status=status, charset="utf-8")
    response.content_type = "application/json"
    return response


@view_config(
    route_name="pay.api", request_method="GET", renderer="json", permission=PUBLIC, openapi=True
)
def show_link(request: Request) -> dict[str, Any]:
    throttle(request, "clientpay.limits.token_lookups", f"pay-lookup-ip:{request.client_addr}")
    link = services.find_link(request.dbsession, request.matchdict["token"])
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
        "methods": link.merchant_account.methods if _takes_payments(request, link) else [],
        "recaptcha_site_key": settings.recaptcha_site_key if recaptcha and settings else None,
    }


def _takes_payments(request: Request, link: PaymentLink) -> bool:
    """Whether the link's account is in use, on a processor this instance offers."""
    account = link.merchant_account
    return link.account_active and processors.offers(request.registry, account.processor)


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
    submission = services.Submission(
        link_token=request.matchdict["token"],
        body=request.openapi_validated.body,
        idempotency_key=request.headers["Idempotency-Key"],
        client_addr=request.client_addr,
        user_agent=request.user_agent or "",
    )
    outcome = services.submit_payment(Work.from_request(request), submission)
    return _json(*services.payment_answer(outcome.payment, outcome.authentication_secret))


@exception_view_config(PaymentRefused)
def payment_refused(exc: PaymentRefused, request: Request) -> Response:
    return error_response(request, as_api_error(exc))


# Each refusal's status and error code (API.md, "The payer's side").
REFUSALS: dict[type[PaymentRefused], tuple[int, str]] = {
    UnknownLink: (404, "not_found"),
    LinkExpired: (410, "link_expired"),
    InvalidSubmission: (422, "validation_error"),
    IdempotencyKeyReused: (422, "idempotency_key_reused"),
    CaptchaFailed: (422, "captcha_failed"),
    PaymentOutcomeUnknown: (503, "processor_unavailable"),
}


def as_api_error(exc: PaymentRefused) -> ApiError:
    """How the API tells the payer that their payment was refused."""
    if isinstance(exc, LinkNotPayable):
        return conflict(exc.reason, exc.message, link_status=exc.link_status)
    status, code = REFUSALS.get(type(exc), (422, "payment_refused"))
    extra = (
        {"payment_id": exc.payment_id, "link_status": STATUS_PROCESSING}
        if isinstance(exc, PaymentOutcomeUnknown)
        else None
    )
    return ApiError(status, code, exc.message, exc.errors, extra=extra)
