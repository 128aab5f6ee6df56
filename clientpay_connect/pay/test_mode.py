"""Whether the people looking at a page must be told that no real money moves (Test mode)."""

from __future__ import annotations

from pyramid.request import Request
from sqlalchemy import or_, select

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.pay.processor import SandboxProcessor

STRIPE_TEST_KEY_PREFIX = "pk_test_"


def staff_test_mode(request: Request) -> bool:
    """For staff pages: the instance's processor is the sandbox, or one of the firm's active
    merchant accounts is on the sandbox or has Stripe test keys (its links take test cards
    only)."""
    if request.registry["clientpay.processor"].name == "sandbox":
        return True
    user = request.user
    if user is None:
        return False
    found = request.dbsession.execute(
        select(MerchantAccount.id)
        .where(
            MerchantAccount.firm_id == user.firm_id,
            MerchantAccount.active.is_(True),
            or_(
                MerchantAccount.processor == SandboxProcessor.name,
                MerchantAccount.stripe_publishable_key.startswith(STRIPE_TEST_KEY_PREFIX),
            ),
        )
        .limit(1)
    )
    return found.first() is not None
