"""Submitting a payment is one service (pay/services.py submit_payment): it answers with the
stored payment, or raises a refusal declared beside the pay interfaces (pay/api.py maps each
to HTTP). A refusal aborts its transaction, so what must outlast it is committed first."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from clientpay_connect.db import utcnow
from clientpay_connect.links.models import STATUS_EXPIRED, STATUS_PAID, PaymentLink
from clientpay_connect.pay.interfaces import LinkExpired, LinkNotPayable, UnknownLink
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED
from clientpay_connect.pay.services import Submission, submit_payment
from clientpay_connect.work import Work
from tests import factories
from tests.support.payments import card, new_link, submission, tokenize


@pytest.fixture
def link_and_token(app: Any, dbsession: Any, firm: Any) -> Any:
    account = factories.MerchantAccountFactory(firm=firm)
    return new_link(dbsession, app.registry, account, 123_45)


def submit(app: Any, token: str, body: dict[str, Any], key: str = "key-1") -> Any:
    with Work.fresh(app.registry) as work:
        payment = submit_payment(work, Submission(token, body, key, "127.0.0.1")).payment
        return payment.id, payment.status


def test_a_payment_goes_through_and_its_key_answers_it_again(app, testapp, link_and_token):
    _link, token = link_and_token
    body = submission(tokenize(testapp, card()))
    first = submit(app, token, body)
    assert first[1] == PAYMENT_SUCCEEDED
    assert submit(app, token, body) == first


def test_an_unknown_token_is_refused(app, testapp):
    with pytest.raises(UnknownLink):
        submit(app, "no-such-token", submission(tokenize(testapp, card())))


def test_an_expired_link_is_refused_and_stays_marked_expired(
    app, testapp, dbsession, link_and_token
):
    link, token = link_and_token
    link.expires_at = utcnow() - dt.timedelta(minutes=1)
    dbsession.flush()
    with pytest.raises(LinkExpired):
        submit(app, token, submission(tokenize(testapp, card())))
    assert dbsession.get(PaymentLink, link.id, populate_existing=True).status == STATUS_EXPIRED


def test_a_paid_link_is_refused_with_its_status(app, testapp, link_and_token):
    _link, token = link_and_token
    submit(app, token, submission(tokenize(testapp, card())))
    with pytest.raises(LinkNotPayable) as refused:
        submit(app, token, submission(tokenize(testapp, card())), key="key-2")
    assert refused.value.link_status == STATUS_PAID
