"""The payer's side in tests: a link to pay, the sandbox's test numbers, paying via the API."""

from __future__ import annotations

import uuid
from typing import Any

import transaction
import webtest
from pyramid.registry import Registry
from pyramid.router import Router
from sqlalchemy.orm import Session

from clientpay_connect.accounts.services import create_firm
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import get_tm_session
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import NewLink, create_link

# Stripe's published test numbers, and what the sandbox does with them.
CARD_OUTCOMES = {
    "4242424242424242": "succeeded",
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
}
SUCCEEDS = "4242424242424242"
# The sandbox's own: charged but the answer is lost; unreachable, nothing charged.
ANSWER_LOST = "4000000000000507"
UNREACHABLE = "4000000000000515"
ROUTING = "110000000"
BOTH_METHODS = ("card", "echeck")
ACCOUNT_SUCCEEDS = "000123456789"
ACCOUNT_CLOSED = "000111111113"
NO_SUCH_ACCOUNT = "000111111116"


def card(number: str = SUCCEEDS, **changes: Any) -> dict[str, Any]:
    return {"card_number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123", **changes}


def bank_account(account: str = ACCOUNT_SUCCEEDS, **changes: Any) -> dict[str, Any]:
    return {
        "routing_number": ROUTING,
        "account_number": account,
        "account_type": "checking",
        **changes,
    }


def new_link(
    dbsession: Session,
    registry: Registry,
    merchant_account: MerchantAccount,
    amount_minor: int = 12_345,
    **fields: Any,
) -> tuple[PaymentLink, str]:
    """A link made by the real service, and its secret token."""
    link, token = create_link(
        dbsession,
        registry["clientpay.encryptor"],
        None,
        NewLink(merchant_account=merchant_account, amount_minor=amount_minor, **fields),
    )
    dbsession.flush()
    return link, token


def committed_link(app: Router, amount_minor: int = 10_000, **fields: Any) -> tuple[int, str]:
    """A link of a new firm, committed (for an app serving its own database); its id and
    secret token."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        firm = create_firm(session, "Committed LLP", "committed-" + uuid.uuid4().hex[:8])
        account = MerchantAccount(firm_id=firm.id, name="Operating", kind="operating")
        session.add(account)
        session.flush()
        link, token = new_link(session, app.registry, account, amount_minor, **fields)
        return link.id, token


def committed_opens(app: Router, link_id: int) -> tuple[Any, Any]:
    """The link's first and last open, as committed."""
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        link = session.get(PaymentLink, link_id)
        return link.first_opened_at, link.last_opened_at


def tokenize(testapp: webtest.TestApp, details: dict[str, Any]) -> str:
    token: str = testapp.post_json("/sandbox/tokens", details).json["token"]
    return token


def submission(payment_token: str, amount: str = "123.45", **changes: Any) -> dict[str, Any]:
    return {
        "payment_token": payment_token,
        "amount": amount,
        "payer_name": "Pat Payer",
        "payer_email": "pat@example.test",
        **changes,
    }


def pay(
    testapp: webtest.TestApp,
    link_token: str,
    body: dict[str, Any],
    key: str | None = None,
    status: int | str = "*",
) -> webtest.TestResponse:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    return testapp.post_json(f"/api/v1/pay/{link_token}", body, headers=headers, status=status)
