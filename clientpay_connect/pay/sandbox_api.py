"""The sandbox processor's tokenization endpoint: what a processor's hosted fields would call.

Registered only while the sandbox is the configured processor. It answers with a token and
keeps only the outcome to simulate, the brand and the last four digits: never the number.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.api.errors import FieldErrors
from clientpay_connect.api.json_body import is_json, read_json_body
from clientpay_connect.db import utcnow
from clientpay_connect.pay.interfaces import IPaymentProcessor
from clientpay_connect.pay.processor import InvalidDetails, SandboxProcessor, read_details
from clientpay_connect.security import PUBLIC
from clientpay_connect.throttle.deriver import throttle


def _body(request: Request) -> dict[str, Any]:
    body = read_json_body(request) if is_json(request) else None
    if not isinstance(body, dict):
        raise FieldErrors([{"field": "", "message": "Send the details as a JSON object."}])
    return body


# require_csrf=False: a processor's endpoint takes no cookie of ours, so a forged request has
# nothing to ride on; all it could do is make a token, which pays nothing by itself.
@view_config(
    route_name="pay.sandbox_tokens",
    request_method="POST",
    renderer="json",
    permission=PUBLIC,
    require_csrf=False,
)
def create_token(request: Request) -> dict[str, Any]:
    throttle(request, "clientpay.limits.sandbox_tokens", f"sandbox-tokens-ip:{request.client_addr}")
    try:
        details = read_details(_body(request), utcnow().date())
    except InvalidDetails as exc:
        raise FieldErrors(exc.errors) from None
    processor: SandboxProcessor = request.find_service(
        IPaymentProcessor, name=SandboxProcessor.name
    )
    token = processor.tokenize(details)
    return {
        "token": token,
        "method": details.method,
        "brand": details.brand,
        "last4": details.last4,
    }
